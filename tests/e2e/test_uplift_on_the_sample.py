"""The uplift model on the generated sample, where the generator planted who a message
persuades (engaged customers with affinity) and who buys anyway (frequent recent buyers)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.models.runs import score_customers, train_uplift_model
from tests.conftest import SAMPLE_AS_OF

if TYPE_CHECKING:
    from tests.conftest import SampleModels


@pytest.mark.slow
def test_the_uplift_model_ranks_the_persuadable_above_the_response_model(
    spark: SparkSession, sample_models: SampleModels
) -> None:
    conf, tables = sample_models.conf, sample_models.tables
    now = datetime(2026, 11, 1, 7, tzinfo=timezone.utc)
    report = train_uplift_model(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    name = conf.response_model.uplift_name
    qini = {ranker: m["qini"] for ranker, m in report.validation.items()}
    assert qini[name] > qini[f"{name}.response_model"], report.describe()
    assert qini[name] > qini[f"{name}.random"], report.describe()
    metrics = tables.read(catalog.MODEL_METRICS).where(F.col(c.MODEL_NAME).startswith(name))
    recorded = {
        (r[c.MODEL_NAME], r[c.METRIC]): r[c.VALUE]
        for r in metrics.where(F.col(c.SPLIT) == "validation").collect()
    }
    assert recorded[(name, "qini")] == pytest.approx(qini[name])
    assert {(f"{name}.response_model", f"uplift_d{d:02d}") for d in range(1, 11)} <= set(recorded)
    # Scoring adds the uplift model's scores beside the response model's, in [-1, 1].
    scoring = score_customers(spark, conf, tables, as_of=SAMPLE_AS_OF)
    assert scoring.uplift_version == report.model_version
    uplifts = tables.read(catalog.PROPENSITY_SCORES).where(F.col(c.MODEL_NAME) == name)
    bounds = uplifts.agg(F.min(c.SCORE), F.max(c.SCORE), F.count(F.lit(1))).first()
    assert -1.0 <= bounds[0] < bounds[1] <= 1.0 and bounds[2] > 0
