"""``run_pipeline``: the declared jobs that have a stage, run in order for one date."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from campaignlake.audiences.runs import AudienceReport
from campaignlake.catalog import TABLE_KEYS
from campaignlake.config import Conf
from campaignlake.errors import ConfigError
from campaignlake.jobs import run_state
from campaignlake.jobs.job import Job, RunDate
from campaignlake.models.registry import ModelStore
from campaignlake.report.runs import ReportResult
from campaignlake.sample.generator import generate_sample
from campaignlake.tables import Tables


@dataclass
class PipelineReport:
    """Where a pipeline run left its results (each stage printed its own report as it ran)."""

    #: Where the tables are: the warehouse folder, or the catalog schemas that name them.
    tables_at: str
    models: str
    exports: list[str] = field(default_factory=list)
    report: str | None = None

    def describe(self) -> str:
        """Where to look: tables, models, exports and the run report."""
        lines = [f"tables are {self.tables_at}; models under {self.models}"]
        lines += [f"export: {path}" for path in self.exports]
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def run_stages(
    jobs: Sequence[Job],
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date | None,
    from_stage: str,
    retrain: bool,
    stages: Sequence[str],
    intake: Sequence[str] = (),
    recompute: bool = False,
) -> PipelineReport:
    """Run ``jobs`` in order from ``from_stage`` on; each prints its report and duration.

    Jobs whose date is optional (ingestion) get ``as_of`` as given; the others get the run
    date, which on a local run defaults to the sample's last day. A training job runs only
    when its model has no version yet, or with ``retrain``.

    The stages after the ``intake`` stages are skipped when everything is as the last
    complete run of the same date left it (:mod:`campaignlake.jobs.run_state`), unless the
    run starts at a later stage, retrains, or ``recompute`` asks for every stage.

    Raises
    ------
    ConfigError
        When no date is given outside local runs.
    """
    run_date = _run_date(as_of, conf)
    if conf.env == "local" and not Path(conf.paths.landing).exists():
        _stage("generate_sample", lambda: generate_sample(conf, if_missing=True))
    print(f"   storage engine: {tables.engine.name}; warehouse: {conf.paths.warehouse}")
    store = ModelStore(spark, conf.paths.models)
    report = PipelineReport(tables_at=_tables_at(conf), models=conf.paths.models)
    first = stages.index(from_stage)
    settled = first == 0 and not retrain and not recompute
    recorded = run_state.read_recorded(spark, conf, run_date) if settled else None
    for job in jobs:
        if job.stage is None or stages.index(job.stage) < first:
            continue
        if recorded is not None and job.stage not in intake:
            if _unchanged_since(recorded, run_state.current_state(spark, conf, tables, run_date)):
                report.exports, report.report = recorded.exports, recorded.report
                return report
            recorded = None
        if job.trains is not None and not retrain and store.versions(job.trains(conf)):
            continue
        given = as_of if job.date is RunDate.OPTIONAL else run_date
        result = _stage(job.name, lambda job=job, given=given: job.run(
            spark, conf, tables, as_of=given))  # fmt: skip
        if isinstance(result, AudienceReport):
            report.exports += [r.export_path for r in result.results]
        elif isinstance(result, ReportResult):
            report.report = result.path
    state = run_state.current_state(spark, conf, tables, run_date)
    run_state.record(spark, conf, state, report.exports, report.report)
    return report


def _unchanged_since(recorded: run_state.Recorded, now: run_state.RunState) -> bool:
    """Whether ``now`` is the recorded state; prints what the rest of the run does and why."""
    if now == recorded.state:
        print(
            f"== nothing changed since the complete run of {now.run_date} recorded at "
            f"{recorded.recorded_at} (tables, models, exports, configuration and code): the "
            "later stages would write the same results, so they are skipped (--recompute runs "
            "them)",
            flush=True,
        )
        return True
    changed = recorded.state.differences(now)
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    print(f"   changed since the last complete run of {now.run_date}: "
          f"{', '.join(changed[:5])}{more}", flush=True)  # fmt: skip
    return False


def _stage(name: str, work: Any) -> Any:
    started = time.perf_counter()
    print(f"== {name}", flush=True)
    result = work()
    for part in result if isinstance(result, list) else [result]:
        print("  ", part.describe(), flush=True)
    print(f"   {name} done in {time.perf_counter() - started:.1f}s", flush=True)
    return result


def _run_date(given: date | None, conf: Conf) -> date:
    """The run date; local runs on the sample default to the sample's last day."""
    if given is not None:
        return given
    if conf.env == "local":
        return date.fromisoformat(conf.sample.end_date)
    raise ConfigError("--date YYYY-MM-DD is required outside local runs")


def _tables_at(conf: Conf) -> str:
    """``under <warehouse>``, ``in the catalog schema(s) …`` or both, for the closing lines."""
    named = conf.named_tables()
    schemas = sorted({conf.table_path(key).rsplit(".", 1)[0] for key in named})
    in_catalog = f"in the catalog schema {', '.join(schemas)}" if schemas else ""
    if len(named) == len(TABLE_KEYS):
        return in_catalog
    under = f"under {conf.paths.warehouse}"
    return f"{under} and {in_catalog} ({len(named)} of them)" if named else under
