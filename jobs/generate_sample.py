"""spark-submit entry point of campaignlake.jobs.generate_sample.

spark-submit jobs/generate_sample.py --env local [--date YYYY-MM-DD]
"""

from campaignlake.jobs.generate_sample import main

if __name__ == "__main__":
    raise SystemExit(main())
