"""Compute gold/customer_features and gold/customer_segments for an as-of date."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.features.build import build_features
from campaignlake.jobs.common import run_dated_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, _: build_features(spark, conf, as_of=as_of),
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
