"""spark-submit entry point of campaignlake.jobs.run_pipeline.

spark-submit jobs/run_pipeline.py --env local [--date YYYY-MM-DD]
"""

from campaignlake.jobs.run_pipeline import main

if __name__ == "__main__":
    raise SystemExit(main())
