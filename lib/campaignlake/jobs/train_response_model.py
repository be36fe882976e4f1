"""Train, evaluate and save a new version of the campaign-response model on the
contacts whose attribution window closed by the date."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.jobs.common import run_dated_job
from campaignlake.models.train import train_response_model


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, _: train_response_model(spark, conf, as_of=as_of),
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
