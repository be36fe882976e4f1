"""spark-submit entry point of campaignlake.jobs.train_recommender.

spark-submit jobs/train_recommender.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.train_recommender import main

if __name__ == "__main__":
    raise SystemExit(main())
