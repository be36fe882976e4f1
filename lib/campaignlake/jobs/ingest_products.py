"""Ingest new products catalog exports into silver/products."""

from __future__ import annotations

from collections.abc import Sequence

from campaignlake.ingest.runs import ingest_products
from campaignlake.jobs.common import run_ingest_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_ingest_job(__doc__ or "", ingest_products, argv)


if __name__ == "__main__":
    raise SystemExit(main())
