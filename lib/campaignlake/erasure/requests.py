"""Which deletion requests are due, and how a customer's rows are found in each table.

Pure: DataFrames and predicate strings in, DataFrames and predicate strings out. Values that
come from the data (customer ids, emails, phone numbers) never reach a predicate as SQL text:
they are hex-encoded and decoded by Spark, so a crafted id cannot change the statement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import DataFrame
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


def sql_text(value: str) -> str:
    """A Spark SQL expression whose value is ``value``, safe whatever characters it holds."""
    return f"decode(unhex('{value.encode('utf-8').hex()}'), 'UTF-8')"


def rows_of(column: str, customer_ids: Sequence[str]) -> str:
    """Predicate: ``column`` is one of ``customer_ids``."""
    return f"`{column}` IN ({', '.join(sql_text(v) for v in customer_ids)})"


def quarantine_rows_of(values: Sequence[str]) -> str:
    """Predicate over a quarantine table: the record key or the raw record mentions one of
    ``values`` (case-insensitive, as a whole word: ``C1`` does not match ``C10``)."""
    alternatives = "|".join(re.escape(v.strip()) for v in values)
    pattern = sql_text(f"(?i)(?<!{_WORD})({alternatives})(?!{_WORD})")
    return (
        f"(coalesce(`{c.RECORD_KEY}`, '') RLIKE {pattern} "
        f"OR coalesce(`{c.RAW_RECORD}`, '') RLIKE {pattern})"
    )


def without_recipients(export: DataFrame, recipient_hashes: DataFrame) -> DataFrame:
    """An export file's rows without the erased recipients (``recipient_id`` is the HMAC of
    the customer id, so ``recipient_hashes`` holds ``customer_key_hash``)."""
    erased = recipient_hashes.select(F.col(c.CUSTOMER_KEY_HASH).alias(c.RECIPIENT_ID))
    return export.join(F.broadcast(erased), on=c.RECIPIENT_ID, how="left_anti")
