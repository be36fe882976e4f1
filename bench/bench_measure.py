"""Benchmark: the campaign lift readout at scale, and the uplift model against the response
model as an uplift ranker.

Not a test. On the bench set (``bench/prepare.py``: 100,000 customers, 3 past campaigns with
25% held out and the generator's planted, heterogeneous treatment effect):

* times ``measure_campaigns`` for the last day (a fresh ``gold/campaign_results``), three runs,
  and prints each campaign's lift beside the lift the generator planted;
* trains the response model (when none exists) and the uplift model, and prints the Qini
  coefficient of the uplift model, of the response model used as an uplift ranker and of a
  random ranking on the uplift model's chronological validation campaign.

Prints Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import shutil
import time
from datetime import datetime, timezone

from prepare import END, prepared

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import GbtGridConf, MeasurementConf
from campaignlake.measurement.runs import describe_result, measure_campaigns
from campaignlake.models.registry import ModelStore
from campaignlake.models.runs import train_response_model, train_uplift_model
from campaignlake.tables import Tables


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sessions-per-week", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    spark, conf, tables = prepared(args.customers, args.sessions_per_week)
    conf = dataclasses.replace(conf, measurement=MeasurementConf(breakdowns=["rfm_segment"]))
    contacts = tables.read(catalog.CAMPAIGN_CONTACTS).count()
    events = tables.read(catalog.CLICKSTREAM_EVENTS).count()
    seconds = []
    for _ in range(args.runs):
        shutil.rmtree(tables.path(catalog.CAMPAIGN_RESULTS), ignore_errors=True)
        fresh = Tables(spark, conf)  # forgets that the table existed
        started = time.perf_counter()
        report = measure_campaigns(spark, conf, fresh, as_of=END)
        seconds.append(time.perf_counter() - started)
    print(report.describe())
    measured = sorted(seconds)[len(seconds) // 2]

    # The grid the shipped local conf searches, fixed here so the comparison is repeatable.
    model_conf = dataclasses.replace(
        conf.response_model,
        grid=GbtGridConf(max_depth=[2, 3], max_iter=[40], step_size=[0.1, 0.2]),
        objective="uplift",
    )
    conf = dataclasses.replace(conf, response_model=model_conf)
    now = datetime.now(timezone.utc)
    if not ModelStore(spark, conf.paths.models).versions(model_conf.name):
        print(train_response_model(spark, conf, tables, as_of=END, now=now).describe())
    started = time.perf_counter()
    uplift = train_uplift_model(spark, conf, tables, as_of=END, now=now)
    uplift_seconds = time.perf_counter() - started
    print(uplift.describe())

    name = model_conf.uplift_name
    qini = {ranker.removeprefix(f"{name}."): m["qini"] for ranker, m in uplift.validation.items()}
    print()
    print(f"machine: {platform.machine()}, {spark.sparkContext.defaultParallelism} cores")
    print("| customers | contacts (both groups) | events | campaigns | readout (median) | runs |")
    print(
        f"| {args.customers:,} | {contacts:,} | {events:,} | {len(report.campaigns)} | "
        f"{measured:.1f}s | {', '.join(f'{s:.1f}s' for s in seconds)} |"
    )
    print()
    print("| validation campaign | uplift model Qini | response model Qini | random Qini | "
          "uplift training |")  # fmt: skip
    print(
        f"| {', '.join(uplift.validation_campaigns)} ({uplift.validation_rows:,} customers) | "
        f"{qini.get(name, float('nan')):+.4f} | {qini.get('response_model', float('nan')):+.4f} | "
        f"{qini.get('random', float('nan')):+.4f} | {uplift_seconds:.0f}s |"
    )
    for row in report.campaigns:
        print(describe_result(row), f"[{row[c.STATUS]}]")


if __name__ == "__main__":
    main()
