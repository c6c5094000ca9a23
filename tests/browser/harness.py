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
    """Build every report (and its PDFs) on a copy of ``data/sample`` into ``base/sample-report`` once; later calls reuse it.

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
    rs = run_reports(ws, out, period=sample_period(), min_count=5, pdf=True,
                     on_progress=lambda name, i, n: break_raw_files(ws) if i == 0 else None)
    return out, rs


#: what :func:`break_raw_files` writes over the raw events file
BROKEN = "this is not an events file\n"


def break_raw_files(workspace: Path) -> None:
    """Make a workspace's raw events unreadable and remove its learners file."""
    (workspace / "events.csv").write_text(BROKEN, encoding="utf-8")
    (workspace / "learners.csv").unlink()


# --------------------------------------------------------------------------
# An OULAD-like workspace (no emotion data), built by the real OULAD adapter
# --------------------------------------------------------------------------

def write_oulad_like(directory: Path, *, students: int = 500, seed: int = 11) -> Path:
    """Write a small export in the OULAD file format (one presentation, five assessments, no VLE, no emotion).

    Students are generated with a fixed seed: education shapes how many
    assessments they submit and their scores; some withdraw part-way. The
    files are what the published data set looks like, so the real adapter
    (``journey oulad``) turns them into a workspace.
    """
    import csv
    import random

    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mod, pres, length = "AAA", "2014J", 268
    due = [19, 54, 117, 166, 215]
    ids = list(range(1750, 1750 + len(due)))
    educations = {"No Formal quals": 0.8, "Lower Than A Level": 0.88, "A Level or Equivalent": 0.92, "HE Qualification": 0.95, "Post Graduate Qualification": 0.97}
    regions = ["East Anglian Region", "Scotland", "London Region", "Wales", "North Region", "South Region"]

    def write(name: str, header: list[str], rows: list[list]) -> None:
        with open(directory / name, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, quoting=csv.QUOTE_ALL)
            w.writerow(header)
            w.writerows(rows)

    write("courses.csv", ["code_module", "code_presentation", "module_presentation_length"], [[mod, pres, length]])
    write("assessments.csv", ["code_module", "code_presentation", "id_assessment", "assessment_type", "date", "weight"],
          [[mod, pres, i, "TMA", d, 20] for i, d in zip(ids, due)] + [[mod, pres, ids[-1] + 1, "Exam", "", 100]])
    info, reg, subs = [], [], []
    for k in range(students):
        sid = 20_000 + k
        edu = rng.choices(list(educations), weights=[1, 4, 4, 3, 1])[0]
        keep = educations[edu]
        reached = 0
        for _ in due:
            if rng.random() > keep:
                break
            reached += 1
        withdrawn = reached < len(due)
        scores = [max(0, min(100, round(rng.gauss(40 * keep, 18) + 30))) for _ in range(reached)]
        result = "Withdrawn" if withdrawn else ("Distinction" if sum(scores) / len(scores) > 85 else "Pass" if sum(scores) / len(scores) >= 40 else "Fail")
        info.append([mod, pres, sid, rng.choice("MF"), rng.choice(regions), edu, rng.choice(["0-10%", "40-50%", "90-100%"]),
                     rng.choice(["0-35", "35-55", "55<="]), 0, 60, "Y" if rng.random() < 0.1 else "N", result])
        unreg = due[reached] - rng.randint(1, 15) if withdrawn else ""
        reg.append([mod, pres, sid, -rng.randint(5, 120), unreg])
        for i, (aid, d) in enumerate(zip(ids, due)):
            if i < reached:
                subs.append([aid, sid, d - rng.randint(0, 4), 0, scores[i]])
    write("studentInfo.csv", ["code_module", "code_presentation", "id_student", "gender", "region", "highest_education", "imd_band", "age_band",
                              "num_of_prev_attempts", "studied_credits", "disability", "final_result"], info)
    write("studentRegistration.csv", ["code_module", "code_presentation", "id_student", "date_registration", "date_unregistration"], reg)
    write("studentAssessment.csv", ["id_assessment", "id_student", "date_submitted", "is_banked", "score"], subs)
    return directory


def build_oulad_like_report(base: Path):
    """Build every report on an OULAD-like workspace (no emotion responses) into ``base/oulad-report`` once; later calls reuse it."""
    from journeylib.report import run_reports
    from journeylib.sources.oulad import build_oulad_workspace

    out = Path(base) / "oulad-report"
    if (out / "index.html").exists():
        return out
    ws = Path(base) / "oulad-like"
    build_oulad_workspace(write_oulad_like(Path(base) / "oulad-export"), ws)
    run_reports(ws, out, min_count=5, segment_attributes=["gender", "region", "highest_education", "disability"])
    return out


# --------------------------------------------------------------------------
# Reading charts back from a page
# --------------------------------------------------------------------------

SERIES_CHANNELS = ("color", "fill", "stroke", "shape", "strokeDash")


def series_fields(spec: dict) -> set[str]:
    """The data fields a chart encodes as separate series (colour, shape, dash) anywhere in its layers.

    A chart with such a field is multi-series and must show a legend, unless
    it is faceted by the same grouping (each panel is titled) or is the map's
    emotion lane (its key is in the lane label).
    """
    from specs import nested_dicts

    found: set[str] = set()
    for o in nested_dicts(spec):
        enc = o.get("encoding")
        if isinstance(enc, dict):
            for ch in SERIES_CHANNELS:
                e = enc.get(ch)
                if isinstance(e, dict) and e.get("field") and e.get("scale", {}) is not None:
                    found.add(e["field"])
    return found


def legend_exempt(spec: dict) -> bool:
    """Faceted persona panels (the header names the series) and the map's emotion lane (an HTML key) carry no Vega legend."""
    meta = (spec.get("usermeta") or {}).get("journey") or {}
    return bool(meta.get("facet") or meta.get("lane"))


def page_specs(html: str) -> list[dict]:
    """The JSON specs of every ``figure.journey-chart`` in a page, in page order."""
    import json
    import re

    return [json.loads(m.replace("<\\/", "</").replace("<\\!--", "<!--"))
            for m in re.findall(r'<figure[^>]*class="journey-chart[^"]*"[^>]*>.*?<script type="application/json">(.*?)</script></figure>', html, re.S)]
