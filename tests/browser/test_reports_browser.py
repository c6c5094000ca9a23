"""Open every generated report in headless Chromium with the network cut off.

Every request that is not file:// or data: is blocked and recorded; the tests
assert none was attempted, no console error occurred, every chart drew marks,
a tooltip shows on hover, and the index links resolve. Screenshots of every
page go to ``test-artifacts/screenshots/`` (git-ignored) for a human look.
"""

from __future__ import annotations

import os

from pathlib import Path

import pytest

from browser.harness import ROOT, build_sample_report, launch, open_page
from journeylib.report import REPORTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("notebooks")]

SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out, _ = build_sample_report(tmp_path_factory.getbasetemp())
    return out


@pytest.fixture(scope="module")
def browser():
    if not Path("/usr/bin/chromium").exists():
        message = "Chromium is not installed (scripts/system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI the browser test must run, never skip
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.mark.parametrize("name", ["index", *REPORTS])
def test_page_offline_no_errors_all_charts_drawn(browser, report_dir, name):
    context, page, res = open_page(browser, report_dir / f"{name}.html")
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert res.blocked == [], f"requests tried to leave the page: {res.blocked[:5]}"
        assert res.console_errors == [] and res.page_errors == [], (res.console_errors, res.page_errors)
        assert res.chart_errors == []
        assert res.rendered == res.charts
        assert res.charts_with_marks == res.charts
        if name != "index":
            assert res.charts >= 1
            footer = page.locator("footer.journey-footer").inner_text()
            assert "Synthetic sample data" in footer  # the map's attribution
    finally:
        context.close()


@pytest.mark.parametrize("name", list(REPORTS))
def test_tooltip_shows_on_hover(browser, report_dir, name):
    context, page, res = open_page(browser, report_dir / f"{name}.html")
    try:
        marks = page.locator("figure.journey-chart svg g.mark-symbol path, figure.journey-chart svg g.mark-rect path")
        assert marks.count() > 0
        shown = False
        for i in range(min(marks.count(), 12)):
            m = marks.nth(i)
            box = m.bounding_box()
            if not box or box["width"] < 2 or box["height"] < 2:
                continue
            m.scroll_into_view_if_needed()
            m.hover(force=True)
            try:
                page.wait_for_selector("#vg-tooltip-element.visible", timeout=1500)
            except Exception:
                continue
            text = page.locator("#vg-tooltip-element").inner_text()
            if text.strip():
                shown = True
                break
        assert shown, "no tooltip appeared when hovering marks"
    finally:
        context.close()


def test_index_links_resolve(browser, report_dir):
    context, page, res = open_page(browser, report_dir / "index.html")
    try:
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        assert {f"{n}.html" for n in REPORTS} <= set(hrefs)
        for h in hrefs:
            assert (report_dir / h).exists(), h
        page.click(f'a[href="{next(iter(REPORTS))}.html"]')
        page.wait_for_load_state("load")
        assert page.url.endswith(f"{next(iter(REPORTS))}.html")
        assert res.blocked == []
    finally:
        context.close()
