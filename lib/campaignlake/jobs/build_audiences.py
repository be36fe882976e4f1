"""Build the audiences of the campaigns sending after a date (conf/campaigns/*.yaml) into
gold/campaign_audiences, with one export CSV and one audit summary per campaign."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from campaignlake.audiences.runs import build_audiences
from campaignlake.jobs.common import run_dated_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, args: build_audiences(
            spark, conf, as_of=as_of, campaign_id=args.campaign
        ),
        argv,
        _arguments,
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--campaign", default=None, help="build only this campaign id (it must send after --date)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
