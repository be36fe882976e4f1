"""The command line of every job: ``campaignlake <job> --env ENV [--date D] [flags]``.

The same parser serves the console script (a Databricks ``python_wheel_task`` calls it with the
job's name as the first parameter) and ``spark-submit jobs/run.py <job> ...``. A job's exit
status is its result whichever way it is started: a campaignlake error prints its message and
exits with 1, so a failed job fails the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date, timedelta

from campaignlake.config import load_conf
from campaignlake.errors import CampaignlakeError, ConfigError
from campaignlake.jobs.job import Job, RunDate
from campaignlake.jobs.registry import JOBS
from campaignlake.session import get_spark
from campaignlake.tables import Tables


def parser() -> argparse.ArgumentParser:
    """One sub-command per declared job, each with the shared flags and its own."""
    top = argparse.ArgumentParser(prog="campaignlake", description=__doc__)
    commands = top.add_subparsers(dest="job", required=True, metavar="JOB")
    for job in JOBS:
        sub = commands.add_parser(job.name, help=job.summary, description=job.summary)
        sub.add_argument(
            "--env", default="local", help="configuration: conf/<env>.yaml (default: local)"
        )
        sub.add_argument("--conf-dir", default=None, help="directory holding <env>.yaml")
        sub.add_argument(
            "--verbose",
            action="store_true",
            help="also log each step's timing and Spark's warnings (default: stages, results "
            "and errors only)",
        )
        sub.add_argument(
            "--var",
            dest="variables",
            type=variable,
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a value for ${NAME} in the configuration (repeatable)",
        )
        if job.date is not RunDate.NONE:
            sub.add_argument(
                "--date", type=date.fromisoformat, default=None, help="run date, YYYY-MM-DD"
            )
            sub.add_argument(
                "--days-back",
                type=int,
                default=0,
                help="use the day this many days before --date "
                "(schedulers pass their start date and 1)",
            )
        for flag in job.flags:
            sub.add_argument(flag.name, dest=flag.dest, help=flag.help, **flag.options)
    return top


def variable(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` as a pair (argparse's type for ``--var``)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def run(job: Job, args: argparse.Namespace) -> None:
    """Load the conf, start the session and run ``job``, printing its report.

    Raises
    ------
    ConfigError
        When a job whose result depends on the date gets none.
    """
    kwargs = {flag.dest: getattr(args, flag.dest) for flag in job.flags}
    if job.date is not RunDate.NONE:
        if job.date is RunDate.REQUIRED and args.date is None:
            raise ConfigError("--date YYYY-MM-DD is required: the as-of date is a parameter")
        kwargs["as_of"] = args.date
    conf = load_conf(args.env, args.conf_dir, dict(args.variables))
    if job.session:
        spark = get_spark(conf, verbose=args.verbose)
        result = job.run(spark, conf, Tables(spark, conf), **kwargs)
    else:
        result = job.run(conf, **kwargs)
    for part in result if isinstance(result, list) else [result]:
        print(part.describe(), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments) and run the job; its exit status."""
    top = parser()
    args = top.parse_args(argv)
    days_back = getattr(args, "days_back", 0)
    if days_back < 0:
        top.error("--days-back must be 0 or more")
    if days_back and args.date is not None:
        args.date = args.date - timedelta(days=days_back)
    job = next(job for job in JOBS if job.name == args.job)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if not args.verbose:
        # MLflow installs its own INFO handler when first imported, unless told otherwise.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        run(job, args)
    except CampaignlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def entry_point() -> None:
    """The ``campaignlake`` console script: exits with the job's status."""
    raise SystemExit(main())
