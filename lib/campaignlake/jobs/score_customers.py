"""Score the features of a date with the latest (or a pinned) response model into
gold/propensity_scores, once per configured offer."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from campaignlake.config import load_conf
from campaignlake.jobs.common import parse_job_args, required_date, run_main
from campaignlake.models.scoring import score_customers
from campaignlake.session import get_spark


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-version", default=None, help="score with this version (vN) instead of the latest"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv, _arguments)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        spark = get_spark(conf)
        report = score_customers(
            spark, conf, as_of=required_date(args), model_version=args.model_version
        )
        print(report.describe())

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
