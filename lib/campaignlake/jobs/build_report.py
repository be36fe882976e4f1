"""Write the static HTML report of a run (inputs and quarantine, model metrics, recommendation
metrics, segments, audience funnels) to paths.reports/<date>/report.html."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.jobs.common import run_dated_job
from campaignlake.report.runs import build_report


def main(argv: Sequence[str] | None = None) -> int:
    return run_dated_job(
        __doc__ or "",
        lambda spark, conf, as_of, args: build_report(spark, conf, as_of=as_of),
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
