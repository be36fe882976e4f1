"""Pseudonymisation: the Spark HMAC equals Python's, and the key comes from the environment."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake.config import PiiConf
from campaignlake.errors import SecretMissingError
from campaignlake.ingest.csv_sources import CUSTOMER_FIELDS, CsvRules, parse_customers
from campaignlake.pii import (
    DEVELOPMENT_KEY,
    hmac_key_frame,
    hmac_sha256_hex,
    normalise_email,
    resolve_hmac_key,
    with_hmac_key,
)


@pytest.mark.parametrize("key", [b"k", b"a-production-like-secret-key", b"x" * 100])
def test_spark_hmac_matches_python(spark: SparkSession, key: bytes) -> None:
    values = ["ana@example.com", "zoë@exämple.de", "", None]
    df = spark.createDataFrame([(v,) for v in values], "email string")
    hashed = with_hmac_key(df, hmac_key_frame(spark, key)).select(
        hmac_sha256_hex(F.col("email")).alias("h")
    )
    got = [r.h for r in hashed.collect()]
    expected = [
        None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values
    ]
    assert got == expected


def test_normalise_email(spark: SparkSession) -> None:
    df = spark.createDataFrame([(" Ana@Example.COM ",), ("  ",)], "email string")
    assert [r.e for r in df.select(normalise_email(F.col("email")).alias("e")).collect()] == [
        "ana@example.com",
        None,
    ]


def test_key_resolution() -> None:
    local = PiiConf(hmac_key_env="PII_KEY", allow_development_key=True)
    strict = PiiConf(hmac_key_env="PII_KEY", allow_development_key=False)
    assert resolve_hmac_key(strict, {"PII_KEY": "s3cret"}) == b"s3cret"
    assert resolve_hmac_key(local, {}) == DEVELOPMENT_KEY.encode()
    with pytest.raises(SecretMissingError, match="set the environment variable PII_KEY"):
        resolve_hmac_key(strict, {})


def _spellings(secret: bytes) -> list[str]:
    """Ways a byte string can show up in a plan: as text, hex, base64, a byte list."""
    return [
        secret.decode("latin-1"),
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        ", ".join(str(b if b < 128 else b - 256) for b in secret[:8]),
    ]


def test_the_hmac_key_is_in_no_plan(spark: SparkSession) -> None:
    key = b"a-production-like-secret-key-0123456789"
    padded = key.ljust(64, b"\0")
    secrets = [key, bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)]
    raw = spark.createDataFrame(
        [tuple(["C1", "ana@example.com", *[""] * 11, "2026-10-01T00:00:00Z", None, "f.csv"])],
        ", ".join(f"{n} string" for n in [*CUSTOMER_FIELDS, "_corrupt_record", "source_file"]),
    )
    rules = CsvRules(
        datetime(2026, 10, 31, tzinfo=timezone.utc), 24, ("gold",), ("email",), ("DE",)
    )
    parsed = parse_customers(raw, rules, hmac_key_frame(spark, key))
    assert (
        parsed.first()["email_hash"]
        == hmac.new(key, b"ana@example.com", hashlib.sha256).hexdigest()
    )
    # Every stage: parsed, analyzed and optimized logical plans, and the physical plan.
    plans = parsed._jdf.queryExecution().toString()
    assert "Project" in plans
    for secret in secrets:
        for spelling in _spellings(secret):
            assert spelling not in plans, f"the plan holds the key as {spelling[:12]}..."
