"""Interact with the generated reports in headless Chromium with the network cut off.

Every request that is not file:// or data: is blocked and recorded. A tooltip
shows on hover and the index links resolve. (Each page's offline load, charts,
layout and screenshots are checked in ``test_pages.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser.harness import build_sample_report, open_page
from journeylib.report import REPORTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("notebooks")]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out, _ = build_sample_report(tmp_path_factory.getbasetemp())
    return out



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
            assert (report_dir / h.split("#", 1)[0]).exists(), h      # links to a section of a page point at a page that exists
        page.click(f'a[href="{next(iter(REPORTS))}.html"]')
        page.wait_for_load_state("load")
        assert page.url.endswith(f"{next(iter(REPORTS))}.html")
        assert res.blocked == []
    finally:
        context.close()
