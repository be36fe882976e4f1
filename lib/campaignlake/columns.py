"""Column names, defined once. Transforms refer to these constants, never to string literals."""

from __future__ import annotations

# Clickstream (raw and bronze)
EVENT_ID = "event_id"
EVENT_TYPE = "event_type"
EVENT_TS = "event_ts"
EVENT_DATE = "event_date"
CUSTOMER_ID = "customer_id"
ANONYMOUS_ID = "anonymous_id"
SESSION_ID = "session_id"
PRODUCT_ID = "product_id"
QUANTITY = "quantity"
PRICE = "price"
AMOUNT = "amount"
PAGE_URL = "page_url"
REFERRER = "referrer"
UTM_SOURCE = "utm_source"
UTM_MEDIUM = "utm_medium"
UTM_CAMPAIGN = "utm_campaign"
DEVICE = "device"
USER_AGENT = "user_agent"
RESCUED_DATA = "rescued_data"

# Ingestion metadata (every ingested and quarantined row)
SOURCE_FILE = "source_file"
INGESTED_AT = "ingested_at"
BATCH_ID = "batch_id"

# CRM
EMAIL = "email"
EMAIL_HASH = "email_hash"
EMAIL_VALID = "email_valid"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
COUNTRY = "country"
CITY = "city"
SIGNUP_DATE = "signup_date"
BIRTH_YEAR = "birth_year"
LOYALTY_TIER = "loyalty_tier"
EMAIL_OPT_IN = "email_opt_in"
SMS_OPT_IN = "sms_opt_in"
PUSH_OPT_IN = "push_opt_in"
PHONE = "phone"
UPDATED_AT = "updated_at"
REQUESTED_AT = "requested_at"

# Products
NAME = "name"
CATEGORY = "category"
BRAND = "brand"
ACTIVE = "active"
EXPORT_DATE = "export_date"

# Campaign history
CAMPAIGN_ID = "campaign_id"
CHANNEL = "channel"
SENT_AT = "sent_at"
OPENED_AT = "opened_at"
CLICKED_AT = "clicked_at"
CONVERTED_AT = "converted_at"
REVENUE = "revenue"

# Quarantine
RAW_RECORD = "raw_record"
RECORD_KEY = "record_key"
REASON = "reason"
DISPOSITION = "disposition"
QUARANTINE_DATE = "quarantine_date"

# Ingest batches (the write-ahead manifest of ingestion)
JOB = "job"
BATCH_SEQ = "batch_seq"
FILE_SIZE = "file_size"
FILE_MODIFIED_AT = "file_modified_at"
FILE_REASON = "file_reason"
STATUS = "status"
RECORDED_AT = "recorded_at"

# CRM attributes beyond the contract (silver/customers, customer_history)
ATTRIBUTES = "attributes"

# Features, segments, models
AS_OF_DATE = "as_of_date"
CUTOFF_TS = "cutoff_ts"
CAMPAIGN_CATEGORY = "campaign_category"
CAMPAIGN_CATEGORY_AFFINITY = "campaign_category_affinity"
LABEL = "label"
WEIGHT = "weight"
SCORE = "score"
DECILE = "decile"
RECENCY_SCORE = "recency_score"
FREQUENCY_SCORE = "frequency_score"
MONETARY_SCORE = "monetary_score"
RFM_SEGMENT = "rfm_segment"
BEHAVIOUR_SEGMENT = "behaviour_segment"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
SPLIT = "split"
METRIC = "metric"
VALUE = "value"
CREATED_AT = "created_at"

# Recommendations
CUSTOMER_INDEX = "customer_index"
PRODUCT_INDEX = "product_index"
STRENGTH = "strength"
EVENTS = "events"
LAST_EVENT_TS = "last_event_ts"
EXCLUDED = "excluded"
FIRST_SEEN = "first_seen"
RANK = "rank"
SOURCE = "source"
SIMILAR_PRODUCT_ID = "similar_product_id"
SIMILARITY = "similarity"

# Campaign audiences and exports
SEND_DATE = "send_date"
GROUP = "group"
PRODUCT_IDS = "product_ids"
SUPPRESSION_REASON = "suppression_reason"
CONTACT_DATE = "contact_date"
RECIPIENT_ID = "recipient_id"

# Real-time triggers
TRIGGER_ID = "trigger_id"
RULE_ID = "rule_id"
TRIGGER_KIND = "trigger_kind"
CAUSE_EVENT_ID = "cause_event_id"
CAUSE_TS = "cause_ts"
FIRED_AT = "fired_at"
FIRED_DATE = "fired_date"
OUTCOME = "outcome"
COMMITTED_AT = "committed_at"

# erasure audit
CUSTOMER_KEY_HASH = "customer_key_hash"
ERASED_AT = "erased_at"
ERASED_TABLES = "erased_tables"
ERASED_ROWS = "erased_rows"
RUN_DATE = "run_date"
