"""Scheduled report runs: papermill execution, offline HTML export and an index page.

:func:`run_reports` executes the parameterised report notebooks for one
workspace and period, converts each to a self-contained HTML page (code hidden,
charts drawn by Vega libraries inlined once per page, no request leaves the
page) and writes ``index.html`` describing what was run, on which data, when.

A report set is never left half-written: notebooks run and render into a
temporary folder next to ``out``; only when every notebook succeeded are the
pages moved into ``out``. On failure ``out`` is untouched, the executed
notebook is kept in ``<out>.failed/NAME.ipynb`` for debugging and
:class:`ReportError` names the notebook and the failing cell.

>>> REPORTS["journey_map"].title
'The journey map'
"""

from __future__ import annotations

import datetime as dt
import functools
import html as _html
import json
import os
import re
import shutil
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import nbformat
from markupsafe import Markup

from .errors import JourneyError
from .privacy import find_ids
from .tables import CSS as TABLE_CSS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
#: The notebooks folder of a source checkout (``notebooks/`` next to ``journeylib/``).
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
MANIFEST = ".journey-report.json"
#: Code every report kernel runs when it starts, before the notebook. jsonschema (imported by altair) imports
#: ``rfc3987_syntax`` when it is installed (Jupyter's own dependencies bring it), which compiles 38 grammars on
#: import: about 1.3 s of CPU per kernel, for the ``iri`` format checks that nothing in a report uses.
KERNEL_STARTUP = "import sys; sys.modules.setdefault('rfc3987_syntax', None)"


@dataclass(frozen=True)
class ReportInfo:
    """Title and one-line description of a report notebook, shown on the index page."""

    title: str
    description: str


#: The report notebooks run by default, in index order.
REPORTS: dict[str, ReportInfo] = {
    "periodic_review": ReportInfo("Periodic review", "This period against the previous one: KPI scorecard, significant changes, new drop-off hot spots, small-group alerts, intervention effects and data quality."),
    "persona_funnels": ReportInfo("Persona funnels", "The funnel for each persona side by side: where each persona stops, who is still in progress, and how long each step takes."),
    "emotion_vs_metric": ReportInfo("Emotion and outcomes", "The designed emotional curve against what learners report, and whether touchpoints that feel worse than designed lose more learners."),
    "journey_map": ReportInfo("The journey map", "The designed map as a canvas — stages, touchpoints, purpose, target and measured emotion, KPIs with status, pain points and opportunities."),
}

PAGE_CSS = """
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
html { font-size: 15px; }
body.journey-report { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1a1a1a; background: #ffffff; line-height: 1.45; overflow-x: hidden; }
.journey-header { background: #0b3d5c; color: #fff; }
.journey-header-inner { max-width: 1180px; margin: 0 auto; padding: 10px 24px; display: flex; justify-content: space-between; align-items: center; gap: 12px; }
.journey-kicker { font-size: 13px; letter-spacing: 0.02em; }
.journey-header a { color: #fff; font-size: 13px; white-space: nowrap; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 24px 40px 24px; }
h1 { font-size: 28px; margin: 0.8em 0 0.2em 0; }
h2 { font-size: 20px; margin: 1.6em 0 0.4em 0; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin: 1.2em 0 0.3em 0; }
p, li { max-width: 860px; }
a { color: #0b5cad; }
.jp-Cell { margin: 0; padding: 0; }
.jp-OutputArea-output { overflow-x: auto; }
.jp-OutputArea-output:has(.journey-map) { overflow: visible; }
.jp-OutputArea-output pre { white-space: pre-wrap; font-size: 12px; color: #555; }
a.anchor-link { display: none; }
#vg-tooltip-element { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; font-size: 12px; }
.journey-index-list { list-style: none; padding: 0; }
.journey-index-list li { border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 16px; margin: 10px 0; }
.journey-index-list a.report { font-size: 17px; font-weight: 600; }
.journey-index-list .nodata { display: inline-block; margin-left: 8px; padding: 1px 8px; border-radius: 10px; background: #e9ecef; color: #333; font-size: 12px; font-weight: 600; }
.journey-meta { color: #555; font-size: 13px; }
@media (max-width: 640px) {
  html { font-size: 14px; }
  main { padding: 4px 14px 32px 14px; }
  .journey-header-inner { padding: 8px 14px; }
  h1 { font-size: 23px; }
  h2 { font-size: 18px; }
}
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body.journey-report { font-size: 12px; overflow: visible; }
  .journey-header { background: none; color: #1a1a1a; border-bottom: 1px solid #999999; }
  .journey-header a, .journey-header nav { display: none; }
  main { max-width: none; padding: 0; }
  h1 { font-size: 22px; margin-top: 0.3em; }
  h2 { font-size: 16px; break-after: avoid; }
  h3 { break-after: avoid; }
  .jp-OutputArea-output { overflow: visible; }
  .jp-OutputArea-output > div[id^="jt"] { overflow: visible !important; }
  tr, .journey-kpi-card, .journey-findings li { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  /* the footer stays whole and close to the page's end: never a last page with only the "Generated" line */
  .journey-footer { margin-top: 1em; padding-top: 0.4em; font-size: 10px; break-inside: avoid; break-before: avoid; }
  .journey-footer p { margin: 0.1em 0; }
}
"""


