"""Ingest new clickstream JSON lines into bronze/clickstream_events."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.ingest.runs import ingest_clickstream
from campaignlake.jobs.common import run_ingest_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_ingest_job(__doc__ or "", ingest_clickstream, argv)


if __name__ == "__main__":
    raise SystemExit(main())
