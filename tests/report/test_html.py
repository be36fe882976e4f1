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
