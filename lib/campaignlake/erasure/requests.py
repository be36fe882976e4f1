"""Which deletion requests are due, and how a customer's rows are found in each table.

Pure: DataFrames and predicate strings in, DataFrames and predicate strings out. Values that
come from the data (customer ids, emails, phone numbers) never reach a predicate as SQL text:
they are hex-encoded and decoded by Spark, so a crafted id cannot change the statement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.feature_set import cutoff_of
from campaignlake.pii import hmac_sha256_hex, with_hmac_key

#: Characters that may continue an id, an email or a phone number: a match must not be
#: preceded or followed by one, so that erasing C1 does not touch C10's quarantine rows.
_WORD = r"[A-Za-z0-9_.@+-]"


def due_requests(
    requests: DataFrame, erased: DataFrame, key: DataFrame, *, run_date: date, grace_days: int
) -> DataFrame:
    """The deletion requests to carry out on ``run_date``: made at least ``grace_days`` before
    the end of that day, and not erased yet.

    Parameters
    ----------
    requests
        ``silver/deletion_requests``.
    erased
        ``meta/erasures`` (``customer_key_hash`` of every customer erased so far).
    key
        The pseudonymisation key (:func:`campaignlake.pii.hmac_key_frame`).

    Returns
    -------
    DataFrame
        ``customer_id``, ``requested_at`` and ``customer_key_hash``.
    """
    deadline = cutoff_of(run_date) - timedelta(days=grace_days)
    return (
        with_hmac_key(requests.where(F.col(c.REQUESTED_AT) < F.lit(deadline)), key)
        .select(
            c.CUSTOMER_ID,
            c.REQUESTED_AT,
            hmac_sha256_hex(F.col(c.CUSTOMER_ID)).alias(c.CUSTOMER_KEY_HASH),
        )
        .join(erased.select(c.CUSTOMER_KEY_HASH), on=c.CUSTOMER_KEY_HASH, how="left_anti")
    )


def identities(customers: DataFrame, history: DataFrame, due: DataFrame) -> DataFrame:
    """Every id, email and phone number the due customers are known by (current and past CRM
    versions): what is searched for in raw quarantine records and exports.

    Returns
    -------
    DataFrame
        One column, ``value``.
    """
    versions = customers.select(c.CUSTOMER_ID, c.EMAIL, c.PHONE).unionByName(
        history.select(c.CUSTOMER_ID, c.EMAIL, c.PHONE)
    )
    mine = versions.join(due.select(c.CUSTOMER_ID), on=c.CUSTOMER_ID, how="inner")
    values = (
        due.select(F.col(c.CUSTOMER_ID).alias("value"))
        .unionByName(mine.select(F.col(c.EMAIL).alias("value")))
        .unionByName(mine.select(F.col(c.PHONE).alias("value")))
    )
    return values.where(F.col("value").isNotNull() & (F.trim("value") != "")).distinct()


#: The column of an erasure's matching source: an id (or e-mail, phone) to erase.
ERASED_VALUE = "erased_value"
#: The column of a quarantine erasure's matching source: the pattern raw records are searched
#: with.
ERASED_PATTERN = "erased_pattern"


def values_frame(spark: SparkSession, values: Sequence[str]) -> DataFrame:
    """The values to erase as rows of ``erased_value``: deletes match them as data, so that
    no statement, plan or table history spells them out."""
    return spark.createDataFrame([(v,) for v in values], f"{ERASED_VALUE} string")


def rows_of(column: str) -> str:
    """Condition (aliases ``t``, the table, and ``s``, :func:`values_frame`): the row's
    ``column`` is one of the values."""
    return f"t.`{column}` = s.`{ERASED_VALUE}`"


def quarantine_pattern_frame(spark: SparkSession, values: Sequence[str]) -> DataFrame:
    """One row, ``erased_pattern``: a case-insensitive regular expression that finds any of
    ``values`` as a whole word (``C1`` does not match ``C10``)."""
    alternatives = "|".join(re.escape(v.strip()) for v in values)
    pattern = f"(?i)(?<!{_WORD})({alternatives})(?!{_WORD})"
    return spark.createDataFrame([(pattern,)], f"{ERASED_PATTERN} string")


#: Condition (aliases ``t``, a quarantine table, and ``s``, :func:`quarantine_pattern_frame`):
#: the record key or the raw record mentions one of the values.
QUARANTINE_ROWS = (
    f"(coalesce(t.`{c.RECORD_KEY}`, '') RLIKE s.`{ERASED_PATTERN}` "
    f"OR coalesce(t.`{c.RAW_RECORD}`, '') RLIKE s.`{ERASED_PATTERN}`)"
)


def without_recipients(export: DataFrame, recipient_hashes: DataFrame) -> DataFrame:
    """An export file's rows without the erased recipients (``recipient_id`` is the HMAC of
    the customer id, so ``recipient_hashes`` holds ``customer_key_hash``)."""
    erased = recipient_hashes.select(F.col(c.CUSTOMER_KEY_HASH).alias(c.RECIPIENT_ID))
    return export.join(F.broadcast(erased), on=c.RECIPIENT_ID, how="left_anti")
