"""The run report of the generated sample loads in headless Chromium without errors and every
plot is a decoded image."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession

from campaignlake.audiences.runs import AudienceReport
from campaignlake.recommend.evaluation import COLD_RECALL, POPULARITY_BASELINE, WITH_COLD_START
from campaignlake.report.runs import build_report
from tests.browser import load_in_browser

if TYPE_CHECKING:
    from tests.conftest import SampleModels


@pytest.mark.job
def test_the_sample_report_loads_without_errors_and_shows_every_plot(
    spark: SparkSession, sample_models: SampleModels, sample_audiences: AudienceReport
) -> None:
    conf = sample_models.conf
    result = build_report(spark, conf, sample_models.tables, as_of=date(2026, 10, 31))
    assert result.path == f"{conf.paths.reports}/2026-10-31/report.html"
    images, errors, text = load_in_browser(Path(result.path))
    assert errors == []
    alts = [image["alt"] for image in images]
    for expected in ("Quarantined rows by table and reason", "ROC curve",
                     "Cumulative gains curve", "Feature importances",
                     "Recommendation metrics against the popularity baseline",
                     "RFM segments sizes"):  # fmt: skip
        assert expected in alts
    funnels = [r.campaign.id for r in sample_audiences.results]
    assert [a for a in alts if a.startswith("Audience funnel of ")] == [
        f"Audience funnel of {campaign_id}" for campaign_id in funnels
    ]
    assert all(image["complete"] and image["width"] > 100 and image["height"] > 100
               for image in images)  # fmt: skip
    assert str(sample_audiences.results[0].funnel["eligible"]) in text.replace(",", "")
    # The text job's models: every k tried, the chosen one marked; the sentiment's AUC; the
    # cold-start recall of both list variants.
    text_report = sample_models.text_training
    assert result.data.topic_perplexity.keys() == text_report.perplexities.keys()
    assert result.data.chosen_topics == text_report.topics_k
    chosen = text_report.topics_k
    assert f"{chosen}\t{text_report.perplexities[chosen]:.4f}\tchosen" in text.splitlines()
    assert result.data.sentiment_metrics["roc_auc"] == text_report.sentiment["roc_auc"]
    recommender = sample_models.conf.recommendations.model_name
    cold = {n: m[COLD_RECALL] for n, m in result.data.ranking_metrics.items() if COLD_RECALL in m}
    assert set(cold) == {f"{recommender}.{POPULARITY_BASELINE}", f"{recommender}.{WITH_COLD_START}"}
    assert "Products launched late (cold start)" in text
