"""Ingest new campaign history exports into silver/campaign_contacts."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.ingest.runs import ingest_campaigns
from campaignlake.jobs.common import run_ingest_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_ingest_job(__doc__ or "", ingest_campaigns, argv)


if __name__ == "__main__":
    raise SystemExit(main())
