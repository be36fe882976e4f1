"""spark-submit entry point of campaignlake.jobs.build_report.

spark-submit jobs/build_report.py --env local --date YYYY-MM-DD
"""

from campaignlake.jobs.build_report import main

if __name__ == "__main__":
    raise SystemExit(main())