class ReportError(JourneyError):
    """A report notebook failed; names the notebook, the cell and where the executed copy (with the traceback) is kept.

    An internal error for the command line (exit code 3): the input was valid.
    """

    exit_code = 3

    def __init__(self, message: str, *, notebook: str, cell: int | None = None, kept: Path | None = None):
        self.notebook = notebook
        self.cell = cell
        self.kept = kept
        super().__init__(message)


@dataclass
class NotebookRun:
    """One executed report notebook (``marks``: what its page says for the index, see :func:`page_marks`)."""

    name: str
    title: str
    html: Path
    seconds: float
    marks: "PageMarks | None" = None
    pdf: Path | None = None


@dataclass
class ReportSet:
    """The result of :func:`run_reports`: where the pages are and what they were built from."""

    out: Path
    index: Path
    runs: list[NotebookRun] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> list[Path]:
        """Every HTML page written, the index first.

        >>> ReportSet(Path("r"), Path("r/index.html")).pages
        [PosixPath('r/index.html')]
        """
        return [self.index, *(r.html for r in self.runs)]


# --------------------------------------------------------------------------
# HTML export
# --------------------------------------------------------------------------

def page_css() -> str:
    """The CSS inlined into every report page (page layout, tables, journey-map canvas).

    >>> ".journey-map .jm-grid" in page_css()
    True
    """
    from .canvas import CSS as MAP_CSS
    from .charts import CSS as CHART_CSS

    return PAGE_CSS + CHART_CSS + TABLE_CSS + MAP_CSS


def _generated_line(when: dt.datetime | None = None) -> str:
    when = when or dt.datetime.now(dt.timezone.utc)
    return f"Generated {when:%Y-%m-%d %H:%M} UTC by journeylib."


