"""The schemas of campaignlake's tables: the ``select`` contract at the end of each transform.

Which table has which schema, partitioning and writer is declared in :mod:`campaignlake.catalog`.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from campaignlake import columns as c

MONEY = DecimalType(12, 2)


def _struct(*fields: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, data_type, nullable=True) for name, data_type in fields])


INGEST_METADATA = (
    (c.SOURCE_FILE, StringType()),
    (c.BATCH_ID, StringType()),
    (c.INGESTED_AT, TimestampType()),
)

CLICKSTREAM_EVENTS = _struct(
    (c.EVENT_ID, StringType()),
    (c.EVENT_TYPE, StringType()),
    (c.EVENT_TS, TimestampType()),
    (c.CUSTOMER_ID, StringType()),
    (c.ANONYMOUS_ID, StringType()),
    (c.SESSION_ID, StringType()),
    (c.PRODUCT_ID, StringType()),
    (c.QUANTITY, IntegerType()),
    (c.PRICE, MONEY),
    (c.AMOUNT, MONEY),
    (c.PAGE_URL, StringType()),
    (c.REFERRER, StringType()),
    (c.UTM_SOURCE, StringType()),
    (c.UTM_MEDIUM, StringType()),
    (c.UTM_CAMPAIGN, StringType()),
    (c.DEVICE, StringType()),
    (c.USER_AGENT, StringType()),
    (c.RESCUED_DATA, StringType()),
    *INGEST_METADATA,
    (c.EVENT_DATE, DateType()),
)

QUARANTINE = _struct(
    (c.SOURCE_FILE, StringType()),
    (c.RECORD_KEY, StringType()),
    (c.RAW_RECORD, StringType()),
    (c.REASON, StringType()),
    (c.DISPOSITION, StringType()),
    (c.BATCH_ID, StringType()),
    (c.INGESTED_AT, TimestampType()),
    (c.QUARANTINE_DATE, DateType()),
)

CUSTOMERS = _struct(
    (c.CUSTOMER_ID, StringType()),
    (c.EMAIL, StringType()),
    (c.EMAIL_HASH, StringType()),
    (c.EMAIL_VALID, BooleanType()),
    (c.FIRST_NAME, StringType()),
    (c.LAST_NAME, StringType()),
    (c.PHONE, StringType()),
    (c.COUNTRY, StringType()),
    (c.CITY, StringType()),
    (c.SIGNUP_DATE, DateType()),
    (c.BIRTH_YEAR, IntegerType()),
    (c.LOYALTY_TIER, StringType()),
    (c.EMAIL_OPT_IN, BooleanType()),
    (c.SMS_OPT_IN, BooleanType()),
    (c.PUSH_OPT_IN, BooleanType()),
    (c.UPDATED_AT, TimestampType()),
    (c.ATTRIBUTES, MapType(StringType(), StringType())),
    *INGEST_METADATA,
)

DELETION_REQUESTS = _struct(
    (c.CUSTOMER_ID, StringType()),
    (c.REQUESTED_AT, TimestampType()),
    *INGEST_METADATA,
)

PRODUCTS = _struct(
    (c.PRODUCT_ID, StringType()),
    (c.NAME, StringType()),
    (c.CATEGORY, StringType()),
    (c.BRAND, StringType()),
    (c.PRICE, MONEY),
    (c.ACTIVE, BooleanType()),
    (c.DESCRIPTION, StringType()),
    (c.TAGS, ArrayType(StringType())),
    (c.EXPORT_DATE, DateType()),
    *INGEST_METADATA,
)

#: Review title and text have e-mail addresses and phone numbers masked at ingestion; what
#: is left is still the customer's words (erased with the customer).
REVIEWS = _struct(
    (c.REVIEW_ID, StringType()),
    (c.CUSTOMER_ID, StringType()),
    (c.PRODUCT_ID, StringType()),
    (c.RATING, IntegerType()),
    (c.TITLE, StringType()),
    (c.TEXT, StringType()),
    (c.CREATED_AT, TimestampType()),
    (c.EXPORT_DATE, DateType()),
    *INGEST_METADATA,
)
REVIEW_PII = frozenset({c.TITLE, c.TEXT})

CAMPAIGN_CONTACTS = _struct(
    (c.CAMPAIGN_ID, StringType()),
    (c.CHANNEL, StringType()),
    (c.CUSTOMER_ID, StringType()),
    (c.SENT_AT, TimestampType()),
    (c.OPENED_AT, TimestampType()),
    (c.CLICKED_AT, TimestampType()),
    (c.CONVERTED_AT, TimestampType()),
    (c.REVENUE, MONEY),
    (c.GROUP, StringType()),
    (c.EXPORT_DATE, DateType()),
    *INGEST_METADATA,
)

INGEST_BATCHES = _struct(
    (c.JOB, StringType()),
    (c.BATCH_SEQ, LongType()),
    (c.SOURCE_FILE, StringType()),
    (c.FILE_SIZE, LongType()),
    (c.FILE_MODIFIED_AT, TimestampType()),
    (c.FILE_REASON, StringType()),
    (c.STATUS, StringType()),
    (c.RECORDED_AT, TimestampType()),
)

CUSTOMER_SEGMENTS = _struct(
    (c.CUSTOMER_ID, StringType()),
    (c.RECENCY_SCORE, IntegerType()),
    (c.FREQUENCY_SCORE, IntegerType()),
    (c.MONETARY_SCORE, IntegerType()),
    (c.RFM_SEGMENT, StringType()),
    (c.BEHAVIOUR_SEGMENT, IntegerType()),
    (c.AS_OF_DATE, DateType()),
)

MODEL_METRICS = _struct(
    (c.MODEL_NAME, StringType()),
    (c.MODEL_VERSION, StringType()),
    (c.SPLIT, StringType()),
    (c.METRIC, StringType()),
    (c.VALUE, DoubleType()),
    (c.CREATED_AT, TimestampType()),
)

PROPENSITY_SCORES = _struct(
    (c.CUSTOMER_ID, StringType()),
    (c.MODEL_NAME, StringType()),
    (c.MODEL_VERSION, StringType()),
    (c.CHANNEL, StringType()),
    (c.CATEGORY, StringType()),
    (c.SCORE, DoubleType()),
    (c.DECILE, IntegerType()),
    (c.AS_OF_DATE, DateType()),
)

INTERACTIONS = _struct(
    (c.CUSTOMER_ID, StringType()),
    (c.PRODUCT_ID, StringType()),
    (c.CUSTOMER_INDEX, IntegerType()),
    (c.PRODUCT_INDEX, IntegerType()),
    (c.STRENGTH, DoubleType()),
    (c.EVENTS, LongType()),
    (c.LAST_EVENT_TS, TimestampType()),
    (c.EXCLUDED, BooleanType()),
    (c.AS_OF_DATE, DateType()),
)

CUSTOMER_INDEX = _struct(
    (c.CUSTOMER_ID, StringType()), (c.CUSTOMER_INDEX, IntegerType()), (c.FIRST_SEEN, DateType())
)
PRODUCT_INDEX = _struct(
    (c.PRODUCT_ID, StringType()), (c.PRODUCT_INDEX, IntegerType()), (c.FIRST_SEEN, DateType())
)

RECOMMENDATIONS = _struct(
    (c.CUSTOMER_ID, StringType()),
    (c.RANK, IntegerType()),
    (c.PRODUCT_ID, StringType()),
    (c.SCORE, DoubleType()),
    (c.SOURCE, StringType()),
    (c.MODEL_VERSION, StringType()),
    (c.AS_OF_DATE, DateType()),
)

SIMILAR_PRODUCTS = _struct(
    (c.PRODUCT_ID, StringType()),
    (c.RANK, IntegerType()),
    (c.SIMILAR_PRODUCT_ID, StringType()),
    (c.SIMILARITY, DoubleType()),
    (c.METHOD, StringType()),
    (c.MODEL_VERSION, StringType()),
    (c.AS_OF_DATE, DateType()),
)

#: A product's text profile: its description's topic mixture and embedding, and what its
#: reviews say.
PRODUCT_TOPICS = _struct(
    (c.PRODUCT_ID, StringType()),
    (c.DOMINANT_TOPIC, IntegerType()),
    (c.TOPIC_DISTRIBUTION, ArrayType(DoubleType())),
    (c.EMBEDDING, ArrayType(DoubleType())),
    (c.REVIEWS, LongType()),
    (c.MEAN_RATING, DoubleType()),
    (c.MEAN_SENTIMENT, DoubleType()),
    (c.MODEL_VERSION, StringType()),
    (c.AS_OF_DATE, DateType()),
)

#: Every review's predicted sentiment (probability that it is positive).
REVIEW_SENTIMENT = _struct(
    (c.REVIEW_ID, StringType()),
    (c.CUSTOMER_ID, StringType()),
    (c.PRODUCT_ID, StringType()),
    (c.RATING, IntegerType()),
    (c.CREATED_AT, TimestampType()),
    (c.SENTIMENT, DoubleType()),
    (c.MODEL_VERSION, StringType()),
    (c.AS_OF_DATE, DateType()),
)

CAMPAIGN_AUDIENCES = _struct(
    (c.CAMPAIGN_ID, StringType()),
    (c.CHANNEL, StringType()),
    (c.SEND_DATE, DateType()),
    (c.CUSTOMER_ID, StringType()),
    (c.GROUP, StringType()),
    (c.SCORE, DoubleType()),
    (c.DECILE, IntegerType()),
    (c.RANK, IntegerType()),
    (c.PRODUCT_IDS, ArrayType(StringType())),
    (c.RFM_SEGMENT, StringType()),
    (c.BEHAVIOUR_SEGMENT, IntegerType()),
    (c.MODEL_NAME, StringType()),
    (c.MODEL_VERSION, StringType()),
    (c.AS_OF_DATE, DateType()),
)

#: One row per measured campaign and breakdown cell (``breakdown`` ``all`` is the whole
#: campaign); see :mod:`campaignlake.measurement.lift`.
CAMPAIGN_RESULTS = _struct(
    (c.CAMPAIGN_ID, StringType()),
    (c.CHANNEL, StringType()),
    (c.SENT_AT, TimestampType()),
    (c.WINDOW_END, TimestampType()),
    (c.BREAKDOWN, StringType()),
    (c.BREAKDOWN_VALUE, StringType()),
    (c.STATUS, StringType()),
    (c.TREATMENT_CUSTOMERS, LongType()),
    (c.CONTROL_CUSTOMERS, LongType()),
    (c.TREATMENT_CONVERSIONS, LongType()),
    (c.CONTROL_CONVERSIONS, LongType()),
    (c.TREATMENT_RATE, DoubleType()),
    (c.CONTROL_RATE, DoubleType()),
    (c.CONVERSION_LIFT, DoubleType()),
    (c.CONVERSION_LIFT_RELATIVE, DoubleType()),
    (c.CONVERSION_CI_LOW, DoubleType()),
    (c.CONVERSION_CI_HIGH, DoubleType()),
    (c.CONVERSION_P_VALUE, DoubleType()),
    (c.TREATMENT_REVENUE_PER_CUSTOMER, DoubleType()),
    (c.CONTROL_REVENUE_PER_CUSTOMER, DoubleType()),
    (c.REVENUE_LIFT, DoubleType()),
    (c.REVENUE_LIFT_RELATIVE, DoubleType()),
    (c.REVENUE_CI_LOW, DoubleType()),
    (c.REVENUE_CI_HIGH, DoubleType()),
    (c.REVENUE_P_VALUE, DoubleType()),
    (c.INCREMENTAL_CONVERSIONS, DoubleType()),
    (c.INCREMENTAL_REVENUE, DoubleType()),
    (c.SIGNIFICANT, BooleanType()),
    (c.MIN_DETECTABLE_LIFT, DoubleType()),
    (c.ATTRIBUTED_CONVERSIONS, LongType()),
    (c.AS_OF_DATE, DateType()),
)

TRIGGER_EVENTS = _struct(
    (c.TRIGGER_ID, StringType()),
    (c.RULE_ID, StringType()),
    (c.TRIGGER_KIND, StringType()),
    (c.CHANNEL, StringType()),
    (c.CUSTOMER_ID, StringType()),
    (c.CAUSE_EVENT_ID, StringType()),
    (c.CAUSE_TS, TimestampType()),
    (c.FIRED_AT, TimestampType()),
    (c.OUTCOME, StringType()),
    (c.SUPPRESSION_REASON, StringType()),
    (c.GROUP, StringType()),
    (c.PRODUCT_IDS, ArrayType(StringType())),
    (c.COMMITTED_AT, TimestampType()),
    (c.FIRED_DATE, DateType()),
)

ERASURES = _struct(
    (c.CUSTOMER_KEY_HASH, StringType()),
    (c.REQUESTED_AT, TimestampType()),
    (c.ERASED_AT, TimestampType()),
    (c.ERASED_TABLES, ArrayType(StringType())),
    (c.ERASED_ROWS, LongType()),
    (c.RUN_DATE, DateType()),
)

#: Personal data: never in file statistics.
CUSTOMER_PII = frozenset({c.EMAIL, c.FIRST_NAME, c.LAST_NAME, c.PHONE, c.CITY})
#: Raw records can hold anything, PII included.
QUARANTINE_PII = frozenset({c.RAW_RECORD, c.RECORD_KEY})
