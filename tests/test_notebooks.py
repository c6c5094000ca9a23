"""The notebook suite: stored clean, parameterised, thin, and every notebook runs on data/sample.

Report notebooks are executed with papermill once per worker by the report
build (``browser.harness.build_sample_report``); ``explore`` is executed here
directly; nbval (lax) runs them all with their default parameters.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from browser.harness import ROOT, SAMPLE, build_sample_report
from journeylib.report import REPORTS
from journeylib.workspace import load_workspace

NB_DIR = ROOT / "notebooks"
ALL = ["explore", *REPORTS]

pytestmark = [pytest.mark.xdist_group("notebooks")]


def _nb(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(NB_DIR / f"{name}.ipynb"), as_version=4)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out, _ = build_sample_report(tmp_path_factory.getbasetemp())
    return out


@pytest.mark.parametrize("name", ALL)
def test_stored_without_outputs_with_parameters_cell(name):
    nb = _nb(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "store notebooks without outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "workspace" in tagged[0].source and "min_count" in tagged[0].source


@pytest.mark.parametrize("name", ALL)
def test_opens_with_what_it_answers_and_stays_thin(name):
    nb = _nb(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    body = first.source.split("\n", 1)[1]
    assert len(re.findall(r"[.?!](\s|$)", body)) >= 2, "two sentences on what the notebook answers"
    for c in nb.cells:
        if c.cell_type == "code":
            assert not re.search(r"^\s*(def|class|for|while)\b", c.source, re.M), f"logic belongs in journeylib:\n{c.source}"
            assert "eval(" not in c.source and "exec(" not in c.source


REPORT_CHECKS = {
    "journey_map": ["The map", "emotional curve", "KPI status", "What to do"],
    "persona_funnels": ["Takeaways", "Funnel per persona", "Where each persona stops", "Conversion over time", "Time to convert", "Each persona at a glance"],
    "emotion_vs_metric": ["The emotional curve, as designed and as measured", "Emotion gap, stopping and KPIs", "Low emotion now, stopping next?"],
    "periodic_review": ["Top findings", "Data coverage and freshness", "Changes to the design since the previous period", "KPI scorecard", "Significant changes against the previous period", "Drop-off hot spots", "New drop-off hot spots",
                        "Small-group alerts", "Intervention effects", "Data quality", "Rows read, accepted and rejected", "Rejected rows by reason"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REPORTS))
def test_report_notebook_runs_on_sample(report_dir, name):
    """Executed by papermill with typed parameters; the page has every section and no error output."""
    html = (report_dir / f"{name}.html").read_text(encoding="utf-8")
    for heading in REPORT_CHECKS[name]:
        assert heading in html, (name, heading)
    assert "Traceback" not in html and 'data-mime-type="application/vnd.jupyter.stderr"' not in html
    ws = load_workspace(SAMPLE)
    if name == "journey_map":
        from markupsafe import escape

        for t in ws.map.touchpoints:
            assert str(escape(t.name)) in html, t.name
        for s in ws.map.stages:
            assert str(escape(s.name)) in html
    if name == "persona_funnels":
        for p in ws.map.personas:
            assert p.name in html, p.name
    if name == "periodic_review":
        assert "journey-findings" in html
        # small groups are named as suppressed, never with their counts
        assert "Suppressed:" in html or "none was suppressed" in html


@pytest.mark.slow
def test_explore_runs_with_papermill(tmp_path):
    import papermill as pm

    out = tmp_path / "explore.ipynb"
    nb = pm.execute_notebook(str(NB_DIR / "explore.ipynb"), str(out), parameters={"workspace": str(SAMPLE), "min_count": 5},
                             kernel_name="python3", progress_bar=False, cwd=str(NB_DIR),
                             start_timeout=180, execution_timeout=600)  # a stuck kernel fails the test, never stalls the suite
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_nbval_lax_all_notebooks(tmp_path):
    """nbval in lax mode: every cell of every notebook runs with the default parameters."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-p", "no:xdist",
           "-q", "--rootdir", str(tmp_path), "-o", "addopts=", *[str(NB_DIR / f"{n}.ipynb") for n in ALL]]
    res = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", res.stdout)
