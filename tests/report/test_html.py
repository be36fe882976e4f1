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
