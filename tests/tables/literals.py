"""The small partitioned table with a PII column that the table-layer tests write."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    DateType,
    DecimalType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from campaignlake.catalog import TableSpec

SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("email", StringType()),
        StructField("amount", DecimalType(12, 2)),
        StructField("ts", TimestampType()),
        StructField("day", DateType()),
    ]
)


SPEC = TableSpec(schema=SCHEMA, partition_by=("day",), pii_columns=frozenset({"email"}))


D1, D2 = date(2026, 10, 1), date(2026, 10, 2)


def ts(hour: int, micro: int = 0) -> datetime:
    """A moment of 2026-10-01, UTC."""
    return datetime(2026, 10, 1, hour, 0, 0, micro, tzinfo=timezone.utc)


def rows_df(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """Rows of :data:`SCHEMA`."""
    return spark.createDataFrame(rows, SCHEMA)


def data_files(path: str) -> set[str]:
    """The Parquet data files under a table's folder (its log excluded), committed or not."""
    found = set()
    for directory, _, names in os.walk(path):
        if "_delta_log" in directory:
            continue
        found |= {os.path.join(directory, n) for n in names if n.endswith(".parquet")}
    return found
