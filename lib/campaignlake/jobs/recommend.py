"""Write exactly k recommendations for every customer, and similar products, for a date."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.jobs.common import add_model_version_argument, run_dated_job
from campaignlake.recommend.runs import recommend


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, args: recommend(
            spark, conf, as_of=as_of, model_version=args.model_version
        ),
        argv,
        add_model_version_argument,
    )


if __name__ == "__main__":
    raise SystemExit(main())
