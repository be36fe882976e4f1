"""Ingest new clickstream JSON lines into bronze/clickstream_events."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.config import load_conf
from campaignlake.ingest.runs import ingest_clickstream
from campaignlake.jobs.common import parse_job_args, run_main
from campaignlake.session import get_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        spark = get_spark(conf)
        report = ingest_clickstream(spark, conf, as_of=args.date)
        print(report.describe())

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
