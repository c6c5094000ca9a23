"""``journey metrics NAME DIR``: compute one metric table on a workspace and write it.

Registered on the ``journey`` command line in :mod:`journeylib.cli`. The heavy
imports happen only when the command runs.

>>> METRIC_NAMES[:3]
('funnel', 'dropoff', 'transitions')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

METRIC_NAMES = ("funnel", "dropoff", "transitions", "kpis", "emotion", "segments", "review", "survival")
OUT_FORMATS = (".csv", ".xlsx", ".parquet", ".json")


def write_frame(df, out: Path) -> None:
    """Write a polars frame as CSV, Excel, Parquet or JSON (records), by the file's suffix.

    CSV and Excel cells a spreadsheet would run as a formula are neutralised
    (see :mod:`journeylib.exports`).

    >>> import polars as pl, tempfile
    >>> out = Path(tempfile.mkdtemp()) / "a.csv"
    >>> write_frame(pl.DataFrame({"region": ["=1+1"], "n": [-1]}), out)
    >>> out.read_text().splitlines()
    ['region,n', "'=1+1,-1"]
    """
    from ..exports import write_table

    write_table(df, out)


def _write_survival(s, out: Path) -> None:
    """A survival result: ``.json`` holds the summary, the curves and the log-rank test; a
    ``.csv``/``.parquet`` file holds the summary, with the curves beside it (``<name>_curves.<ext>``)."""
    if out.suffix.lower() == ".json":
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"origin": s.origin, "by": s.by, "summary": s.summary.to_dicts(), "curves": s.curves.to_dicts(),
                   "logrank": {"p_value": s.p_value, "statistic": s.statistic}, "notes": s.notes}
        out.write_text(json.dumps(payload, default=str, indent=1), encoding="utf-8")
        return
    write_frame(s.summary, out)
    write_frame(s.curves, out.with_name(f"{out.stem}_curves{out.suffix}"))


def metrics_command(
    name: str = typer.Argument(..., help=f"Metric table: {', '.join(METRIC_NAMES)}."),
    workspace: Path = typer.Argument(..., help="Workspace folder with journey.yml and the events/learners files."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .csv, .xlsx, .parquet or .json. For review: a .json file (one key per frame) or a folder."),
    funnel: Optional[str] = typer.Option(None, "--funnel", help="Named funnel of the map (default: every touchpoint)."),
    by: Optional[List[str]] = typer.Option(None, "--by", help="Learner column to group by (repeatable). For segments and review: the attributes to test (default: all)."),
    period: Optional[str] = typer.Option(None, "--period", help="Period: 2025-06, 2025-Q2, 2025-W23, 2025, 2025-06-01..2025-06-30, month, quarter, week. Review: default the last complete month whose follow-up horizon has elapsed; kpis: the period's arrivals; survival: learners whose origin is in it; otherwise the cohort of learners whose first event is in the period."),
    mode: Optional[str] = typer.Option(None, "--mode", help="Funnel matching: ordered, strict or any_order."),
    window: Optional[float] = typer.Option(None, "--window", help="Conversion window in days from the first step."),
    min_count: int = typer.Option(5, "--min-count", help="Segments and review: smallest segment that is tested."),
    fdr: Optional[float] = typer.Option(None, "--fdr", help="Segments and review: false discovery rate (default: the map's review.fdr)."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Survival: time from enrolment (default when learners have enrolled_at), first_event, or a touchpoint id."),
    horizon: Optional[float] = typer.Option(None, "--horizon", help="Review, segments, survival: follow-up horizon in days (default: the map's review.horizon_days, else dormancy_days)."),
) -> None:
    """Compute a metric table (funnel, dropoff, transitions, kpis, emotion, segments, review, survival) and write it.

    Exit code 0 on success, 2 on bad input (unknown metric, funnel or column,
    unreadable workspace, an --out that cannot be written) with one line on
    stderr; --out is checked before the workspace is read. CSV and Excel
    output is safe to open in a spreadsheet.

    >>> # journey metrics funnel data/sample --funnel course --by persona --out funnel.xlsx
    """
    from rich.markup import escape

    from ..console import console, fail
    from ..errors import DataError, JourneyError
    from ..outputs import check_output_file, check_output_folder

    if name not in METRIC_NAMES:
        fail(f"unknown metric '{name}'; metrics: {', '.join(METRIC_NAMES)}")
    if mode is not None and mode not in ("ordered", "strict", "any_order"):
        fail(f"unknown mode '{mode}'; modes: ordered, strict, any_order")
    is_dir_out = name == "review" and out.suffix.lower() != ".json"
    if not is_dir_out and out.suffix.lower() not in OUT_FORMATS:
        fail(f"--out must end in {', '.join(OUT_FORMATS)} (got '{out.name}')")
    inputs = [p for p in Path(workspace).glob("*") if p.is_file()] if Path(workspace).is_dir() else []
    if is_dir_out:
        check_output_folder(out, what="review folder")
    else:
        check_output_file(out, OUT_FORMATS, protect=inputs)
    try:
        import polars as pl

        from .. import metrics as jm
        from ..workspace import load_workspace

        ws = load_workspace(workspace)
        ev, ln, jmap = ws.events, ws.learners, ws.map
        if funnel is not None:
            jm.resolve_steps(jmap, funnel)
        bys = list(by or [])
        unknown = [c for c in bys if c not in ln.columns]
        if unknown:
            raise DataError(f"unknown learner column(s) {', '.join(repr(c) for c in unknown)}; learner columns: {', '.join(ln.columns)}")
        data_end = ws.data_end
        if period and name not in ("review", "kpis", "survival"):
            start, end = jm.period_bounds(period, data_end=data_end)
            first = ev.group_by("learner_id").agg(pl.col("timestamp").min().alias("_f"))
            ids = first.filter((pl.col("_f") >= start) & (pl.col("_f") < end))["learner_id"]
            ln = ln.filter(pl.col("learner_id").is_in(ids.implode()))
        b = bys or None
        if name == "funnel":
            df = jm.funnel(ev, ln, jmap, funnel, by=b, mode=mode or "ordered", window=window, data_end=data_end)
        elif name == "dropoff":
            df = jm.dropoff(ev, ln, jmap, by=b, funnel=funnel, mode=mode, window=window, data_end=data_end)
        elif name == "transitions":
            df = jm.transitions(ev, ln, jmap, by=b, data_end=data_end)
        elif name == "kpis":
            df = jm.kpis(ev, ln, jmap, by=b, data_end=data_end, period=period)
        elif name == "emotion":
            df = jm.emotion(ev, ln, jmap, by=b, data_end=data_end)
        elif name == "segments":
            df = jm.segment_gaps(ev, ln, jmap, attributes=b, funnel=funnel, mode=mode, window=window,
                                 min_count=min_count, fdr=fdr if fdr is not None else jmap.review.fdr,
                                 data_end=data_end, horizon=horizon)
        elif name == "survival":
            if len(bys) > 1:
                raise DataError("survival takes one --by column")
            s = jm.survival(ev, ln, jmap, origin=origin, by=bys[0] if bys else None, as_of=data_end,
                            horizon=horizon, period=period)
            _write_survival(s, out)
            p = "" if s.p_value is None else f"; log-rank p = {s.p_value:.3g}"
            console.print(f"Wrote survival from {s.origin}: {s.summary.height} groups to {out}{p}")
            return
        else:
            r = jm.review(ev, ln, jmap, period=period, attributes=b, min_count=min_count, fdr=fdr, data_end=data_end,
                          horizon=horizon)
            period = r.period
            if is_dir_out:
                out.mkdir(parents=True, exist_ok=True)
                for key, frame in r.frames().items():
                    write_frame(frame, out / f"{key}.csv")
                text = [f"Review of {r.label} against {r.previous_label}", "", *r.findings, "", *r.footnotes, "", *r.notes]
                (out / "findings.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
            else:
                payload = {key: frame.to_dicts() for key, frame in r.frames().items()}
                payload["findings"] = r.findings
                payload["footnotes"] = r.footnotes
                payload["notes"] = r.notes
                payload["period"] = {"name": period, "label": r.label, "previous_label": r.previous_label,
                                     "horizon_days": r.horizon_days, "followed": r.followed, "tests": r.tests,
                                     "start": r.start.isoformat(), "end": r.end.isoformat(),
                                     "previous_start": r.previous_start.isoformat(), "previous_end": r.previous_end.isoformat()}
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(payload, default=str, indent=1), encoding="utf-8")
            console.print(f"Wrote review of {escape(r.label)} ({len(r.findings)} findings) to {escape(str(out))}")
            return
        write_frame(df, out)
        console.print(f"Wrote {name}: {df.height} rows to {escape(str(out))}")
    except JourneyError as exc:
        fail(exc)
