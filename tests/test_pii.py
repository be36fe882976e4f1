"""Pseudonymisation: the Spark HMAC equals Python's, and the key comes from the environment."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake.config import PiiConf
from campaignlake.errors import SecretMissingError
from campaignlake.pii import DEVELOPMENT_KEY, hmac_sha256_hex, normalise_email, resolve_hmac_key


@pytest.mark.parametrize("key", [b"k", b"a-production-like-secret-key", b"x" * 100])
def test_spark_hmac_matches_python(spark: SparkSession, key: bytes) -> None:
    values = ["ana@example.com", "zoë@exämple.de", "", None]
    df = spark.createDataFrame([(v,) for v in values], "email string")
    got = [r.h for r in df.select(hmac_sha256_hex(F.col("email"), key).alias("h")).collect()]
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
