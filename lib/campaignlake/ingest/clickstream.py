"""Clickstream JSON lines → typed events for ``bronze/clickstream_events``.

Every line is parsed into a string map first, so that a wrong type in one field, an unknown
extra field or a broken line is seen and named instead of silently becoming null. Checks run in
a fixed order and the first failing one is the line's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.ingest.quarantine import DUPLICATE, REJECTED, blank, first_failure, to_quarantine
from campaignlake.schemas import CLICKSTREAM_EVENTS

EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
    "email_open",
    "email_click",
)
PRODUCT_EVENTS = ("product_view", "add_to_cart", "remove_from_cart", "purchase")
RAW_FIELDS = (
    c.EVENT_ID,
    c.EVENT_TYPE,
    c.EVENT_TS,
    c.CUSTOMER_ID,
    c.ANONYMOUS_ID,
    c.SESSION_ID,
    c.PRODUCT_ID,
    c.QUANTITY,
    c.PRICE,
    c.PAGE_URL,
    c.REFERRER,
    c.UTM_SOURCE,
    c.UTM_MEDIUM,
    c.UTM_CAMPAIGN,
    c.DEVICE,
    c.USER_AGENT,
)
LINE = "value"
_FIELDS = "__fields"
_REASON = "__reason"


@dataclass(frozen=True)
class ClickstreamRules:
    """What counts as a valid event, from ``ingest`` in the conf and the batch."""

    ingested_at: datetime
    max_future_skew_hours: int
    min_event_ts: datetime


def read_lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """The non-empty lines of ``files`` with their ``source_file`` (I/O, not a transform)."""
    return (
        spark.read.text(files)
        .select(F.col(LINE), F.col("_metadata.file_path").alias(c.SOURCE_FILE))
        .where(F.length(F.trim(F.col(LINE))) > 0)
    )


def is_valid_utf8(text: Column) -> Column:
    """False where the line's bytes are not UTF-8: encoding replaces them, casting does not."""
    return F.encode(text, "UTF-8") == text.cast("binary")


def parse_events(lines: DataFrame, rules: ClickstreamRules) -> DataFrame:
    """Parse and check JSON lines.

    Parameters
    ----------
    lines
        ``value`` (one raw line) and ``source_file``.
    rules
        Time bounds: events later than ``ingested_at`` plus the skew, or earlier than
        ``min_event_ts``, are rejected.

    Returns
    -------
    DataFrame
        The typed event columns, ``rescued_data`` (unknown fields as JSON), ``source_file``,
        the raw line (``raw_record``) and ``reason`` (null for a valid event).
    """
    valid_utf8 = is_valid_utf8(F.col(LINE))
    parsed = lines.select(
        "*",
        F.when(valid_utf8, F.from_json(F.col(LINE), "map<string,string>")).alias(_FIELDS),
        valid_utf8.alias("__utf8"),
    )
    field = {name: F.col(_FIELDS).getItem(name) for name in RAW_FIELDS}
    text = {name: F.when(blank(col), None).otherwise(F.trim(col)) for name, col in field.items()}
    event_ts = F.expr(f"try_to_timestamp(`{_FIELDS}`['{c.EVENT_TS}'])")
    quantity = F.expr(f"try_cast(`{_FIELDS}`['{c.QUANTITY}'] AS INT)")
    price = F.expr(f"try_cast(`{_FIELDS}`['{c.PRICE}'] AS DECIMAL(12,2))")
    latest = rules.ingested_at + timedelta(hours=rules.max_future_skew_hours)
    event_type = F.lower(text[c.EVENT_TYPE])
    checks = [
        (~F.col("__utf8"), "invalid_utf8"),
        (F.col(_FIELDS).isNull(), "malformed_json"),
        (text[c.EVENT_ID].isNull(), "missing_event_id"),
        (text[c.EVENT_TYPE].isNull(), "missing_event_type"),
        (~event_type.isin(*EVENT_TYPES), "unknown_event_type"),
        (
            text[c.CUSTOMER_ID].isNull() & text[c.ANONYMOUS_ID].isNull(),
            "missing_customer_and_anonymous_id",
        ),
        (text[c.SESSION_ID].isNull(), "missing_session_id"),
        (text[c.EVENT_TS].isNull(), "missing_event_ts"),
        (event_ts.isNull(), "unparseable_event_ts"),
        (event_ts > F.lit(latest), "future_event_ts"),
        (event_ts < F.lit(rules.min_event_ts), "too_old_event_ts"),
        (text[c.QUANTITY].isNotNull() & quantity.isNull(), "invalid_quantity"),
        (quantity <= 0, "non_positive_quantity"),
        (text[c.PRICE].isNotNull() & price.isNull(), "invalid_price"),
        (price < 0, "negative_price"),
        (event_type.isin(*PRODUCT_EVENTS) & text[c.PRODUCT_ID].isNull(), "missing_product_id"),
    ]
    known = F.array(*[F.lit(name) for name in RAW_FIELDS])
    extras = F.map_filter(F.col(_FIELDS), lambda k, _: ~F.array_contains(known, k))
    rescued = F.when(F.size(extras) > 0, F.to_json(extras))
    return parsed.select(
        text[c.EVENT_ID].alias(c.EVENT_ID),
        event_type.alias(c.EVENT_TYPE),
        event_ts.alias(c.EVENT_TS),
        text[c.CUSTOMER_ID].alias(c.CUSTOMER_ID),
        text[c.ANONYMOUS_ID].alias(c.ANONYMOUS_ID),
        text[c.SESSION_ID].alias(c.SESSION_ID),
        text[c.PRODUCT_ID].alias(c.PRODUCT_ID),
        quantity.alias(c.QUANTITY),
        price.alias(c.PRICE),
        *[text[name].alias(name) for name in (c.PAGE_URL, c.REFERRER, c.UTM_SOURCE, c.UTM_MEDIUM)],
        *[text[name].alias(name) for name in (c.UTM_CAMPAIGN, c.DEVICE, c.USER_AGENT)],
        rescued.alias(c.RESCUED_DATA),
        F.col(c.SOURCE_FILE),
        # Undecodable bytes become U+FFFD so the quarantined line is readable text.
        F.decode(F.encode(F.col(LINE), "UTF-8"), "UTF-8").alias(c.RAW_RECORD),
        first_failure(checks).alias(c.REASON),
    )


