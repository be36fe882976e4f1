"""spark-submit entry point of campaignlake.jobs.score_customers.

spark-submit jobs/score_customers.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.score_customers import main

if __name__ == "__main__":
    raise SystemExit(main())
