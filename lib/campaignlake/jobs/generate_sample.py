"""Generate the sample raw exports (clickstream, CRM, products, campaign history) into the
landing directory; deterministic for a seed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from campaignlake.config import load_conf
from campaignlake.errors import InputError
from campaignlake.jobs.common import parse_job_args, run_main
from campaignlake.sample.generator import generate, spec_from_conf


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: conf)")
    parser.add_argument("--customers", type=int, default=None, help="number of customers")
    parser.add_argument("--products", type=int, default=None, help="number of products")
    parser.add_argument("--days", type=int, default=None, help="days of clickstream")
    parser.add_argument(
        "--sessions-per-week", type=float, default=None, help="activity per customer"
    )
    parser.add_argument(
        "--bad-record-rate", type=float, default=None, help="share of broken records"
    )
    parser.add_argument("--landing", default=None, help="write here instead of paths.landing")
    parser.add_argument("--if-missing", action="store_true", help="do nothing if landing has data")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv, _arguments)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        landing = Path(args.landing or conf.paths.landing)
        if "://" in str(landing) or str(landing).startswith("dbfs:"):
            raise InputError(f"the sample generator writes local files only, not {landing}")
        if args.if_missing and landing.exists() and any(landing.iterdir()):
            print(f"sample: {landing} already holds data, not generating")
            return
        spec = spec_from_conf(
            conf.sample,
            seed=args.seed,
            customers=args.customers,
            products=args.products,
            days=args.days,
            end_date=args.date,
            sessions_per_customer_per_week=args.sessions_per_week,
            bad_record_rate=args.bad_record_rate,
        )
        summary = generate(spec, landing)
        print(
            f"sample: {summary.events} events in {summary.clickstream_files} files "
            f"({summary.bad_clickstream_lines} broken on purpose), {summary.customers} customers, "
            f"{summary.products} products, {summary.campaign_contacts} campaign contacts "
            f"-> {landing}"
        )

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
