"""Train a new ALS recommender version: a grid chosen on the chronological holdout before
the date, evaluated against the popularity baseline, refitted on everything up to the date."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.jobs.common import run_dated_job
from campaignlake.recommend.runs import train_recommender


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, _: train_recommender(spark, conf, as_of=as_of),
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
