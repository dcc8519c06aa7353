"""Headless Debian Chromium through Playwright for the viewer tests (no browser download, ever).

``browser_or_skip()`` skips with the reason when /usr/bin/chromium or playwright is missing, and fails
instead under CI (``CCMCT_REQUIRE_SHARED_DATA=1``). ``site_opens(site)`` opens a built site's first slide
page from file:// and returns what it drew (used by the viewer tests and the ``ccmct demo`` test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
READY = "window.ccmctViewer && ccmctViewer.isOpen() && ccmctViewer.tilesLoaded()"


def browser_or_skip() -> None:
    """Skip (or, in CI, fail) with the reason when the browser cannot run."""
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -r requirements-dev.txt)"
    if reason:
        if os.environ.get("CCMCT_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def site_opens(site: Path, browser=None) -> dict:
    """Open ``site/index.html`` and its first slide page in headless Chromium (file://); returns the slide
    page's ``ccmctViewer.counts()`` once its tiles are loaded, and raises on any page error.

    ``browser``: a running Playwright browser (one Playwright per thread); default: launch one here.
    """
    if browser is not None:
        return _first_slide_counts(browser, site)
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            return _first_slide_counts(browser, site)
        finally:
            browser.close()


def _first_slide_counts(browser, site: Path) -> dict:
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    try:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((Path(site) / "index.html").resolve().as_uri())
        page.click("tbody tr a")
        page.wait_for_function(READY, timeout=60_000)
        counts = page.evaluate("ccmctViewer.counts()")
        if errors:
            raise AssertionError(f"page errors in {site}: {errors}")
        return counts
    finally:
        page.close()
