"""What readers see: every report page at desktop (1,400 px) and phone (390 px) width, without JavaScript, and as PDF.

Two report sets are rendered once and shared: the sample (22 touchpoints, with
emotion responses) and an OULAD-like workspace built by the real OULAD adapter
from a small export in the OULAD file format (8 touchpoints, no emotion
responses). For every page and width the tests check, in headless Chromium
with every non-local request blocked:

* no request tried to leave the page and no console error occurred;
* every chart drew marks, no chart is wider than its container and the page
  does not scroll sideways;
* every chart with more than one series shows a legend, and no label, legend
  entry or title was cut short ("…");
* at 1,400 px the whole journey map is visible (all 22 touchpoints, no
  sideways scrolling) and the emotional curve's points sit in their
  touchpoint columns;
* a page without data for its subject says so in one line and the index marks it.

With JavaScript off, every chart position shows the static picture drawn in
Python. ``journey report --pdf`` output is rendered to images (pypdfium2) and
compared with the same page printed without its charts. Screenshots of every
page go to ``test-artifacts/screenshots/`` for a human look.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from browser.harness import (ROOT, SAMPLE, build_oulad_like_report, build_sample_report, legend_exempt, open_page, page_specs,
                             series_fields)
from journeylib.report import REPORTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("notebooks")]

SHOTS = ROOT / "test-artifacts" / "screenshots"
PAGES = ["index", *REPORTS]
WIDTHS = [1400, 390]
MAX_PAGE_BYTES = 1_500_000


@pytest.fixture(scope="module")
def report_sets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp()
    sample, _ = build_sample_report(base)
    return {"sample": sample, "oulad": build_oulad_like_report(base)}




LAYOUT_JS = """() => {
  const figs = [...document.querySelectorAll('figure.journey-chart')];
  const charts = figs.map(f => {
    const svg = f.querySelector('.journey-chart-view svg');
    const texts = svg ? [...svg.querySelectorAll('text')].map(t => t.textContent) : [];
    return {figure: Math.round(f.getBoundingClientRect().width), svg: svg ? Math.round(svg.getBoundingClientRect().width) : -1,
            legend: !!(svg && svg.querySelector('g.role-legend')), cut: texts.filter(t => t.includes('…'))};
  });
  return {charts, scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("which", ["sample", "oulad"])
def test_page_reads_at_desktop_and_phone_width(browser, report_sets, which, page_name, width):
    path = report_sets[which] / f"{page_name}.html"
    html = path.read_text(encoding="utf-8")
    assert len(html.encode()) <= MAX_PAGE_BYTES, f"{path.name} weighs {len(html.encode()):,} bytes"
    specs = page_specs(html)
    context, page, res = open_page(browser, path, width=width)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{which}-{page_name}-{width}.png"), full_page=True)
        assert res.blocked == [], f"requests tried to leave the page: {res.blocked[:5]}"
        assert res.console_errors == [] and res.page_errors == [], (res.console_errors, res.page_errors)
        assert res.chart_errors == [] and res.rendered == res.charts == res.charts_with_marks == len(specs)
        layout = page.evaluate(LAYOUT_JS)
        assert layout["scrollWidth"] <= layout["width"], "the page scrolls sideways"
        for spec, c in zip(specs, layout["charts"]):
            title = json.dumps(spec.get("title", spec.get("description", "")))[:80]
            assert 0 < c["svg"] <= c["figure"] + 1, (title, c)
            assert c["cut"] == [], (title, c["cut"])
            if series_fields(spec) and not legend_exempt(spec):
                assert c["legend"], f"multi-series chart without a legend: {title}"
    finally:
        context.close()


def test_whole_journey_map_visible_at_desktop_width(browser, report_sets):
    """The sample's map (23 touchpoints) at 1,400 px: no sideways scrolling, every column on screen, the curve's points in their columns."""
    from journeylib.model import load_map

    n = len(load_map(SAMPLE / "journey.yml").touchpoints)
    context, page, res = open_page(browser, report_sets["sample"] / "journey_map.html", width=1400)
    try:
        grid = page.evaluate("""() => {
            const m = document.querySelector('.journey-map');
            const tps = [...document.querySelectorAll('.journey-map .jm-tp')].map(e => e.getBoundingClientRect());
            const lane = document.querySelector('.journey-map .jm-curve svg').getBoundingClientRect();
            const dots = [...document.querySelectorAll('.journey-map .jm-curve .journey-chart-view g.mark-symbol path')]
                .map(p => { const b = p.getBoundingClientRect(); return b.x + b.width / 2; });
            return {scroll: m.scrollWidth, client: m.clientWidth, n: tps.length, left: Math.min(...tps.map(r => r.left)),
                    right: Math.max(...tps.map(r => r.right)), centres: tps.map(r => r.left + r.width / 2), lane: [lane.left, lane.right], dots};
        }""")
        assert n >= 22 and grid["n"] == n
        assert grid["scroll"] <= grid["client"], "the map scrolls sideways at 1,400 px"
        assert grid["left"] >= 0 and grid["right"] <= 1400
        # every point of the emotional curve sits on a touchpoint column's centre (target diamonds and measured dots)
        assert len(grid["dots"]) >= n
        for x in grid["dots"]:
            assert min(abs(x - c) for c in grid["centres"]) <= 3, (x, grid["centres"])
        page.locator(".journey-map").screenshot(path=str(SHOTS / "sample-journey_map-canvas-1400.png"))
    finally:
        context.close()


def test_pages_without_data_say_so_and_the_index_marks_them(report_sets):
    emotion = (report_sets["oulad"] / "emotion_vs_metric.html").read_text(encoding="utf-8")
    assert 'class="journey-nodata-page" data-subject="emotion responses"' in emotion
    index = (report_sets["oulad"] / "index.html").read_text(encoding="utf-8")
    assert "No data: emotion responses" in index
    sample_index = (report_sets["sample"] / "index.html").read_text(encoding="utf-8")
    assert "No data:" not in sample_index
    # run without --period, the review picks its own period: its header and the index name it instead of "all data"
    review = (report_sets["oulad"] / "periodic_review.html").read_text(encoding="utf-8")
    kicker = re.search(r'<div class="journey-kicker">(.*?)</div>', review).group(1)
    assert "· review of " in kicker and "all data" not in kicker, kicker
    about = kicker.split("· review of ", 1)[1]
    assert f"The findings below are about <strong>{about}</strong>" in index and f"review of {about}" in index


@pytest.mark.parametrize("page_name", list(REPORTS))
def test_without_javascript_every_chart_shows_a_picture(browser, report_sets, page_name):
    path = report_sets["sample"] / f"{page_name}.html"
    n = len(page_specs(path.read_text(encoding="utf-8")))
    context = browser.new_context(viewport={"width": 1400, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    blocked: list[str] = []
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file://", "data:")) else (blocked.append(r.request.url), r.abort()))
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        pictures = page.evaluate("""() => [...document.querySelectorAll('figure.journey-chart')].map(f => {
            const svg = f.querySelector('.journey-chart-static svg');
            if (!svg) return null;
            const b = svg.getBoundingClientRect();
            return {w: b.width, h: b.height, marks: svg.querySelectorAll('path, line, text').length, live: !!f.querySelector('.journey-chart-view')};
        })""")
        assert len(pictures) == n and n >= 1
        for p in pictures:
            assert p is not None and p["w"] > 50 and p["h"] > 40 and p["marks"] > 5 and not p["live"], p
        assert blocked == []
        page.screenshot(path=str(SHOTS / f"sample-{page_name}-nojs.png"), full_page=True)
    finally:
        context.close()


def _ink(pdf: Path) -> list[float]:
    """Share of non-white pixels on each page of a PDF (pypdfium2 at 72 dpi)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    out = []
    for i in range(len(doc)):
        bitmap = doc[i].render(scale=1).to_numpy()
        out.append(float((bitmap[..., :3].min(axis=-1) < 235).mean()))
    doc.close()
    return out


def _pixels(pdf: Path) -> list:
    """Each page of a PDF as an RGB array (pypdfium2 at 72 dpi)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    out = [doc[i].render(scale=1).to_numpy()[..., :3].astype(int) for i in range(len(doc))]
    doc.close()
    return out


#: share of a page's pixels the charts must account for (the map's only chart is its emotion lane: thin lines and dots,
#: about 0.04 % of an A3 page at 72 dpi)
CHART_AREA = {"persona_funnels": 0.02, "emotion_vs_metric": 0.02, "journey_map": 0.0002}


def test_pdf_pages_show_the_charts(browser, report_sets, tmp_path):
    """Every page has a PDF with ink on every page; the same page printed with its charts hidden differs where the charts are."""
    import pypdfium2 as pdfium

    from journeylib.pdf import PAGE_WIDTH_PX, paper_of

    out = report_sets["sample"]
    for name in PAGES:
        pdf = out / f"{name}.pdf"
        assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-", name
        ink = _ink(pdf)
        assert ink and all(v > 0.005 for v in ink), (name, ink)        # no blank page
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, area in CHART_AREA.items():
        pdfium.PdfDocument(str(out / f"{name}.pdf"))[0].render(scale=1.5).to_pil().save(SHOTS / f"sample-{name}-pdf-page1.png")
        # the same page, laid out for the same paper, printed with its charts hidden (their space kept)
        html = (out / f"{name}.html").read_text(encoding="utf-8")
        context = browser.new_context(viewport={"width": PAGE_WIDTH_PX[paper_of(html)], "height": 900}, device_scale_factor=1)
        page = context.new_page()
        page.goto((out / f"{name}.html").resolve().as_uri(), wait_until="load")
        page.wait_for_function("() => [...document.querySelectorAll('figure.journey-chart')].every(f => f.dataset.rendered)")
        page.add_style_tag(content="figure.journey-chart { visibility: hidden !important; }")
        bare = tmp_path / f"{name}-bare.pdf"
        page.pdf(path=str(bare), prefer_css_page_size=True, print_background=True)
        context.close()
        full, without = _pixels(out / f"{name}.pdf"), _pixels(bare)
        assert len(full) == len(without), (name, len(full), len(without))
        changed = sum(int((abs(a - b).max(axis=-1) > 60).sum()) for a, b in zip(full, without)) / sum(a.shape[0] * a.shape[1] for a in full)
        assert changed > area, (name, changed)
