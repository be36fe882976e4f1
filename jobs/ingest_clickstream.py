"""spark-submit entry point of campaignlake.jobs.ingest_clickstream.

spark-submit jobs/ingest_clickstream.py --env local [--date YYYY-MM-DD]
"""

from campaignlake.jobs.ingest_clickstream import main

if __name__ == "__main__":
    raise SystemExit(main())
