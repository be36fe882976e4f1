"""Records of erased customers lose their id and raw record."""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.ingest.quarantine import ERASED_CUSTOMER, drop_erased, erased_customer_ids
from campaignlake.pii import DEVELOPMENT_KEY, hmac_key_frame
from tests.literals import assert_frames_equal


def test_rows_of_erased_customers_lose_their_id_and_raw_record(spark: SparkSession) -> None:
    parsed = spark.createDataFrame(
        [("C1", '{"customer_id":"C1"}', None), ("C2", '{"customer_id":"C2"}', None)],
        f"{c.CUSTOMER_ID} string, {c.RAW_RECORD} string, {c.REASON} string",
    )
    erased_c1 = hmac.new(DEVELOPMENT_KEY.encode(), b"C1", hashlib.sha256).hexdigest()
    erased = spark.createDataFrame([(erased_c1,), ("0" * 64,)], f"{c.CUSTOMER_KEY_HASH} string")
    expected = spark.createDataFrame(
        [(None, None, ERASED_CUSTOMER), ("C2", '{"customer_id":"C2"}', None)],
        f"{c.CUSTOMER_ID} string, {c.RAW_RECORD} string, {c.REASON} string",
    )
    key = hmac_key_frame(spark, DEVELOPMENT_KEY.encode())
    erased_ids = erased_customer_ids(parsed, erased, key)
    assert_frames_equal(drop_erased(parsed, erased_ids), expected)