def export_html(
    notebook: str | Path | nbformat.NotebookNode,
    html_path: str | Path,
    *,
    title: str,
    map_name: str = "",
    period: str = "",
    attribution: str = "",
    generated: str | None = None,
) -> Path:
    """Convert an executed notebook to one self-contained HTML page.

    Code cells and prompts are hidden (``exclude_input``), stderr output
    (warnings, logs) is left out, the page uses the ``journey`` nbconvert
    template: inline CSS, no remote script, style, font or image; the Vega /
    Vega-Lite / Vega-Embed JavaScript is inlined once and draws every chart of
    the page; the map's ``attribution`` (escaped) is in the footer.

    >>> import nbformat, tempfile, pathlib
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Hi")])
    >>> p = export_html(nb, pathlib.Path(tempfile.mkdtemp()) / "hi.html", title="Hi", attribution="<CC BY>")
    >>> "&lt;CC BY&gt;" in p.read_text() and "<script src=" not in p.read_text()
    True
    """
    from nbconvert import HTMLExporter

    from .charts import chart_page_scripts

    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(str(notebook), as_version=4)
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a copy we may edit
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    nb.metadata["title"] = title
    nb.metadata.pop("widgets", None)
    exporter = HTMLExporter(
        template_name="journey",
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    resources = {
        "journey": {
            "css": Markup(page_css()),
            "scripts": Markup(chart_page_scripts()),
            "map_name": map_name,
            "period": period,
            "attribution": attribution,
            "generated": generated or _generated_line(),
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path


INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Reports — {{ map_name }}</title>
<style type="text/css">{{ css }}</style>
</head>
<body class="journey-report">
<header class="journey-header"><div class="journey-header-inner"><div class="journey-kicker">{{ map_name }}{% if period_label %} · {{ period_label }}{% endif %}</div></div></header>
<main>
<h1>Journey reports: {{ map_name }}</h1>
{% if description %}<p>{{ description }}</p>{% endif %}
<div class="journey-kpis">
{% for label, value in headline %}<div class="journey-kpi-card"><div class="v">{{ value }}</div><div class="l">{{ label }}</div></div>
{% endfor %}</div>
{% if findings_period %}<p class="journey-meta">The findings below are about <strong>{{ findings_period }}</strong> (the periodic review); the other reports cover {{ period_label }}.</p>{% endif %}
{% if highlights %}{{ highlights }}{% endif %}
<h2>Reports</h2>
<ul class="journey-index-list">
{% for r in reports %}<li><a class="report" href="{{ r.file }}">{{ r.title }}</a>{% if r.nodata %}<span class="nodata">No data: {{ r.nodata }}</span>{% endif %}
<div>{{ r.description }}</div>
<div class="journey-meta">{{ r.covers }}{% if r.sections %} · {{ r.sections }} section{{ "s" if r.sections != 1 }} without data{% endif %}{% if r.pdf %} · <a href="{{ r.pdf }}">PDF</a>{% endif %} · built in {{ r.seconds }} s</div></li>
{% endfor %}</ul>
<h2>What was run</h2>
{{ run_table }}
<footer class="journey-footer">
{% if attribution %}<p class="journey-attribution">{{ attribution }}</p>{% endif %}
<p>{{ generated }}</p>
</footer>
</main>
</body>
</html>
"""


def write_index(
    path: str | Path,
    *,
    map_name: str,
    description: str = "",
    attribution: str = "",
    reports: Sequence[dict[str, Any]] = (),
    headline: Sequence[tuple[str, str]] = (),
    run_info: Sequence[tuple[str, str]] = (),
    period_label: str = "",
    generated: str | None = None,
    highlights: str = "",
    findings_period: str = "",
) -> Path:
    """Write the index page: headline numbers, the review's findings and the period they are about, links to every report, and what was run.

    ``reports`` items have ``file``, ``title``, ``description``, ``seconds``
    and optionally ``covers`` (the period the page shows), ``pdf`` (its PDF),
    ``nodata`` (the subject a page has no data for: the link is marked) and
    ``sections`` (how many of its sections have no data). ``highlights`` is
    trusted HTML built by :mod:`journeylib.tables` (the review's top findings
    box); everything else is escaped.

    >>> import tempfile, pathlib
    >>> p = write_index(pathlib.Path(tempfile.mkdtemp()) / "index.html", map_name="A <b>",
    ...                 reports=[{"file": "x.html", "title": "X", "description": "", "seconds": 1, "nodata": "emotion responses"}])
    >>> "A &lt;b&gt;" in p.read_text() and 'href="x.html"' in p.read_text() and "No data: emotion responses" in p.read_text()
    True
    """
    import jinja2
    import polars as pl

    from .tables import table

    env = jinja2.Environment(autoescape=True)
    facts = pl.DataFrame({"what": [k for k, _ in run_info], "value": [v for _, v in run_info]}, schema={"what": pl.Utf8, "value": pl.Utf8})
    run_table = table(facts, columns={"what": "", "value": ""}, suppressed=None).gt
    run_table = Markup(run_table.tab_options(column_labels_hidden=True).as_raw_html()) if run_info else ""
    html = env.from_string(INDEX_TEMPLATE).render(
        css=Markup(page_css()), map_name=map_name, description=description, attribution=attribution, reports=list(reports),
        headline=list(headline), run_table=run_table, period_label=period_label, generated=generated or _generated_line(),
        highlights=Markup(highlights), findings_period=findings_period,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------

def available_notebooks(notebooks_dir: str | Path | None = None) -> list[str]:
    """Names of the ``.ipynb`` files in ``notebooks_dir`` (default: the checkout's ``notebooks/``).

    >>> "journey_map" in available_notebooks()
    True
    """
    d = Path(notebooks_dir) if notebooks_dir else NOTEBOOKS_DIR
    return sorted(p.stem for p in d.glob("*.ipynb"))


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def _failure_message(name: str, exc: Exception, src_nb: nbformat.NotebookNode, executed: Path | None) -> tuple[str, int | None]:
    """'notebook NAME failed at cell N (`first line`): Error: message' with N counted in the source notebook."""
    cell_no: int | None = None
    source = getattr(exc, "source", "") or ""
    matches = [i for i, c in enumerate(src_nb.cells) if c.get("cell_type") == "code" and c.get("source", "") == source]
    if len(matches) == 1:
        cell_no = matches[0] + 1
    elif executed is not None and executed.exists():
        # same source in several cells: find the executed cell holding the error, then its id in the source notebook
        try:
            ex_nb = nbformat.read(str(executed), as_version=4)
            ids = [c.get("id") for c in src_nb.cells]
            for c in ex_nb.cells:
                if any(o.get("output_type") == "error" for o in c.get("outputs", [])) and c.get("id") in ids:
                    cell_no = ids.index(c.get("id")) + 1
                    break
        except Exception:  # pragma: no cover - best effort only
            cell_no = None
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell {cell_no}" if cell_no else "a cell"
    first = _first_line(source)
    msg = f"notebook '{name}' failed at {where}" + (f" (`{first}`)" if first else "") + f": {ename}: {evalue}"
    return msg, cell_no


def _funnel_label(jmap, funnel: str | None) -> str:
    from .explore import default_funnel

    name = default_funnel(jmap, funnel)
    steps = jmap.funnel(name)
    return f"{name or 'all touchpoints'} ({len(steps)} steps)" + ("" if funnel else " — the map's longest funnel" if name else "")


def _period_label(period: str | None, data_end: Any) -> str:
    if not period:
        return f"all data up to {data_end:%Y-%m-%d}" if data_end is not None else "all data"
    try:
        from . import metrics as jm

        start, end = jm.period_bounds(period, data_end=data_end)
        return f"{period} ({start:%Y-%m-%d} to {end - dt.timedelta(microseconds=1):%Y-%m-%d})"
    except Exception:
        return str(period)


def _checked_and_locked(run: Callable[..., ReportSet]) -> Callable[..., ReportSet]:
    """Check ``out`` before any work and hold its lock for the whole run (see :mod:`journeylib.outputs`).

    ``out`` must not be ``/`` or the home folder; a non-empty folder must hold
    a previous report (``.journey-report.json``) unless ``force=True``. A
    second run on the same folder is refused at once. Partial folders left by
    a run that was killed are removed once the lock is held.
    """

    @functools.wraps(run)
    def wrapper(workspace: str | Path, out: str | Path = "reports", *args, force: bool = False, **kwargs) -> ReportSet:
        from .outputs import check_output_folder, folder_lock

        out = Path(out).resolve()
        check_output_folder(out, what="report folder", marker=MANIFEST, force=force)
        with folder_lock(out):
            for stale in out.parent.glob(f".{out.name}.partial-*"):
                shutil.rmtree(stale, ignore_errors=True)
            return run(workspace, out, *args, **kwargs)

    return wrapper


def default_jobs(engine: str = "polars", notebooks: int = len(REPORTS)) -> int:
    """How many report notebooks run at a time: one per core, at most 4 and at most one per notebook;
    one on Spark (each kernel starts its own Spark driver, which takes every core).

    >>> default_jobs("spark"), default_jobs("polars", notebooks=1)
    (1, 1)
    """
    if engine == "spark":
        return 1
    return max(1, min(os.cpu_count() or 1, 4, notebooks))


def _choose_notebooks(nb_dir: Path, notebooks: Sequence[str] | None) -> list[str]:
    """The notebooks to run, in index order; unknown names and an empty folder are refused."""
    if not nb_dir.is_dir():
        raise JourneyError("notebooks folder not found", file=nb_dir)
    present = available_notebooks(nb_dir)
    if notebooks:
        names = list(dict.fromkeys(notebooks))
        unknown = [n for n in names if n not in present]
        if unknown:
            raise JourneyError(f"unknown notebook(s) {', '.join(unknown)}; available: {', '.join(present)}", file=nb_dir)
        return names
    names = [n for n in REPORTS if n in present]
    if not names:
        raise JourneyError("no report notebooks found", file=nb_dir)
    return names


def _check_engine(engine: str | None) -> str:
    """The engine name, checked (and, for Spark, that pyspark is installed)."""
    from .metrics.engine import ENGINES

    engine = (engine or "polars").strip().lower()
    if engine not in ENGINES:
        raise JourneyError(f"unknown engine '{engine}'; engines: {', '.join(ENGINES)}")
    if engine == "spark":
        import importlib.util

        if importlib.util.find_spec("pyspark") is None:
            raise JourneyError("--engine spark needs pyspark (and Java): pip install 'journeylib[spark]'")
    return engine


def _check_choices(ws, workspace: Path, *, funnel, personas, segment_attributes, period) -> None:
    """Refuse a funnel, persona, segment attribute or period the workspace does not have, before any notebook runs."""
    jmap = ws.map
    if funnel and funnel not in jmap.funnels and funnel != "all":
        raise JourneyError(f"unknown funnel '{funnel}'; funnels: {', '.join(['all', *jmap.funnels])}", file=workspace / "journey.yml")
    known = set(jmap.persona_ids()) | set(ws.learners["persona"].unique().to_list())
    bad = [p for p in (personas or []) if p not in known]
    if bad:
        raise JourneyError(f"unknown persona(s) {', '.join(bad)}; personas: {', '.join(sorted(known))}", file=workspace / "journey.yml")
    bad = [a for a in (segment_attributes or []) if a not in ws.learners.columns or a == "learner_id"]
    if bad:
        choices = [c for c in ws.learners.columns if c != "learner_id"]
        raise JourneyError(f"unknown segment attribute(s) {', '.join(bad)}; learner attributes: {', '.join(choices)}")
    if period:
        try:
            from .metrics.periods import period_bounds

            period_bounds(period, data_end=ws.data_end)
        except (ValueError, KeyError) as exc:
            raise JourneyError(f"bad --period '{period}': {exc}") from None


@dataclass
class _NotebookJob:
    """Runs one report notebook into ``tmp`` and exports its page: everything the notebooks of one run share."""

    nb_dir: Path
    tmp: Path
    out: Path
    failed_dir: Path
    parameters: dict[str, Any]
    kernel_name: str
    timeout: int
    map_name: str
    attribution: str | None
    period: str | None
    period_label: str
    generated: str
    ids: list[str]
    pdf: bool

    def __call__(self, name: str) -> NotebookRun:
        """Execute, export and check notebook ``name``; a failure raises :class:`ReportError`."""
        info = REPORTS.get(name, ReportInfo(name.replace("_", " ").capitalize(), ""))
        executed = self.tmp / f"{name}.ipynb"
        t0 = time.perf_counter()
        self._execute(name, executed)
        marks = page_marks(executed, f"{name}.html")
        # a review run without --period picks its own period: its page header names that period, not "all data"
        covers = f"review of {marks.findings_period}" if marks.findings_period and not self.period else self.period_label
        html = export_html(executed, self.tmp / f"{name}.html", title=info.title, map_name=self.map_name, period=covers,
                           attribution=self.attribution, generated=self.generated)
        leaked = find_ids(html.read_text(encoding="utf-8"), self.ids)
        if leaked:
            kept = _keep_failed(executed, self.failed_dir, name)
            raise ReportError(f"notebook '{name}' shows {len(leaked)} raw learner id(s) (e.g. {sorted(leaked)[0]}); reports must not — executed notebook kept at {kept}",
                              notebook=name, kept=kept)
        executed.unlink()
        return NotebookRun(name, info.title, self.out / html.name, round(time.perf_counter() - t0, 1), marks=marks,
                           pdf=self.out / f"{name}.pdf" if self.pdf else None)

    def _execute(self, name: str, executed: Path) -> None:
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        src = self.nb_dir / f"{name}.ipynb"
        try:
            # the kernel starts in the notebooks folder (``resources``), not through papermill's ``cwd``,
            # which changes this whole process's working folder and so cannot run two notebooks at once
            pm.execute_notebook(
                str(src), str(executed), parameters=self.parameters, kernel_name=self.kernel_name, progress_bar=False,
                request_save_on_cell_execute=False, resources={"metadata": {"path": str(self.nb_dir)}},
                execution_timeout=self.timeout,
                # keep the kernel's start-up chatter out of the log; skip the import above
                extra_arguments=["--IPKernelApp.log_level=ERROR", f"--IPKernelApp.exec_lines={KERNEL_STARTUP}"],
            )
        except PapermillExecutionError as exc:
            kept = _keep_failed(executed, self.failed_dir, name)
            msg, cell = _failure_message(name, exc, nbformat.read(str(src), as_version=4), kept)
            raise ReportError(msg + (f" — executed notebook kept at {kept}" if kept else ""), notebook=name, cell=cell, kept=kept) from None
        except Exception as exc:  # kernel died, timeout, bad notebook file
            kept = _keep_failed(executed, self.failed_dir, name)
            raise ReportError(f"notebook '{name}' could not be run: {type(exc).__name__}: {exc}" + (f" — executed notebook kept at {kept}" if kept else ""),
                              notebook=name, kept=kept) from None


def run_notebooks(
    names: Sequence[str],
    run: Callable[[str], Any],
    *,
    jobs: int = 1,
    on_start: Callable[[str, int], None] | None = None,
    on_done: Callable[[str], None] | None = None,
) -> list[Any]:
    """``run(name)`` for every name, ``jobs`` at a time, results in the order of ``names``.

    Notebooks are started in the order given (put the longest first). When one
    fails, none is started after it; those already running finish, and the
    failure of the earliest notebook in ``names`` order is raised.

    >>> run_notebooks(["a", "bb", "ccc"], len, jobs=2)
    [1, 2, 3]
    >>> def fail_b(name):
    ...     if name == "b":
    ...         raise ValueError(name)
    ...     return name
    >>> run_notebooks(["a", "b", "c"], fail_b, jobs=1)
    Traceback (most recent call last):
    ...
    ValueError: b
    """
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    def one(i: int, name: str):
        if on_start:
            on_start(name, i)
        result = run(name)
        if on_done:
            on_done(name)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="report") as pool:
        futures = [pool.submit(one, i, n) for i, n in enumerate(names)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            pool.shutdown(wait=True, cancel_futures=True)
    failed = [f for f in futures if not f.cancelled() and f.exception() is not None]
    if failed:
        raise failed[0].exception()
    return [f.result() for f in futures]


class _Progress:
    """The command line's progress bar for a report run (which notebooks are running, how many are done)."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        self.running: list[str] = []
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("running notebooks", total=total)

    def start(self, name: str) -> None:
        self.running.append(name)
        self._show()

    def done(self, name: str) -> None:
        self.running.remove(name)
        if self.bar is not None:
            self.bar.advance(self.task)
        self._show()

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=f"running {', '.join(self.running) if self.running else 'notebooks'}")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@_checked_and_locked
def run_reports(
    workspace: str | Path,
    out: str | Path = "reports",
    *,
    period: str | None = None,
    notebooks: Sequence[str] | None = None,
    notebooks_dir: str | Path | None = None,
    min_count: int = 5,
    funnel: str | None = None,
    personas: Sequence[str] | None = None,
    segment_attributes: Sequence[str] | None = None,
    engine: str = "polars",
    kernel_name: str = "python3",
    timeout: int = 900,
    progress: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
    pdf: bool = False,
    jobs: int | None = None,
) -> ReportSet:
    """Execute the report notebooks on a workspace and write offline HTML pages + ``index.html`` to ``out``.

    Each notebook gets these papermill parameters (typed): ``workspace``
    (absolute path, str), ``period`` (str or None: "2025-06", "2025-Q2",
    "month", …), ``funnel`` (str or None), ``personas`` (list or None),
    ``segment_attributes`` (list or None), ``min_count`` (int), ``engine``
    (str: ``"polars"``, ``"duckdb"`` or ``"spark"`` — where the notebooks run
    the metrics, see :func:`journeylib.metrics.engine.to_engine`),
    ``render`` ("report") and ``snapshot`` (str: the tables validated once by
    this run, which each notebook opens with
    :func:`journeylib.context.report_context` instead of validating the raw
    files again; removed after the run). ``notebooks`` selects names (default:
    :data:`REPORTS` present in ``notebooks_dir``). ``jobs`` notebooks run at a
    time, each in its own kernel (default :func:`default_jobs`). Unknown
    segment attributes, engines and a missing ``pyspark`` for
    ``engine="spark"`` stop the run before any notebook starts. ``out`` is
    checked first and locked for the run (``force=True`` writes into a
    non-empty folder that holds no previous report; see
    :func:`_checked_and_locked`).

    Atomic: everything is rendered into a temporary folder next to ``out`` and
    moved into place only when all notebooks succeeded; files of the previous
    run that are no longer produced are removed, other files in ``out`` are
    left alone. On failure ``out`` is untouched, the executed notebook is kept
    at ``<out>.failed/NAME.ipynb`` and :class:`ReportError` is raised naming
    the notebook and the failing cell. A page that contains a learner id of the
    workspace is a failure too (privacy check). With ``pdf`` every page
    (the index too) is also printed to ``NAME.pdf`` through headless Chromium
    (:func:`journeylib.pdf.print_pdfs`), charts included.

    Choices the workspace does not have are refused before any notebook runs:

    >>> import tempfile
    >>> run_reports("data/sample", tempfile.mkdtemp() + "/reports", funnel="core")
    Traceback (most recent call last):
    ...
    journeylib.errors.JourneyError: .../data/sample/journey.yml: unknown funnel 'core'; funnels: all, enrolment, course, full

    A real run executes every notebook (a minute or more), so these are not run here:

    >>> run_reports("data/sample", "reports", period="2025-06")  # doctest: +SKIP
    >>> run_reports("data/sample", "reports", engine="duckdb", notebooks=["persona_funnels"])  # doctest: +SKIP
    """
    from .context import write_snapshot
    from .workspace import load_workspace

    workspace = Path(workspace).resolve()
    out = Path(out).resolve()
    nb_dir = Path(notebooks_dir).resolve() if notebooks_dir else NOTEBOOKS_DIR
    names = _choose_notebooks(nb_dir, notebooks)
    if min_count < 1:
        raise JourneyError("--min-count must be at least 1")
    engine = _check_engine(engine)
    if jobs is not None and jobs < 1:
        raise JourneyError("--jobs must be at least 1")

    ws = load_workspace(workspace)  # fails early, with one clear message, on bad input
    jmap = ws.map
    _check_choices(ws, workspace, funnel=funnel, personas=personas, segment_attributes=segment_attributes, period=period)
    period_label = _period_label(period, ws.data_end)
    version = _map_version(workspace, jmap)
    params: dict[str, Any] = {
        "workspace": str(workspace),
        "period": period,
        "funnel": funnel,
        "personas": list(personas) if personas else None,
        "segment_attributes": list(segment_attributes) if segment_attributes else None,
        "min_count": int(min_count),
        "engine": engine,
        "render": "report",
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    tmp.mkdir()
    failed_dir = out.parent / f"{out.name}.failed"
    started = dt.datetime.now(dt.timezone.utc)
    generated = (f"Generated {started:%Y-%m-%d %H:%M} UTC by journeylib from workspace '{workspace.name}', "
                 f"map version {version.short}.")
    bar = _Progress(len(names), progress)
    try:
        job = _NotebookJob(
            nb_dir=nb_dir, tmp=tmp, out=out, failed_dir=failed_dir,
            # the kernels open the tables validated above instead of reading and validating the raw files again
            parameters={**params, "snapshot": str(write_snapshot(ws, tmp / ".snapshot"))},
            kernel_name=kernel_name, timeout=timeout, map_name=jmap.name, attribution=jmap.attribution, period=period,
            period_label=period_label, generated=generated,
            ids=ws.learners["learner_id"].to_list() + ws.events["learner_id"].unique().to_list(), pdf=pdf,
        )

        def on_start(name: str, i: int) -> None:
            bar.start(name)
            if on_progress:
                on_progress(name, i, len(names))

        runs = run_notebooks(names, job, jobs=jobs or default_jobs(engine, len(names)), on_start=on_start, on_done=bar.done)
        files = _write_index_page(tmp, ws, workspace, runs, version=version, params=params, names=names, started=started,
                                  period_label=period_label, generated=generated, ids=job.ids)
        if pdf:
            from .pdf import print_pdfs

            files += [p.name for p in print_pdfs([tmp / f for f in files])]
        manifest = {"files": files, "parameters": params, "generated": started.isoformat(), "map_version": version.as_dict()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _publish(tmp, out)
    finally:
        bar.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if failed_dir.exists():
        shutil.rmtree(failed_dir, ignore_errors=True)
    return ReportSet(out=out, index=out / "index.html", runs=runs, parameters=params)


def _write_index_page(tmp: Path, ws, workspace: Path, runs: list[NotebookRun], *, version, params: dict[str, Any],
                      names: Sequence[str], started: dt.datetime, period_label: str, generated: str, ids: list[str]) -> list[str]:
    """Write ``index.html`` for the pages of ``runs`` (checked for raw learner ids); returns the run's page files."""
    jmap, data_end = ws.map, ws.data_end
    counts = ws.counts()
    n_rej = int(counts["rejected"].sum()) if counts.height else 0
    data_start = ws.events["timestamp"].min()
    headline = [
        ("learners", f"{ws.learners.height:,}"),
        ("events", f"{ws.events.height:,}"),
        ("rows rejected on load", f"{n_rej:,}"),
        ("data up to", f"{data_end:%Y-%m-%d}" if data_end is not None else "–"),
    ]
    run_info = [
        ("Journey map", jmap.name),
        ("Map version", version.describe()),
        ("Workspace", workspace.name),
        ("Data", f"{data_start:%Y-%m-%d %H:%M} to {data_end:%Y-%m-%d %H:%M} UTC" if data_end is not None else "no events"),
        ("Period", period_label),
        ("Funnel", _funnel_label(jmap, params["funnel"])),
        ("Personas", ", ".join(params["personas"]) if params["personas"] else "all"),
        ("Segment attributes", ", ".join(params["segment_attributes"]) if params["segment_attributes"] else "all"),
        ("Smallest group shown", f"{params['min_count']} learners (smaller cells are suppressed)"),
        ("Engine", params["engine"]),
        ("Notebooks", ", ".join(names)),
        ("Run at", f"{started:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    review = next((r.marks for r in runs if r.marks and r.marks.findings), PageMarks())
    write_index(
        tmp / "index.html", map_name=jmap.name, description=jmap.description, attribution=jmap.attribution,
        reports=_index_entries(runs, period_label), headline=headline, run_info=run_info, period_label=period_label, generated=generated,
        highlights=review.findings, findings_period=review.findings_period,
    )
    leaked = find_ids((tmp / "index.html").read_text(encoding="utf-8"), ids)
    if leaked:
        raise ReportError(f"the index page shows {len(leaked)} raw learner id(s); reports must not", notebook="index")
    return ["index.html", *(r.html.name for r in runs)]


def _map_version(workspace: Path, jmap):
    """The map version a run uses (hash, file time, git commit), recorded in the map history when new."""
    from .versions import current_version, record_version

    try:
        record_version(workspace, recorded_by="journey report")
    except (OSError, JourneyError):
        pass  # a read-only workspace: the report still names the version
    return current_version(workspace, jmap)


def _index_entries(runs: Sequence[NotebookRun], period_label: str) -> list[dict[str, Any]]:
    """The index's list of reports: title, description, the period each page covers, no-data marks and the PDF."""
    out = []
    for r in runs:
        m = r.marks or PageMarks()
        covers = f"review of {m.findings_period}" if m.findings_period else period_label
        out.append({"file": r.html.name, "title": r.title, "description": REPORTS.get(r.name, ReportInfo("", "")).description, "seconds": r.seconds,
                    "covers": covers, "nodata": m.nodata, "sections": m.nodata_sections, "pdf": r.pdf.name if r.pdf else ""})
    return out


@dataclass
class PageMarks:
    """What the index needs to know about an executed report notebook."""

    findings: str = ""
    findings_period: str = ""
    nodata: str = ""
    nodata_sections: int = 0


def page_marks(executed: str | Path | nbformat.NotebookNode, page: str = "") -> PageMarks:
    """Read an executed notebook's outputs: the top-findings box (links made to point at ``page``), the period it is
    about, the subject of a no-data page banner and the number of sections that said they had no data.

    The boxes are HTML that journeylib itself built with every text escaped;
    they are recognised by their exact opening tags.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data",
    ...     data={"text/html": '<p class="journey-nodata"><strong>X:</strong> none.</p>'})])])
    >>> page_marks(nb).nodata_sections
    1
    """
    try:
        nb = executed if isinstance(executed, nbformat.NotebookNode) else nbformat.read(str(executed), as_version=4)
    except Exception:  # pragma: no cover - the page itself was exported fine
        return PageMarks()
    marks = PageMarks()
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            h = o.get("data", {}).get("text/html", "")
            h = "".join(h) if isinstance(h, list) else h
            if h.startswith('<div class="journey-findings"') and not marks.findings and "journey-takeaways" not in h[:60]:
                marks.findings = h.replace('href="#', f'href="{page}#') if page else h
                m = re.match(r'<div class="journey-findings" data-period="([^"]*)"', h)
                marks.findings_period = _html.unescape(m.group(1)) if m else ""
            if h.startswith('<div class="journey-nodata-page"') and not marks.nodata:
                m = re.match(r'<div class="journey-nodata-page" data-subject="([^"]*)"', h)
                marks.nodata = _html.unescape(m.group(1)) if m else "this page's subject"
            marks.nodata_sections += h.count('<p class="journey-nodata">')
    return marks


def _keep_failed(executed: Path, failed_dir: Path, name: str) -> Path | None:
    if not executed.exists():
        return None
    failed_dir.mkdir(parents=True, exist_ok=True)
    dest = failed_dir / f"{name}.ipynb"
    shutil.copy2(executed, dest)
    return dest


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished pages from ``tmp`` into ``out``; drop pages of the previous run no longer produced."""
    out.mkdir(parents=True, exist_ok=True)
    old: list[str] = []
    mf = out / MANIFEST
    if mf.exists():
        try:
            old = json.loads(mf.read_text(encoding="utf-8")).get("files", [])
        except (ValueError, OSError):
            old = []
    new = json.loads((tmp / MANIFEST).read_text(encoding="utf-8"))["files"]
    # index last, so a reader never follows a link to a page not yet in place
    for name in [f for f in new if f != "index.html"] + ["index.html", MANIFEST]:
        os.replace(tmp / name, out / name)
    for name in old:
        if name not in new and "/" not in name and (out / name).is_file():
            (out / name).unlink()
