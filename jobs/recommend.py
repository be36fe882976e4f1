"""spark-submit entry point of campaignlake.jobs.recommend.

spark-submit jobs/recommend.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.recommend import main

if __name__ == "__main__":
    raise SystemExit(main())
