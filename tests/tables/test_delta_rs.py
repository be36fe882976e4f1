"""The delta-rs engine: every operation, idempotency, crashes, conflicts and interop."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
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
from campaignlake.errors import (
    CommitConflictError,
    DuplicateKeyError,
    ReplaceWhereViolationError,
    SchemaMismatchError,
    TableError,
    TableNotFoundError,
    UnsafeStorageError,
)
from campaignlake.tables.delta_rs import DeltaRsEngine
from campaignlake.tables.spec import Txn
from tests.literals import assert_frames_equal

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
    return datetime(2026, 10, 1, hour, 0, 0, micro, tzinfo=timezone.utc)


def rows_df(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "table")


@pytest.fixture
def seeded(engine: DeltaRsEngine, spark: SparkSession, path: str) -> str:
    """A table at version 1 holding ids 1-2 on day 1 and 3 on day 2."""
    engine.create(path, SPEC)
    engine.append(
        path,
        SPEC,
        rows_df(
            spark,
            [
                (1, "a@x.io", Decimal("10.00"), ts(1), D1),
                (2, "b@x.io", Decimal("20.00"), ts(2), D1),
                (3, "c@x.io", Decimal("30.00"), ts(3), D2),
            ],
        ).coalesce(1),  # one task: one file per day
    )
    return path


def test_append_reads_back_with_partition_columns_in_spark_and_deltalake(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    expected = rows_df(
        spark,
        [
            (1, "a@x.io", Decimal("10.00"), ts(1), D1),
            (2, "b@x.io", Decimal("20.00"), ts(2), D1),
            (3, "c@x.io", Decimal("30.00"), ts(3), D2),
        ],
    )
    assert_frames_equal(engine.read(seeded), expected)
    # The same table read independently of Spark, through delta-rs and pyarrow.
    table = DeltaTable(seeded).to_pyarrow_table().sort_by("id")
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("day").to_pylist() == [D1, D1, D2]
    assert table.column("amount").to_pylist() == [
        Decimal("10.00"),
        Decimal("20.00"),
        Decimal("30.00"),
    ]
    assert table.column("ts").to_pylist() == [ts(1), ts(2), ts(3)]
    assert DeltaTable(seeded).version() == 1


def test_files_carry_footer_statistics_without_pii(
    engine: DeltaRsEngine, spark: SparkSession, path: str
) -> None:
    engine.create(path, SPEC)
    engine.append(
        path,
        SPEC,
        rows_df(
            spark,
            [(5, "e@x.io", Decimal("1.50"), ts(4, 1500), D1), (2, None, None, ts(1), D1)],
        ).coalesce(1),
    )
    actions = pa.table(DeltaTable(path).get_add_actions(flatten=False)).to_pylist()
    log_lines = [
        line
        for name in sorted(os.listdir(f"{path}/_delta_log"))
        if name.endswith(".json")
        for line in Path(f"{path}/_delta_log/{name}").read_text().splitlines()
    ]
    log_adds = [json.loads(line)["add"] for line in log_lines if '"add"' in line]
    assert len(actions) == 1 and len(log_adds) == 1
    stats = json.loads(log_adds[0]["stats"])
    assert stats["numRecords"] == 2
    assert stats["minValues"]["id"] == 2 and stats["maxValues"]["id"] == 5
    assert stats["minValues"]["ts"] == "2026-10-01T01:00:00.000Z"
    # 04:00:00.001500 rounds up so the max stays an upper bound at millisecond precision.
    assert stats["maxValues"]["ts"] == "2026-10-01T04:00:00.002Z"
    assert stats["nullCount"] == {"id": 0, "amount": 1, "ts": 0}
    assert "email" not in stats["minValues"] and "email" not in stats["nullCount"]
    assert log_adds[0]["partitionValues"] == {"day": "2026-10-01"}


def test_table_uses_only_features_delta_spark_reads(engine: DeltaRsEngine, seeded: str) -> None:
    protocol = DeltaTable(seeded).protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    assert not protocol.reader_features and not protocol.writer_features
    types = {f["type"] for f in json.loads(DeltaTable(seeded).schema().to_json())["fields"]}
    assert "timestamp_ntz" not in types


def test_txn_version_commits_once(engine: DeltaRsEngine, spark: SparkSession, seeded: str) -> None:
    batch = rows_df(spark, [(9, None, Decimal("9.00"), ts(9), D2)])
    first = engine.append(seeded, SPEC, batch, txn=Txn("ingest", 1))
    again = engine.append(seeded, SPEC, batch, txn=Txn("ingest", 1))
    older = engine.append(seeded, SPEC, batch, txn=Txn("ingest", 0))
    assert first.committed and first.version == 2
    assert not again.committed and not older.committed
    assert engine.version(seeded) == 2
    assert engine.read(seeded).where("id = 9").count() == 1
    assert DeltaTable(seeded).transaction_version("ingest") == 1


def test_overwrite_replaces_everything(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    result = engine.overwrite(seeded, SPEC, rows_df(spark, [(7, None, Decimal("7.00"), ts(7), D2)]))
    assert result.committed and result.files_removed == 2 and result.files_added == 1
    assert [r.id for r in engine.read(seeded).collect()] == [7]


def test_overwrite_where_replaces_only_matching_rows(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    result = engine.overwrite_where(
        seeded, SPEC, rows_df(spark, [(4, None, Decimal("4.00"), ts(4), D1)]), "day = '2026-10-01'"
    )
    assert result.committed and result.files_removed == 1
    assert sorted(r.id for r in engine.read(seeded).collect()) == [3, 4]


def test_overwrite_where_rewrites_survivors_of_a_partly_matching_file(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    new = rows_df(spark, [(1, "new@x.io", Decimal("11.00"), ts(1), D1)])
    engine.overwrite_where(seeded, SPEC, new, "id = 1")
    got = {r.id: r.amount for r in engine.read(seeded).collect()}
    assert got == {1: Decimal("11.00"), 2: Decimal("20.00"), 3: Decimal("30.00")}


def test_overwrite_where_refuses_rows_outside_the_predicate(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = _data_files(path)
    bad = rows_df(spark, [(8, None, Decimal("8.00"), ts(8), D2)])
    with pytest.raises(ReplaceWhereViolationError, match="1 written rows do not match"):
        engine.overwrite_where(seeded, SPEC, bad, "day = '2026-10-01'")
    assert engine.version(seeded) == 1
    assert _data_files(path) == files_before  # the refused write left no files behind


def test_upsert_newest_wins_and_replay_commits_nothing(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    source = rows_df(
        spark,
        [
            (1, "a2@x.io", Decimal("15.00"), ts(5), D1),  # newer: updates
            (2, "b0@x.io", Decimal("0.00"), ts(0), D1),  # older: ignored
            (6, "f@x.io", Decimal("60.00"), ts(6), D2),  # new key: inserted
        ],
    )
    result = engine.upsert(seeded, SPEC, source, ["id"], update_condition="s.ts > t.ts")
    assert result.committed and result.version == 2
    # Only the file holding id 1 (day 1) is rewritten; day 2's file is untouched.
    assert result.files_removed == 1
    expected = rows_df(
        spark,
        [
            (1, "a2@x.io", Decimal("15.00"), ts(5), D1),
            (2, "b@x.io", Decimal("20.00"), ts(2), D1),
            (3, "c@x.io", Decimal("30.00"), ts(3), D2),
            (6, "f@x.io", Decimal("60.00"), ts(6), D2),
        ],
    )
    assert_frames_equal(engine.read(seeded), expected)
    replay = engine.upsert(seeded, SPEC, source, ["id"], update_condition="s.ts > t.ts")
    assert not replay.committed and engine.version(seeded) == 2


def test_upsert_rejects_duplicate_source_keys(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    source = rows_df(
        spark, [(6, None, Decimal("1.00"), ts(1), D1), (6, None, Decimal("2.00"), ts(2), D1)]
    )
    with pytest.raises(DuplicateKeyError, match="id=6"):
        engine.upsert(seeded, SPEC, source, ["id"])


def test_delete_by_predicate(engine: DeltaRsEngine, spark: SparkSession, seeded: str) -> None:
    result = engine.delete(seeded, SPEC, "amount >= 20")
    assert result.committed
    assert [r.id for r in engine.read(seeded).collect()] == [1]
    nothing = engine.delete(seeded, SPEC, "id = 99")
    assert not nothing.committed and engine.version(seeded) == result.version


def test_time_travel_by_version_and_timestamp(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    engine.delete(seeded, SPEC, "id = 3")
    assert engine.read(seeded, version=1).count() == 3
    assert engine.read(seeded).count() == 2
    v1_time = datetime.fromtimestamp(engine.history(seeded)[1]["timestamp"] / 1000, timezone.utc)
    assert engine.read(seeded, timestamp=v1_time).count() == 3
    with pytest.raises(TableError, match="no version was committed at or before 2000-01-01"):
        engine.read(seeded, timestamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert [h["operation"] for h in engine.history(seeded)][:2] == ["WRITE", "WRITE"]


def test_vacuum_removes_files_of_old_versions(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    engine.overwrite(seeded, SPEC, rows_df(spark, [(7, None, None, ts(7), D2)]))
    removed = engine.vacuum(seeded, retention_hours=0)
    assert len(removed) == 2
    assert [r.id for r in engine.read(seeded).collect()] == [7]


class SimulatedCrash(BaseException):
    """Like a killed driver: not an Exception, so no clean-up code runs."""


def test_crash_between_files_and_commit_leaves_previous_version(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = _data_files(path)

    def crash(_: str) -> None:
        raise SimulatedCrash()

    engine.before_commit = crash
    with pytest.raises(SimulatedCrash):
        engine.append(seeded, SPEC, rows_df(spark, [(8, None, None, ts(8), D2)]))
    engine.before_commit = None
    orphans = _data_files(path) - files_before
    assert len(orphans) == 1  # the data file exists, but no version references it
    assert engine.version(seeded) == 1
    assert sorted(r.id for r in engine.read(seeded).collect()) == [1, 2, 3]
    assert DeltaTable(seeded).to_pyarrow_table().num_rows == 3
    engine.vacuum(seeded, retention_hours=0, full=True)
    assert _data_files(path) == files_before


def test_failed_commit_deletes_only_its_own_files(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = _data_files(path)

    def fail(_: str) -> None:
        raise RuntimeError("object store unavailable")

    engine.before_commit = fail
    with pytest.raises(RuntimeError, match="object store unavailable"):
        engine.append(seeded, SPEC, rows_df(spark, [(8, None, None, ts(8), D2)]))
    assert _data_files(path) == files_before and engine.version(seeded) == 1


def test_concurrent_commit_is_retried_without_touching_the_other_writers_files(
    spark: SparkSession, seeded: str, path: str
) -> None:
    ours = DeltaRsEngine(spark, commit_retries=2)
    theirs = DeltaRsEngine(spark)
    calls = {"n": 0}

    def concurrent_writer(_: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            theirs.append(path, SPEC, rows_df(spark, [(50, None, None, ts(5), D1)]))

    ours.before_commit = concurrent_writer
    result = ours.overwrite_where(
        path, SPEC, rows_df(spark, [(4, None, None, ts(4), D2)]), "day = '2026-10-02'"
    )
    assert result.committed and calls["n"] == 2
    assert sorted(r.id for r in ours.read(path).collect()) == [1, 2, 4, 50]
    assert ours.version(path) == 3


def test_endless_conflicts_fail_clearly(spark: SparkSession, seeded: str, path: str) -> None:
    ours = DeltaRsEngine(spark, commit_retries=1)
    theirs = DeltaRsEngine(spark)
    ours.before_commit = lambda _: theirs.append(
        path, SPEC, rows_df(spark, [(60, None, None, ts(6), D1)])
    )
    with pytest.raises(CommitConflictError, match="lost to concurrent writers 2 times"):
        ours.delete(path, SPEC, "id = 1")
    ids = sorted(r.id for r in theirs.read(path).collect())
    assert ids == [1, 2, 3, 60, 60]  # the other writer's commits are intact, ours never landed


def test_schema_mismatch_names_the_column(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str
) -> None:
    wrong = spark.createDataFrame([(1, "x")], "id long, email string")
    with pytest.raises(SchemaMismatchError, match="missing column amount"):
        engine.append(seeded, SPEC, wrong)


def test_missing_table_and_unsafe_s3_are_clear_errors(
    engine: DeltaRsEngine, tmp_path: Path
) -> None:
    with pytest.raises(TableNotFoundError, match="no Delta table at"):
        engine.read(str(tmp_path / "nothing"))
    with pytest.raises(UnsafeStorageError, match=r"storage\.s3_commit"):
        engine.exists("s3://bucket/warehouse/bronze/events")


def test_empty_table_reads_with_its_schema(engine: DeltaRsEngine, path: str) -> None:
    engine.create(path, SPEC)
    df = engine.read(path)
    assert df.count() == 0 and df.schema.fieldNames() == SCHEMA.fieldNames()
    # Spark knows it is empty, so a join against it (the already-ingested check of a first
    # load) costs nothing instead of shuffling the other side.
    assert "LocalRelation <empty>" in df._jdf.queryExecution().optimizedPlan().toString()


def _data_files(path: str) -> set[str]:
    found = set()
    for directory, _, names in os.walk(path):
        if "_delta_log" in directory:
            continue
        found |= {os.path.join(directory, n) for n in names if n.endswith(".parquet")}
    return found


def test_paths_and_partition_values_with_special_characters_read_back_everywhere(
    engine: DeltaRsEngine, spark: SparkSession, tmp_path: Path
) -> None:
    schema = StructType([StructField("id", LongType()), StructField("label", StringType())])
    spec = TableSpec(schema=schema, partition_by=("label",))
    where = str(tmp_path / "my warehouse" / "table")
    engine.create(where, spec)
    rows = [(1, "a}b"), (2, "c d"), (3, "e*f?"), (4, "g%h")]
    engine.append(where, spec, spark.createDataFrame(rows, schema))
    engine.delete(where, spec, "label = 'c d'")
    kept = [r for r in rows if r[1] != "c d"]
    assert_frames_equal(engine.read(where), spark.createDataFrame(kept, schema))
    # deltalake (as any Delta reader) finds the files from the log's paths.
    table = DeltaTable(where).to_pyarrow_table().sort_by("id")
    assert list(zip(table["id"].to_pylist(), table["label"].to_pylist(), strict=True)) == kept


def test_files_roll_over_at_max_records_and_batches_make_few_row_groups(
    spark: SparkSession, path: str
) -> None:
    engine = DeltaRsEngine(spark, max_records_per_file=4)
    engine.create(path, SPEC)
    rows = [(i, None, Decimal(i), ts(1), D1) for i in range(1, 11)]
    previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    # Rows reach the writer two at a time: each file still gets one row group, not one a batch.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2")
    try:
        engine.append(path, SPEC, rows_df(spark, rows).coalesce(1))
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)

    files = DeltaTable(path).file_uris()
    layout = sorted(
        (pq.ParquetFile(f).metadata.num_rows, pq.ParquetFile(f).num_row_groups) for f in files
    )
    assert layout == [(2, 1), (4, 1), (4, 1)]
    assert sorted(r["id"] for r in engine.read(path).collect()) == list(range(1, 11))
