"""`journey report`: the runner, the offline HTML, the index, atomic failure and privacy.

The sample report is built once per test worker (all notebook tests share the
``notebooks`` xdist group) by ``tests/browser/harness.build_sample_report``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from browser.harness import SAMPLE, build_sample_report, sample_period
from journeylib.cli import app
from journeylib.report import MANIFEST, REPORTS, NOTEBOOKS_DIR, ReportError, export_html
from journeylib.workspace import load_workspace

pytestmark = [pytest.mark.xdist_group("notebooks"), pytest.mark.slow]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out, _ = build_sample_report(tmp_path_factory.getbasetemp())
    return out


class _Refs(HTMLParser):
    """Collects every URL a page could fetch: src/href/srcset/poster/data attributes, CSS url() and @import."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "srcset", "poster", "data", "action", "formaction", "background", "xlink:href") and v:
                self.refs.append((tag, k, v))
            if k == "style" and v:
                self.styles.append(v)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def remote_references(html: str) -> list[str]:
    """Every reference in ``html`` that would leave the page (http, https, protocol-relative, ftp)."""
    p = _Refs()
    p.feed(html)
    bad = [f"{t}[{a}]={v}" for t, a, v in p.refs if re.match(r"^\s*(https?:|//|ftp:)", v, re.I)]
    for css in p.styles:
        bad += [m for m in re.findall(r"url\(\s*['\"]?\s*((?:https?:)?//[^)'\"]+)", css, re.I)]
        bad += [m for m in re.findall(r"@import\s+[^;]*", css, re.I)]
    return bad


def test_remote_reference_detector_can_fail():
    html = '<img src="https://x.org/a.png"><style>@import "y.css"; .a{background:url(//cdn.x/b.png)}</style><a href="#top">ok</a>'
    assert len(remote_references(html)) == 3
    assert remote_references('<a href="index.html">i</a><img src="data:image/png;base64,AA">') == []


def test_happy_path_writes_every_page_and_index(report_dir):
    names = [n for n in REPORTS]
    for n in names:
        page = report_dir / f"{n}.html"
        assert page.exists(), n
        assert page.stat().st_size > 10_000
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    truth = json.loads((SAMPLE / "ground_truth.json").read_text())
    ws = load_workspace(SAMPLE)
    assert ws.map.name in index
    assert f"{truth['learners']:,}" in index and f"{ws.events.height:,}" in index
    assert truth["data_end"][:10] in index            # data end
    assert sample_period() in index                   # the period run
    for n in names:
        assert f'href="{n}.html"' in index
    assert 'class="journey-findings"' in index and "Top findings" in index   # the review's findings on the index
    manifest = json.loads((report_dir / MANIFEST).read_text())
    pages = {"index", *names}
    assert set(manifest["files"]) == {f"{n}.html" for n in pages} | {f"{n}.pdf" for n in pages}   # built with --pdf
    assert manifest["parameters"]["period"] == sample_period()
    assert not list(report_dir.parent.glob(f".{report_dir.name}.partial-*"))
    # the version of the map the reports used: on the index, in every footer, in the manifest
    h = ws.map.content_hash()
    assert manifest["map_version"]["hash"] == h and manifest["map_version"]["mtime"]
    assert "Map version" in index and h[:12] in index
    for n in names:
        assert f"map version {h[:12]}" in (report_dir / f"{n}.html").read_text(encoding="utf-8")


def test_pages_are_self_contained(report_dir):
    for page in report_dir.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert remote_references(html) == [], page.name
        assert "<script src" not in html and "require.js" not in html.lower()
        assert "mathjax" not in html.lower()


def test_chart_libraries_inlined_once_per_page(report_dir):
    for n in REPORTS:
        html = (report_dir / f"{n}.html").read_text(encoding="utf-8")
        charts = len(re.findall(r'<figure[^>]*class="journey-chart[ "]', html))
        assert html.count("window.vegaEmbed=") == 1, n
        assert charts >= 1, n
        # one bundle, not one per chart: the page grows far less than a bundle per chart
        assert len(html.encode()) <= 1_500_000, (n, len(html))


def test_code_is_hidden_and_attribution_shown(report_dir):
    ws = load_workspace(SAMPLE)
    for page in report_dir.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "load_workspace(" not in html and "hl-ipython3" not in html and "jp-CodeMirrorEditor" not in html, page.name
        assert "In&nbsp;[" not in html and "Out[" not in html
        assert ws.map.attribution in html, page.name


def test_no_learner_id_in_any_page(report_dir):
    ws = load_workspace(SAMPLE)
    ids = set(ws.learners["learner_id"].to_list())
    token = re.compile(r"[A-Za-z0-9_\-]+")
    for page in report_dir.glob("*.html"):
        found = ids & set(token.findall(page.read_text(encoding="utf-8")))
        assert not found, (page.name, sorted(found)[:3])


def test_small_cells_suppressed_in_emotion_page(report_dir):
    """Touchpoints with fewer than 5 low-emotion responses show 'fewer than 5', not the count."""
    html = (report_dir / "emotion_vs_metric.html").read_text(encoding="utf-8")
    assert "fewer than 5" in html


