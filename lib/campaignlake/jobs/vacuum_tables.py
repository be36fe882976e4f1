"""Vacuum every table past storage.vacuum_retention_hours: removes the files of older versions
and of writes that crashed before their commit."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.config import load_conf
from campaignlake.jobs.common import parse_job_args, run_main
from campaignlake.maintenance.runs import vacuum_tables
from campaignlake.session import get_spark


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        print(vacuum_tables(get_spark(conf), conf).describe())

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
