"""spark-submit entry point of campaignlake.jobs.build_audiences.

spark-submit jobs/build_audiences.py --env local --date YYYY-MM-DD [--campaign ID]
"""

from campaignlake.jobs.build_audiences import main

if __name__ == "__main__":
    raise SystemExit(main())
