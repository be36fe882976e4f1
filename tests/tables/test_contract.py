"""One contract, two engines: every table operation behaves the same on the native delta-spark
engine and on delta-rs (create, append, overwrite, overwrite-where and its refusal, upsert,
delete, time travel, history, vacuum, idempotent writes, crashes, concurrent writers), and a
table either engine wrote reads back the same through the other and through deltalake."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    LongType,
    StringType,
    StructField,
    StructType,
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
from campaignlake.tables import Engine
from campaignlake.tables.delta_rs import DeltaRsEngine
from campaignlake.tables.spark_delta import SparkDeltaEngine
from campaignlake.tables.spec import Txn
from tests.literals import assert_frames_equal
from tests.tables.literals import D1, D2, SCHEMA, SPEC, data_files, rows_df, ts


@pytest.fixture(params=["spark", "delta-rs"])
def engine(request: pytest.FixtureRequest, spark: SparkSession) -> Engine:
    """Each test runs once per engine."""
    if request.param == "spark":
        return SparkDeltaEngine(spark, commit_retries=2)
    return DeltaRsEngine(spark, commit_retries=2)


def test_append_reads_back_with_partition_columns_in_spark_and_deltalake(
    engine: Engine, spark: SparkSession, seeded: str
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
    engine: Engine, spark: SparkSession, path: str
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
    assert stats["minValues"]["ts"].startswith("2026-10-01T01:00:00.000")
    if engine.name == "delta-rs":
        # 04:00:00.001500 rounds up so the max stays an upper bound at millisecond precision
        # (delta-spark truncates and widens the bound when it reads the statistics instead).
        assert stats["maxValues"]["ts"] == "2026-10-01T04:00:00.002Z"
    assert stats["nullCount"] == {"id": 0, "amount": 1, "ts": 0}
    assert "email" not in stats["minValues"] and "email" not in stats["nullCount"]
    assert log_adds[0]["partitionValues"] == {"day": "2026-10-01"}


def test_table_uses_only_features_delta_spark_reads(engine: Engine, seeded: str) -> None:
    protocol = DeltaTable(seeded).protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    assert not protocol.reader_features and not protocol.writer_features
    types = {f["type"] for f in json.loads(DeltaTable(seeded).schema().to_json())["fields"]}
    assert "timestamp_ntz" not in types


def test_txn_version_commits_once(engine: Engine, spark: SparkSession, seeded: str) -> None:
    batch = rows_df(spark, [(9, None, Decimal("9.00"), ts(9), D2)])
    first = engine.append(seeded, SPEC, batch, txn=Txn("ingest", 1))
    again = engine.append(seeded, SPEC, batch, txn=Txn("ingest", 1))
    older = engine.append(seeded, SPEC, batch, txn=Txn("ingest", 0))
    assert first.committed and first.version == 2
    assert not again.committed and not older.committed
    assert engine.version(seeded) == 2
    assert engine.read(seeded).where("id = 9").count() == 1
    assert DeltaTable(seeded).transaction_version("ingest") == 1


def test_overwrite_replaces_everything(engine: Engine, spark: SparkSession, seeded: str) -> None:
    result = engine.overwrite(seeded, SPEC, rows_df(spark, [(7, None, Decimal("7.00"), ts(7), D2)]))
    assert result.committed and result.files_removed == 2 and result.files_added == 1
    assert [r.id for r in engine.read(seeded).collect()] == [7]


def test_overwrite_where_replaces_only_matching_rows(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    result = engine.overwrite_where(
        seeded, SPEC, rows_df(spark, [(4, None, Decimal("4.00"), ts(4), D1)]), "day = '2026-10-01'"
    )
    assert result.committed and result.files_removed == 1
    assert sorted(r.id for r in engine.read(seeded).collect()) == [3, 4]


def test_overwrite_where_rewrites_survivors_of_a_partly_matching_file(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    new = rows_df(spark, [(1, "new@x.io", Decimal("11.00"), ts(1), D1)])
    engine.overwrite_where(seeded, SPEC, new, "id = 1")
    got = {r.id: r.amount for r in engine.read(seeded).collect()}
    assert got == {1: Decimal("11.00"), 2: Decimal("20.00"), 3: Decimal("30.00")}


def test_overwrite_where_refuses_rows_outside_the_predicate(
    engine: Engine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = data_files(path)
    bad = rows_df(spark, [(8, None, Decimal("8.00"), ts(8), D2)])
    with pytest.raises(ReplaceWhereViolationError, match="do not match the replaceWhere"):
        engine.overwrite_where(seeded, SPEC, bad, "day = '2026-10-01'")
    assert engine.version(seeded) == 1
    assert sorted(r.id for r in engine.read(seeded).collect()) == [1, 2, 3]
    if engine.name == "delta-rs":
        assert data_files(path) == files_before  # the refused write left no files behind


def test_upsert_newest_wins_and_replay_commits_nothing(
    engine: Engine, spark: SparkSession, seeded: str
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
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    source = rows_df(
        spark, [(6, None, Decimal("1.00"), ts(1), D1), (6, None, Decimal("2.00"), ts(2), D1)]
    )
    with pytest.raises(DuplicateKeyError, match="id=6"):
        engine.upsert(seeded, SPEC, source, ["id"])


def test_delete_by_predicate(engine: Engine, spark: SparkSession, seeded: str) -> None:
    result = engine.delete(seeded, SPEC, "amount >= 20")
    assert result.committed
    assert [r.id for r in engine.read(seeded).collect()] == [1]
    nothing = engine.delete(seeded, SPEC, "id = 99")
    assert not nothing.committed and engine.version(seeded) == result.version
    # What changed the table since a version, oldest first (the erasure's re-check), as the
    # history names it (delta-rs commits its rewrite as a WRITE).
    newest_first = [e["operation"] for e in engine.history(seeded, 2)]
    assert engine.operations(seeded, result.version - 2) == newest_first[::-1]
    assert engine.operations(seeded, result.version) == []


def test_delete_matching_a_source_keeps_the_values_out_of_the_tables_history(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    # Two source rows for one target row are fine: the only clause deletes.
    source = spark.createDataFrame([("b@x.io",), ("c@x.io",), ("c@x.io",)], "erased string")
    result = engine.delete_matching(seeded, SPEC, source, "t.email = s.erased")
    assert result.committed
    assert [r.id for r in engine.read(seeded).collect()] == [1]
    log = "".join(f.read_text() for f in Path(seeded, "_delta_log").glob("*.json"))
    assert "b@x.io" not in log and "c@x.io" not in log
    nobody = spark.createDataFrame([("z@x.io",)], "erased string")
    nothing = engine.delete_matching(seeded, SPEC, nobody, "t.email = s.erased")
    assert not nothing.committed and engine.version(seeded) == result.version


def test_purge_leaves_a_table_without_deletion_vectors_alone(engine: Engine, seeded: str) -> None:
    assert engine.purge_deleted_rows(seeded) == 0
    assert engine.version(seeded) == 1


def emails_in_files(path: str) -> set[str]:
    """The e-mails in the table's Parquet files, read as rows whatever the log says."""
    return {e for f in data_files(path) for e in pq.read_table(f).column("email").to_pylist()}


