"""The spark-submit entry of every campaignlake job.

spark-submit jobs/run.py <job> --env local [--date YYYY-MM-DD] [flags]
(``campaignlake --help`` lists the jobs.)
"""

from campaignlake.jobs.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
