"""The delta-rs engine: every operation, idempotency, crashes, conflicts and interop."""

from __future__ import annotations

from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from campaignlake.errors import (
    CommitConflictError,
)
from campaignlake.tables.delta_rs import DeltaRsEngine
from tests.tables.literals import D1, D2, SPEC, data_files, rows_df, ts


@pytest.fixture
def engine(delta_rs: DeltaRsEngine) -> DeltaRsEngine:
    """This module tests the delta-rs engine's own machinery."""
    return delta_rs


class SimulatedCrash(BaseException):
    """Like a killed driver: not an Exception, so no clean-up code runs."""


def test_crash_between_files_and_commit_leaves_previous_version(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = data_files(path)

    def crash(_: str) -> None:
        raise SimulatedCrash()

    engine.before_commit = crash
    with pytest.raises(SimulatedCrash):
        engine.append(seeded, SPEC, rows_df(spark, [(8, None, None, ts(8), D2)]))
    engine.before_commit = None
    orphans = data_files(path) - files_before
    assert len(orphans) == 1  # the data file exists, but no version references it
    assert engine.version(seeded) == 1
    assert sorted(r.id for r in engine.read(seeded).collect()) == [1, 2, 3]
    assert DeltaTable(seeded).to_pyarrow_table().num_rows == 3
    engine.vacuum(seeded, retention_hours=0, full=True)
    assert data_files(path) == files_before


def test_failed_commit_deletes_only_its_own_files(
    engine: DeltaRsEngine, spark: SparkSession, seeded: str, path: str
) -> None:
    files_before = data_files(path)

    def fail(_: str) -> None:
        raise RuntimeError("object store unavailable")

    engine.before_commit = fail
    with pytest.raises(RuntimeError, match="object store unavailable"):
        engine.append(seeded, SPEC, rows_df(spark, [(8, None, None, ts(8), D2)]))
    assert data_files(path) == files_before and engine.version(seeded) == 1


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
