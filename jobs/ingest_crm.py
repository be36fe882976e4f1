"""spark-submit entry point of campaignlake.jobs.ingest_crm.

spark-submit jobs/ingest_crm.py --env local [--date YYYY-MM-DD]
"""

from campaignlake.jobs.ingest_crm import main

if __name__ == "__main__":
    raise SystemExit(main())
