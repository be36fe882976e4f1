"""The pipeline's closing lines say where its tables are: a folder, catalog schemas, or both;
a rerun skips the stages after the intake while nothing changed since the date's last run."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake.catalog import TABLE_KEYS
from campaignlake.config import Conf
from campaignlake.frames import metrics_rows
from campaignlake.jobs.job import Job, RunDate
from campaignlake.jobs.pipeline import PipelineReport, _tables_at, run_stages
from campaignlake.tables import Tables

DAY = date(2026, 10, 31)
NOW = datetime(2026, 11, 1, 6)


def test_the_closing_lines_name_the_warehouse_or_the_catalog_schemas(conf: Conf) -> None:
    assert _tables_at(conf) == f"under {conf.paths.warehouse}"
    named = dataclasses.replace(
        conf, tables=dataclasses.replace(conf.tables, **{k: f"dev.{k}" for k in TABLE_KEYS})
    )
    assert _tables_at(named) == "in the catalog schema dev"
    mixed = dataclasses.replace(
        conf, tables=dataclasses.replace(conf.tables, **{catalog.CUSTOMERS: "main.crm.customers"})
    )
    assert _tables_at(mixed) == (
        f"under {conf.paths.warehouse} and in the catalog schema main.crm (1 of them)"
    )
    report = PipelineReport(tables_at=_tables_at(named), models="/m", report="/r/report.html")
    assert report.describe() == (
        "tables are in the catalog schema dev; models under /m\nreport: /r/report.html"
    )


@dataclasses.dataclass
class _Done:
    line: str

    def describe(self) -> str:
        return self.line


# The pipeline over a warehouse, its stages stubbed (the job tier).
@pytest.mark.job
def test_a_rerun_skips_the_later_stages_until_something_changes(
    spark: SparkSession, conf: Conf, tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(conf.paths.landing).mkdir(parents=True)
    new_rows: list[tuple[str, str, str, float]] = []
    derived_runs: list[date] = []

    def take_in(spark: SparkSession, conf: Conf, tables: Tables, *, as_of: date | None) -> _Done:
        if new_rows:
            tables.append(catalog.MODEL_METRICS, metrics_rows(spark, "v1", NOW, new_rows))
            new_rows.clear()
        return _Done("took in")

    def derive(spark: SparkSession, conf: Conf, tables: Tables, *, as_of: date) -> _Done:
        derived_runs.append(as_of)
        export = Path(conf.paths.exports, "list.csv")
        export.parent.mkdir(parents=True, exist_ok=True)
        export.write_text(f"rows\n{tables.read(catalog.MODEL_METRICS).count()}\n")
        return _Done("derived")

    jobs = [
        Job("take_in", take_in, "intake", date=RunDate.OPTIONAL, stage="ingest"),
        Job("derive", derive, "later", stage="features"),
    ]

    def run(**flags: bool) -> None:
        run_stages(
            jobs, spark, conf, tables, as_of=DAY, from_stage="ingest", retrain=False,
            stages=("ingest", "features"), intake=("ingest",), **flags,
        )  # fmt: skip

    new_rows.append(("m", "validation", "auc", 0.5))
    run()
    assert derived_runs == [DAY]
    run()  # nothing new: the later stage is skipped
    assert derived_runs == [DAY]
    assert "nothing changed since the complete run of 2026-10-31" in capsys.readouterr().out
    new_rows.append(("m", "validation", "auc", 0.6))
    run()  # the intake committed: the table changed
    assert derived_runs == [DAY, DAY]
    assert "changed since the last complete run of 2026-10-31: table model_metrics" in (
        capsys.readouterr().out
    )
    Path(conf.paths.exports, "list.csv").unlink()
    run()  # an output is gone
    assert derived_runs == [DAY] * 3
    assert Path(conf.paths.exports, "list.csv").read_text() == "rows\n2\n"
    run(recompute=True)
    assert derived_runs == [DAY] * 4
    other = dataclasses.replace(conf, segments=dataclasses.replace(conf.segments, seed=8))
    run_stages(
        jobs, spark, other, tables, as_of=DAY, from_stage="ingest", retrain=False,
        stages=("ingest", "features"), intake=("ingest",),
    )  # fmt: skip
    assert derived_runs == [DAY] * 5  # another configuration
