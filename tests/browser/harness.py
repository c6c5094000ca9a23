"""Open offline report pages in headless Chromium with every non-local request blocked.

Used by the browser tests; also runnable by hand to take screenshots:
``python tests/browser/harness.py reports/ test-artifacts/screenshots``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@dataclass
class PageResult:
    """What happened while a page loaded: blocked requests, console errors, chart counts."""

    url: str
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    charts: int = 0
    rendered: int = 0
    charts_with_marks: int = 0
    chart_errors: list[str] = field(default_factory=list)


def launch(playwright):
    """Headless Debian Chromium with the flags the tests use."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def open_page(browser, path: Path, *, width: int = 1280, height: int = 900):
    """Open ``path`` from file://, blocking (and recording) every request that is not a file:// or data: URL."""
    result = PageResult(url=path.resolve().as_uri())
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = context.new_page()

    def route(r):
        url = r.request.url
        if url.startswith(("file://", "data:", "blob:", "about:")):
            r.continue_()
        else:
            result.blocked.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.page_errors.append(str(e)))
    page.goto(result.url, wait_until="load")
    charts = page.locator("figure.journey-chart")
    result.charts = charts.count()
    if result.charts:
        page.wait_for_function(
            "() => [...document.querySelectorAll('figure.journey-chart')].every(f => f.dataset.rendered || f.dataset.error)",
            timeout=60_000,
        )
    result.rendered = page.locator("figure.journey-chart[data-rendered]").count()
    result.chart_errors = [e for e in page.eval_on_selector_all("figure.journey-chart[data-error]", "els => els.map(e => e.dataset.error)")]
    result.charts_with_marks = page.evaluate(
        "() => [...document.querySelectorAll('figure.journey-chart')].filter(f => f.querySelector('svg g.mark-rect path, svg g.mark-symbol path, svg g.mark-rule line, svg g.mark-line path, svg g.mark-text text')).length"
    )
    return context, page, result


def screenshot_all(report_dir: Path, out_dir: Path) -> list[PageResult]:
    """Full-page screenshots of every HTML page in ``report_dir`` into ``out_dir``."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with sync_playwright() as p:
        browser = launch(p)
        for html in sorted(report_dir.glob("*.html")):
            context, page, res = open_page(browser, html)
            page.screenshot(path=str(out_dir / f"{html.stem}.png"), full_page=True)
            results.append(res)
            context.close()
        browser.close()
    return results


if __name__ == "__main__":  # pragma: no cover
    for r in screenshot_all(Path(sys.argv[1]), Path(sys.argv[2])):
        print(r)


# --------------------------------------------------------------------------
# The sample report, built once per test worker
# --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"


def sample_period() -> str:
    """The month the sample's ground truth names for report tests."""
    import json

    return json.loads((SAMPLE / "ground_truth.json").read_text())["sample_period"]


def build_sample_report(base: Path):
    """Build every report on a copy of ``data/sample`` into ``base/sample-report`` once; later calls reuse it.

    The copy's raw events and learners files are broken as soon as the runner
    has validated them, before the first kernel starts (:func:`break_raw_files`),
    so every test of these pages also checks that the kernels work from the
    runner's snapshot and never read the raw files again.

    Returns ``(out_dir, report_set_or_None)``; the set is None when reused.
    """
    import shutil

    from journeylib.report import run_reports

    out = Path(base) / "sample-report"
    if (out / "index.html").exists():
        return out, None
    ws = Path(base) / "sample-copy" / SAMPLE.name
    shutil.copytree(SAMPLE, ws, dirs_exist_ok=True)
    rs = run_reports(ws, out, period=sample_period(), min_count=5,
                     on_progress=lambda name, i, n: break_raw_files(ws) if i == 0 else None)
    return out, rs


#: what :func:`break_raw_files` writes over the raw events file
BROKEN = "this is not an events file\n"


def break_raw_files(workspace: Path) -> None:
    """Make a workspace's raw events unreadable and remove its learners file."""
    (workspace / "events.csv").write_text(BROKEN, encoding="utf-8")
    (workspace / "learners.csv").unlink()
