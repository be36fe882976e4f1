"""Benchmark: the erasure job at scale.

Not a test. On a copy of the cached 100k-customer warehouse of ``bench/prepare.py`` (features
built by ``make bench-features``, or here when missing), it files deletion requests for the
first --requests customers by id, in two rounds (a tenth, then the rest), and times
``erase_customers`` for each: the deletes in every table that holds personal data (copy-on-write
rewrites of every file that holds one of them), the quarantine search, and the vacuum. Prints
Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import shutil
import time
from datetime import datetime, timedelta, timezone

from deltalake import DeltaTable
from prepare import END, OUT, prepared
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import PathsConf
from campaignlake.erasure.runs import erase_customers
from campaignlake.features.runs import build_features
from campaignlake.tables import Tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spark, base, tables = prepared(args.customers, 0.3)
    if not tables.exists(catalog.CUSTOMER_FEATURES):
        build_features(spark, base, tables, as_of=END)

    scratch = OUT / f"erasure-{args.customers}"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(base.paths.warehouse, scratch / "wh")
    paths = {**base.paths.__dict__, "warehouse": str(scratch / "wh"),
             "exports": str(scratch / "exports")}  # fmt: skip
    conf = dataclasses.replace(base, paths=PathsConf(**paths))
    work = Tables(spark, conf)
    events = work.read(catalog.CLICKSTREAM_EVENTS).count()
    files = len(DeltaTable(work.path("clickstream_events")).file_uris())

    chosen = [
        r[c.CUSTOMER_ID]
        for r in work.read(catalog.CUSTOMERS).orderBy(c.CUSTOMER_ID).limit(args.requests).collect()
    ]  # a benchmark's own choice of ids, not pipeline code
    first = max(1, len(chosen) // 10)
    rows = []
    for label, ids in (("first round", chosen[:first]), ("second round", chosen[first:])):
        requested = datetime.combine(END, datetime.min.time(), tzinfo=timezone.utc) - timedelta(
            days=2
        )
        work.append(
            "deletion_requests",
            spark.createDataFrame(
                [(i, requested, "bench", None, None) for i in ids],
                work.spec(catalog.DELETION_REQUESTS).schema,
            ).withColumn(c.INGESTED_AT, F.current_timestamp()),
        )
        started = time.perf_counter()
        report = erase_customers(spark, conf, work, as_of=END)
        seconds = time.perf_counter() - started
        print(report.describe())
        deleted = sum(report.rows_by_table.values())
        rows.append(
            f"| {label} | {args.customers:,} | {events:,} in {files} files | {report.due} | "
            f"{deleted:,} | {report.vacuumed_files} | {seconds:.1f} |"
        )
    print(
        f"\n{platform.node()}: {spark.sparkContext.defaultParallelism} cores, Spark {spark.version}"
    )
    print("| run | customers | bronze events | erased | rows deleted | files vacuumed | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