def _broken_notebooks(tmp_path: Path, name: str = "journey_map") -> Path:
    d = tmp_path / "nbs"
    d.mkdir()
    nb = nbformat.read(str(NOTEBOOKS_DIR / f"{name}.ipynb"), as_version=4)
    bad = nbformat.v4.new_code_cell("total = 1\nraise ValueError('planted failure for the test')")
    bad["id"] = "planted"
    nb.cells.insert(4, bad)
    nbformat.write(nb, str(d / f"{name}.ipynb"))
    return d


def test_failing_notebook_names_cell_and_leaves_previous_reports(tmp_path):
    """Through the command line: exit 3 (internal error), notebook and cell named, --out untouched, executed copy kept."""
    out = tmp_path / "reports"
    out.mkdir()
    (out / "index.html").write_text("previous index", encoding="utf-8")
    (out / "journey_map.html").write_text("previous page", encoding="utf-8")
    (out / MANIFEST).write_text(json.dumps({"files": ["index.html", "journey_map.html"]}), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    nbs = _broken_notebooks(tmp_path)
    res = CliRunner().invoke(app, ["report", str(SAMPLE), "--notebooks", "journey_map", "--notebooks-dir", str(nbs), "--out", str(out)])
    assert res.exit_code == 3
    msg = " ".join((res.output or "").split())
    assert "journey_map" in msg and "cell 5" in msg and "total = 1" in msg and "planted failure" in msg
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before      # untouched
    kept = tmp_path / "reports.failed" / "journey_map.ipynb"
    assert kept.exists() and str(kept.name) in msg
    executed = nbformat.read(str(kept), as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert not list(tmp_path.glob(".reports.partial-*"))


def test_failure_message_counts_cells_in_the_source_notebook(tmp_path):
    """The cell number is the cell's position in the notebook as stored (the injected parameters cell is not counted)."""
    from journeylib.report import _failure_message

    nb = nbformat.read(str(_broken_notebooks(tmp_path) / "journey_map.ipynb"), as_version=4)

    class Err(Exception):
        cell_index, source, ename, evalue = 5, "total = 1\nraise ValueError('planted failure for the test')", "ValueError", "planted"

    msg, cell = _failure_message("journey_map", Err(), nb, None)
    assert cell == 5 and msg.startswith("notebook 'journey_map' failed at cell 5 (`total = 1`): ValueError: planted")
    with pytest.raises(ReportError):
        raise ReportError(msg, notebook="journey_map", cell=cell)


def test_cli_unknown_notebook_and_bad_workspace(tmp_path):
    r1 = CliRunner().invoke(app, ["report", str(SAMPLE), "--notebooks", "nope", "--out", str(tmp_path / "o")])
    assert r1.exit_code == 2 and "nope" in r1.output
    r2 = CliRunner().invoke(app, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert r2.exit_code == 2 and "missing" in r2.output


def test_cli_happy_path_min_count_suppresses_and_keeps_other_files(tmp_path):
    """--min-count 200: personas with fewer starters are shown as 'fewer than 200', never with their count."""
    import polars as pl

    from journeylib import metrics as jm
    from journeylib.explore import default_funnel

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    (out / "journey_map.html").write_text("a page of the previous run")
    (out / MANIFEST).write_text(json.dumps({"files": ["index.html", "journey_map.html"]}))
    res = CliRunner().invoke(app, ["report", str(SAMPLE), "--notebooks", "persona_funnels", "--out", str(out), "--min-count", "200"])
    assert res.exit_code == 0, res.output
    assert (out / "persona_funnels.html").exists() and (out / "index.html").exists() and (out / "keep.txt").exists()
    assert not (out / "journey_map.html").exists()          # the previous run's page is not left looking current
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["parameters"]["min_count"] == 200 and manifest["files"] == ["index.html", "persona_funnels.html"]
    ws = load_workspace(SAMPLE)
    f = jm.funnel(ws.events, ws.learners, ws.map, default_funnel(ws.map), by="persona").filter(pl.col("step") == 1)
    small = {r["persona"]: r["learners"] for r in f.iter_rows(named=True) if 0 < r["learners"] < 200}
    assert small, "the sample should have a persona with fewer than 200 starters"
    html = (out / "persona_funnels.html").read_text(encoding="utf-8")
    names = {p.id: p.name for p in ws.map.personas}
    summary = html[html.index("Each persona at a glance"):]
    summary = summary[: summary.index("</table>")]
    for pid, n in small.items():
        row = next(r for r in summary.split("<tr") if f">{names.get(pid, pid)}</td>" in r)
        assert "fewer than 200" in row and f">{n:,}<" not in row, row


def test_export_escapes_attribution_and_has_no_remote_refs(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")])
    page = export_html(nb, tmp_path / "p.html", title="T", attribution='<script>alert(1)</script> see https://doi.org/10.1/x')
    html = page.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert remote_references(html) == []
    assert "x = 1" not in html
