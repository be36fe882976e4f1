"""Rows that ingestion did not take as they were, with the reason, for people to inspect.

``disposition`` says what happened to the record: ``rejected`` (not ingested), ``duplicate``
(the same record was ingested once already), ``superseded`` (an older version of a record that a
newer one replaced), ``field_nulled`` (the record was ingested without the invalid field),
``erased`` (it belongs to an erased customer: dropped, and its raw record is not kept) or
``file_rejected`` (a whole landing file that was not read).
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.schemas import QUARANTINE

REJECTED = "rejected"
DUPLICATE = "duplicate"
SUPERSEDED = "superseded"
FIELD_NULLED = "field_nulled"
#: The record belongs to a customer the erasure job erased: dropped, its raw record not kept.
ERASED = "erased"
#: The reason of such a record.
ERASED_CUSTOMER = "erased_customer"
#: A whole landing file that was recorded but not read (its reason says why).
FILE_REJECTED = "file_rejected"


def first_failure(checks: list[tuple[Column, str]]) -> Column:
    """The reason of the first check that fails (a check is a boolean column that is true
    when the record is bad), or null when every check passes."""
    reason: Column = F.lit(None).cast("string")
    for failed, name in reversed(checks):
        reason = F.when(F.coalesce(failed, F.lit(False)), F.lit(name)).otherwise(reason)
    return reason


def to_quarantine(
    df: DataFrame,
    *,
    raw: Column,
    key: Column,
    reason: Column,
    disposition: str | Column,
    batch_id: str,
    ingested_at: datetime,
) -> DataFrame:
    """Quarantine rows (schema :data:`campaignlake.schemas.QUARANTINE`) from ``df``."""
    at = F.lit(ingested_at).cast("timestamp")
    return df.select(
        F.col(c.SOURCE_FILE).alias(c.SOURCE_FILE),
        key.cast("string").alias(c.RECORD_KEY),
        raw.cast("string").alias(c.RAW_RECORD),
        reason.cast("string").alias(c.REASON),
        (F.lit(disposition) if isinstance(disposition, str) else disposition).alias(c.DISPOSITION),
        F.lit(batch_id).alias(c.BATCH_ID),
        at.alias(c.INGESTED_AT),
        F.to_date(at).alias(c.QUARANTINE_DATE),
    )


def blank(column: Column) -> Column:
    """True where a string column is null or only white space."""
    return column.isNull() | (F.trim(column) == "")


def try_cast(column_name: str, sql_type: str) -> Column:
    """``try_cast`` (null instead of an error under ANSI mode), on Spark 3.5 and 4.x."""
    return F.expr(f"try_cast(`{column_name}` AS {sql_type})")


def dropped_if_erased(df: DataFrame, erased: Column, columns: list[str]) -> DataFrame:
    """``df``'s ``columns``, where rows for which ``erased`` holds get the reason
    ``erased_customer`` and lose their customer id and raw record: they are dropped, and not
    even quarantine keeps who they were."""
    blanked = {
        c.CUSTOMER_ID: F.lit(None),
        c.RAW_RECORD: F.lit(None),
        c.REASON: F.lit(ERASED_CUSTOMER),
    }
    return df.select(
        *[
            F.when(erased, blanked[n]).otherwise(F.col(n)).alias(n) if n in blanked else F.col(n)
            for n in columns
        ]
    )


def file_quarantine(
    spark: SparkSession,
    files: list[tuple[str, str]],
    batch_id: str,
    ingested_at: datetime,
) -> DataFrame:
    """One quarantine row per landing file that was not read: ``files`` holds (landing file,
    reason) pairs, a handful per batch, so the rows are built on the driver."""
    day = ingested_at.date()
    rows = [
        (path, None, None, reason, FILE_REJECTED, batch_id, ingested_at, day)
        for path, reason in files
    ]
    return spark.createDataFrame(rows, QUARANTINE)
