"""The audience of a campaign, as pure transforms:

eligible → ranked by propensity → selected → top-K recommendations attached → suppressed →
control group split.

Suppression comes after selection so that the funnel shows how many of the customers the
model chose could not be contacted, and why. Each suppressed customer is counted under the
first reason that applies, in this order: ``erased`` (a deletion request, or no longer in the
CRM), ``global_opt_out`` (opted out of every channel), ``no_channel_consent``,
``invalid_address`` (no valid contact address for the channel) and ``frequency_cap``.
Consent and addresses come from the newest CRM state (``silver/customers``), not from the
features' as-of view: an opt-out that arrived after the as-of date still suppresses.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, StringType, StructType

from campaignlake import columns as c
from campaignlake.audiences.campaigns import Campaign, FrequencyCapConf, SelectionConf
from campaignlake.frames import with_row_numbers
from campaignlake.pii import hmac_sha256_hex, with_hmac_key
from campaignlake.recommend.metrics import ids_in_rank_order
from campaignlake.schemas import CAMPAIGN_AUDIENCES

TREATMENT = c.TREATMENT
CONTROL = c.CONTROL

ERASED = "erased"
GLOBAL_OPT_OUT = "global_opt_out"
NO_CHANNEL_CONSENT = "no_channel_consent"
INVALID_ADDRESS = "invalid_address"
FREQUENCY_CAP = "frequency_cap"
NEGATIVE_REVIEW = "negative_review"
#: Suppression reasons, in the order they are checked.
SUPPRESSION_REASONS = (
    ERASED, GLOBAL_OPT_OUT, NO_CHANNEL_CONSENT, INVALID_ADDRESS, FREQUENCY_CAP, NEGATIVE_REVIEW,
)  # fmt: skip

#: The CRM consent column of each channel.
CHANNEL_CONSENT = {"email": c.EMAIL_OPT_IN, "sms": c.SMS_OPT_IN, "push": c.PUSH_OPT_IN}
#: The contact address each channel's export carries (push goes to the app's user id, which
#: is the recipient id itself).
CHANNEL_ADDRESS = {"email": c.EMAIL, "sms": c.PHONE, "push": None}

#: The frequency cap's counting window: contacts on the send date and the 30 days before.
CAP_WINDOW_DAYS = 30

_LAST_CONTACT = "last_contact_date"
_CONTACTS_30D = "contacts_30d"


def eligibility_schema(features: StructType, segments: StructType) -> StructType:
    """The columns an eligibility expression may use: every feature and every segment column."""
    names = set(features.fieldNames())
    extra = [f for f in segments.fields if f.name not in names]
    return StructType([*features.fields, *extra])


def eligible_customers(features: DataFrame, segments: DataFrame, eligibility: str) -> DataFrame:
    """Customers (with their segments) whose features and segments of one as-of date satisfy
    ``eligibility``; a null result counts as not eligible.

    Parameters
    ----------
    features
        ``gold/customer_features`` rows of one as-of date.
    segments
        ``gold/customer_segments`` rows of the same date.
    eligibility
        A Spark SQL boolean expression over the columns of both.
    """
    segment_columns = [n for n in segments.columns if n not in features.columns]
    return (
        features.join(
            segments.select(c.CUSTOMER_ID, *segment_columns), on=c.CUSTOMER_ID, how="left"
        )
        .where(F.expr(eligibility))
        .select(c.CUSTOMER_ID, c.RFM_SEGMENT, c.BEHAVIOUR_SEGMENT)
    )


def selected_customers(
    eligible: DataFrame, scores: DataFrame, selection: SelectionConf
) -> DataFrame:
    """The eligible customers ranked by their score for the campaign's offer (best first,
    ties broken by customer id) and cut by ``selection``: those scoring at least
    ``min_score``, then the first ``top_n``. ``rank`` is the position in that order.

    Parameters
    ----------
    scores
        One offer's ``gold/propensity_scores`` rows: ``customer_id``, ``score``, ``decile``.
    """
    ranked = eligible.join(
        scores.select(c.CUSTOMER_ID, c.SCORE, c.DECILE), on=c.CUSTOMER_ID, how="inner"
    )
    if selection.min_score is not None:
        ranked = ranked.where(F.col(c.SCORE) >= F.lit(selection.min_score))
    numbered = with_row_numbers(ranked, [F.col(c.SCORE).desc(), F.col(c.CUSTOMER_ID)], c.RANK)
    if selection.top_n is not None:
        numbered = numbered.where(F.col(c.RANK) <= F.lit(selection.top_n))
    return numbered.withColumn(c.RANK, F.col(c.RANK).cast(IntegerType()))


def with_products(selected: DataFrame, recommendations: DataFrame, count: int) -> DataFrame:
    """``selected`` with ``product_ids``: the customer's first ``count`` recommended products,
    best first; empty when there are none (or ``count`` is 0)."""
    empty = F.array().cast(ArrayType(StringType()))
    if count == 0:
        return selected.withColumn(c.PRODUCT_IDS, empty)
    lists = (
        recommendations.where(F.col(c.RANK) <= F.lit(count))
        .groupBy(c.CUSTOMER_ID)
        .agg(ids_in_rank_order().alias(c.PRODUCT_IDS))
    )
    return selected.join(lists, on=c.CUSTOMER_ID, how="left").withColumn(
        c.PRODUCT_IDS, F.coalesce(F.col(c.PRODUCT_IDS), empty)
    )


def contact_history(contacts: DataFrame, audiences: DataFrame | None) -> DataFrame:
    """Every known contact as (campaign_id, customer_id, channel, contact_date): the sends in
    the campaign history (not its held-out customers) plus the treatment rows of audiences
    already built. A campaign's contact of a customer counts once, at its earliest date, even
    when it appears in both.

    Parameters
    ----------
    contacts
        ``silver/campaign_contacts``.
    audiences
        ``gold/campaign_audiences`` rows of the campaigns to count (already filtered to those
        built before the campaign at hand), or None.
    """
    sent = contacts.where(~F.col(c.GROUP).eqNullSafe(F.lit(c.CONTROL))).select(
        c.CAMPAIGN_ID, c.CUSTOMER_ID, c.CHANNEL, F.to_date(c.SENT_AT).alias(c.CONTACT_DATE)
    )
    if audiences is not None:
        planned = audiences.where(F.col(c.GROUP) == F.lit(TREATMENT)).select(
            c.CAMPAIGN_ID, c.CUSTOMER_ID, c.CHANNEL, F.col(c.SEND_DATE).alias(c.CONTACT_DATE)
        )
        sent = sent.unionByName(planned)
    return sent.groupBy(c.CAMPAIGN_ID, c.CUSTOMER_ID).agg(
        F.min_by(c.CHANNEL, c.CONTACT_DATE).alias(c.CHANNEL),
        F.min(c.CONTACT_DATE).alias(c.CONTACT_DATE),
    )


def lookback_days(campaign: Campaign) -> int:
    """How far back a campaign's frequency cap looks: the 30-day count window, or its
    ``min_days_since_last_contact`` when that is longer (a 45-day rest needs 45 days)."""
    return max(CAP_WINDOW_DAYS, campaign.frequency_cap.min_days_since_last_contact or 0)


def contact_pressure(history: DataFrame, campaign: Campaign) -> DataFrame:
    """Per customer, the latest contact date within the campaign's :func:`lookback_days` and
    the number of contacts in the cap window (the send date and the 30 days before it), not
    counting the campaign itself; only the campaign's channel when its cap's scope is
    ``channel``."""
    start = campaign.send_date - timedelta(days=lookback_days(campaign))
    window = campaign.send_date - timedelta(days=CAP_WINDOW_DAYS)
    relevant = history.where(
        (F.col(c.CAMPAIGN_ID) != F.lit(campaign.id))
        & F.col(c.CONTACT_DATE).between(F.lit(start), F.lit(campaign.send_date))
    )
    if campaign.frequency_cap.scope == "channel":
        relevant = relevant.where(F.col(c.CHANNEL) == F.lit(campaign.channel))
    return relevant.groupBy(c.CUSTOMER_ID).agg(
        F.max(c.CONTACT_DATE).alias(_LAST_CONTACT),
        F.count_if(F.col(c.CONTACT_DATE) >= F.lit(window)).alias(_CONTACTS_30D),
    )


def _capped(cap: FrequencyCapConf, send_date: date) -> Column:
    capped = F.lit(False)
    if cap.min_days_since_last_contact is not None:
        since = send_date - timedelta(days=cap.min_days_since_last_contact)
        capped = capped | (F.col(_LAST_CONTACT) >= F.lit(since))
    if cap.max_contacts_30d is not None:
        capped = capped | (F.col(_CONTACTS_30D) >= F.lit(cap.max_contacts_30d))
    return F.coalesce(capped, F.lit(False))


def valid_address(channel: str, phone_pattern: str) -> Column:
    """Whether the newest CRM record has an address the channel can send to."""
    if channel == "email":
        return F.col(c.EMAIL).isNotNull() & F.coalesce(F.col(c.EMAIL_VALID), F.lit(False))
    if channel == "sms":
        return F.coalesce(F.col(c.PHONE).rlike(phone_pattern), F.lit(False))
    return F.lit(True)


def with_suppression_reasons(
    selected: DataFrame,
    customers: DataFrame,
    deletion_requests: DataFrame,
    pressure: DataFrame,
    *,
    campaign: Campaign,
    phone_pattern: str,
    reviews: DataFrame | None = None,
) -> DataFrame:
    """``selected`` with ``suppression_reason``: the first reason that applies (see the module
    docstring), or null when the customer may be contacted on the campaign's channel.

    Parameters
    ----------
    customers
        ``silver/customers`` (the newest CRM state: consent and addresses).
    deletion_requests
        ``silver/deletion_requests``: every request, whenever it was made.
    pressure
        :func:`contact_pressure` of the campaign.
    reviews
        ``silver/reviews`` (``customer_id``, ``rating``, ``created_at``): with the campaign's
        ``suppress_negative_review_days``, a review rated 1–2 in those days before the send
        date suppresses the customer.
    """
    consent_columns = list(CHANNEL_CONSENT.values())
    crm = customers.select(
        c.CUSTOMER_ID,
        F.lit(True).alias("__known"),
        c.EMAIL,
        c.EMAIL_VALID,
        c.PHONE,
        *consent_columns,
    )
    erased = deletion_requests.select(c.CUSTOMER_ID).distinct().withColumn("__erased", F.lit(True))
    joined = (
        selected.join(crm, on=c.CUSTOMER_ID, how="left")
        .join(erased, on=c.CUSTOMER_ID, how="left")
        .join(pressure, on=c.CUSTOMER_ID, how="left")
    )
    negative = F.lit(False)
    days = campaign.suppress_negative_review_days
    if days is not None and reviews is not None:
        send = F.lit(campaign.send_date).cast("timestamp")
        unhappy = (
            reviews.where(
                (F.col(c.RATING) <= 2)
                & (F.col(c.CREATED_AT) < send)
                & (F.col(c.CREATED_AT) >= send - F.expr(f"INTERVAL {int(days)} DAYS"))
            )
            .select(c.CUSTOMER_ID)
            .distinct()
            .withColumn("__unhappy", F.lit(True))
        )
        joined = joined.join(unhappy, on=c.CUSTOMER_ID, how="left")
        negative = F.col("__unhappy").isNotNull()

    def granted(column: str) -> Column:
        return F.coalesce(F.col(column), F.lit(False))

    any_consent = granted(consent_columns[0])
    for column in consent_columns[1:]:
        any_consent = any_consent | granted(column)
    reason = (
        F.when(F.col("__erased").isNotNull() | F.col("__known").isNull(), F.lit(ERASED))
        .when(~any_consent, F.lit(GLOBAL_OPT_OUT))
        .when(~granted(CHANNEL_CONSENT[campaign.channel]), F.lit(NO_CHANNEL_CONSENT))
        .when(~valid_address(campaign.channel, phone_pattern), F.lit(INVALID_ADDRESS))
        .when(_capped(campaign.frequency_cap, campaign.send_date), F.lit(FREQUENCY_CAP))
        .when(negative, F.lit(NEGATIVE_REVIEW))
    )
    return joined.withColumn(c.SUPPRESSION_REASON, reason).select(
        *selected.columns, c.SUPPRESSION_REASON
    )


def with_groups(contactable: DataFrame, campaign_id: str, control_fraction: float) -> DataFrame:
    """``contactable`` with ``group``: the ``round(n × control_fraction)`` customers with the
    smallest ``xxhash64(campaign_id, customer_id)`` are ``control``, the rest ``treatment``.

    The hash makes the split deterministic (the same customers are held out when the same
    audience is rebuilt) and unrelated to score or rank; taking the smallest hashes instead of
    a hash threshold makes the control share exact rather than binomially close.
    """
    hashed = contactable.withColumn("__hash", F.xxhash64(F.lit(campaign_id), F.col(c.CUSTOMER_ID)))
    numbered = with_row_numbers(hashed, [F.col("__hash"), F.col(c.CUSTOMER_ID)], "__hash_rank")
    size = contactable.agg(
        F.round(F.count(F.lit(1)) * F.lit(control_fraction)).alias("__control_size")
    )
    return (
        numbered.crossJoin(F.broadcast(size))
        .withColumn(
            c.GROUP,
            F.when(F.col("__hash_rank") <= F.col("__control_size"), F.lit(CONTROL)).otherwise(
                F.lit(TREATMENT)
            ),
        )
        .drop("__hash", "__hash_rank", "__control_size")
    )


def audience_rows(
    grouped: DataFrame, campaign: Campaign, *, model_version: str, as_of: date
) -> DataFrame:
    """The campaign's rows in the schema of ``gold/campaign_audiences``."""
    derived = {
        c.CAMPAIGN_ID: F.lit(campaign.id),
        c.CHANNEL: F.lit(campaign.channel),
        c.SEND_DATE: F.lit(campaign.send_date),
        c.MODEL_NAME: F.lit(campaign.model),
        c.MODEL_VERSION: F.lit(model_version),
        c.AS_OF_DATE: F.lit(as_of),
    }
    return grouped.select(
        *[
            derived.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in CAMPAIGN_AUDIENCES.fields
        ]
    )


