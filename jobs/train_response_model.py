"""spark-submit entry point of campaignlake.jobs.train_response_model.

spark-submit jobs/train_response_model.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.train_response_model import main

if __name__ == "__main__":
    raise SystemExit(main())
