"""Profile: where ``train_recommender`` and ``recommend`` spend their time on the bench set.

Not a test. Runs both jobs on ``bench/prepare.py``'s warehouse (tracking off, the local
conf's grid) with Spark's event log on, then reads the log back: every Spark job's wall time
and its stages' summed task time, grouped by the campaignlake source line that started it
(PySpark records the Python call site of each job). Jobs of the grid's threads overlap, so
wall times can add up to more than the job's elapsed time; task time is the CPU side.

Prints each job's elapsed time and a Markdown table of the largest call sites.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from prepare import END, OUT, prepared

from campaignlake.recommend.runs import recommend, train_recommender

#: A call site such as ``count at /…/campaignlake/recommend/runs.py:171``, shortened to
#: ``count at recommend/runs.py:171``.
_SITE = re.compile(r"^(\w+) at (?:.*?/lib/campaignlake/|.*?/bench/|.*/)?([\w/]+\.py:\d+)$")


def events(log: Path) -> Iterator[dict]:
    """The events of one application's log: a file, or Spark 4's folder of rolled files."""
    files = (
        sorted(log.glob("events_*"), key=lambda f: int(f.name.split("_")[1]))
        if log.is_dir()
        else [log]
    )
    for file in files:
        with file.open() as lines:
            yield from (json.loads(line) for line in lines)


def _short(site: str) -> str:
    match = _SITE.match(site)
    return f"{match.group(1)} at {match.group(2)}" if match else site


def call_sites(log: Path) -> dict[str, dict[str, float]]:
    """Wall seconds, task seconds and Spark job count per call site, from an application's log.

    A DataFrame action is one SQL execution, whose description is its Python call site; under
    adaptive execution its query stages run as jobs of their own without that call site, so
    jobs are attributed through their execution id (nested executions, such as Delta's own
    queries during a write, to their root). Jobs outside any execution (ALS's RDD iterations)
    go by their first stage's name.
    """
    executions: dict[int, tuple[str, int]] = {}  # id -> (site, root id)
    started_at: dict[int, float] = {}
    jobs: dict[int, tuple[str, float, list[int], bool]] = {}
    stage_task_ms: dict[int, float] = defaultdict(float)
    sites: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in events(log):
        kind = event["Event"].rsplit(".", 1)[-1]
        if kind == "SparkListenerSQLExecutionStart":
            execution = event["executionId"]
            root = event.get("rootExecutionId", execution)
            site = executions[root][0] if root in executions else _short(event["description"])
            executions[execution] = (site, root)
            started_at[execution] = event["time"]
        elif kind == "SparkListenerSQLExecutionEnd":
            execution = event["executionId"]
            site, root = executions[execution]
            if root == execution:
                sites[site]["wall"] += (event["time"] - started_at[execution]) / 1000
                sites[site]["actions"] += 1
        elif kind == "SparkListenerJobStart":
            properties = event.get("Properties", {})
            execution = properties.get("spark.sql.execution.id")
            if execution is not None and int(execution) in executions:
                site, in_execution = executions[int(execution)][0], True
            else:
                stages = event["Stage Infos"]
                site = _short(properties.get("callSite.short") or
                              (stages[0]["Stage Name"] if stages else "?"))  # fmt: skip
                in_execution = False
            stage_ids = [s["Stage ID"] for s in event["Stage Infos"]]
            jobs[event["Job ID"]] = (site, event["Submission Time"], stage_ids, in_execution)
        elif kind == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            stage_task_ms[event["Stage ID"]] += metrics.get("Executor Run Time", 0)
        elif kind == "SparkListenerJobEnd":
            site, submitted, stage_ids, in_execution = jobs[event["Job ID"]]
            if not in_execution:
                sites[site]["wall"] += (event["Completion Time"] - submitted) / 1000
                sites[site]["actions"] += 1
            sites[site]["jobs"] += 1
            sites[site]["task"] += sum(stage_task_ms[s] for s in stage_ids) / 1000
    return sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sessions-per-week", type=float, default=0.3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    logs = OUT / "eventlog"
    logs.mkdir(parents=True, exist_ok=True)
    before = set(logs.iterdir())
    spark, conf, tables = prepared(
        args.customers,
        args.sessions_per_week,
        {"spark.eventLog.enabled": "true", "spark.eventLog.dir": logs.as_uri(),
         "spark.eventLog.compress": "false"},
    )  # fmt: skip
    conf = dataclasses.replace(conf, tracking=dataclasses.replace(conf.tracking, enabled=False))
    for name, job in (
        ("train_recommender", lambda: train_recommender(spark, conf, tables, as_of=END)),
        ("recommend", lambda: recommend(spark, conf, tables, as_of=END)),
    ):
        started = time.perf_counter()
        report = job()
        print(f"{name}: {time.perf_counter() - started:.1f}s")
        print(report.describe())
    spark.stop()
    (log,) = set(logs.iterdir()) - before
    print_sites(log, args.top)


def print_sites(log: Path, top: int) -> None:
    """The ``top`` call sites by wall time, as a Markdown table."""
    sites = call_sites(log)
    print("\n| call site | actions | Spark jobs | wall s | task s |")
    print("| --- | --- | --- | --- | --- |")
    for site, m in sorted(sites.items(), key=lambda kv: -kv[1]["wall"])[:top]:
        counts = f"{int(m['actions'])} | {int(m['jobs'])}"
        print(f"| {site} | {counts} | {m['wall']:.1f} | {m['task']:.1f} |")


if __name__ == "__main__":
    main()
