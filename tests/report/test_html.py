"""The report of an empty warehouse renders every section with a note, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

from campaignlake.report.html import ReportData, render
from tests.browser import load_in_browser


def test_an_empty_warehouse_renders_every_section_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render(ReportData(as_of="2026-10-31")))
    images, errors, text = load_in_browser(path)
    assert errors == [] and images == []
    notes = (
        "No input tables yet.",
        "No response model has been trained.",
        "No recommender has been trained.",
        "No text model has been trained.",
        "No campaign audiences were built",
    )
    assert [note for note in notes if note not in text] == []


def test_campaign_results_show_lift_intervals_power_and_the_uplift_models_qini(
    tmp_path: Path,
) -> None:
    measured = {
        "campaign_id": "CMP-A", "breakdown": "all", "breakdown_value": "all",
        "status": "measured", "treatment_customers": 900, "control_customers": 300,
        "conversion_lift": 0.0412, "conversion_ci_low": -0.0103, "conversion_ci_high": 0.0927,
        "conversion_p_value": 0.118, "incremental_revenue": 1234.5,
        "min_detectable_lift": 0.0861,
    }  # fmt: skip
    small = {
        "campaign_id": "CMP-B", "breakdown": "all", "breakdown_value": "all",
        "status": "insufficient_size", "treatment_customers": 200, "control_customers": 40,
    }  # fmt: skip
    cell = {**measured, "breakdown": "rfm_segment", "breakdown_value": "champions"}
    uplift = {f"uplift_d{d:02d}": 0.1 - 0.02 * d for d in range(1, 11)}
    data = ReportData(
        as_of="2026-10-31",
        campaign_results=[measured, small, cell],
        uplift_metrics={
            "campaign_uplift": {"qini": 0.0312, **uplift},
            "campaign_uplift.response_model": {"qini": 0.0101, **uplift},
        },
    )
    path = tmp_path / "report.html"
    path.write_text(render(data))
    images, errors, text = load_in_browser(path)
    assert errors == []
    assert [i["alt"] for i in images] == ["conversion lift per campaign", "uplift by decile"]
    assert "+4.12 pp" in text and "[-1.03 pp, +9.27 pp]" in text and "+8.61 pp" in text
    assert "insufficient_size" in text and "champions" in text
    assert "smallest detectable lift" in text
    assert "0.0312" in text and "0.0101" in text
    empty = tmp_path / "empty.html"
    empty.write_text(render(ReportData(as_of="2026-10-31")))
    assert "No campaign's attribution window has closed" in load_in_browser(empty)[2]


def test_text_models_and_cold_start_recall_are_shown_with_the_chosen_number_of_topics(
    tmp_path: Path,
) -> None:
    ranking = {"precision_at_10": 0.12, "recall_at_10": 0.3, "map_at_10": 0.1, "ndcg_at_10": 0.2}
    data = ReportData(
        as_of="2026-10-31",
        ranking_metrics={
            "als": ranking,
            "als.popularity_baseline": {**ranking, "cold_recall": 0.0065, "cold_pairs": 307.0},
            "als.with_cold_start": {"cold_recall": 0.6893, "cold_pairs": 307.0},
        },
        topic_perplexity={12: 7.25, 8: 7.5, 16: 7.375},
        chosen_topics=12,
        sentiment_metrics={"roc_auc": 0.9503, "pr_auc": 0.9811, "train_rows": 8000.0},
    )
    path = tmp_path / "report.html"
    path.write_text(render(data))
    images, errors, text = load_in_browser(path)
    assert errors == []
    # The cold-start variant has no ranking metrics: it is not a bar of the ranking plot.
    assert [i["alt"] for i in images] == ["Recommendation metrics against the popularity baseline"]
    lines = text.splitlines()
    assert [line for line in lines if line.startswith(("8\t", "12\t", "16\t"))] == [
        "8\t7.5000\t",
        "12\t7.2500\tchosen",
        "16\t7.3750\t",
    ]
    assert "als.with_cold_start\t0.6893\t307" in lines
    assert "als.popularity_baseline\t0.0065\t307" in lines
    assert "roc_auc\t0.9503" in lines and "train_rows\t8,000" in lines
