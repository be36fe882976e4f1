"""Headless Chromium for the report tests (Debian's package; .ci/run installs it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


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