def _spreadsheet_safe(text: Column) -> Column:
    """Free text that a spreadsheet would run as a formula gets a leading apostrophe."""
    return F.when(text.rlike(r"^[=+\-@\t\r]"), F.concat(F.lit("'"), text)).otherwise(text)


def export_rows(
    treatment: DataFrame,
    customers: DataFrame,
    products: DataFrame,
    *,
    channel: str,
    product_count: int,
    key: DataFrame,
) -> DataFrame:
    """The sending tool's rows, best rank first: ``recipient_id`` (HMAC-SHA256 of the
    customer id: the tool never sees internal ids), the channel's address, ``first_name``,
    then ``product_<i>_id``, ``product_<i>_name``, ``product_<i>_price`` for i = 1 … count.
    ``rank`` is kept for ordering; drop it when writing. Every text column a person or the
    catalogue controls is made spreadsheet-safe (a leading ``=``, ``+``, ``-``, ``@`` gets an
    apostrophe), the address included; a phone number of digits after ``+`` is left as it is.

    Parameters
    ----------
    treatment
        Treatment rows of the audience (``customer_id``, ``rank``, ``product_ids``).
    customers
        ``silver/customers`` (addresses and first names).
    products
        ``silver/products`` (names and prices).
    key
        The pseudonymisation key (:func:`campaignlake.pii.hmac_key_frame`).
    """
    address = CHANNEL_ADDRESS[channel]
    crm = customers.select(c.CUSTOMER_ID, *([address] if address else []), c.FIRST_NAME)
    rows = treatment.select(c.CUSTOMER_ID, c.RANK, c.PRODUCT_IDS).join(
        crm, on=c.CUSTOMER_ID, how="inner"
    )
    product_columns: list[Column] = []
    if product_count:
        details = (
            rows.select(c.CUSTOMER_ID, F.posexplode(c.PRODUCT_IDS).alias("__pos", c.PRODUCT_ID))
            .join(products.select(c.PRODUCT_ID, c.NAME, c.PRICE), on=c.PRODUCT_ID, how="left")
            .groupBy(c.CUSTOMER_ID)
            .agg(
                F.array_sort(
                    F.collect_list(F.struct("__pos", c.PRODUCT_ID, c.NAME, c.PRICE))
                ).alias("__products")
            )
        )
        rows = rows.join(details, on=c.CUSTOMER_ID, how="left")
        for i in range(product_count):
            item = F.try_element_at(F.col("__products"), F.lit(i + 1))
            product_columns += [
                _spreadsheet_safe(item[c.PRODUCT_ID]).alias(f"product_{i + 1}_id"),
                _spreadsheet_safe(item[c.NAME]).alias(f"product_{i + 1}_name"),
                item[c.PRICE].cast("string").alias(f"product_{i + 1}_price"),
            ]
    address_columns = []
    if address == c.PHONE:
        phone = F.col(address)
        address_columns = [
            F.when(phone.rlike(r"^\+[0-9]+$"), phone)
            .otherwise(_spreadsheet_safe(phone))
            .alias(address)
        ]
    elif address:
        address_columns = [_spreadsheet_safe(F.col(address)).alias(address)]
    return with_hmac_key(rows, key).select(
        hmac_sha256_hex(F.col(c.CUSTOMER_ID)).alias(c.RECIPIENT_ID),
        *address_columns,
        _spreadsheet_safe(F.col(c.FIRST_NAME)).alias(c.FIRST_NAME),
        *product_columns,
        c.RANK,
    )
