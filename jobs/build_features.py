"""spark-submit entry point of campaignlake.jobs.build_features.

spark-submit jobs/build_features.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.build_features import main

if __name__ == "__main__":
    raise SystemExit(main())