DUPLICATE_REASONS = ("duplicate_event_id", "already_ingested")


def mark_duplicates(parsed: DataFrame, existing_ids: DataFrame) -> DataFrame:
    """Give valid events that are duplicates a reason.

    Within the batch the earliest occurrence of an event_id (by event time, then file, then
    line) stays valid and later ones get ``duplicate_event_id``; an event_id the table already
    holds gets ``already_ingested``.

    Parameters
    ----------
    parsed
        The output of :func:`parse_events`.
    existing_ids
        ``event_id`` of the events already in the table.
    """
    candidates = parsed.where(F.col(c.REASON).isNull())
    order = Window.partitionBy(c.EVENT_ID).orderBy(c.EVENT_TS, c.SOURCE_FILE, c.RAW_RECORD)
    seen = existing_ids.select(c.EVENT_ID).distinct().withColumn("__seen", F.lit(True))
    marked = (
        candidates.withColumn("__occurrence", F.row_number().over(order))
        .join(seen, on=c.EVENT_ID, how="left")
        .withColumn(
            c.REASON,
            F.when(F.col("__seen"), F.lit(DUPLICATE_REASONS[1]))
            .when(F.col("__occurrence") > 1, F.lit(DUPLICATE_REASONS[0]))
            .otherwise(F.lit(None).cast("string")),
        )
        .select(*parsed.columns)
    )
    return marked.unionByName(parsed.where(F.col(c.REASON).isNotNull()))


def to_bronze(parsed: DataFrame, batch_id: str, ingested_at: datetime) -> DataFrame:
    """The rows without a reason in the bronze schema (event_date: UTC date of event_ts)."""
    derived = {
        c.BATCH_ID: F.lit(batch_id),
        c.INGESTED_AT: F.lit(ingested_at).cast("timestamp"),
        c.EVENT_DATE: F.to_date(c.EVENT_TS),
    }
    return parsed.where(F.col(c.REASON).isNull()).select(
        *[derived.get(name, F.col(name)).alias(name) for name in CLICKSTREAM_EVENTS.fieldNames()]
    )


def to_clickstream_quarantine(parsed: DataFrame, batch_id: str, ingested_at: datetime) -> DataFrame:
    """The rows with a reason as quarantine rows: duplicates or rejected lines."""
    is_duplicate = F.col(c.REASON).isin(*DUPLICATE_REASONS)
    return to_quarantine(
        parsed.where(F.col(c.REASON).isNotNull()),
        raw=F.col(c.RAW_RECORD),
        key=F.col(c.EVENT_ID),
        reason=F.col(c.REASON),
        disposition=F.when(is_duplicate, F.lit(DUPLICATE)).otherwise(F.lit(REJECTED)),
        batch_id=batch_id,
        ingested_at=ingested_at,
    )
