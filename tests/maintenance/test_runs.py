"""Table maintenance: vacuum removes what no current version needs, and nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.maintenance.runs import vacuum_tables
from campaignlake.schemas import DELETION_REQUESTS
from campaignlake.tables import Tables


# A job on a warehouse (the job tier).
@pytest.mark.job
def test_vacuum_removes_orphans_of_crashed_writes_and_old_versions(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    rows = spark.createDataFrame([("C1", None, None, None, None)], DELETION_REQUESTS)
    tables.append("deletion_requests", rows)
    tables.overwrite("deletion_requests", rows)
    folder = Path(tables.path("deletion_requests"))
    # What a write that died before its commit leaves behind: a data file no version names.
    orphan = folder / "part-00000-crashed.snappy.parquet"
    orphan.write_bytes(next(folder.glob("*.parquet")).read_bytes())
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    before = {p.name for p in folder.glob("*.parquet")}

    report = vacuum_tables(spark, conf, tables, retention_hours=0)
    after = {p.name for p in folder.glob("*.parquet")}
    assert orphan.name in before and orphan.name not in after
    # The overwritten version's file is gone too; the current version reads as before.
    assert len(after) == 1 and report.removed["deletion_requests"] == len(before) - 1
    assert [r[c.CUSTOMER_ID] for r in tables.read("deletion_requests").collect()] == ["C1"]
    assert f"deletion_requests={len(before) - 1}" in report.describe()
