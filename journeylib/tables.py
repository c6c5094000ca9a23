"""Stakeholder tables and the journey-map canvas as escaped HTML.

Each builder returns an :class:`HTML` value (``.html`` string, rendered by
Jupyter through ``_repr_html_``). All user text — touchpoint names, purposes,
pain points, attribute values, findings — is escaped with
:func:`markupsafe.escape`. KPI statuses are shown with colour *and* a symbol
and the status text, so they read in grey-scale print and for colour-blind
readers. Suppressed small cells are shown as "fewer than N", never as numbers.

The look comes from :data:`CSS` (inlined into every report page by the report
template); the status colours are inline styles so they also show in JupyterLab.

>>> import polars as pl
>>> t = table(pl.DataFrame({"name": ["<b>x</b>"], "share": [0.25]}), formats={"share": "pct"})
>>> "&lt;b&gt;x&lt;/b&gt;" in t.html and "25%" in t.html
True
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import polars as pl
from markupsafe import Markup, escape

from .charts import GREY, STATUS_COLORS, stage_colors
from .model import KPI_METRICS, RATE_METRICS, JourneyMap

STATUS_SYMBOLS = {"met": "✓", "near": "≈", "missed": "✗", "not enough data": "?"}

METRIC_LABELS = {
    "reach": "Reach (learners)",
    "conversion": "Conversion to next",
    "stopped": "Stopped here",
    "completion": "Completion",
    "pass_rate": "Pass rate",
    "score": "Mean score",
    "csat": "CSAT (4–5 of 5)",
    "nps": "NPS",
    "emotion": "Emotion (valence)",
    "time_to_next": "Days to next touchpoint",
    "events_per_learner": "Events per learner",
}

CSS = """
.journey-table { border-collapse: collapse; margin: 0.4em 0 1.2em 0; font-size: 13px; min-width: 40%; }
.journey-table caption { text-align: left; font-weight: 600; padding: 4px 0 6px 0; color: #1a1a1a; font-size: 14px; }
.journey-table th { text-align: left; border-bottom: 2px solid #444; padding: 5px 10px; background: #f4f6f8; font-weight: 600; }
.journey-table td { border-bottom: 1px solid #e1e4e8; padding: 5px 10px; vertical-align: top; }
.journey-table td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.journey-table tr:hover td { background: #fafbfc; }
.journey-table .muted { color: #666; }
.journey-table .suppressed { color: #666; font-style: italic; }
.journey-note { color: #555; font-size: 12px; margin: -0.8em 0 1.2em 0; }
.journey-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; white-space: nowrap; }
.journey-findings { border-left: 5px solid #0072B2; background: #f1f7fc; padding: 10px 18px; margin: 0.5em 0 1.5em 0; }
.journey-findings h3 { margin: 0.2em 0 0.4em 0; font-size: 16px; }
.journey-findings ol { margin: 0; padding-left: 1.3em; font-size: 14px; line-height: 1.5; }
.journey-coverage ul { margin: 0.3em 0 0.8em 0; padding-left: 1.3em; font-size: 14px; line-height: 1.5; }
.journey-kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.6em 0 1.2em 0; }
.journey-kpi-card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 120px; background: #fff; }
.journey-kpi-card .v { font-size: 22px; font-weight: 700; color: #1a1a1a; }
.journey-kpi-card .l { font-size: 12px; color: #555; }
.journey-map { overflow-x: auto; margin: 0.5em 0 1.5em 0; }
.journey-map .grid { display: grid; gap: 0; font-size: 12px; min-width: max-content; }
.journey-map .lane { font-weight: 700; background: #f4f6f8; padding: 6px 8px; border-bottom: 1px solid #d0d7de; position: sticky; left: 0; z-index: 1; color: #1a1a1a; }
.journey-map .stage { padding: 6px 8px; font-weight: 700; font-size: 13px; border-left: 2px solid #fff; }
.journey-map .stage small { display: block; font-weight: 400; opacity: 0.95; }
.journey-map .cell { padding: 6px 8px; border-bottom: 1px solid #e1e4e8; border-left: 1px solid #eef0f2; width: 170px; box-sizing: border-box; }
.journey-map .tp { font-weight: 700; font-size: 13px; color: #1a1a1a; }
.journey-map ul { margin: 0; padding-left: 1.1em; }
.journey-map .emo { font-weight: 600; }
.journey-map .kpi { margin-bottom: 3px; }
.journey-footer { margin-top: 2.5em; padding-top: 0.8em; border-top: 1px solid #d0d7de; color: #555; font-size: 12px; }
.journey-footer p { margin: 0.3em 0; }
.journey-footer .journey-attribution { white-space: pre-line; }
.journey-table tbody th { border-bottom: 1px solid #e1e4e8; background: #f7f8fa; font-weight: 600; }
"""


class HTML:
    """An HTML fragment (already escaped) that renders in Jupyter and in reports.

    >>> HTML("<p>x</p>")._repr_html_()
    '<p>x</p>'
    """

    def __init__(self, html: str):
        self.html = str(html)

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------

def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_value(v: Any, kind: str = "auto") -> str:
    """Format one value for display.

    kinds: ``pct`` (0.253 → "25%"), ``pct1`` ("25.3%"), ``+pct`` (signed
    percentage points), ``int`` (thousands separator), ``float1``, ``float2``,
    ``+float2``, ``days`` ("3.5 d"), ``p`` (p-values: "<0.001"), ``auto``.

    >>> fmt_value(0.253, "pct"), fmt_value(-0.04, "+pct"), fmt_value(1234, "int"), fmt_value(None)
    ('25%', '−4 pp', '1,234', '–')
    """
    if _missing(v):
        return "–"
    if kind == "pct":
        return f"{v:.0%}"
    if kind == "pct1":
        return f"{v:.1%}"
    if kind == "+pct":
        s = f"{v * 100:+.0f} pp"
        return s.replace("-", "−")
    if kind == "int":
        return f"{int(round(v)):,}"
    if kind == "float1":
        return f"{v:.1f}"
    if kind == "float2":
        return f"{v:.2f}"
    if kind == "+float2":
        return f"{v:+.2f}".replace("-", "−")
    if kind == "days":
        return f"{v:.1f} d"
    if kind == "p":
        return "<0.001" if v < 0.001 else f"{v:.3f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def metric_kind(metric: str) -> str:
    """The display format of a KPI metric's values.

    >>> metric_kind("conversion"), metric_kind("nps"), metric_kind("time_to_next")
    ('pct', 'float1', 'days')
    """
    if metric in RATE_METRICS:
        return "pct"
    if metric == "reach":
        return "int"
    if metric == "time_to_next":
        return "days"
    if metric in ("emotion", "events_per_learner"):
        return "float2"
    return "float1"


def status_badge(status: str | None) -> Markup:
    """A KPI status as a coloured badge with symbol and text (never colour alone).

    >>> str(status_badge("met"))
    '<span class="journey-badge" style="background:#009E73;color:#1a1a1a">✓ met</span>'
    """
    s = status or "not enough data"
    color = STATUS_COLORS.get(s, GREY)
    fg = text_on(color)
    return Markup('<span class="journey-badge" style="background:{};color:{}">{} {}</span>').format(color, fg, STATUS_SYMBOLS.get(s, ""), s)


# --------------------------------------------------------------------------
# Generic table
# --------------------------------------------------------------------------

Formatter = str | Callable[[Any, dict], Any]


def table(
    df: pl.DataFrame,
    *,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    formats: Mapping[str, Formatter] | None = None,
    caption: str | None = None,
    note: str | None = None,
    suppressed: str | None = "suppressed",
    min_count: int | None = None,
    max_rows: int | None = None,
    empty: str = "Nothing to show.",
) -> HTML:
    """An HTML table of ``df``, every cell escaped.

    ``columns`` maps column → header (or lists the columns to show);
    ``formats`` maps column → a :func:`fmt_value` kind or a function
    ``(value, row) -> str | Markup``. When ``suppressed`` names a boolean
    column, its True rows show "fewer than N" (N = ``min_count``) in every
    blank numeric cell and are styled as suppressed. ``max_rows`` cuts the
    table with a note.

    >>> import polars as pl
    >>> df = pl.DataFrame({"g": ["a"], "n": [None], "suppressed": [True]}, schema={"g": pl.Utf8, "n": pl.Int64, "suppressed": pl.Boolean})
    >>> "fewer than 5" in table(df, columns={"g": "Group", "n": "Learners"}, min_count=5).html
    True
    """
    formats = dict(formats or {})
    if columns is None:
        cols = {c: c.replace("_", " ").capitalize() for c in df.columns if c != suppressed}
    elif isinstance(columns, Mapping):
        cols = dict(columns)
    else:
        cols = {c: c.replace("_", " ").capitalize() for c in columns}
    parts: list[str] = ['<table class="journey-table">']
    if caption:
        parts.append(str(Markup("<caption>{}</caption>").format(caption)))
    parts.append("<thead><tr>" + "".join(str(Markup("<th>{}</th>").format(h)) for h in cols.values()) + "</tr></thead><tbody>")
    rows = df.to_dicts()
    shown = rows if max_rows is None else rows[:max_rows]
    schema = df.schema
    for row in shown:
        is_sup = bool(suppressed and suppressed in row and row[suppressed])
        cells = []
        for c in cols:
            v = row.get(c)
            f = formats.get(c, "auto")
            numeric = c in schema and schema[c].is_numeric()
            if is_sup and _missing(v) and (numeric or c in formats):
                txt = Markup('<span class="suppressed">fewer than {}</span>').format(min_count) if min_count else Markup('<span class="suppressed">suppressed</span>')
            elif callable(f):
                out = f(v, row)
                txt = out if isinstance(out, Markup) else escape(out)
            else:
                txt = escape(fmt_value(v, f))
            cls = ' class="num"' if numeric and not callable(f) else ""
            cells.append(f"<td{cls}>{txt}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        parts.append(str(Markup('<tr><td class="muted" colspan="{}">{}</td></tr>').format(len(cols), empty)))
    parts.append("</tbody></table>")
    if max_rows is not None and len(rows) > max_rows:
        parts.append(str(Markup('<p class="journey-note">Showing {} of {} rows.</p>').format(max_rows, len(rows))))
    if note:
        parts.append(str(Markup('<p class="journey-note">{}</p>').format(note)))
    return HTML("".join(parts))


# --------------------------------------------------------------------------
# KPI tables
# --------------------------------------------------------------------------

def _target_text(row: dict) -> str:
    t, m = row.get("target"), row.get("metric", "")
    if _missing(t):
        return "–"
    sign = "≥" if row.get("direction", KPI_METRICS.get(m, "higher")) == "higher" else "≤"
    return f"{sign} {fmt_value(t, metric_kind(m))}"


def _measured_text(row: dict) -> Markup:
    m = row.get("metric", "")
    kind = metric_kind(m)
    v = row.get("value")
    s = escape(fmt_value(v, kind))
    lo, hi = row.get("low"), row.get("high")
    if not _missing(v) and not _missing(lo) and not _missing(hi):
        s = s + Markup(' <span class="muted">({}–{})</span>').format(fmt_value(lo, kind), fmt_value(hi, kind))
    return s


def kpi_table(kpis: pl.DataFrame, jmap: JourneyMap, *, caption: str | None = "KPI status per touchpoint", by: str | None = None) -> HTML:
    """KPI status table: touchpoint, stage, KPI, target, measured (95% interval), learners, status badge.

    Input: ``metrics.kpis`` output. Rows keep the map's touchpoint order.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A & B", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> k = pl.DataFrame({"touchpoint_id": ["a"], "metric": ["conversion"], "value": [0.7], "n": [40], "low": [0.55],
    ...     "high": [0.82], "target": [0.8], "direction": ["higher"], "status": ["missed"]})
    >>> h = kpi_table(k, jm).html
    >>> "A &amp; B" in h and "✗ missed" in h and "≥ 80%" in h
    True
    """
    order = {t: i for i, t in enumerate(jmap.touchpoint_ids)}
    names = {t.id: t.name for t in jmap.touchpoints}
    stages = {s.id: s.name for s in jmap.stages}
    tp_stage = {t.id: t.stage for t in jmap.touchpoints}
    df = kpis.with_columns(pl.col("touchpoint_id").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("_o")).sort("_o", maintain_order=True)
    df = df.with_columns(
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        pl.col("touchpoint_id").replace_strict(tp_stage, default="").replace_strict(stages, default="").alias("_stage"),
        pl.col("metric").replace_strict(METRIC_LABELS, default=pl.col("metric")).alias("_metric"),
    )
    cols: dict[str, str] = {}
    if by and by in df.columns:
        cols[by] = by.replace("_", " ").capitalize()
    cols.update({"_stage": "Stage", "_tp": "Touchpoint", "_metric": "KPI", "target": "Target", "value": "Measured (95% interval)", "n": "Learners", "status": "Status"})
    return table(
        df,
        columns=cols,
        formats={"target": lambda v, r: _target_text(r), "value": lambda v, r: _measured_text(r), "status": lambda v, r: status_badge(v), "n": "int"},
        caption=caption,
        note="Status: ✓ met the target · ≈ near (within tolerance) · ✗ missed · ? not enough data (fewer learners than the KPI's minimum).",
    )


def status_summary(kpis: pl.DataFrame) -> HTML:
    """Cards counting KPIs per status (met / near / missed / not enough data).

    >>> import polars as pl
    >>> "2" in status_summary(pl.DataFrame({"status": ["met", "met", "missed"]})).html
    True
    """
    counts = dict(kpis.group_by("status").len().iter_rows()) if kpis.height else {}
    cards = []
    for s in ("met", "near", "missed", "not enough data"):
        cards.append(str(Markup('<div class="journey-kpi-card"><div class="v">{}</div><div class="l">{}</div></div>').format(counts.get(s, 0), status_badge(s))))
    return HTML('<div class="journey-kpis">' + "".join(cards) + "</div>")


def scorecard_table(scorecard: pl.DataFrame, jmap: JourneyMap, *, caption: str | None = "KPI scorecard: this period vs the previous one",
                    order_by: str = "status") -> HTML:
    """The periodic review scorecard: KPI status with the change from the previous period.

    Input: ``Review.scorecard`` (kpi columns plus previous value, change,
    changed_significantly). A significant change is marked "▲"/"▼". With
    ``order_by="status"`` (default) rows run missed → near → met → not enough
    data, each in map order, so what needs attention comes first;
    ``order_by="map"`` keeps the map's touchpoint order.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> sc = pl.DataFrame({"touchpoint_id": ["a"], "metric": ["completion"], "value": [0.6], "n": [30], "target": [0.7],
    ...     "direction": ["higher"], "status": ["missed"], "previous_value": [0.75], "change": [-0.15], "changed_significantly": [True]})
    >>> "▼" in scorecard_table(sc, jm).html
    True
    """
    prev = next((c for c in ("previous_value", "previous", "value_previous", "prev_value") if c in scorecard.columns), None)
    order = {t: i for i, t in enumerate(jmap.touchpoint_ids)}
    names = {t.id: t.name for t in jmap.touchpoints}
    df = scorecard.with_columns(
        pl.col("touchpoint_id").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("_o"),
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        pl.col("metric").replace_strict(METRIC_LABELS, default=pl.col("metric")).alias("_metric"),
        pl.col("status").replace_strict({"missed": 0, "near": 1, "met": 2}, default=3, return_dtype=pl.Int64).alias("_s"),
    ).sort(["_s", "_o"] if order_by == "status" else ["_o"], maintain_order=True)

    def change(v: Any, row: dict) -> Markup:
        if _missing(v):
            return Markup('<span class="muted">–</span>')
        kind = metric_kind(row.get("metric", ""))
        s = fmt_value(v, "+pct") if kind == "pct" else fmt_value(v, "+float2")
        sig = row.get("changed_significantly")
        good = (v > 0) == (row.get("direction", "higher") == "higher")
        if sig:
            arrow = "▲" if v > 0 else "▼"
            color = "#007a5a" if good else "#b34700"
            return Markup('<strong style="color:{}">{} {}</strong> <span class="muted">significant</span>').format(color, arrow, s)
        return Markup('<span class="muted">{}</span>').format(s)

    cols = {"_tp": "Touchpoint", "_metric": "KPI", "target": "Target", "value": "This period", "n": "Learners"}
    if prev:
        cols[prev] = "Previous"
    cols.update({"change": "Change", "status": "Status"})
    def target(v: Any, row: dict) -> str | Markup:
        prev_target = row.get("previous_target")
        if _missing(prev_target):
            return _target_text(row)
        return Markup('{} <span class="muted">(changed; previous period: {})</span>').format(
            _target_text(row), _target_text({**row, "target": prev_target}))

    formats: dict[str, Formatter] = {
        "target": target,
        "value": lambda v, r: _measured_text(r),
        "status": lambda v, r: status_badge(v),
        "n": "int",
        "change": change,
    }
    if prev:
        formats[prev] = lambda v, r: fmt_value(v, metric_kind(r.get("metric", "")))
    if "change" not in df.columns:
        cols.pop("change")
    note = "Change: this period minus the previous one (pp = percentage points). ▲/▼ marks changes unlikely to be chance (two-sided test, 5% level)."
    if "previous_target" in df.columns and df["previous_target"].is_not_null().any():
        note += " A target marked “changed” was different in the previous period: that comparison spans a change of target."
    return table(df, columns=cols, formats=formats, caption=caption, note=note)


def findings_box(findings: Sequence[str], *, title: str = "Top findings", top: int = 3) -> HTML:
    """The top ``top`` findings as a highlighted, numbered list (escaped).

    >>> "<li>Stop rate &lt;up&gt;</li>" in findings_box(["Stop rate <up>"]).html
    True
    """
    items = list(findings)[:top] or ["No notable changes this period."]
    lis = "".join(str(Markup("<li>{}</li>").format(f)) for f in items)
    return HTML(str(Markup('<div class="journey-findings"><h3>{}</h3><ol>').format(title)) + lis + "</ol></div>")


def headline_cards(items: Mapping[str, Any]) -> HTML:
    """A row of headline number cards: label → value (value formatted with :func:`fmt_value`).

    >>> "1,200" in headline_cards({"Learners": 1200}).html
    True
    """
    cards = "".join(
        str(Markup('<div class="journey-kpi-card"><div class="v">{}</div><div class="l">{}</div></div>').format(v if isinstance(v, str) else fmt_value(v), k))
        for k, v in items.items()
    )
    return HTML('<div class="journey-kpis">' + cards + "</div>")


def data_quality_table(counts: pl.DataFrame, rejected: pl.DataFrame, *, examples: int = 0) -> tuple[HTML, HTML]:
    """Two tables: rows read / accepted / rejected per table, and rejected rows by reason.

    ``counts`` is ``Workspace.counts()``; ``rejected`` is ``Workspace.rejected``
    (only table, reason and field are shown; raw records never are).

    >>> import polars as pl
    >>> c = pl.DataFrame({"table": ["events"], "file": ["/x/events.csv"], "read": [10], "accepted": [9], "rejected": [1]})
    >>> r = pl.DataFrame({"table": ["events"], "file": ["/x/events.csv"], "row": [3], "reason": ["bad timestamp"], "field": ["timestamp"], "record": ["{}"]})
    >>> a, b = data_quality_table(c, r)
    >>> "events.csv" in a.html and "bad timestamp" in b.html and "/x/" not in a.html
    True
    """
    c = counts.with_columns(pl.col("file").map_elements(lambda p: p.replace("\\", "/").rsplit("/", 1)[-1], return_dtype=pl.Utf8).alias("file"))
    t1 = table(c, columns={"table": "Table", "file": "File", "read": "Rows read", "accepted": "Accepted", "rejected": "Rejected"},
               formats={"read": "int", "accepted": "int", "rejected": "int"}, caption="Rows read, accepted and rejected")
    if rejected.height:
        g = rejected.group_by(["table", "reason", "field"], maintain_order=True).agg(pl.len().alias("rows")).sort("rows", descending=True)
    else:
        g = pl.DataFrame(schema={"table": pl.Utf8, "reason": pl.Utf8, "field": pl.Utf8, "rows": pl.UInt32})
    t2 = table(g, columns={"table": "Table", "reason": "Why rejected", "field": "Field", "rows": "Rows"}, formats={"rows": "int"},
               caption="Rejected rows by reason", empty="No rows were rejected.")
    return t1, t2


# --------------------------------------------------------------------------
# The journey map canvas
# --------------------------------------------------------------------------

def text_on(color: str) -> str:
    """Black or white, whichever reads better on the hex ``color`` (WCAG relative luminance).

    >>> text_on("#0072B2"), text_on("#E69F00")
    ('#ffffff', '#1a1a1a')
    """
    c = color.lstrip("#")
    rgb = [int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#1a1a1a" if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else "#ffffff"


def _valence_color(v: float | None, lo: float, hi: float) -> str:
    if _missing(v):
        return GREY
    mid = (lo + hi) / 2
    if v >= mid + (hi - mid) * 0.25:
        return "#007a5a"
    if v <= mid - (mid - lo) * 0.25:
        return "#b34700"
    return "#555555"


def journey_map_html(
    jmap: JourneyMap,
    *,
    emotion: pl.DataFrame | None = None,
    kpis: pl.DataFrame | None = None,
    lanes: Iterable[str] = ("touchpoint", "channel", "purpose", "target_emotion", "measured_emotion", "kpis", "pain_points", "opportunities"),
) -> HTML:
    """The designed map as a canvas: stages as columns, one lane (row) per aspect.

    Lanes: touchpoint, channel, purpose, target emotion, measured emotion (from
    ``metrics.emotion``: mean, interval, n, gap), KPIs with status badges (from
    ``metrics.kpis``), pain points and opportunities. A CSS grid, every text
    escaped; wide maps scroll sideways with the lane labels kept in view.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "See"}],
    ...     "touchpoints": [{"id": "a", "name": "Ad <1>", "stage": "s", "purpose": "x", "target_emotion": {"label": "curious"},
    ...                      "pain_points": ["slow & dull"]}]})
    >>> h = journey_map_html(jm).html
    >>> "Ad &lt;1&gt;" in h and "slow &amp; dull" in h and "See" in h
    True
    """
    tps = jmap.touchpoints
    n = len(tps)
    sc = stage_colors(jmap)
    lo, hi = jmap.emotion_scale.min, jmap.emotion_scale.max
    emo: dict[str, dict] = {}
    if emotion is not None and emotion.height:
        e = emotion
        if "persona" in e.columns:
            e = e.filter(pl.lit(False))  # the canvas shows everyone; per-persona curves are charts
        emo = {r["touchpoint_id"]: r for r in e.to_dicts()}
    kp: dict[str, list[dict]] = {}
    if kpis is not None and kpis.height:
        for r in kpis.to_dicts():
            kp.setdefault(r["touchpoint_id"], []).append(r)
    lane_titles = {
        "touchpoint": "Touchpoint", "channel": "Channel", "purpose": "Purpose", "target_emotion": "Target emotion",
        "measured_emotion": "Measured emotion", "kpis": "KPIs", "pain_points": "Pain points", "opportunities": "Opportunities",
    }
    out = [f'<div class="journey-map"><div class="grid" style="grid-template-columns: 150px repeat({n}, 170px);">']
    # stage header row
    out.append('<div class="lane">Stage</div>')
    for s in jmap.stages:
        span = sum(1 for t in tps if t.stage == s.id)
        if span:
            out.append(str(Markup('<div class="stage" style="grid-column: span {}; background:{}; color:{}">{}<small>{}</small></div>').format(
                span, sc[s.id], text_on(sc[s.id]), s.name, s.learner_goal)))

    def ul(items: list[str]) -> Markup:
        if not items:
            return Markup('<span class="muted">–</span>')
        return Markup("<ul>") + Markup("").join(Markup("<li>{}</li>").format(i) for i in items) + Markup("</ul>")

    for lane in lanes:
        out.append(str(Markup('<div class="lane">{}</div>').format(lane_titles.get(lane, lane))))
        for t in tps:
            if lane == "touchpoint":
                body = Markup('<div class="tp">{}</div>').format(t.name)
            elif lane == "channel":
                body = escape(t.channel or "–")
            elif lane == "purpose":
                body = escape(t.purpose or "–")
            elif lane == "target_emotion":
                v = t.target_emotion.valence
                body = Markup('<span class="emo" style="color:{}">{}</span> <span class="muted">({})</span>').format(
                    _valence_color(v, lo, hi), t.target_emotion.label, fmt_value(v, "+float2") if v is not None else "–")
            elif lane == "measured_emotion":
                r = emo.get(t.id)
                if not r or _missing(r.get("mean_valence")):
                    body = Markup('<span class="muted">no responses</span>')
                else:
                    v = r["mean_valence"]
                    gap = r.get("gap")
                    body = Markup('<span class="emo" style="color:{}">{}</span> <span class="muted">({}–{}, n={})</span>').format(
                        _valence_color(v, lo, hi), fmt_value(v, "+float2"), fmt_value(r.get("low"), "float2"), fmt_value(r.get("high"), "float2"), fmt_value(r.get("n"), "int"))
                    if not _missing(gap):
                        body += Markup('<br><span class="muted">gap to target {}</span>').format(fmt_value(gap, "+float2"))
            elif lane == "kpis":
                rows = kp.get(t.id)
                if rows:
                    body = Markup("").join(
                        Markup('<div class="kpi">{}: {} {}<br>{}</div>').format(
                            METRIC_LABELS.get(r["metric"], r["metric"]), _measured_value_only(r), Markup('<span class="muted">target {}</span>').format(_target_text(r)), status_badge(r.get("status")))
                        for r in rows)
                elif t.kpis:
                    body = Markup("").join(Markup('<div class="kpi">{} <span class="muted">target {}</span></div>').format(
                        METRIC_LABELS.get(k.metric, k.metric), _target_text({"metric": k.metric, "target": k.target, "direction": k.direction})) for k in t.kpis)
                else:
                    body = Markup('<span class="muted">–</span>')
            elif lane == "pain_points":
                body = ul(t.pain_points)
            elif lane == "opportunities":
                body = ul(t.opportunities)
            else:
                body = Markup("")
            out.append(f'<div class="cell">{body}</div>')
    out.append("</div></div>")
    return HTML("".join(out))


def _measured_value_only(row: dict) -> str:
    return fmt_value(row.get("value"), metric_kind(row.get("metric", "")))


# --------------------------------------------------------------------------
# Report sections (used by the report notebooks)
# --------------------------------------------------------------------------

def _tp_names(jmap: JourneyMap) -> dict[str, str]:
    return {t.id: t.name for t in jmap.touchpoints}


def _persona_names(jmap: JourneyMap) -> dict[str, str]:
    return {p.id: p.name for p in jmap.personas}


def note(text: str) -> HTML:
    """A short escaped paragraph in the report's muted style.

    >>> note("a < b").html
    '<p class="journey-meta">a &lt; b</p>'
    """
    return HTML(str(Markup('<p class="journey-meta">{}</p>').format(text)))


def funnel_note(jmap: JourneyMap, funnel: str | None) -> HTML:
    """One line naming the funnel shown: its name, number of steps, first and last step.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> funnel_note(jm, None).html
    '<p class="journey-meta">Funnel: all touchpoints — 1 steps, from A to A.</p>'
    """
    steps = jmap.funnel(funnel)
    names = _tp_names(jmap)
    label = f"“{funnel}”" if funnel else "all touchpoints"
    return note(f"Funnel: {label} — {len(steps)} steps, from {names[steps[0]]} to {names[steps[-1]]}.")


def map_headline(jmap: JourneyMap, learners: pl.DataFrame, events: pl.DataFrame, kpis: pl.DataFrame) -> HTML:
    """Headline cards for the map page: learners, events, stages, touchpoints, KPIs met / missed.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> "KPIs met" in map_headline(jm, pl.DataFrame({"x": [1]}), pl.DataFrame({"x": [1, 2]}), pl.DataFrame({"status": ["met"]})).html
    True
    """
    st = dict(kpis.group_by("status").len().iter_rows()) if kpis.height else {}
    total = sum(st.values())
    return headline_cards({
        "learners": fmt_value(learners.height, "int"),
        "events": fmt_value(events.height, "int"),
        "stages · touchpoints": f"{len(jmap.stages)} · {len(jmap.touchpoints)}",
        "KPIs met": f"{st.get('met', 0)} of {total}",
        "KPIs missed": f"{st.get('missed', 0)} of {total}",
    })


def persona_summary(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str = "persona", min_count: int = 5) -> HTML:
    """One row per persona: starters, share reaching the last step (95% interval), stopped, in progress, biggest stop.

    Input: ``metrics.funnel(..., by="persona")`` (optionally already passed
    through :func:`journeylib.privacy.suppress`). A persona with fewer than
    ``min_count`` starters is suppressed.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}},
    ...                     {"id": "b", "name": "B", "stage": "s", "target_emotion": {"label": "proud"}}],
    ...     "personas": [{"id": "p", "name": "P"}]})
    >>> f = pl.DataFrame({"persona": ["p", "p"], "step": [1, 2], "touchpoint_id": ["a", "b"], "learners": [10, 4],
    ...     "conversion_from_start": [1.0, 0.4], "conversion_from_start_low": [0.7, 0.17], "conversion_from_start_high": [1.0, 0.69],
    ...     "stopped": [5, 1], "in_progress": [1, 3]})
    >>> h = persona_summary(f, jm).html
    >>> "40%" in h and "A" in h
    True
    """
    pn = _persona_names(jmap)
    names = _tp_names(jmap)
    rows = []
    for key, g in funnel.sort("step").group_by(by, maintain_order=True):
        p = key[0] if isinstance(key, tuple) else key
        g = g.sort("step")
        first, last = g.row(0, named=True), g.row(g.height - 1, named=True)
        starters = first.get("learners")
        stopped = g["stopped"].fill_null(0)
        top = g.filter(pl.col("stopped").fill_null(0) == stopped.max()).row(0, named=True) if g.height and stopped.max() else None
        rows.append({
            "persona": pn.get(p, p),
            "starters": starters,
            "completed": last.get("conversion_from_start"),
            "completed_low": last.get("conversion_from_start_low"),
            "completed_high": last.get("conversion_from_start_high"),
            "stopped": int(stopped.sum()),
            "in_progress": int(g["in_progress"].fill_null(0).sum()),
            "biggest_stop": names.get(top["touchpoint_id"], top["touchpoint_id"]) if top else "–",
            "suppressed": starters is None or starters < min_count,
        })
    order = {pn.get(pid, pid): i for i, pid in enumerate(jmap.persona_ids())}
    rows.sort(key=lambda r: (order.get(r["persona"], len(order)), r["persona"]))
    df = pl.DataFrame(rows, schema={"persona": pl.Utf8, "starters": pl.Int64, "completed": pl.Float64, "completed_low": pl.Float64, "completed_high": pl.Float64,
                                    "stopped": pl.Int64, "in_progress": pl.Int64, "biggest_stop": pl.Utf8, "suppressed": pl.Boolean})
    from .privacy import suppress

    df = suppress(df, count="starters", values=["completed", "completed_low", "completed_high", "stopped", "in_progress"], min_count=min_count)
    df = df.with_columns(pl.when(pl.col("suppressed")).then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.col("biggest_stop")).alias("biggest_stop"))

    def completed(v: Any, r: dict) -> Markup:
        if _missing(v):
            return escape("–")
        return Markup('{} <span class="muted">({}–{})</span>').format(fmt_value(v, "pct"), fmt_value(r["completed_low"], "pct"), fmt_value(r["completed_high"], "pct"))

    return table(
        df,
        columns={"persona": "Persona", "starters": "Started", "completed": "Reached the last step (95% interval)", "stopped": "Stopped", "in_progress": "Still in progress", "biggest_stop": "Most stop at"},
        formats={"starters": "int", "completed": completed, "stopped": "int", "in_progress": "int", "biggest_stop": lambda v, r: "–" if v is None else v},
        min_count=min_count, caption="Each persona at a glance",
        note=f"Stopped: no event for longer than the dormancy window. Still in progress: active recently, not counted as stopped. Personas with fewer than {min_count} starters are suppressed.",
    )


def stop_table(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str = "persona", top: int = 2, min_count: int = 5) -> HTML:
    """Per persona, the ``top`` steps where most of its stopped learners stopped, with their share of the persona's stoppers.

    Cells with fewer than ``min_count`` stopped learners are suppressed.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}], "personas": [{"id": "p", "name": "P"}]})
    >>> "100%" in stop_table(pl.DataFrame({"persona": ["p"], "step": [1], "touchpoint_id": ["a"], "stopped": [9], "in_progress": [0]}), jm).html
    True
    """
    pn = _persona_names(jmap)
    names = _tp_names(jmap)
    df = (
        funnel.with_columns(pl.col("stopped").fill_null(0))
        .with_columns((pl.col("stopped") / pl.col("stopped").sum().over(by)).alias("share"))
        .sort([by, "stopped"], descending=[False, True])
        .group_by(by, maintain_order=True).head(top)
        .filter(pl.col("stopped") > 0)
        .with_columns(
            pl.col(by).cast(pl.Utf8).replace_strict(pn, default=pl.col(by).cast(pl.Utf8)).alias("_p"),
            pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        )
        .select("_p", "_tp", "step", "stopped", "share")
    )
    from .privacy import suppress

    df = suppress(df, count="stopped", values=["share"], min_count=min_count)
    return table(df, columns={"_p": "Persona", "_tp": "Stopped at", "step": "Step", "stopped": "Learners stopped", "share": "Share of the persona's stoppers"},
                 formats={"step": "int", "stopped": "int", "share": "pct"}, min_count=min_count, caption="Where each persona's stopped learners stopped",
                 empty="No learner has stopped.")


def emotion_outcomes(emotion: pl.DataFrame, dropoff: pl.DataFrame, kpis: pl.DataFrame) -> pl.DataFrame:
    """One row per touchpoint with emotion data: n, mean_valence, gap, reached, stop_rate, kpis_met, attainment.

    Definition: ``emotion`` (``metrics.emotion``, no ``by``) left-joined on
    touchpoint_id with ``dropoff`` (reached, stop_rate) and with two KPI
    summaries over the touchpoint's KPIs that have enough data (status not
    "not enough data"): ``kpis_met`` = share with status "met";
    ``attainment`` = mean of value/target (direction "higher") or
    target/value ("lower"), each clipped to 0..2, so 1.0 is exactly on target.
    Both are null when no KPI has enough data. The emotion KPI itself is left
    out (it would compare emotion with itself).

    >>> import polars as pl
    >>> e = pl.DataFrame({"touchpoint_id": ["a"], "n": [10], "mean_valence": [0.2], "gap": [-0.8]})
    >>> d = pl.DataFrame({"touchpoint_id": ["a"], "reached": [50], "stop_rate": [0.3]})
    >>> k = pl.DataFrame({"touchpoint_id": ["a", "a"], "metric": ["completion", "time_to_next"], "status": ["met", "missed"],
    ...     "value": [0.9, 4.0], "target": [0.8, 2.0], "direction": ["higher", "lower"]})
    >>> r = emotion_outcomes(e, d, k).row(0, named=True)
    >>> r["kpis_met"], round(r["attainment"], 4)
    (0.5, 0.8125)
    """
    if kpis.height:
        kk = kpis.filter((pl.col("status") != "not enough data") & (pl.col("metric") != "emotion"))
        ratio = (
            pl.when(pl.col("direction") == "lower").then(pl.col("target") / pl.col("value")).otherwise(pl.col("value") / pl.col("target"))
        )
        ratio = pl.when(ratio.is_finite()).then(ratio.clip(0, 2)).otherwise(None)
        k = kk.group_by("touchpoint_id").agg((pl.col("status") == "met").mean().alias("kpis_met"), ratio.mean().alias("attainment"))
    else:
        k = pl.DataFrame(schema={"touchpoint_id": pl.Utf8, "kpis_met": pl.Float64, "attainment": pl.Float64})
    e = emotion.select([c for c in ("touchpoint_id", "n", "mean_valence", "target_valence", "gap") if c in emotion.columns])
    d = dropoff.select([c for c in ("touchpoint_id", "reached", "stopped", "stop_rate") if c in dropoff.columns])
    return e.join(d, on="touchpoint_id", how="left").join(k, on="touchpoint_id", how="left")


def emotion_headline(emotion: pl.DataFrame, evs: pl.DataFrame) -> HTML:
    """Headline cards: responses, touchpoints below target, the largest gap, and significant low-emotion → stop links.

    >>> import polars as pl
    >>> e = pl.DataFrame({"touchpoint_id": ["a"], "touchpoint_name": ["A"], "n": [10], "gap": [-0.8], "high": [0.5], "target_valence": [1.0]})
    >>> "A" in emotion_headline(e, pl.DataFrame({"p_value": [0.01], "difference": [0.2]})).html
    True
    """
    has = emotion.filter(pl.col("n").fill_null(0) > 0)
    below = has.filter(pl.col("high") < pl.col("target_valence")) if {"high", "target_valence"} <= set(has.columns) else has.head(0)
    worst = has.sort("gap", nulls_last=True).row(0, named=True) if has.height else None
    sig = evs.filter((pl.col("p_value") < 0.05) & (pl.col("difference") > 0)).height if evs.height else 0
    return headline_cards({
        "emotion responses": fmt_value(int(has["n"].sum()) if has.height else 0, "int"),
        "touchpoints clearly below target": f"{below.height} of {has.height}",
        "largest gap": f"{worst.get('touchpoint_name') or worst['touchpoint_id']} ({fmt_value(worst['gap'], '+float2')})" if worst else "–",
        "low emotion → more stopping (p < 0.05)": f"{sig} touchpoint{'s' if sig != 1 else ''}",
    })


def emotion_stopping_table(evs: pl.DataFrame, jmap: JourneyMap, *, min_count: int = 5) -> HTML:
    """``metrics.emotion_vs_stopping`` as a table; a side with fewer than ``min_count`` responses is suppressed.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"touchpoint_id": ["a"], "low_n": [2], "low_stop_rate": [0.5], "other_n": [40], "other_stop_rate": [0.1], "difference": [0.4], "p_value": [0.2]})
    >>> "fewer than 5" in emotion_stopping_table(f, jm).html
    True
    """
    from .privacy import suppress

    names = _tp_names(jmap)
    order = {t: i for i, t in enumerate(jmap.touchpoint_ids)}
    df = evs.with_columns(
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        pl.col("touchpoint_id").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("_o"),
    ).sort("_o")
    df = suppress(df, count=["low_n", "other_n"], values=["low_stop_rate", "other_stop_rate", "difference", "p_value"], min_count=min_count)
    return table(df, columns={"_tp": "Touchpoint", "low_n": "Low responses", "low_stop_rate": "Stop rate after low", "other_n": "Other responses",
                              "other_stop_rate": "Stop rate otherwise", "difference": "Difference", "p_value": "p-value"},
                 formats={"low_n": "int", "other_n": "int", "low_stop_rate": "pct", "other_stop_rate": "pct", "difference": "+pct", "p_value": "p"},
                 min_count=min_count, caption="Stopping after a low-emotion response",
                 note="Low response: a valence below 0 at the touchpoint. Stop: the learner's journey ended at this touchpoint or the next one.")


def review_header(jmap: JourneyMap, period: str, start: Any, end: Any, previous_start: Any = None, previous_end: Any = None) -> HTML:
    """The review's period line: "Period 2025-06: 2025-06-01 to 2025-06-30, compared with …" (escaped).

    >>> import datetime as dt
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> "2025-06-30" in review_header(jm, "2025-06", dt.datetime(2025, 6, 1), dt.datetime(2025, 7, 1)).html
    True
    """
    import datetime as dt

    last = end - dt.timedelta(microseconds=1)
    pstart = previous_start if previous_start is not None else start - (end - start)
    plast = (previous_end if previous_end is not None else start) - dt.timedelta(microseconds=1)
    return HTML(str(Markup('<p class="journey-meta"><strong>Period {}</strong>: {} to {}, compared with the previous period ({} to {}).</p>').format(
        period, f"{start:%Y-%m-%d}", f"{last:%Y-%m-%d}", f"{pstart:%Y-%m-%d}", f"{plast:%Y-%m-%d}")))


def interventions_table(effects: pl.DataFrame, jmap: JourneyMap) -> HTML:
    """Intervention effects: what changed, where, when, rate before / after, difference with its 95% interval, p-value.

    >>> import polars as pl, datetime as dt
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}],
    ...     "interventions": [{"id": "i1", "date": "2025-01-01", "touchpoint": "a", "description": "New <video>"}]})
    >>> f = pl.DataFrame({"intervention_id": ["i1"], "touchpoint_id": ["a"], "date": [dt.date(2025, 1, 1)], "before_n": [50], "before_rate": [0.5],
    ...     "after_n": [60], "after_rate": [0.7], "difference": [0.2], "low": [0.02], "high": [0.38], "p_value": [0.03]})
    >>> "New &lt;video&gt;" in interventions_table(f, jm).html
    True
    """
    desc = {i.id: i.description for i in jmap.interventions}
    names = _tp_names(jmap)
    df = effects.with_columns(
        pl.col("intervention_id").replace_strict(desc, default="").alias("_d"),
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
    )

    def diff(v: Any, r: dict) -> Markup:
        if _missing(v):
            return escape("–")
        return Markup('{} <span class="muted">({} to {})</span>').format(fmt_value(v, "+pct"), fmt_value(r.get("low"), "+pct"), fmt_value(r.get("high"), "+pct"))

    return table(df, columns={"_d": "Change", "_tp": "Touchpoint", "date": "Date", "before_n": "Learners before", "before_rate": "Rate before",
                              "after_n": "Learners after", "after_rate": "Rate after", "difference": "Difference (95% interval)", "p_value": "p-value"},
                 formats={"date": lambda v, r: str(v)[:10], "before_n": "int", "after_n": "int", "before_rate": "pct", "after_rate": "pct", "difference": diff, "p_value": "p"},
                 caption="Interventions recorded in the map", empty="No interventions are recorded in the map.")


def silent_touchpoints(events: pl.DataFrame, jmap: JourneyMap) -> HTML:
    """The touchpoints of the map with no event in ``events`` (e.g. in the review period), as a short paragraph.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}},
    ...                     {"id": "b", "name": "B", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> "B" in silent_touchpoints(pl.DataFrame({"touchpoint_id": ["a"]}), jm).html
    True
    """
    seen = set(events["touchpoint_id"].unique().to_list()) if events.height else set()
    silent = [t.name for t in jmap.touchpoints if t.id not in seen]
    if not silent:
        return HTML('<p class="journey-meta">Every touchpoint of the map has data in this period.</p>')
    return HTML(str(Markup('<p class="journey-meta"><strong>Touchpoints with no data in this period ({}):</strong> {}</p>').format(len(silent), ", ".join(silent))))


COVERAGE_STATUS = {"ok": ("#007a5a", "✓"), "low": ("#b34700", "↓"), "no data in period": ("#666666", "–"),
                   "never measured": ("#666666", "∅"), "tracking problem": ("#b30000", "!")}


def _coverage_badge(status: str | None) -> Markup:
    color, sym = COVERAGE_STATUS.get(status or "", (GREY, "?"))
    return Markup('<span class="journey-badge" style="background:{}">{} {}</span>').format(color, sym, status)


def coverage_table(cov: Any, extra: Sequence[str | None] = (), *, caption: str | None = "Data by source: this period against the period before") -> HTML:
    """Coverage and freshness (:class:`~journeylib.metrics.coverage.Coverage`): what to know first, then one row per source.

    ``extra`` adds sentences (e.g. the KPIs with no data). Probable tracking
    problems come first, in bold.

    >>> from journeylib.metrics.coverage import coverage
    >>> from journeylib.workspace import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> "Latest event" in coverage_table(coverage(ws.events, ws.map)).html
    True
    """
    items = [x for x in (list(cov.sentences) + [e for e in extra if e]) if x]
    lis = "".join(str(Markup("<li><strong>{}</strong></li>" if x.startswith(("Probable", "No data from")) else "<li>{}</li>").format(x))
                  for x in items)
    df = cov.sources.with_columns(pl.col("touchpoints").list.len().alias("_n"))
    body = table(df, columns={"source": "Source", "_n": "Touchpoints", "last_event": "Last event (all data)", "daily": "Events a day",
                              "usual_daily": "Usual (period before)", "status": "Status"},
                 formats={"last_event": lambda v, r: "never" if v is None else f"{v:%Y-%m-%d %H:%M}", "daily": "float1",
                          "usual_daily": "float1", "_n": "int", "status": lambda v, r: _coverage_badge(v)}, caption=caption,
                 note="A touchpoint's source is its channel in the map. A probable tracking problem: a source silent for days although it "
                      "rarely is, while learners kept arriving before its touchpoints and carrying on after them.")
    return HTML(f'<div class="journey-coverage"><ul>{lis}</ul></div>{body.html}')


def withheld_hotspots_note(withheld: pl.DataFrame | None, jmap: JourneyMap) -> HTML:
    """A line naming the touchpoints left out of the hot spots because of a probable tracking problem (empty if none).

    >>> from journeylib.model import load_map
    >>> withheld_hotspots_note(pl.DataFrame({"touchpoint_id": ["orientation"]}), load_map("data/sample/journey.yml")).html
    '<p class="journey-note">Not shown as hot spots: Orientation — a probable tracking problem (see Data coverage and freshness) makes their counts incomplete.</p>'
    """
    if withheld is None or not withheld.height:
        return HTML("")
    names = _tp_names(jmap)
    listed = ", ".join(names.get(t, t) for t in withheld["touchpoint_id"].to_list())
    return HTML(str(Markup('<p class="journey-note">Not shown as hot spots: {} — a probable tracking problem (see Data coverage '
                           'and freshness) makes their counts incomplete.</p>').format(listed)))


def design_changes_table(changes: Any) -> HTML:
    """The review section "Changes to the design since the previous period" (:class:`~journeylib.versions.DesignChanges`).

    >>> from journeylib.model import load_map
    >>> from journeylib.versions import design_changes
    >>> dc = design_changes("data/sample", load_map("data/sample/journey.yml"), "2025-07-01", "2025-08-01", use_git=False)
    >>> "Practice assessment" in design_changes_table(dc).html
    True
    """
    head = changes.sentences[0] if changes.sentences else ""
    versions = ""
    if changes.before is not None:
        versions = (f"Compared: map version {changes.before.short} (in effect from {changes.before.since:%Y-%m-%d}) with the "
                    f"map this report uses, {changes.after.short}.")
    if not changes.changes.height:
        return HTML(str(Markup('<p>{}</p><p class="journey-meta">{}</p>').format(head, versions)))
    return HTML(str(Markup("<p>{}</p>").format(head)) + table(
        changes.changes, columns={"date": "Date", "change": "Change", "sentence": "What changed"},
        formats={"date": lambda v, r: f"{v:%Y-%m-%d}" if v else "–"}, note=versions).html)


def changes_table(changes: pl.DataFrame, jmap: JourneyMap, *, max_rows: int = 12) -> HTML:
    """Significant changes of any measured metric (``Review.changes``): touchpoint, metric, before, now, change, q-value.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> c = pl.DataFrame({"touchpoint_id": ["a"], "metric": ["csat"], "value": [0.9], "n": [40], "previous_value": [0.7], "previous_n": [38],
    ...     "change": [0.2], "q_value": [0.01]})
    >>> "+20 pp" in changes_table(c, jm).html
    True
    """
    names = _tp_names(jmap)
    df = changes.with_columns(
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        pl.col("metric").replace_strict(METRIC_LABELS, default=pl.col("metric")).alias("_metric"),
    )

    def val(v: Any, r: dict) -> str:
        return fmt_value(v, metric_kind(r.get("metric", "")))

    def chg(v: Any, r: dict) -> str:
        return fmt_value(v, "+pct") if metric_kind(r.get("metric", "")) == "pct" else fmt_value(v, "+float2")

    return table(df, columns={"_tp": "Touchpoint", "_metric": "Measure", "previous_value": "Previous period", "value": "This period", "change": "Change",
                              "n": "Learners", "q_value": "q-value"},
                 formats={"previous_value": val, "value": val, "change": chg, "n": "int", "q_value": "p"}, max_rows=max_rows,
                 caption="Significant changes against the previous period", empty="No measure changed significantly.",
                 note="Every measure at every touchpoint was compared; q-value: p-value corrected for the number of comparisons (false discovery rate).")


def hotspots_table(hotspots: pl.DataFrame, jmap: JourneyMap, *, min_count: int = 5) -> HTML:
    """New drop-off hot spots: touchpoints whose stop rate rose significantly (``Review.hotspots`` with ``significant``).

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> h = pl.DataFrame({"touchpoint_id": ["a"], "reached": [80], "stopped": [30], "stop_rate": [0.375], "previous_reached": [90],
    ...     "previous_stopped": [10], "previous_stop_rate": [0.11], "change": [0.26], "q_value": [0.001], "significant": [True]})
    >>> "+26 pp" in hotspots_table(h, jm).html
    True
    """
    from .privacy import suppress

    names = _tp_names(jmap)
    df = hotspots.filter(pl.col("significant") & (pl.col("change") > 0)).with_columns(
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp")).sort("change", descending=True)
    df = suppress(df, count=["reached", "previous_reached"], values=["stopped", "stop_rate", "previous_stopped", "previous_stop_rate", "change", "q_value"], min_count=min_count)
    return table(df, columns={"_tp": "Touchpoint", "previous_stop_rate": "Stop rate before", "stop_rate": "Stop rate now", "change": "Change",
                              "stopped": "Stopped now", "reached": "Reached now", "q_value": "q-value"},
                 formats={"previous_stop_rate": "pct", "stop_rate": "pct", "change": "+pct", "stopped": "int", "reached": "int", "q_value": "p"},
                 min_count=min_count, caption="New drop-off hot spots: stop rate up significantly", empty="No touchpoint's stop rate rose significantly.")


def suppressed_groups_note(gaps: pl.DataFrame, *, min_count: int = 5, attributes: Sequence[str] | None = None) -> HTML:
    """Name the groups left out of the alerts because they are smaller than ``min_count`` (no counts shown).

    Input: ``metrics.segment_gaps`` output (uses ``attribute``, ``value``, ``suppressed``).

    >>> import polars as pl
    >>> g = pl.DataFrame({"attribute": ["device", "device"], "value": ["tablet", "laptop"], "suppressed": [True, False]})
    >>> "device = tablet" in suppressed_groups_note(g).html
    True
    """
    df = gaps.filter(pl.col("suppressed"))
    if attributes:
        df = df.filter(pl.col("attribute").is_in(list(attributes)))
    groups = sorted({f"{a} = {v}" for a, v in zip(df["attribute"].to_list(), df["value"].cast(pl.Utf8).to_list())})
    if not groups:
        return note(f"Every group had at least {min_count} learners at each touchpoint compared; none was suppressed.")
    return HTML(str(Markup('<p class="journey-meta"><span class="suppressed"><strong>Suppressed:</strong></span> {} group{} had fewer than {} learners at some touchpoint and '
                           'are not shown there (too small to report without identifying people): {}.</p>').format(
        len(groups), "s" if len(groups) != 1 else "", min_count, ", ".join(groups))))


def segment_table(gaps: pl.DataFrame, jmap: JourneyMap, *, min_count: int = 5, significant_only: bool = False, max_rows: int | None = 20) -> HTML:
    """Segment gaps as a stakeholder table: group, touchpoint, sizes, rates, difference, q-value; small groups suppressed.

    Rows with ``suppressed`` show "fewer than N" instead of their counts and rates.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> g = pl.DataFrame({"attribute": ["device"], "value": ["tablet"], "touchpoint_id": ["a"], "segment_n": [3], "segment_converted": [1],
    ...     "segment_rate": [0.33], "rest_n": [90], "rest_converted": [60], "rest_rate": [0.66], "difference": [-0.33], "effect_size": [-0.6],
    ...     "test": ["fisher"], "p_value": [0.2], "q_value": [0.4], "significant": [False], "suppressed": [True]})
    >>> "fewer than 5" in segment_table(g, jm).html
    True
    """
    names = {t.id: t.name for t in jmap.touchpoints}
    df = gaps
    if significant_only:
        df = df.filter(pl.col("significant") | pl.col("suppressed"))
    from .privacy import suppress

    df = suppress(df, count="segment_n", values=["segment_converted", "segment_rate", "difference", "effect_size", "p_value", "q_value"], min_count=min_count)
    df = df.with_columns(
        (pl.col("attribute") + " = " + pl.col("value").cast(pl.Utf8)).alias("group"),
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("touchpoint"),
    ).sort([pl.col("suppressed"), pl.col("significant"), pl.col("difference").abs()], descending=[False, True, True], nulls_last=True)
    return table(
        df,
        columns={"group": "Group", "touchpoint": "Converting from", "segment_n": "Group size", "segment_rate": "Group rate", "rest_rate": "Everyone else",
                 "difference": "Difference", "q_value": "q-value", "significant": "Significant"},
        formats={"segment_n": "int", "segment_rate": "pct", "rest_rate": "pct", "difference": "+pct", "q_value": "p",
                 "significant": lambda v, r: "–" if r.get("suppressed") else ("yes" if v else "no")},
        min_count=min_count, max_rows=max_rows,
        caption="Groups converting differently from everyone else",
        note=f"Groups smaller than {min_count} learners are suppressed (shown as 'fewer than {min_count}'). q-value: p-value corrected for the number of comparisons (false discovery rate).",
        empty="No group differs from everyone else.",
    )
