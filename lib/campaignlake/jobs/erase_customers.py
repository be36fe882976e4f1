"""Carry out the deletion requests that are past their grace period: delete the customers'
rows from every table, quarantine and export, vacuum the older versions that hold them, and
record each erasure (by key hash) in meta/erasures."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.erasure.runs import erase_customers
from campaignlake.jobs.common import run_dated_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, _: erase_customers(spark, conf, as_of=as_of),
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
