"""Erasure conditions: the values to erase travel as data, so a hostile value cannot change
the statement, and ids match as whole words."""

from __future__ import annotations

from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.erasure.requests import (
    QUARANTINE_ROWS,
    quarantine_pattern_frame,
    rows_of,
    values_frame,
)
from campaignlake.tables.merge import rows_matching


def test_values_match_as_data_and_quarantine_patterns_match_whole_words(
    spark: SparkSession,
) -> None:
    rows = spark.createDataFrame([("C1",), ("C10",), ("x' OR '1'='1",)], f"{c.CUSTOMER_ID} string")
    hostile = values_frame(spark, ["x' OR '1'='1"])
    assert [r[0] for r in rows_matching(rows, hostile, rows_of(c.CUSTOMER_ID)).collect()] == [
        "x' OR '1'='1"
    ]
    quarantine = spark.createDataFrame(
        [("C1", '{"customer_id":"C1"}'), ("C10", '{"customer_id":"C10"}'), (None, "C1,a@b.co")],
        f"{c.RECORD_KEY} string, {c.RAW_RECORD} string",
    )
    pattern = quarantine_pattern_frame(spark, ["C1"])
    matched = rows_matching(quarantine, pattern, QUARANTINE_ROWS).collect()
    assert sorted(r[c.RAW_RECORD] for r in matched) == ["C1,a@b.co", '{"customer_id":"C1"}']
