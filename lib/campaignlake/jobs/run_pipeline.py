"""Run the pipeline end to end for a date: sample data if there is none, every ingestion job,
the erasure of customers whose deletion request is due, features and segments, the response
model and the recommender (each trained when none exists or with --retrain), scoring,
recommendations, campaign audiences and the run report, printing what each stage did and how
long it took."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar

from campaignlake.audiences.runs import build_audiences
from campaignlake.config import load_conf
from campaignlake.erasure.runs import erase_customers
from campaignlake.errors import ConfigError
from campaignlake.features.build import build_features
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
)
from campaignlake.jobs import generate_sample
from campaignlake.jobs.common import parse_job_args, run_main
from campaignlake.models.registry import ModelStore
from campaignlake.models.scoring import score_customers
from campaignlake.models.train import train_response_model
from campaignlake.recommend.runs import recommend, train_recommender
from campaignlake.report.runs import build_report
from campaignlake.session import get_spark
from campaignlake.tables import Tables

R = TypeVar("R")
#: The stages in order; training runs only when no model exists or with --retrain.
STAGES = ("ingest", "erase", "features", "train", "score", "recommend", "audiences")


def _stage(name: str, work: Callable[[], R]) -> R:
    started = time.perf_counter()
    print(f"== {name}", flush=True)
    result = work()
    for part in result if isinstance(result, list) else [result]:
        if hasattr(part, "describe"):
            print("  ", part.describe(), flush=True)
    print(f"   {name} done in {time.perf_counter() - started:.1f}s", flush=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv, _arguments)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        as_of = _run_date(args.date, conf.env, conf.sample.end_date)
        if conf.env == "local" and not Path(conf.paths.landing).exists():
            common = ["--env", args.env] + (["--conf-dir", args.conf_dir] if args.conf_dir else [])
            _stage(
                "generate sample", lambda: _check(generate_sample.main([*common, "--if-missing"]))
            )
        spark = get_spark(conf)
        tables = Tables(spark, conf)
        print(f"   storage engine: {tables.engine.name}; warehouse: {conf.paths.warehouse}")

        def wanted(stage: str) -> bool:
            return STAGES.index(stage) >= STAGES.index(args.from_stage)

        if wanted("ingest"):
            _stage("ingest products", lambda: ingest_products(spark, conf, tables, as_of=args.date))
            _stage("ingest crm", lambda: ingest_crm(spark, conf, tables, as_of=args.date))
            _stage(
                "ingest campaigns", lambda: ingest_campaigns(spark, conf, tables, as_of=args.date)
            )
            _stage(
                "ingest clickstream",
                lambda: ingest_clickstream(spark, conf, tables, as_of=args.date),
            )
        if wanted("erase"):
            # Before anything is computed from the data: an erased customer gets no features,
            # scores, recommendations or audience rows in this run.
            _stage("erase customers", lambda: erase_customers(spark, conf, tables, as_of=as_of))
        if wanted("features"):
            _stage(
                "features and segments", lambda: build_features(spark, conf, tables, as_of=as_of)
            )
        store = ModelStore(spark, conf.paths.models)
        if wanted("train") and (args.retrain or not store.versions(conf.response_model.name)):
            _stage(
                "train response model",
                lambda: train_response_model(spark, conf, tables, as_of=as_of),
            )
        if wanted("score"):
            _stage("score customers", lambda: score_customers(spark, conf, tables, as_of=as_of))
        recommender = conf.recommendations.model_name
        if wanted("train") and (args.retrain or not store.versions(recommender)):
            _stage("train recommender", lambda: train_recommender(spark, conf, tables, as_of=as_of))
        if wanted("recommend"):
            _stage("recommend", lambda: recommend(spark, conf, tables, as_of=as_of))
        audiences = _stage(
            "build audiences", lambda: build_audiences(spark, conf, tables, as_of=as_of)
        )
        report = _stage("report", lambda: build_report(spark, conf, tables, as_of=as_of))
        print(f"tables are under {conf.paths.warehouse}; models under {conf.paths.models}")
        for result in audiences.results:
            print(f"export: {result.export_path}")
        print(f"report: {report.path}")

    return run_main(body)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from-stage",
        choices=STAGES,
        default=STAGES[0],
        help="start at this stage; the earlier stages' tables must exist (default: ingest)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train new versions of the response model and the recommender",
    )


def _run_date(given: date | None, env: str, sample_end: str) -> date:
    """The run date; local runs on the sample default to the sample's last day."""
    if given is not None:
        return given
    if env == "local":
        return date.fromisoformat(sample_end)
    raise ConfigError("--date YYYY-MM-DD is required outside local runs")


def _check(code: int) -> None:
    if code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    raise SystemExit(main())
