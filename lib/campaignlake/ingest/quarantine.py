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
from campaignlake.pii import hmac_sha256_hex, with_hmac_key
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


_ERASED_ID = "__erased_id"


def erased_customer_ids(rows: DataFrame, erasures: DataFrame, key: DataFrame) -> DataFrame:
    """The customer ids among ``rows`` that belong to customers the erasure job erased. Each
    distinct id is hashed once (not each record) and compared with ``meta/erasures``;
    materialise the result so that :func:`drop_erased` broadcasts it.

    Parameters
    ----------
    rows
        Parsed records with ``customer_id``.
    erasures
        ``meta/erasures`` (``customer_key_hash``).
    key
        The pseudonymisation key (:func:`campaignlake.pii.hmac_key_frame`).
    """
    ids = rows.where(F.col(c.CUSTOMER_ID).isNotNull()).select(c.CUSTOMER_ID).distinct()
    hashes = erasures.select(F.col(c.CUSTOMER_KEY_HASH).alias("__hash")).distinct()
    return (
        with_hmac_key(ids, key)
        .select(c.CUSTOMER_ID, hmac_sha256_hex(F.col(c.CUSTOMER_ID)).alias("__hash"))
        .join(F.broadcast(hashes), on="__hash", how="left_semi")
        .select(F.col(c.CUSTOMER_ID).alias(_ERASED_ID))
    )


def drop_erased(rows: DataFrame, erased_ids: DataFrame) -> DataFrame:
    """Records of erased customers (``erased_ids``: the output of :func:`erased_customer_ids`)
    get the reason ``erased_customer`` and lose their customer id and raw record: they are
    dropped, and not even quarantine keeps who they were."""
    flagged = rows.join(
        F.broadcast(erased_ids), F.col(c.CUSTOMER_ID) == F.col(_ERASED_ID), how="left"
    )
    erased = F.col(_ERASED_ID).isNotNull()
    blanked = {
        c.CUSTOMER_ID: F.lit(None),
        c.RAW_RECORD: F.lit(None),
        c.REASON: F.lit(ERASED_CUSTOMER),
    }
    return flagged.select(
        *[
            F.when(erased, blanked[n]).otherwise(F.col(n)).alias(n) if n in blanked else F.col(n)
            for n in rows.columns
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
