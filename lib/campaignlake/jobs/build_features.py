"""Compute gold/customer_features and gold/customer_segments for an as-of date."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.config import load_conf
from campaignlake.features.build import build_features
from campaignlake.jobs.common import parse_job_args, required_date, run_main
from campaignlake.session import get_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        spark = get_spark(conf)
        report = build_features(spark, conf, as_of=required_date(args))
        print(report.describe())

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
