"""Erasure predicates: values from the data cannot change the statement, and ids match as
whole words."""

from __future__ import annotations

from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.erasure.requests import quarantine_rows_of, rows_of


def test_predicates_cannot_be_broken_out_of_and_match_whole_words(spark: SparkSession) -> None:
    rows = spark.createDataFrame([("C1",), ("C10",), ("x' OR '1'='1",)], f"{c.CUSTOMER_ID} string")
    assert [r[0] for r in rows.where(rows_of(c.CUSTOMER_ID, ["x' OR '1'='1"])).collect()] == [
        "x' OR '1'='1"
    ]
    quarantine = spark.createDataFrame(
        [("C1", '{"customer_id":"C1"}'), ("C10", '{"customer_id":"C10"}'), (None, "C1,a@b.co")],
        f"{c.RECORD_KEY} string, {c.RAW_RECORD} string",
    )
    matched = quarantine.where(quarantine_rows_of(["C1"])).collect()
    assert sorted(r[c.RAW_RECORD] for r in matched) == ["C1,a@b.co", '{"customer_id":"C1"}']
