"""Benchmark: clickstream ingestion against plain Spark reading the same JSON and writing Parquet.

Not a test. Generates (once, cached under bench/out/) a landing set of at least the requested
number of events, then in one Spark session, alternating, runs

* plain: ``spark.read.json(files).write.parquet(...)`` (schema inferred, no checks);
* campaignlake on the native engine (delta-spark): ``ingest_clickstream`` into a fresh
  warehouse (parse and check every line, quarantine, dedupe within the batch and against the
  table, Delta commit);
* campaignlake on delta-rs (Spark writes the files, deltalake commits), the same way;

and prints a Markdown row for BENCHMARKS.md with events per second and the time ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import shutil
import statistics
import time
from datetime import date, datetime, timezone
from pathlib import Path

from campaignlake.config import PathsConf, load_conf
from campaignlake.ingest.batch import list_landing_files
from campaignlake.ingest.runs import ingest_clickstream
from campaignlake.sample.generator import SampleSpec, generate
from campaignlake.session import get_spark
from campaignlake.tables import Tables
from campaignlake.tables.delta_rs import DeltaRsEngine
from campaignlake.tables.spark_delta import SparkDeltaEngine

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="at least this many events")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    args = parser.parse_args()

    customers = max(1000, int(args.events / 95))  # about 95 events per customer over 90 days
    landing = OUT / f"landing-{customers}"
    if not landing.exists():
        started = time.perf_counter()
        summary = generate(
            SampleSpec(
                seed=11,
                customers=customers,
                products=2000,
                days=90,
                end_date=date(2026, 10, 31),
                sessions_per_customer_per_week=1.2,
                crm_exports=1,
                campaigns=2,
                bad_record_rate=0.01,
            ),
            landing,
        )
        print(f"generated {summary.events} events in {time.perf_counter() - started:.0f}s")

    base = load_conf("local")
    conf = dataclasses.replace(base, paths=dataclasses.replace(base.paths, landing=str(landing)))
    spark = get_spark(conf)
    files = [r.source_file for r in list_landing_files(spark, f"{landing}/clickstream").collect()]
    lines = spark.read.text(files).count()
    print(f"{len(files)} files, {lines} lines")

    # A new engine per run: each run starts from an empty warehouse.
    engines = {
        "spark": lambda: SparkDeltaEngine(spark, commit_retries=conf.storage.commit_retries),
        "delta-rs": lambda: DeltaRsEngine(spark, commit_retries=conf.storage.commit_retries),
    }
    times: dict[str, list[float]] = {"plain": [], **{name: [] for name in engines}}
    for _ in range(args.repeats):
        target = OUT / "plain-parquet"
        shutil.rmtree(target, ignore_errors=True)
        started = time.perf_counter()
        (
            spark.read.option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.jsonl")
            .json(f"{landing}/clickstream")
            .write.mode("overwrite")
            .parquet(str(target))
        )
        times["plain"].append(time.perf_counter() - started)

        for name, engine in engines.items():
            warehouse = OUT / "warehouse"
            shutil.rmtree(warehouse, ignore_errors=True)
            run_conf = dataclasses.replace(
                conf, paths=PathsConf(**{**conf.paths.__dict__, "warehouse": str(warehouse)})
            )
            started = time.perf_counter()
            report = ingest_clickstream(
                spark, run_conf, Tables(spark, run_conf, engine()), now=datetime.now(timezone.utc)
            )
            times[name].append(time.perf_counter() - started)
            print(name, report.describe()[:200])

    median = {name: statistics.median(runs) for name, runs in times.items()}
    for name, runs in times.items():
        print(f"{name} runs {[round(t, 1) for t in runs]}")
    plain = median["plain"]

    def cell(name: str) -> str:
        return (
            f"{median[name]:.1f}s ({lines / median[name]:,.0f} ev/s, {median[name] / plain:.2f}x)"
        )

    print(
        "| date | machine | events | plain Spark JSON→Parquet | campaignlake on delta-spark "
        "| campaignlake on delta-rs |\n"
        f"| {date.today()} | {platform.machine()}, {spark.sparkContext.defaultParallelism} cores, "
        f"Spark {spark.version} | {lines:,} | {plain:.1f}s ({lines / plain:,.0f} ev/s) | "
        f"{cell('spark')} | {cell('delta-rs')} |"
    )


if __name__ == "__main__":
    main()
