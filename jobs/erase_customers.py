"""spark-submit entry point of campaignlake.jobs.erase_customers.

spark-submit jobs/erase_customers.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.erase_customers import main

if __name__ == "__main__":
    raise SystemExit(main())
