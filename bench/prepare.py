"""Shared by the model benchmarks: a generated landing set, ingested once, cached under
bench/out/features-<customers>/."""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import date, datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake.config import Conf, PathsConf, load_conf
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
)
from campaignlake.sample.generator import SampleSpec, generate
from campaignlake.session import get_spark
from campaignlake.tables import Tables

OUT = Path(__file__).resolve().parent / "out"
END = date(2026, 10, 31)


def prepared(
    customers: int, sessions_per_week: float, spark_extra: dict[str, str] | None = None
) -> tuple[SparkSession, Conf, Tables]:
    """Generate (once) and ingest (once) ``customers`` customers' 90 days of data
    (``spark_extra``: more settings for the session, e.g. an event log)."""
    root = OUT / f"features-{customers}"
    landing = root / "landing"
    history = sorted((landing / "campaigns").glob("campaign_history_*.csv"))
    if history and not history[0].read_text().partition("\n")[0].endswith(",group"):
        # Generated before the sample's campaigns had control groups: generate it again.
        shutil.rmtree(root)
    if not landing.exists():
        started = time.perf_counter()
        summary = generate(
            SampleSpec(
                seed=13, customers=customers, products=2000, days=90, end_date=END,
                sessions_per_customer_per_week=sessions_per_week, crm_exports=1,
                campaigns=3, bad_record_rate=0.0,
            ),
            landing,
        )  # fmt: skip
        print(f"generated {summary.events} events in {time.perf_counter() - started:.0f}s")
    base = load_conf("local")
    # Everything the benchmarks write stays under bench/out, away from `make run`'s data/.
    paths = {**base.paths.__dict__, "landing": str(landing), "warehouse": str(root / "wh"),
             "models": str(root / "models"), "exports": str(root / "exports"),
             "reports": str(root / "reports")}  # fmt: skip
    conf = dataclasses.replace(base, paths=PathsConf(**paths))
    if spark_extra:
        extra = {**conf.spark.extra, **spark_extra}
        conf = dataclasses.replace(conf, spark=dataclasses.replace(conf.spark, extra=extra))
    spark = get_spark(conf)
    tables = Tables(spark, conf)
    if not tables.exists(catalog.CLICKSTREAM_EVENTS):
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        for ingest in (ingest_products, ingest_crm, ingest_campaigns, ingest_clickstream):
            ingest(spark, conf, tables, now=now)
        print(f"ingested in {time.perf_counter() - started:.0f}s")
    return spark, conf, tables
