"""spark-submit entry point of campaignlake.jobs.ingest_campaigns.

spark-submit jobs/ingest_campaigns.py --env local [--date YYYY-MM-DD]
"""

from campaignlake.jobs.ingest_campaigns import main

if __name__ == "__main__":
    raise SystemExit(main())
