"""Clickstream JSON lines → typed events for ``bronze/clickstream_events``.

Every line is parsed into a string map first, so that a wrong type in one field, an unknown
extra field or a broken line is seen and named instead of silently becoming null. Checks run in
a fixed order and the first failing one is the line's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyspark
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.hadoop_fs import escape_glob, relative_source_file
from campaignlake.ingest.quarantine import (
    DUPLICATE,
    ERASED,
    ERASED_CUSTOMER,
    REJECTED,
    first_failure,
    to_quarantine,
)
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
    c.AMOUNT,
    c.PAGE_URL,
    c.REFERRER,
    c.UTM_SOURCE,
    c.UTM_MEDIUM,
    c.UTM_CAMPAIGN,
    c.DEVICE,
    c.USER_AGENT,
)
LINE = "value"
#: A number unique within the batch for each line, set when it is parsed.
ROW_ID = "__row"
_FIELDS = "__fields"
_UTF8 = "__utf8"
_MALFORMED = "__malformed"
_TS = "__ts"
_QUANTITY = "__quantity"
_PRICE = "__price"
_AMOUNT = "__amount"
#: Ids must be plain values: a JSON object or array given as an id is rejected.
ID_FIELDS = (c.EVENT_ID, c.CUSTOMER_ID, c.PRODUCT_ID)
#: An ISO-8601 time of day that states its offset from UTC (``Z``, ``+02``, ``-0500``, ``+05:30``).
TS_OFFSET_PATTERN = (
    r"(?i)[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*(z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)
_TYPE = "__type"


@dataclass(frozen=True)
class ClickstreamRules:
    """What counts as a valid event, from ``ingest`` in the conf and the batch."""

    ingested_at: datetime
    max_future_skew_hours: int
    min_event_ts: datetime


def read_lines(spark: SparkSession, files: list[str], root: str) -> DataFrame:
    """The lines of ``files`` with their ``source_file`` (relative to ``root``, the landing
    folder). I/O, not a transform.

    Exactly the batch's files are read, named one by one (never the whole landing tree, which
    holds every earlier batch too); ``.jsonl.gz`` files are decompressed.
    """
    if not files:
        return spark.createDataFrame([], f"{LINE} string, {c.SOURCE_FILE} string")
    return spark.read.text([escape_glob(f) for f in files]).select(
        F.col(LINE), relative_source_file(root).alias(c.SOURCE_FILE)
    )


def is_valid_utf8(text: Column) -> Column:
    """False where the line's bytes are not UTF-8.

    Spark 4 checks the bytes natively; on Spark 3.5, encoding replaces invalid bytes while a
    cast to binary keeps them, so the two differ exactly for invalid lines.
    """
    if int(pyspark.__version__.split(".")[0]) >= 4:
        return F.call_function("is_valid_utf8", text)
    return F.encode(text, "UTF-8") == text.cast("binary")


def parse_events(lines: DataFrame, rules: ClickstreamRules) -> DataFrame:
    """Parse and check JSON lines.

    Parameters
    ----------
    lines
        ``value`` (one raw line) and ``source_file``; blank lines are skipped.
    rules
        Time bounds: events later than ``ingested_at`` plus the skew, or earlier than
        ``min_event_ts``, are rejected.

    Returns
    -------
    DataFrame
        The typed event columns, ``rescued_data`` (unknown fields as JSON), ``source_file``,
        the raw line of a rejected event (``raw_record``), ``reason`` (null for a valid
        event) and ``__row``, a number unique within the batch that decides between exact
        duplicates (the same for every reader of one cached batch).
    """
    # Staged projections, each computed once: Spark does not inline a costly expression into
    # a consumer that references it several times, so each line is parsed once, each field
    # extracted and trimmed once, and the checks then read plain columns.
    valid_utf8 = is_valid_utf8(F.col(LINE))
    as_map = F.when(valid_utf8, F.from_json(F.col(LINE), "map<string,string>"))
    known = F.array(*[F.lit(name) for name in RAW_FIELDS])
    # Finding unknown keys is cheap; building the map of them is not, so only lines that have
    # some pay for it. from_json and map_filter run outside Spark's generated code, so they
    # share one projection (which parses each line once).
    has_extras = F.size(F.array_except(F.map_keys(as_map), known)) > 0
    extras = F.map_filter(as_map, lambda k, _: ~F.array_contains(known, k))
    # Blank lines are not records. (Filtering after the parse instead would make Spark push
    # the filter below it and parse every line twice.)
    parsed = lines.where(F.trim(F.col(LINE)) != "").select(
        F.col(c.SOURCE_FILE),
        F.col(LINE),
        valid_utf8.alias(_UTF8),
        as_map.alias(_FIELDS),
        F.when(has_extras, F.to_json(extras)).alias(c.RESCUED_DATA),
    )
    fields = parsed.select(
        F.col(c.SOURCE_FILE),
        F.col(LINE),
        F.col(_UTF8),
        F.col(_FIELDS).isNull().alias(_MALFORMED),
        *[_trimmed(F.col(_FIELDS).getItem(name)).alias(name) for name in RAW_FIELDS],
        F.col(c.RESCUED_DATA),
    )
    typed = fields.select(
        "*",
        F.expr(f"try_to_timestamp(`{c.EVENT_TS}`)").alias(_TS),
        F.expr(f"try_cast(`{c.QUANTITY}` AS INT)").alias(_QUANTITY),
        F.expr(f"try_cast(`{c.PRICE}` AS DECIMAL(12,2))").alias(_PRICE),
        F.expr(f"try_cast(`{c.AMOUNT}` AS DECIMAL(12,2))").alias(_AMOUNT),
        F.lower(F.col(c.EVENT_TYPE)).alias(_TYPE),
    )
    latest = rules.ingested_at + timedelta(hours=rules.max_future_skew_hours)
    col = F.col
    checks = [
        (~col(_UTF8), "invalid_utf8"),
        (col(_MALFORMED), "malformed_json"),
        (col(c.EVENT_ID).isNull(), "missing_event_id"),
        *[(col(name).rlike(r"^[\[{]"), f"invalid_{name}") for name in ID_FIELDS],
        (col(c.EVENT_TYPE).isNull(), "missing_event_type"),
        (~col(_TYPE).isin(*EVENT_TYPES), "unknown_event_type"),
        (
            col(c.CUSTOMER_ID).isNull() & col(c.ANONYMOUS_ID).isNull(),
            "missing_customer_and_anonymous_id",
        ),
        (col(c.SESSION_ID).isNull(), "missing_session_id"),
        (col(c.EVENT_TS).isNull(), "missing_event_ts"),
        (col(_TS).isNull(), "unparseable_event_ts"),
        (~col(c.EVENT_TS).rlike(TS_OFFSET_PATTERN), "missing_ts_offset"),
        (col(_TS) > F.lit(latest), "future_event_ts"),
        (col(_TS) < F.lit(rules.min_event_ts), "too_old_event_ts"),
        (col(c.QUANTITY).isNotNull() & col(_QUANTITY).isNull(), "invalid_quantity"),
        (col(_QUANTITY) <= 0, "non_positive_quantity"),
        (col(c.PRICE).isNotNull() & col(_PRICE).isNull(), "invalid_price"),
        (col(_PRICE) < 0, "negative_price"),
        (col(c.AMOUNT).isNotNull() & col(_AMOUNT).isNull(), "invalid_amount"),
        (col(_AMOUNT) < 0, "negative_amount"),
        (col(_TYPE).isin(*PRODUCT_EVENTS) & col(c.PRODUCT_ID).isNull(), "missing_product_id"),
    ]
    renamed = {
        c.EVENT_TYPE: _TYPE,
        c.EVENT_TS: _TS,
        c.QUANTITY: _QUANTITY,
        c.PRICE: _PRICE,
        c.AMOUNT: _AMOUNT,
    }
    checked = typed.select(
        *[col(renamed.get(name, name)).alias(name) for name in RAW_FIELDS],
        col(c.RESCUED_DATA),
        col(c.SOURCE_FILE),
        col(LINE),
        first_failure(checks).alias(c.REASON),
    )
    # Valid lines are fully represented by their parsed fields, so only rejected lines keep
    # their text; undecodable bytes become U+FFFD so that it is readable.
    raw_text = F.decode(F.encode(col(LINE), "UTF-8"), "UTF-8")
    return checked.select(
        *[name for name in checked.columns if name not in (LINE, c.REASON)],
        F.when(col(c.REASON).isNotNull(), raw_text).alias(c.RAW_RECORD),
        col(c.REASON),
        F.monotonically_increasing_id().alias(ROW_ID),
    )


def _trimmed(value: Column) -> Column:
    """Trimmed, and null when blank."""
    return F.nullif(F.trim(value), F.lit(""))


DUPLICATE_REASONS = ("duplicate_event_id", "already_ingested")
_SEEN = "__seen"
_KEPT = "__kept"
#: Which of several occurrences of an event comes first: the earliest event time, then file,
#: session, customer and product; the row number breaks exact ties.
_FIRST_OCCURRENCE = (c.EVENT_TS, c.SOURCE_FILE, c.SESSION_ID, c.CUSTOMER_ID, c.PRODUCT_ID, ROW_ID)


def repeated_ids(parsed: DataFrame) -> DataFrame:
    """The event ids that more than one valid event of the batch carries. Only ids are
    shuffled to find them.

    Parameters
    ----------
    parsed
        The output of :func:`parse_events`.
    """
    return (
        parsed.where(F.col(c.REASON).isNull())
        .groupBy(c.EVENT_ID)
        .count()
        .where(F.col("count") > 1)
        .drop("count")
    )


def duplicate_ids(parsed: DataFrame, repeated: DataFrame, existing_ids: DataFrame) -> DataFrame:
    """The event ids of valid events that repeat within the batch, with the row number of the
    occurrence that is kept (``__kept``), or that the table already holds (``__seen``).

    Parameters
    ----------
    parsed
        The output of :func:`parse_events`.
    repeated
        The output of :func:`repeated_ids` (materialise it first: only the rows of repeated
        ids are then shuffled to find which occurrence comes first).
    existing_ids
        ``event_id`` of the events already in the table.
    """
    valid = parsed.where(F.col(c.REASON).isNull())
    kept = (
        valid.join(repeated, on=c.EVENT_ID, how="left_semi")
        .groupBy(c.EVENT_ID)
        .agg(F.min(F.struct(*_FIRST_OCCURRENCE)).getField(ROW_ID).alias(_KEPT))
    )
    # The table's ids are the side Spark may broadcast (or drop, when the table is empty).
    seen = (
        valid.select(c.EVENT_ID)
        .join(existing_ids.select(c.EVENT_ID), on=c.EVENT_ID, how="left_semi")
        .distinct()
        .withColumn(_SEEN, F.lit(True))
    )
    return kept.join(seen, on=c.EVENT_ID, how="full")


def mark_duplicates(parsed: DataFrame, duplicates: DataFrame) -> DataFrame:
    """Give valid events that are duplicates a reason, in one pass over the batch.

    Within the batch the first occurrence of an event_id (by event time, then file, session,
    customer, product) stays valid and the others get ``duplicate_event_id``; an event_id the
    table already holds gets ``already_ingested``.

    Parameters
    ----------
    parsed
        The output of :func:`parse_events`.
    duplicates
        The output of :func:`duplicate_ids` (materialise it first so that Spark sees it is
        small and broadcasts it).
    """
    flagged = parsed.join(duplicates, on=c.EVENT_ID, how="left")
    reason = (
        F.when(F.col(c.REASON).isNotNull(), F.col(c.REASON))
        .when(F.col(_SEEN), F.lit(DUPLICATE_REASONS[1]))
        .when(F.col(ROW_ID) != F.col(_KEPT), F.lit(DUPLICATE_REASONS[0]))
    )
    return flagged.select(
        *[reason.alias(name) if name == c.REASON else F.col(name) for name in parsed.columns]
    )


def event_json() -> Column:
    """A parsed event as one JSON object: its fields plus the rescued unknown ones."""
    fields = [F.col(name).cast("string").alias(name) for name in RAW_FIELDS]
    return F.to_json(F.struct(*fields, F.col(c.RESCUED_DATA).alias(c.RESCUED_DATA)))


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
    is_erased = F.col(c.REASON) == F.lit(ERASED_CUSTOMER)
    return to_quarantine(
        parsed.where(F.col(c.REASON).isNotNull()),
        raw=F.when(~is_erased, F.coalesce(F.col(c.RAW_RECORD), event_json())),
        key=F.col(c.EVENT_ID),
        reason=F.col(c.REASON),
        disposition=F.when(is_duplicate, F.lit(DUPLICATE))
        .when(is_erased, F.lit(ERASED))
        .otherwise(F.lit(REJECTED)),
        batch_id=batch_id,
        ingested_at=ingested_at,
    )
