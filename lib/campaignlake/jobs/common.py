"""What every job's command line shares: ``--env``, ``--date`` and ``--conf-dir``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Protocol

from pyspark.sql import SparkSession

from campaignlake.config import Conf, load_conf
from campaignlake.errors import CampaignlakeError, ConfigError
from campaignlake.ingest.runs import IngestReport
from campaignlake.session import get_spark


class Describable(Protocol):
    def describe(self) -> str: ...


def parse_job_args(
    description: str,
    argv: Sequence[str] | None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse a job's command line: ``--env`` (conf/<env>.yaml), ``--date`` (the run date,
    YYYY-MM-DD; a rerun for the same date gives the same result) and the job's own flags."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--env", default="local", help="configuration: conf/<env>.yaml (default: local)"
    )
    parser.add_argument(
        "--date", type=date.fromisoformat, default=None, help="run date, YYYY-MM-DD"
    )
    parser.add_argument("--conf-dir", default=None, help="directory holding <env>.yaml")
    parser.add_argument(
        "--days-back",
        type=int,
        default=0,
        help="use the day this many days before --date (schedulers pass their start date and 1)",
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.days_back < 0:
        parser.error("--days-back must be 0 or more")
    if args.date is not None and args.days_back:
        args.date = args.date - timedelta(days=args.days_back)
    return args


def run_ingest_job(
    description: str,
    ingest: Callable[..., IngestReport | list[IngestReport]],
    argv: Sequence[str] | None,
) -> int:
    """The whole story of an ingestion job: args → conf → session → ingest → print the report."""
    args = parse_job_args(description, argv)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        spark = get_spark(conf)
        reports = ingest(spark, conf, as_of=args.date)
        for report in reports if isinstance(reports, list) else [reports]:
            print(report.describe())

    return run_main(body)


def run_dated_job(
    description: str,
    work: Callable[[SparkSession, Conf, date, argparse.Namespace], Describable],
    argv: Sequence[str] | None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """The whole story of a job for an as-of date: args (``--date`` required) → conf →
    session → work → print its report."""
    args = parse_job_args(description, argv, add_arguments)

    def body() -> None:
        as_of = required_date(args)
        conf = load_conf(args.env, args.conf_dir)
        print(work(get_spark(conf), conf, as_of, args).describe())

    return run_main(body)


def add_model_version_argument(parser: argparse.ArgumentParser) -> None:
    """``--model-version vN``: use that saved version instead of the latest."""
    parser.add_argument(
        "--model-version", default=None, help="use this version (vN) instead of the latest"
    )


def required_date(args: argparse.Namespace) -> date:
    """The run date; jobs whose result depends on it never default to today."""
    if args.date is None:
        raise ConfigError("--date YYYY-MM-DD is required: the as-of date is a parameter")
    return args.date


def run_main(body: Callable[[], None]) -> int:
    """Run a job body; a campaignlake error ends it with its message and exit code 1."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        body()
    except CampaignlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
