"""Run the pipeline end to end for a date: sample data if there is none, then every ingestion
job, printing what each stage did and how long it took."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from campaignlake.config import load_conf
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
)
from campaignlake.jobs import generate_sample
from campaignlake.jobs.common import parse_job_args, run_main
from campaignlake.session import get_spark
from campaignlake.tables import Tables


def _stage(name: str, work: Callable[[], None]) -> None:
    started = time.perf_counter()
    print(f"== {name}", flush=True)
    work()
    print(f"   {name} done in {time.perf_counter() - started:.1f}s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(__doc__ or "", argv)

    def body() -> None:
        conf = load_conf(args.env, args.conf_dir)
        if conf.env == "local" and not Path(conf.paths.landing).exists():
            common = ["--env", args.env] + (["--conf-dir", args.conf_dir] if args.conf_dir else [])
            _stage(
                "generate sample", lambda: _check(generate_sample.main([*common, "--if-missing"]))
            )
        spark = get_spark(conf)
        tables = Tables(spark, conf)
        print(f"   storage engine: {tables.engine.name}; warehouse: {conf.paths.warehouse}")
        _stage(
            "ingest products",
            lambda: print("  ", ingest_products(spark, conf, tables, as_of=args.date).describe()),
        )
        _stage(
            "ingest crm",
            lambda: [
                print("  ", r.describe()) for r in ingest_crm(spark, conf, tables, as_of=args.date)
            ],
        )
        _stage(
            "ingest campaigns",
            lambda: print("  ", ingest_campaigns(spark, conf, tables, as_of=args.date).describe()),
        )
        _stage(
            "ingest clickstream",
            lambda: print(
                "  ", ingest_clickstream(spark, conf, tables, as_of=args.date).describe()
            ),
        )
        print(f"tables are under {conf.paths.warehouse}")

    return run_main(body)


def _check(code: int) -> None:
    if code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    raise SystemExit(main())
