"""Benchmark: building campaign audiences at scale.

Not a test. On the cached 100k-customer set of ``bench/prepare.py`` (features built by
``make bench-features``), it trains the response model and the recommender with one grid point
each when none exist, scores and recommends, then times ``build_audiences`` for the shipped
campaigns (conf/campaigns): a first build, and a rerun that must commit nothing. Prints
Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import time
from datetime import datetime, timezone

from prepare import END, prepared

from campaignlake import catalog
from campaignlake.audiences.runs import build_audiences
from campaignlake.config import AlsGridConf, GbtGridConf
from campaignlake.features.runs import build_features
from campaignlake.models.registry import ModelStore
from campaignlake.models.runs import score_customers, train_response_model
from campaignlake.recommend.runs import recommend, train_recommender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sessions-per-week", type=float, default=1.2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spark, base, tables = prepared(args.customers, args.sessions_per_week)
    conf = dataclasses.replace(
        base,
        response_model=dataclasses.replace(
            base.response_model, grid=GbtGridConf(max_depth=[3], max_iter=[40], step_size=[0.2])
        ),
        recommendations=dataclasses.replace(
            base.recommendations, grid=AlsGridConf(rank=[32], reg_param=[0.2], alpha=[10.0])
        ),
        tracking=dataclasses.replace(base.tracking, enabled=False),
    )
    now = datetime.now(timezone.utc)
    store = ModelStore(spark, conf.paths.models)
    build_features(spark, conf, tables, as_of=END, now=now)
    if not store.versions(conf.response_model.name):
        train_response_model(spark, conf, tables, as_of=END, now=now)
    score_customers(spark, conf, tables, as_of=END)
    if not store.versions(conf.recommendations.model_name):
        train_recommender(spark, conf, tables, as_of=END, now=now)
    recommend(spark, conf, tables, as_of=END)

    customers = tables.read(catalog.CUSTOMER_FEATURES).where(f"as_of_date = DATE'{END}'").count()
    rows = []
    for label in ("first build", "rerun (nothing committed)"):
        started = time.perf_counter()
        report = build_audiences(spark, conf, tables, as_of=END)
        seconds = time.perf_counter() - started
        committed = sum(r.write.committed for r in report.results)
        audience = sum(r.funnel["audience"] for r in report.results)
        selected = sum(r.funnel["selected"] for r in report.results)
        rows.append(
            f"| {label} | {customers:,} | {len(report.results)} | {selected:,} | {audience:,} "
            f"| {committed} | {seconds:.1f} |"
        )
        print(report.describe())
    print(
        f"\n{platform.node()}: {spark.sparkContext.defaultParallelism} cores, Spark {spark.version}"
    )
    print("| run | customers | campaigns | selected | audience rows | slices committed | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
