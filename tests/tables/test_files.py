"""The delta-rs engine's data files, without Spark: type mapping, partition paths, the Delta
statistics read from a Parquet footer, and the task writer's files and metadata rows."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from campaignlake.errors import SchemaMismatchError
from campaignlake.tables import files

UTC = timezone.utc


def test_spark_types_map_to_the_arrow_types_parquet_stores() -> None:
    schema = StructType(
        [
            StructField("id", StringType()),
            StructField("n", IntegerType()),
            StructField("ts", TimestampType()),
            StructField("day", DateType()),
            StructField("money", DecimalType(12, 2)),
            StructField("tags", ArrayType(StringType())),
            StructField("attrs", MapType(StringType(), LongType())),
            StructField("inner", StructType([StructField("x", BinaryType())])),
        ]
    )
    assert files.to_arrow_schema(schema) == pa.schema(
        [
            ("id", pa.string()),
            ("n", pa.int32()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
            ("money", pa.decimal128(12, 2)),
            ("tags", pa.list_(pa.string())),
            ("attrs", pa.map_(pa.string(), pa.int64())),
            ("inner", pa.struct([("x", pa.binary())])),
        ]
    )
    with pytest.raises(SchemaMismatchError, match="timestamp_ntz columns need"):
        files.to_arrow_type(TimestampNTZType())


def test_partition_values_are_serialised_and_escaped_as_delta_and_hive_expect() -> None:
    assert files.partition_value_string(None) is None
    assert files.partition_value_string(True) == "true"
    assert files.partition_value_string(date(2026, 10, 1)) == "2026-10-01"
    moment = datetime(2026, 10, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert files.partition_value_string(moment) == "2026-10-01 00:30:00.000000"
    assert files.partition_value_string(7) == "7"
    assert files.hive_escape("a/b=c d%") == "a%2Fb%3Dc d%25"
    assert (
        files.partition_dir(["day", "kind"], {"day": "2026-10-01", "kind": None})
        == "day=2026-10-01/kind=__HIVE_DEFAULT_PARTITION__"
    )
    assert files.partition_dir([], {}) == ""


def test_statistics_skip_partition_pii_and_nested_columns() -> None:
    schema = StructType(
        [
            StructField("id", StringType()),
            StructField("email", StringType()),
            StructField("tags", ArrayType(StringType())),
            StructField("n", LongType()),
            StructField("day", DateType()),
        ]
    )
    assert files.stats_columns_for(schema, ["day"], frozenset({"email"}), limit=32) == ["id", "n"]
    assert files.stats_columns_for(schema, ["day"], frozenset(), limit=2) == ["id", "email"]


def test_footer_statistics_are_bounds_delta_can_trust(tmp_path: Path) -> None:
    long_text = "x" * 40
    table = pa.table(
        {
            "name": pa.array(["b", long_text, None], pa.string()),
            "ts": pa.array(
                [
                    datetime(2026, 10, 1, 8, 0, 0, 123_456, tzinfo=UTC),
                    datetime(2026, 10, 1, 9, 0, 0, 987_654, tzinfo=UTC),
                    None,
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "score": pa.array([1.5, float("nan"), 2.5], pa.float64()),
            "money": pa.array([Decimal("1.10"), Decimal("9.99"), None], pa.decimal128(12, 2)),
        }
    )
    path = tmp_path / "f.parquet"
    # Two row groups: the statistics are combined across them.
    pq.write_table(table, path, row_group_size=2)
    metadata = pq.ParquetFile(path).metadata
    stats = json.loads(files.footer_stats(metadata, table.schema, ["name", "ts", "score", "money"]))
    assert stats["numRecords"] == 3
    assert stats["nullCount"] == {"name": 1, "ts": 1, "score": 0, "money": 1}
    # A 40-character max is no upper bound once truncated to 32: it is left out; the min is
    # the shorter string. Timestamps keep milliseconds: the min rounds down, the max up.
    assert stats["minValues"]["name"] == "b" and "name" not in stats["maxValues"]
    assert stats["minValues"]["ts"] == "2026-10-01T08:00:00.123Z"
    assert stats["maxValues"]["ts"] == "2026-10-01T09:00:00.988Z"
    assert stats["minValues"]["money"] == pytest.approx(1.10)
    assert stats["maxValues"]["money"] == pytest.approx(9.99)


def test_the_task_writer_writes_one_file_per_partition_run_and_reports_each(
    tmp_path: Path,
) -> None:
    schema = StructType(
        [
            StructField("id", StringType()),
            StructField("n", LongType()),
            StructField("day", DateType()),
            StructField(files.VIOLATION_COLUMN, LongType()),
        ]
    )
    write = files.make_task_writer(
        tmp_path.as_uri(),
        StructType(schema.fields[:3]),
        partition_by=["day"],
        stats_columns=["id", "n"],
        with_violations=True,
        max_records_per_file=2,
    )
    batch = pa.RecordBatch.from_pylist(
        [
            {"id": "a", "n": 1, "day": date(2026, 10, 1), files.VIOLATION_COLUMN: 0},
            {"id": "b", "n": 2, "day": date(2026, 10, 1), files.VIOLATION_COLUMN: 1},
            {"id": "c", "n": 3, "day": date(2026, 10, 1), files.VIOLATION_COLUMN: 0},
            {"id": "d", "n": 4, "day": date(2026, 10, 2), files.VIOLATION_COLUMN: 0},
        ],
        schema=pa.schema(
            [
                ("id", pa.string()),
                ("n", pa.int64()),
                ("day", pa.date32()),
                (files.VIOLATION_COLUMN, pa.int64()),
            ]
        ),
    )
    (meta,) = list(write(iter([batch])))
    rows = sorted(meta.to_pylist(), key=lambda r: r["path"])
    by_day = sorted(
        (dict(r["partition_values"])["day"], r["num_records"], r["violations"]) for r in rows
    )
    # Three rows of one day make two files (at most two rows each); the other day one.
    assert by_day == [("2026-10-01", 1, 0), ("2026-10-01", 2, 1), ("2026-10-02", 1, 0)]
    for row in rows:
        written = tmp_path / row["path"]
        assert row["path"].startswith(f"day={dict(row['partition_values'])['day']}/")
        assert written.stat().st_size == row["size"]
        data = pq.ParquetFile(written).read()
        # Partition values live in the path, not in the file.
        assert data.column_names == ["id", "n"]
        assert json.loads(row["stats"])["numRecords"] == data.num_rows
