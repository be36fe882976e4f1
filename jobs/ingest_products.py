"""spark-submit entry point of campaignlake.jobs.ingest_products.

spark-submit jobs/ingest_products.py --env local [--date YYYY-MM-DD]
"""

from campaignlake.jobs.ingest_products import main

if __name__ == "__main__":
    raise SystemExit(main())
