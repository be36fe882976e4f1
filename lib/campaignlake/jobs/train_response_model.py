"""Train, evaluate and save a new version of the campaign-response model on the
contacts whose attribution window closed by the date."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.config import load_conf
from campaignlake.jobs.common import parse_job_args, required_date, run_main
from campaignlake.models.train import train_response_model
from campaignlake.session import get_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        spark = get_spark(conf)
        report = train_response_model(spark, conf, as_of=required_date(args))
        print(report.describe())

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
