"""The run report: built from the sample's tables and audit summaries, it loads in headless
Chromium without errors and every plot is a decoded image."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession

from campaignlake.audiences.runs import AudienceReport
from campaignlake.report.html import ReportData, render
from campaignlake.report.runs import build_report

if TYPE_CHECKING:
    from conftest import SampleModels


def chromium_path() -> str:
    """Debian's chromium; .ci/run installs it. Outside CI a missing browser skips the test."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
    pytest.skip("install Debian's chromium package to render the report (apt install chromium)")


def load_in_browser(path: Path) -> tuple[list[dict], list[str], str]:
    """Open ``path``; return its images (alt, loaded, width), page errors and console errors,
    and the text of the page."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    errors.append(f"console {msg.type}: {msg.text}")
                    if msg.type in ("error", "warning")
                    else None
                ),
            )
            page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
            page.goto(path.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
                " width: i.naturalWidth, height: i.naturalHeight}))"
            )
            text = page.inner_text("body")
        finally:
            browser.close()
    return images, errors, text


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


@pytest.mark.slow
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
