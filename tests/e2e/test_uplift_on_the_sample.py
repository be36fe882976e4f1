"""The uplift model trained, recorded and scored on the generated sample.

Whether it beats the response model is not asserted here: the sample's validation campaign
holds a few hundred customers (about 90 held out), where a random ranking's Qini already
varies by ±0.02 (BENCHMARKS.md, "Campaign results and uplift"). tests/models/test_uplift.py
checks that on 16,000 rows with a known effect, and ``make bench-measure`` on the 100,000-
customer bench set."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences.runs import build_audiences
from campaignlake.models.runs import score_customers, train_uplift_model
from tests.conftest import SAMPLE_AS_OF

if TYPE_CHECKING:
    from tests.conftest import SampleModels


@pytest.mark.job
def test_the_uplift_model_is_compared_recorded_and_scores_beside_the_response_model(
    spark: SparkSession,
    sample_models: SampleModels,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conf, tables = sample_models.conf, sample_models.tables
    now = datetime(2026, 11, 1, 7, tzinfo=timezone.utc)
    report = train_uplift_model(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    name = conf.response_model.uplift_name
    qini = {ranker: m["qini"] for ranker, m in report.validation.items()}
    assert set(qini) == {name, f"{name}.response_model", f"{name}.random"}
    assert report.validation_rows > 0 and "Qini" in report.describe()
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
    customers = tables.read(catalog.CUSTOMER_FEATURES).where(
        F.col(c.AS_OF_DATE) == F.lit(SAMPLE_AS_OF)
    )
    assert scoring.uplift_rows == scoring.rows == customers.count() * len(conf.scoring.offers)
    uplifts = tables.read(catalog.PROPENSITY_SCORES).where(F.col(c.MODEL_NAME) == name)
    bounds = uplifts.agg(F.min(c.SCORE), F.max(c.SCORE), F.count(F.lit(1))).first()
    assert -1.0 <= bounds[0] < bounds[1] <= 1.0 and bounds[2] > 0

    # A campaign ranking by uplift selects on those scores, and min_score 0 leaves out the
    # customers the message is predicted to put off. While it is built, another job builds
    # a campaign ordered before it (same day, same cap) and commits first: the uplift
    # campaign's audience is built again from the new state, so nobody is in both, and its
    # export is the rows its table slice holds.
    (tmp_path / "uplift.yaml").write_text(UPLIFT_CAMPAIGN)
    (tmp_path / "first.yaml").write_text(FIRST_CAMPAIGN)
    ranked = dataclasses.replace(
        conf, audiences=dataclasses.replace(conf.audiences, campaigns_dir=str(tmp_path))
    )
    replace_slice, concurrent = tables.replace_slice, []

    def while_another_build_commits(key: str, df: object, predicate: str, **kw: object) -> object:
        if UPLIFT_ID in predicate and not concurrent:
            concurrent.append(
                build_audiences(spark, ranked, tables, as_of=SAMPLE_AS_OF, campaign_id=FIRST_ID)
            )
        return replace_slice(key, df, predicate, **kw)

    monkeypatch.setattr(tables, "replace_slice", while_another_build_commits)
    [result] = build_audiences(
        spark, ranked, tables, as_of=SAMPLE_AS_OF, campaign_id=UPLIFT_ID
    ).results
    assert concurrent and "building it again" in caplog.text
    audiences = tables.read(catalog.CAMPAIGN_AUDIENCES)
    audience = audiences.where(F.col(c.CAMPAIGN_ID) == UPLIFT_ID)
    assert result.funnel["audience"] == audience.count() > 0
    treated = {
        campaign: {
            r[0]
            for r in audiences.where(
                (F.col(c.CAMPAIGN_ID) == campaign) & (F.col(c.GROUP) == "treatment")
            )
            .select(c.CUSTOMER_ID)
            .collect()
        }
        for campaign in (FIRST_ID, UPLIFT_ID)
    }
    assert treated[FIRST_ID] and not treated[FIRST_ID] & treated[UPLIFT_ID]
    assert result.funnel["suppressed"]["frequency_cap"] > 0
    export = Path(result.export_path).read_text().splitlines()
    assert len(export) - 1 == len(treated[UPLIFT_ID]) == result.funnel["exported"]
    assert {r[c.MODEL_NAME] for r in audience.select(c.MODEL_NAME).distinct().collect()} == {name}
    day = uplifts.where((F.col(c.CHANNEL) == "email") & (F.col(c.CATEGORY) == "fashion")).select(
        c.CUSTOMER_ID, F.col(c.SCORE).alias("uplift")
    )
    joined = audience.join(day, c.CUSTOMER_ID)
    assert joined.count() == audience.count()
    assert joined.where(F.col(c.SCORE) != F.col("uplift")).isEmpty()
    assert joined.where(F.col(c.SCORE) < 0).isEmpty()


UPLIFT_ID = "CMP-20261101-email-fashion-uplift"
FIRST_ID = "CMP-20261101-email-fashion-first"
UPLIFT_CAMPAIGN = """\
id: CMP-20261101-email-fashion-uplift
name: Fashion, by uplift
channel: email
category: fashion
send_date: 2026-11-01
rank_by: uplift
selection: {top_n: 60, min_score: 0.0}
products: 0
control_fraction: 0.1
frequency_cap: {min_days_since_last_contact: 3}
"""
FIRST_CAMPAIGN = """\
id: CMP-20261101-email-fashion-first
name: Fashion, by response, ordered first
channel: email
category: fashion
send_date: 2026-11-01
selection: {top_n: 300}
products: 0
control_fraction: 0.0
priority: 1
frequency_cap: {min_days_since_last_contact: 3}
"""
