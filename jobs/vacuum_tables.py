"""spark-submit entry point of campaignlake.jobs.vacuum_tables.

spark-submit jobs/vacuum_tables.py --env local
"""

from campaignlake.jobs.vacuum_tables import main

if __name__ == "__main__":
    raise SystemExit(main())