def test_purge_rewrites_the_files_in_which_a_deletion_vector_only_hides_deleted_rows(
    spark: SparkSession, path: str
) -> None:
    # Only the native engine writes deletion vectors (Unity Catalog's default for new tables).
    engine = SparkDeltaEngine(spark, commit_retries=2)
    seeded = rows_df(
        spark,
        [(1, "a@x.io", None, ts(1), D1), (2, "b@x.io", None, ts(2), D1)],
    ).coalesce(1)
    engine.create(path, SPEC)
    engine.append(path, SPEC, seeded)
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)"
    )
    erased = spark.createDataFrame([("b@x.io",)], "erased string")
    assert engine.delete_matching(path, SPEC, erased, "t.email = s.erased").committed
    engine.vacuum(path, retention_hours=0, look_first=False)
    # The delete only marked the row: the file the current version reads still holds it.
    assert "b@x.io" in emails_in_files(path)

    assert engine.purge_deleted_rows(path) == 1
    engine.vacuum(path, retention_hours=0, look_first=False)
    assert emails_in_files(path) == {"a@x.io"}
    assert [r.id for r in engine.read(path).collect()] == [1]
    assert "REORG" in {entry["operation"] for entry in engine.history(path)}


def test_time_travel_by_version_and_timestamp(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    engine.delete(seeded, SPEC, "id = 3")
    assert engine.read(seeded, version=1).count() == 3
    assert engine.read(seeded).count() == 2
    v1_time = datetime.fromtimestamp(engine.history(seeded)[1]["timestamp"] / 1000, timezone.utc)
    assert engine.read(seeded, timestamp=v1_time).count() == 3
    with pytest.raises(TableError, match="no version was committed at or before 2000-01-01"):
        engine.read(seeded, timestamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    history = engine.history(seeded)
    assert [h["version"] for h in history] == [2, 1, 0]  # newest first


def test_vacuum_removes_files_of_old_versions(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    engine.overwrite(seeded, SPEC, rows_df(spark, [(7, None, None, ts(7), D2)]))
    # Without a dry run first: the count comes from what the vacuum recorded.
    assert engine.vacuum(seeded, retention_hours=0, look_first=False) == 2
    assert [r.id for r in engine.read(seeded).collect()] == [7]
    engine.vacuum(seeded, retention_hours=0)  # what that one left (an emptied folder)
    # Nothing left to remove: looking first commits nothing.
    version = engine.version(seeded)
    assert engine.vacuum(seeded, retention_hours=0) == 0
    assert engine.version(seeded) == version


def test_schema_mismatch_names_the_column(engine: Engine, spark: SparkSession, seeded: str) -> None:
    wrong = spark.createDataFrame([(1, "x")], "id long, email string")
    with pytest.raises(SchemaMismatchError, match="missing column amount"):
        engine.append(seeded, SPEC, wrong)


def test_missing_table_and_unsafe_s3_are_clear_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(TableNotFoundError, match="no Delta table at"):
        engine.read(str(tmp_path / "nothing"))
    if engine.name == "delta-rs":
        with pytest.raises(UnsafeStorageError, match=r"storage\.s3_commit"):
            engine.exists("s3://bucket/warehouse/bronze/events")


def test_empty_table_reads_with_its_schema(engine: Engine, path: str) -> None:
    engine.create(path, SPEC)
    df = engine.read(path)
    assert df.count() == 0 and df.schema.fieldNames() == SCHEMA.fieldNames()
    if engine.name == "delta-rs":
        # Spark knows it is empty, so a join against it (the already-ingested check of a first
        # load) costs nothing instead of shuffling the other side.
        assert "LocalRelation <empty>" in df._jdf.queryExecution().optimizedPlan().toString()


def test_paths_and_partition_values_with_special_characters_read_back_everywhere(
    engine: Engine, spark: SparkSession, tmp_path: Path
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


def other_engine(engine: Engine, spark: SparkSession) -> Engine:
    if engine.name == "spark":
        return DeltaRsEngine(spark, commit_retries=2)
    return SparkDeltaEngine(spark, commit_retries=2)


def test_a_table_either_engine_wrote_reads_back_the_same_through_the_other(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    other = other_engine(engine, spark)
    engine.delete(seeded, SPEC, "id = 2")
    assert_frames_equal(other.read(seeded), engine.read(seeded))
    # And the other engine can go on writing it, read back by the first.
    other.append(seeded, SPEC, rows_df(spark, [(4, "d@x.io", Decimal("4.00"), ts(4), D2)]))
    other.upsert(seeded, SPEC, rows_df(spark, [(1, "a@x.io", Decimal("1.00"), ts(9), D1)]), ["id"])
    assert sorted((r.id, r.amount) for r in engine.read(seeded).collect()) == [
        (1, Decimal("1.00")), (3, Decimal("30.00")), (4, Decimal("4.00")),
    ]  # fmt: skip
    assert engine.version(seeded) == other.version(seeded) == DeltaTable(seeded).version() == 4


def test_a_write_that_fails_in_a_task_commits_nothing_and_vacuum_removes_its_files(
    engine: Engine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = data_files(path)
    rows = rows_df(spark, [(i, None, None, ts(1), D1) for i in range(10, 20)]).repartition(2, "id")
    # One task dies on id 15 (a bad record, a lost executor); the others may have written
    # their files by then.
    failing = rows.withColumn(
        "id", F.when(F.col("id") == 15, F.raise_error(F.lit("task died"))).otherwise(F.col("id"))
    ).select(*SCHEMA.fieldNames())
    with pytest.raises(Exception, match="task died"):
        engine.append(seeded, SPEC, failing)
    assert engine.version(seeded) == 1
    assert sorted(r.id for r in engine.read(seeded).collect()) == [1, 2, 3]
    engine.vacuum(seeded, retention_hours=0, full=True)
    assert data_files(path) == files_before


def test_concurrent_appends_from_two_writers_lose_and_duplicate_nothing(
    engine: Engine, spark: SparkSession, seeded: str
) -> None:
    writers = [
        (writer, rows_df(spark, [(100 * n + i, None, None, ts(1), D2) for i in range(5)]))
        for n, writer in enumerate((engine, type(engine)(spark, commit_retries=2)), start=1)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: job[0].append(seeded, SPEC, job[1]), writers))
    assert all(r.committed for r in results)
    assert sorted(r.version for r in results) == [2, 3]
    ids = sorted(r.id for r in engine.read(seeded).collect())
    assert ids == [1, 2, 3, *range(100, 105), *range(200, 205)]


def test_a_conflicting_overwrite_retries_or_fails_and_never_deletes_the_other_writers_rows(
    engine: Engine, spark: SparkSession, seeded: str, tmp_path: Path
) -> None:
    """While our overwrite of day 2 runs, another writer (deltalake, from inside our own job)
    appends to day 2 every time: we retry, give up with CommitConflictError, and every one of
    their rows survives."""
    theirs_ids = _concurrent_appender(tmp_path, seeded)
    ours = rows_df(spark, [(4, None, None, ts(4), D2)]).withColumn("id", theirs_ids(F.col("id")))
    with pytest.raises(CommitConflictError, match="lost to concurrent writers 3 times"):
        engine.overwrite_where(seeded, SPEC, ours, "day = '2026-10-02'")
    ids = sorted(r.id for r in engine.read(seeded).collect())
    assert ids == [1, 2, 3, 1000, 1001, 1002]  # theirs, three times; ours never landed


def _concurrent_appender(tmp_path: Path, table: str):
    """A UDF that passes ids through and, once per task, appends a row to day 2 of ``table``
    with deltalake: a writer that commits while the job computing our rows runs."""
    counter = tmp_path / "appends"
    counter.write_text("0")

    def append_once(ids: pd.Series) -> pd.Series:
        import pyarrow as pa
        from deltalake import write_deltalake

        n = int(counter.read_text())
        counter.write_text(str(n + 1))
        write_deltalake(
            table,
            pa.table(
                {
                    "id": pa.array([1000 + n], pa.int64()),
                    "email": pa.array([None], pa.string()),
                    "amount": pa.array([None], pa.decimal128(12, 2)),
                    "ts": pa.array([ts(1)], pa.timestamp("us", tz="UTC")),
                    "day": pa.array([D2], pa.date32()),
                }
            ),
            mode="append",
        )
        return ids

    return F.pandas_udf(append_once, "long")
