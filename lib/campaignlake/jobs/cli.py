"""Console entry points. Each one exits with its job's status code, so a failed job fails
the process whichever way it is started: a console script, spark-submit, or a Databricks
python_wheel_task (which calls the entry point and only sees exceptions)."""

from __future__ import annotations

from collections.abc import Callable

from campaignlake.jobs import (
    build_audiences as _build_audiences,
)
from campaignlake.jobs import (
    build_features as _build_features,
)
from campaignlake.jobs import (
    build_report as _build_report,
)
from campaignlake.jobs import (
    erase_customers as _erase_customers,
)
from campaignlake.jobs import (
    generate_sample as _generate_sample,
)
from campaignlake.jobs import (
    ingest_campaigns as _ingest_campaigns,
)
from campaignlake.jobs import (
    ingest_clickstream as _ingest_clickstream,
)
from campaignlake.jobs import (
    ingest_crm as _ingest_crm,
)
from campaignlake.jobs import (
    ingest_products as _ingest_products,
)
from campaignlake.jobs import (
    recommend as _recommend,
)
from campaignlake.jobs import (
    run_pipeline as _run_pipeline,
)
from campaignlake.jobs import (
    score_customers as _score_customers,
)
from campaignlake.jobs import (
    train_recommender as _train_recommender,
)
from campaignlake.jobs import (
    train_response_model as _train_response_model,
)
from campaignlake.jobs import (
    vacuum_tables as _vacuum_tables,
)


def _exiting(main: Callable[[], int]) -> Callable[[], None]:
    def run() -> None:
        raise SystemExit(main())

    return run


build_audiences = _exiting(_build_audiences.main)
build_features = _exiting(_build_features.main)
build_report = _exiting(_build_report.main)
erase_customers = _exiting(_erase_customers.main)
generate_sample = _exiting(_generate_sample.main)
ingest_campaigns = _exiting(_ingest_campaigns.main)
ingest_clickstream = _exiting(_ingest_clickstream.main)
ingest_crm = _exiting(_ingest_crm.main)
ingest_products = _exiting(_ingest_products.main)
recommend = _exiting(_recommend.main)
run_pipeline = _exiting(_run_pipeline.main)
score_customers = _exiting(_score_customers.main)
train_recommender = _exiting(_train_recommender.main)
train_response_model = _exiting(_train_response_model.main)
vacuum_tables = _exiting(_vacuum_tables.main)
