"""Stakeholder tables (great_tables), headline cards, findings and what to do.

Every table is built with `great_tables <https://posit-dev.github.io/great_tables/>`_
(:func:`table` is the house style: formats, spanners over related columns,
footnotes, colour for KPI status, suppression of small cells) and returned as
a :class:`HTML` value that renders the same in JupyterLab and in a report page
(great_tables ships each table's CSS with it). The GT object stays available
as ``.gt`` for further styling.

All user text — touchpoint names, purposes, pain points, attribute values,
findings — is escaped (great_tables escapes plain cells; cells this module
builds itself are escaped with :func:`markupsafe.escape`). KPI statuses are
shown with colour *and* a symbol and the status text, so they read in
grey-scale print and for colour-blind readers. Suppressed small cells are
shown as "fewer than N", never as numbers.

The journey-map canvas lives in :mod:`journeylib.canvas` (re-exported here as
:func:`journey_map_html`).

>>> import polars as pl
>>> t = table(pl.DataFrame({"name": ["<b>x</b>"], "share": [0.25]}), formats={"share": "pct"})
>>> "&lt;b&gt;x&lt;/b&gt;" in t.html and "25%" in t.html
True
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import polars as pl
from markupsafe import Markup, escape

from .charts import FONT, GREY, STATUS_COLORS
from .canvas import journey_map_html
from .formats import (STATUS_SYMBOLS, HTML, anchor_id, fmt_interval, fmt_value, is_missing, metric_kind, status_text,
                      target_text, text_on)
from .model import JourneyMap

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

#: Page CSS for cards, boxes and notes (tables carry their own CSS from great_tables).
CSS = """
.journey-note, .journey-meta { color: #555; font-size: 13px; }
.journey-notes { margin: 0.4em 0 1.2em 0; }
.journey-notes p.journey-meta { margin: 0.2em 0; }
.journey-note { margin: -0.6em 0 1.2em 0; font-size: 12px; }
.journey-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; white-space: nowrap; }
.journey-findings { border-left: 5px solid #0072B2; background: #f1f7fc; padding: 10px 18px; margin: 0.5em 0 1.5em 0; }
.journey-findings h3 { margin: 0.2em 0 0.4em 0; font-size: 16px; }
.journey-findings ol, .journey-findings ul { margin: 0; padding-left: 1.3em; font-size: 14px; line-height: 1.5; }
.journey-findings li { margin: 0.2em 0; }
.journey-findings .todo { font-size: 12px; white-space: nowrap; }
.journey-coverage ul { margin: 0.3em 0 0.8em 0; padding-left: 1.3em; font-size: 14px; line-height: 1.5; }
.journey-kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.6em 0 1.2em 0; }
.journey-kpi-card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 120px; background: #fff; }
.journey-kpi-card .v { font-size: 22px; font-weight: 700; color: #1a1a1a; }
.journey-kpi-card .l { font-size: 12px; color: #555; }
.journey-nodata-page { border-left: 5px solid #8C8C8C; background: #f6f8fa; padding: 10px 18px; margin: 0.8em 0 1.2em 0; font-size: 15px; }
.journey-footer { margin-top: 2.5em; padding-top: 0.8em; border-top: 1px solid #d0d7de; color: #555; font-size: 12px; }
.journey-footer p { margin: 0.3em 0; }
.journey-footer .journey-attribution { white-space: pre-line; }
.suppressed { color: #666; font-style: italic; }
.gt_table { max-width: 100%; }
"""

#: Table look shared by every stakeholder table (great_tables options).
HOUSE_OPTIONS: dict[str, Any] = {
    "table_font_names": [f.strip().strip("'") for f in FONT.split(",")],
    "table_font_size": "13px",
    "table_font_color": "#1a1a1a",
    "table_margin_left": "0px",
    "table_margin_right": "0px",
    "heading_align": "left",
    "heading_title_font_size": "14px",
    "heading_title_font_weight": "bold",
    "heading_padding": "4px",
    "heading_border_bottom_style": "none",
    "table_border_top_style": "none",
    "column_labels_font_weight": "bold",
    "column_labels_background_color": "#f4f6f8",
    "column_labels_border_bottom_color": "#444444",
    "column_labels_padding": "5px",
    "data_row_padding": "5px",
    "row_group_font_weight": "bold",
    "row_group_background_color": "#fafbfc",
    "row_group_padding": "4px",
    "source_notes_font_size": "12px",
    "container_padding_y": "4px",
}

MUTED = "color:#666666"


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------

def status_badge(status: str | None) -> Markup:
    """A KPI status as a coloured badge with symbol and text (never colour alone).

    >>> str(status_badge("met"))
    '<span class="journey-badge" style="background:#009E73;color:#1a1a1a">✓ met</span>'
    """
    s = status or "not enough data"
    color = STATUS_COLORS.get(s, GREY)
    return Markup('<span class="journey-badge" style="background:{};color:{}">{}</span>').format(color, text_on(color), status_text(s))


def muted(text: Any) -> Markup:
    """Secondary text in a table cell (an inline style, so it also shows in JupyterLab).

    >>> str(muted("<1>"))
    '<span style="color:#666666">&lt;1&gt;</span>'
    """
    return Markup('<span style="{}">{}</span>').format(MUTED, text)


# --------------------------------------------------------------------------
# The generic table
# --------------------------------------------------------------------------

Formatter = str | Callable[[Any, dict], Any]

_GT_KINDS: dict[str, tuple[str, dict]] = {
    "pct": ("fmt_percent", {"decimals": 0}),
    "pct1": ("fmt_percent", {"decimals": 1}),
    "int": ("fmt_integer", {}),
    "float1": ("fmt_number", {"decimals": 1}),
    "float2": ("fmt_number", {"decimals": 2}),
}


def _cell(out: Any) -> str:
    return str(out) if isinstance(out, Markup) else str(escape("" if out is None else out))


def _table_id(caption: Any, df: pl.DataFrame, cols: Iterable[str]) -> str:
    payload = json.dumps([str(caption), list(cols), df.head(50).to_dicts()], default=str, sort_keys=True)
    return "jt" + hashlib.sha1(payload.encode()).hexdigest()[:10]


def _columns(df: pl.DataFrame, columns: Mapping[str, str] | Sequence[str] | None, suppressed: str | None) -> dict[str, str]:
    if columns is None:
        return {c: c.replace("_", " ").capitalize() for c in df.columns if c != suppressed}
    if isinstance(columns, Mapping):
        return dict(columns)
    return {c: c.replace("_", " ").capitalize() for c in columns}


def _display_frame(shown: pl.DataFrame, cols: dict[str, str], formats: dict[str, Formatter], sup_rows: set[int]) -> tuple[pl.DataFrame, list[str]]:
    """The frame great_tables shows: callable formats pre-rendered (escaped HTML strings), other columns as they are."""
    rows = shown.to_dicts()
    data: dict[str, pl.Series] = {}
    raw: list[str] = []
    for c in cols:
        f = formats.get(c, "auto")
        if callable(f):
            vals = [None if (i in sup_rows and is_missing(r.get(c))) else _cell(f(r.get(c), r)) for i, r in enumerate(rows)]
            data[c] = pl.Series(c, vals, dtype=pl.Utf8)
            raw.append(c)
        elif c in shown.columns:
            data[c] = shown[c]
        else:
            data[c] = pl.Series(c, [None] * shown.height, dtype=pl.Utf8)
    return pl.DataFrame(data), raw


def _apply_formats(gt, data: pl.DataFrame, formats: dict[str, Formatter], raw: list[str]):
    """great_tables formats: native ones for plain kinds, :func:`fmt_value` for the rest; pre-rendered cells pass through."""
    for c in raw:
        gt = gt.fmt(lambda x: x, columns=c).cols_align("right" if _numeric_like(data[c]) else "left", columns=c)
    for c in data.columns:
        if c in raw:
            continue
        kind = formats.get(c, "auto")
        dtype = data.schema[c]
        if kind in _GT_KINDS:
            name, kw = _GT_KINDS[kind]
            gt = getattr(gt, name)(columns=c, **kw)
        elif kind != "auto" or dtype == pl.Boolean or (dtype.is_numeric() and kind == "auto"):
            gt = gt.fmt(lambda x, k=kind: fmt_value(x, k), columns=c)
    return gt


def _numeric_like(s: pl.Series) -> bool:
    vals = [v for v in s.to_list() if v]
    return bool(vals) and all(re.match(r"^[<>≤≥+−\-–]?\s?[\d,.]+", re.sub(r"<[^>]+>", "", v)) for v in vals)


def house_style(gt):
    """Apply the report look (fonts, sizes, header colours, compact rows) to a great_tables ``GT``.

    >>> import polars as pl
    >>> from great_tables import GT
    >>> "13px" in house_style(GT(pl.DataFrame({"a": [1]}))).as_raw_html()
    True
    """
    return gt.tab_options(**HOUSE_OPTIONS)


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
    spanners: Mapping[str, Sequence[str]] | None = None,
    footnotes: Mapping[str, str] | None = None,
    group: str | None = None,
    style: Callable[[Any, pl.DataFrame], Any] | None = None,
) -> HTML:
    """A great_tables table of ``df`` in the house style, every cell escaped.

    ``columns`` maps column → header (or lists the columns to show);
    ``formats`` maps column → a :func:`fmt_value` kind (``pct``/``int``/
    ``float1``/``float2`` use great_tables' own formatters) or a function
    ``(value, row) -> str | Markup``. When ``suppressed`` names a boolean
    column, its True rows show "fewer than N" (N = ``min_count``) in every
    blank cell and are set in grey italics. ``spanners`` puts a label over
    related columns, ``footnotes`` attaches a footnote to a column's label,
    ``group`` turns a column into row-group headings, ``style(gt, frame)``
    may add styles. ``max_rows`` cuts the table with a note; an empty frame
    shows ``empty``.

    >>> import polars as pl
    >>> df = pl.DataFrame({"g": ["a"], "n": [None], "suppressed": [True]}, schema={"g": pl.Utf8, "n": pl.Int64, "suppressed": pl.Boolean})
    >>> "fewer than 5" in table(df, columns={"g": "Group", "n": "Learners"}, min_count=5).html
    True
    """
    from great_tables import GT, loc, style as gts

    formats = dict(formats or {})
    cols = _columns(df, columns, suppressed)
    shown = df if max_rows is None else df.head(max_rows)
    sup_rows = {i for i, v in enumerate(shown[suppressed].to_list()) if v} if suppressed and suppressed in shown.columns else set()
    data, raw = _display_frame(shown, cols, formats, sup_rows)
    if group and group in shown.columns:
        data = data.with_columns(shown[group].cast(pl.Utf8).alias("__group"))
    gt = GT(data, groupname_col="__group" if group and group in shown.columns else None).with_id(_table_id(caption, shown, cols))
    gt = house_style(gt.cols_label(**cols))
    if caption:
        gt = gt.tab_header(title=caption)
    gt = _apply_formats(gt, data.drop("__group", strict=False), formats, raw)
    gt = gt.sub_missing(columns=list(cols), missing_text="–")
    if sup_rows:  # after the general one: the later substitution wins
        text = f"fewer than {min_count}" if min_count else "suppressed"
        gt = gt.sub_missing(columns=list(cols), rows=sorted(sup_rows), missing_text=text)
        gt = gt.tab_style(gts.text(style="italic", color="#666666"), loc.body(rows=sorted(sup_rows)))
    for label, members in (spanners or {}).items():
        gt = gt.tab_spanner(label=label, columns=[c for c in members if c in cols])
    for c, text in (footnotes or {}).items():
        if c in cols:
            gt = gt.tab_footnote(text, locations=loc.column_labels(columns=c))
    if style is not None:
        gt = style(gt, shown)
    if not df.height:
        gt = gt.tab_source_note(empty)
    if max_rows is not None and df.height > max_rows:
        gt = gt.tab_source_note(f"Showing {max_rows} of {df.height} rows.")
    if note:
        gt = gt.tab_source_note(note)
    return HTML(gt.as_raw_html(), gt=gt)


def _status_style(column: str = "status"):
    """A ``style`` for :func:`table`: each status cell in its colour (with text colour that reads on it)."""
    def apply(gt, frame: pl.DataFrame):
        from great_tables import loc, style as gts

        statuses = [s or "not enough data" for s in frame[column].to_list()]
        for s in set(statuses):
            rows = [i for i, v in enumerate(statuses) if v == s]
            color = STATUS_COLORS.get(s, GREY)
            gt = gt.tab_style([gts.fill(color=color), gts.text(color=text_on(color), weight="bold")], loc.body(columns=column, rows=rows))
        return gt
    return apply


# --------------------------------------------------------------------------
# KPI tables
# --------------------------------------------------------------------------

def _measured_text(row: dict) -> Markup:
    m = row.get("metric", "")
    kind = metric_kind(m)
    v = row.get("value")
    s = escape(fmt_value(v, kind))
    lo, hi = row.get("low"), row.get("high")
    if not is_missing(v) and not is_missing(lo) and not is_missing(hi):
        s = s + Markup(" ") + muted(f"({fmt_interval(lo, hi, kind)})")
    return s


def _tp_link(link: str | None, tp_id: str, name: str, when: bool = True) -> Markup:
    """The touchpoint's name, linked to ``link`` (a format string with ``{id}``) when ``when``."""
    if not link or not when:
        return escape(name)
    return Markup('<a href="{}">{}</a>').format(link.format(id=anchor_id("", tp_id)[1:]), name)


def _kpi_frame(kpis: pl.DataFrame, jmap: JourneyMap) -> pl.DataFrame:
    order = {t: i for i, t in enumerate(jmap.touchpoint_ids)}
    names = {t.id: t.name for t in jmap.touchpoints}
    stages = {s.id: s.name for s in jmap.stages}
    tp_stage = {t.id: t.stage for t in jmap.touchpoints}
    return kpis.with_columns(
        pl.col("touchpoint_id").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("_o"),
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        pl.col("touchpoint_id").replace_strict(tp_stage, default="").replace_strict(stages, default="").alias("_stage"),
        pl.col("metric").replace_strict(METRIC_LABELS, default=pl.col("metric")).alias("_metric"),
    )


def kpi_table(kpis: pl.DataFrame, jmap: JourneyMap, *, caption: str | None = "KPI status per touchpoint", by: str | None = None,
              link: str | None = "#{id}") -> HTML:
    """KPI status table grouped by stage: touchpoint, KPI, target, measured (95% interval), learners, status.

    Input: ``metrics.kpis`` output. Rows keep the map's touchpoint order. The
    status cell carries colour, symbol and word. A missed KPI's touchpoint
    links (``link``, a format string with ``{id}``: default the touchpoint's
    column on the same page's map, ``#tp-…``) to its pain points and
    opportunities.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A & B", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> k = pl.DataFrame({"touchpoint_id": ["a"], "metric": ["conversion"], "value": [0.7], "n": [40], "low": [0.55],
    ...     "high": [0.82], "target": [0.8], "direction": ["higher"], "status": ["missed"]})
    >>> h = kpi_table(k, jm).html
    >>> "A &amp; B" in h and "✗ missed" in h and "≥ 80%" in h and 'href="#tp-a"' in h
    True
    """
    df = _kpi_frame(kpis, jmap).sort("_o", maintain_order=True)
    cols: dict[str, str] = {}
    if by and by in df.columns:
        cols[by] = by.replace("_", " ").capitalize()
    cols.update({"_tp": "Touchpoint", "_metric": "KPI", "target": "Target", "value": "Measured (95% interval)", "n": "Learners", "status": "Status"})
    tp_link = None if link is None else link.replace("{id}", "tp-{id}")
    return table(
        df, columns=cols, group="_stage", caption=caption, style=_status_style(),
        formats={"_tp": lambda v, r: _tp_link(tp_link, r["touchpoint_id"], v, r.get("status") == "missed"), "target": lambda v, r: target_text(r),
                 "value": lambda v, r: _measured_text(r), "status": lambda v, r: status_text(v), "n": "int"},
        note="Status: ✓ met the target · ≈ near (within tolerance) · ✗ missed · ? not enough data (fewer learners than the KPI's minimum). "
             "A missed KPI's touchpoint links to its pain points and opportunities on the map.",
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


def _change_cell(v: Any, row: dict) -> Markup:
    if is_missing(v):
        return muted("–")
    kind = metric_kind(row.get("metric", ""))
    s = fmt_value(v, "+pct") if kind == "pct" else fmt_value(v, "+float2")
    if row.get("changed_significantly"):
        good = (v > 0) == (row.get("direction", "higher") == "higher")
        arrow = "▲" if v > 0 else "▼"
        return Markup('<strong style="color:{}">{} {}</strong> {}').format("#007a5a" if good else "#b34700", arrow, s, muted("significant"))
    return muted(s)


def scorecard_table(scorecard: pl.DataFrame, jmap: JourneyMap, *, caption: str | None = "KPI scorecard: this period vs the previous one",
                    order_by: str = "status", link: str | None = "#todo-{id}") -> HTML:
    """The periodic review scorecard: KPI status with the change from the previous period.

    Input: ``Review.scorecard`` (kpi columns plus previous value, change,
    changed_significantly). A significant change is marked "▲"/"▼". With
    ``order_by="status"`` (default) rows run missed → near → met → not enough
    data, each in map order, so what needs attention comes first;
    ``order_by="map"`` keeps the map's touchpoint order. A missed KPI's
    touchpoint links to ``link`` (default: the page's "What to do" entry).

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
    df = _kpi_frame(scorecard, jmap).with_columns(
        pl.col("status").replace_strict({"missed": 0, "near": 1, "met": 2}, default=3, return_dtype=pl.Int64).alias("_s"),
    ).sort(["_s", "_o"] if order_by == "status" else ["_o"], maintain_order=True)
    cols = {"_tp": "Touchpoint", "_metric": "KPI", "target": "Target"}
    if prev:
        cols[prev] = "Previous period"
    cols.update({"value": "This period", "change": "Change", "n": "Learners", "status": "Status"})

    def target(v: Any, row: dict) -> str | Markup:
        prev_target = row.get("previous_target")
        if is_missing(prev_target):
            return target_text(row)
        return Markup("{} {}").format(target_text(row), muted(f"(changed; previous period: {target_text({**row, 'target': prev_target})})"))

    formats: dict[str, Formatter] = {
        "_tp": lambda v, r: _tp_link(link, r["touchpoint_id"], v, r.get("status") == "missed"),
        "target": target, "value": lambda v, r: _measured_text(r), "status": lambda v, r: status_text(v),
        "n": "int", "change": _change_cell,
    }
    if prev:
        formats[prev] = lambda v, r: fmt_value(v, metric_kind(r.get("metric", "")))
    if "change" not in df.columns:
        cols.pop("change")
    note = "A missed KPI's touchpoint links to what to do there (pain points and opportunities from the map)."
    if "previous_target" in df.columns and df["previous_target"].is_not_null().any():
        note += " A target marked “changed” was different in the previous period: that comparison spans a change of target."
    footnotes = {"change": "This period minus the previous one (pp = percentage points). ▲/▼ marks a change unlikely to be chance."} if "change" in cols else {}
    _review_columns(df, cols, formats, footnotes)
    if "finding" in cols and "change" not in cols:
        cols.pop("finding")
    return table(df, columns=cols, formats=formats, caption=caption, style=_status_style(),
                 spanners={"Measured": [c for c in (prev, "value", "change", "undecided") if c and c in cols]},
                 footnotes=footnotes or None, note=note)


# --------------------------------------------------------------------------
# Boxes and cards
# --------------------------------------------------------------------------

def touchpoint_in(text: str, jmap: JourneyMap) -> str | None:
    """The touchpoint a sentence is about: the one whose name occurs in it (the longest name wins; None if none).

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": t, "name": n, "stage": "s", "target_emotion": {"label": "curious"}} for t, n in [("q", "Quiz 1"), ("q1", "Quiz 10")]]})
    >>> touchpoint_in("Most stopped at Quiz 10 this month", jm), touchpoint_in("nothing", jm)
    ('q1', None)
    """
    best = None
    for t in jmap.touchpoints:
        if t.name and re.search(r"(?<![\w])" + re.escape(t.name) + r"(?![\w])", text) and (best is None or len(t.name) > len(best.name)):
            best = t
    return best.id if best else None


def _todo_link(tp: str | None, link: str | None) -> Markup:
    if not tp or not link:
        return Markup("")
    return Markup(' <a class="todo" href="{}">What to do →</a>').format(link.format(id=anchor_id("", tp)[1:]))


def findings_box(findings: Sequence[str], *, title: str = "Top findings", top: int = 3, jmap: JourneyMap | None = None,
                 link: str | None = "#todo-{id}", period: str | None = None) -> HTML:
    """The top ``top`` findings as a highlighted, numbered list (escaped).

    With ``jmap``, a finding about a touchpoint (its name occurs in the
    sentence) links to ``link`` — by default the page's "What to do" entry for
    that touchpoint (:func:`what_to_do`). ``period`` (e.g. "September 2025")
    is recorded on the box (``data-period``) for the index page.

    >>> "<li>Stop rate &lt;up&gt;</li>" in findings_box(["Stop rate <up>"]).html
    True
    """
    items = list(findings)[:top] or ["No notable changes this period."]
    lis = "".join(str(Markup("<li>{}{}</li>").format(f, _todo_link(touchpoint_in(f, jmap) if jmap else None, link))) for f in items)
    attr = Markup(' data-period="{}"').format(period) if period else Markup("")
    return HTML(str(Markup('<div class="journey-findings"{}><h3>{}</h3><ol>').format(attr, title)) + lis + "</ol></div>")


def takeaways_box(takeaways: Sequence[Any], *, title: str = "Takeaways", link: str | None = "journey_map.html#tp-{id}") -> HTML:
    """One-line takeaways (:class:`journeylib.insights.Takeaway`) as a highlighted list; each links to its touchpoint on the map.

    >>> from journeylib.insights import Takeaway
    >>> h = takeaways_box([Takeaway("largest drop", "Largest drop: <A> to B.", "a")]).html
    >>> "&lt;A&gt;" in h and 'href="journey_map.html#tp-a"' in h
    True
    """
    if not takeaways:
        return HTML("")
    lis = []
    for t in takeaways:
        go = Markup(' <a class="todo" href="{}">On the map →</a>').format(link.format(id=anchor_id("", t.touchpoint_id)[1:])) if link and t.touchpoint_id else Markup("")
        lis.append(str(Markup("<li>{}{}</li>").format(t.text, go)))
    return HTML(str(Markup('<div class="journey-findings journey-takeaways"><h3>{}</h3><ul>').format(title)) + "".join(lis) + "</ul></div>")


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


def no_data_page(subject: str, message: str) -> HTML:
    """One line at the top of a page whose subject has no data; the index marks the page (``data-subject``).

    >>> h = no_data_page("emotion responses", "This workspace has no <emotion> responses.").html
    >>> 'data-subject="emotion responses"' in h and "&lt;emotion&gt;" in h
    True
    """
    return HTML(str(Markup('<div class="journey-nodata-page" data-subject="{}"><strong>No data for this page:</strong> {}</div>').format(subject, message)))


def what_to_do(jmap: JourneyMap, *, kpis: pl.DataFrame | None = None, findings: Sequence[str] = (), statuses: Sequence[str] = ("missed",),
               map_link: str | None = "journey_map.html#tp-{id}", caption: str = "What to do: pain points and opportunities where KPIs are missed") -> HTML:
    """For every touchpoint with a missed KPI (or named in a finding): why it needs attention, and its pain points and opportunities from the map.

    Each row's touchpoint carries the anchor ``todo-<id>`` (scorecards and
    findings link here) and links to the touchpoint on the map
    (``map_link``). A touchpoint without pain points or opportunities says
    so, so the map can be completed.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"},
    ...                      "pain_points": ["Slow <page>"], "opportunities": ["Cache it"]}]})
    >>> k = pl.DataFrame({"touchpoint_id": ["a"], "metric": ["conversion"], "status": ["missed"]})
    >>> h = what_to_do(jm, kpis=k).html
    >>> 'id="todo-a"' in h and "Slow &lt;page&gt;" in h and "Cache it" in h
    True
    """
    why: dict[str, list[str]] = {}
    if kpis is not None and kpis.height:
        for r in kpis.filter(pl.col("status").is_in(list(statuses))).iter_rows(named=True):
            why.setdefault(r["touchpoint_id"], []).append(f"{METRIC_LABELS.get(r['metric'], r['metric'])} {r['status']}")
    for f in findings:
        tp = touchpoint_in(f, jmap)
        if tp:
            why.setdefault(tp, []).append("named in a top finding")
    rows = []
    for t in jmap.touchpoints:
        if t.id not in why:
            continue
        rows.append({"touchpoint_id": t.id, "_tp": t.name, "why": "; ".join(dict.fromkeys(why[t.id])), "pain": list(t.pain_points), "opp": list(t.opportunities)})
    df = pl.DataFrame(rows, schema={"touchpoint_id": pl.Utf8, "_tp": pl.Utf8, "why": pl.Utf8, "pain": pl.List(pl.Utf8), "opp": pl.List(pl.Utf8)})

    def items(v: Any, r: dict) -> Markup:
        if not v:
            return muted("none recorded in the map")
        return Markup("<br>").join(Markup("• {}").format(x) for x in v)

    def name(v: Any, r: dict) -> Markup:
        target = Markup('<span id="{}"></span>').format(anchor_id("todo", r["touchpoint_id"]))
        return target + _tp_link(map_link, r["touchpoint_id"], v)

    return table(df, columns={"_tp": "Touchpoint", "why": "Why it needs attention", "pain": "Known pain points", "opp": "Opportunities"},
                 formats={"_tp": name, "pain": items, "opp": items}, caption=caption, empty="No KPI is missed: nothing needs attention.",
                 note="Pain points and opportunities come from the journey map (journey.yml); the touchpoint links to its column on the map.")


# --------------------------------------------------------------------------
# Data quality
# --------------------------------------------------------------------------

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


def notes(texts: Iterable[str]) -> HTML:
    """Several short notes (footnotes, definitions) in one muted block, a line each, every text escaped.

    >>> notes(["¹ q < 0.001", "a & b"]).html
    '<div class="journey-notes"><p class="journey-meta">¹ q &lt; 0.001</p><p class="journey-meta">a &amp; b</p></div>'
    """
    items = Markup("").join(Markup(note(t).html) for t in texts)
    return HTML(str(Markup('<div class="journey-notes">{}</div>').format(items)))


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
    """One row per persona: starters, decided completion (95% interval), stopped, still undecided, where most stop.

    Input: ``metrics.funnel(..., by="persona")``. Completion counts only
    decided learners (:func:`journeylib.insights.decided_completion`:
    reached the last step / (reached it + stopped)); learners still in
    progress are shown apart, never as lost. A persona with fewer than
    ``min_count`` starters is suppressed.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}},
    ...                     {"id": "b", "name": "B", "stage": "s", "target_emotion": {"label": "proud"}}],
    ...     "personas": [{"id": "p", "name": "P"}]})
    >>> f = pl.DataFrame({"persona": ["p", "p"], "step": [1, 2], "touchpoint_id": ["a", "b"], "learners": [10, 4],
    ...     "stopped": [5, 0], "in_progress": [1, 0]})
    >>> h = persona_summary(f, jm).html
    >>> "44%" in h and "A" in h
    True
    """
    from .insights import decided_completion
    from .privacy import suppress

    pn = _persona_names(jmap)
    names = _tp_names(jmap)
    dc = decided_completion(funnel, by)
    most = (funnel.filter(pl.col("stopped").fill_null(0) > 0).sort([by, "stopped", "step"], descending=[False, True, False])
            .group_by(by, maintain_order=True).head(1).select(by, pl.col("touchpoint_id").alias("_most")))
    df = dc.join(most, on=by, how="left").with_columns(
        pl.col(by).cast(pl.Utf8).replace_strict(pn, default=pl.col(by).cast(pl.Utf8)).alias("_p"),
        pl.col("_most").replace_strict(names, default=pl.col("_most")).alias("_most"),
        pl.col(by).cast(pl.Utf8).replace_strict({p: i for i, p in enumerate(jmap.persona_ids())}, default=len(jmap.personas), return_dtype=pl.Int64).alias("_o"),
    ).sort(["_o", "_p"])
    df = df.with_columns(pl.col("starters").is_null().alias("suppressed"))  # already suppressed upstream (privacy.suppress on the funnel)
    df = suppress(df, count="starters", values=["completed", "stopped", "undecided", "completion", "completion_low", "completion_high"], min_count=min_count)
    df = df.with_columns(pl.when(pl.col("suppressed")).then(None).otherwise(pl.col("_most")).alias("_most"))

    def completion(v: Any, r: dict) -> Markup:
        if is_missing(v):
            return escape("–")
        return escape(fmt_value(v, "pct")) + Markup(" ") + muted(f"({fmt_value(r['completion_low'], 'pct')}–{fmt_value(r['completion_high'], 'pct')})")

    last = names.get(dc["last_step"][0], "") if dc.height else ""
    return table(
        df,
        columns={"_p": "Persona", "starters": "Started", "completion": f"Reached {last}", "completed": "Learners", "stopped": "Stopped",
                 "undecided": "Still undecided", "_most": "Most stop at"},
        formats={"starters": "int", "completion": completion, "completed": "int", "stopped": "int", "undecided": "int"},
        spanners={"Decided learners": ["completion", "completed", "stopped"]},
        footnotes={"completion": "Of the learners who have decided (reached the last step or stopped), with a 95% interval; learners still in progress are not counted."},
        min_count=min_count, caption="Each persona at a glance",
        note=f"Stopped: no event for longer than the dormancy window. Still undecided: active recently, not counted as stopped. Personas with fewer than {min_count} starters are suppressed.",
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
    from .privacy import suppress

    pn = _persona_names(jmap)
    names = _tp_names(jmap)
    df = (
        funnel.with_columns(pl.col("stopped").fill_null(0))
        .with_columns((pl.col("stopped") / pl.col("stopped").sum().over(by)).alias("share"),
                      pl.col(by).cast(pl.Utf8).replace_strict({p: i for i, p in enumerate(jmap.persona_ids())}, default=len(jmap.personas),
                                                               return_dtype=pl.Int64).alias("_o"))
        .sort(["_o", by, "stopped"], descending=[False, False, True])   # personas in map order, learners in no persona last
        .group_by(by, maintain_order=True).head(top)
        .filter(pl.col("stopped") > 0)
        .with_columns(
            pl.col(by).cast(pl.Utf8).replace_strict(pn, default=pl.col(by).cast(pl.Utf8)).alias("_p"),
            pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("_tp"),
        )
        .select("_p", "_tp", "step", "stopped", "share")
    )
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
        ratio = pl.when(pl.col("direction") == "lower").then(pl.col("target") / pl.col("value")).otherwise(pl.col("value") / pl.col("target"))
        ratio = pl.when(ratio.is_finite()).then(ratio.clip(0, 2)).otherwise(None)
        k = kk.group_by("touchpoint_id").agg((pl.col("status") == "met").mean().alias("kpis_met"), ratio.mean().alias("attainment"))
    else:
        k = pl.DataFrame(schema={"touchpoint_id": pl.Utf8, "kpis_met": pl.Float64, "attainment": pl.Float64})
    e = emotion.select([c for c in ("touchpoint_id", "n", "mean_valence", "target_valence", "gap") if c in emotion.columns])
    d = dropoff.select([c for c in ("touchpoint_id", "reached", "stopped", "stop_rate") if c in dropoff.columns])
    return e.join(d, on="touchpoint_id", how="left").join(k, on="touchpoint_id", how="left")


def emotion_headline(emotion: pl.DataFrame, evs: pl.DataFrame) -> HTML:
    """Headline cards: responses, touchpoints below target, the largest gap, and significant low-emotion → stop links;
    with no responses at all, the page's one-line no-data banner (:func:`no_data_page`) instead.

    >>> import polars as pl
    >>> e = pl.DataFrame({"touchpoint_id": ["a"], "touchpoint_name": ["A"], "n": [10], "gap": [-0.8], "high": [0.5], "target_valence": [1.0]})
    >>> "A" in emotion_headline(e, pl.DataFrame({"p_value": [0.01], "difference": [0.2]})).html
    True
    """
    has = emotion.filter(pl.col("n").fill_null(0) > 0)
    if not has.height:
        return no_data_page("emotion responses", "this workspace has no emotion responses (surveys or feedback), so the charts below can show only "
                                                 "the designed target emotion. Add a survey export (journey ingest) to measure how learners feel.")
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
    return table(df, columns={"_tp": "Touchpoint", "low_n": "Responses", "low_stop_rate": "Stop rate", "other_n": "Responses ", "other_stop_rate": "Stop rate ",
                              "difference": "Difference", "p_value": "p-value"},
                 formats={"low_n": "int", "other_n": "int", "low_stop_rate": "pct", "other_stop_rate": "pct", "difference": "+pct", "p_value": "p"},
                 spanners={"After a low response": ["low_n", "low_stop_rate"], "After other responses": ["other_n", "other_stop_rate"]},
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


def period_words(start: Any, end: Any) -> str:
    """A period in words: "September 2025" for a calendar month, else "1 Sep 2025 to 30 Sep 2025".

    >>> import datetime as dt
    >>> period_words(dt.datetime(2025, 9, 1), dt.datetime(2025, 10, 1)), period_words(dt.datetime(2025, 9, 1), dt.datetime(2025, 9, 8))
    ('September 2025', '1 Sep 2025 to 7 Sep 2025')
    """
    import datetime as dt

    last = end - dt.timedelta(microseconds=1)
    if start.day == 1 and last.month == start.month and last.year == start.year and (last + dt.timedelta(days=1)).day == 1:
        return f"{start:%B %Y}"
    return f"{start.day} {start:%b %Y} to {last.day} {last:%b %Y}"


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
        if is_missing(v):
            return escape("–")
        return escape(fmt_value(v, "+pct")) + Markup(" ") + muted(f"({fmt_value(r.get('low'), '+pct')} to {fmt_value(r.get('high'), '+pct')})")

    return table(df, columns={"_d": "Change", "_tp": "Touchpoint", "date": "Date", "before_n": "Learners", "before_rate": "Rate",
                              "after_n": "Learners ", "after_rate": "Rate ", "difference": "Difference (95% interval)", "p_value": "p-value"},
                 formats={"date": lambda v, r: str(v)[:10], "before_n": "int", "after_n": "int", "before_rate": "pct", "after_rate": "pct", "difference": diff, "p_value": "p"},
                 spanners={"Before": ["before_n", "before_rate"], "After": ["after_n", "after_rate"]},
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


def verdict(r: Mapping[str, Any]) -> str:
    """How a compared row reads under the review's significance policy (``finding``, ``provisional``, ``significant``).

    >>> verdict({"finding": True}), verdict({"significant": True, "finding": False}), verdict({"provisional": True, "finding": False})
    ('finding', 'significant, below the minimum effect', 'provisional: still being followed')
    """
    if r.get("provisional"):
        return "provisional: still being followed"
    if r.get("finding"):
        return "finding"
    if r.get("significant") or r.get("changed_significantly"):
        return "significant, below the minimum effect"
    return "–"


def _review_columns(df: pl.DataFrame, columns: dict[str, str], formats: dict[str, Any], footnotes: dict[str, str], *,
                    undecided: str = "undecided") -> None:
    """Add the review's "still undecided" and verdict columns to a table's columns where the frame has them (in place)."""
    if undecided in df.columns:
        columns[undecided] = "Still undecided"
        formats[undecided] = "int"
        footnotes[undecided] = "Learners not yet followed long enough to know whether they carried on: never counted in a rate."
    if "finding" in df.columns:
        columns["finding"] = "Verdict"
        formats["finding"] = lambda v, r: verdict(r)
        footnotes["finding"] = ("A finding is significant after correcting for every comparison of the review and at least the map's minimum effect; "
                                "provisional rows compare cohorts not yet followed for the whole horizon.")


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

    columns = {"_tp": "Touchpoint", "_metric": "Measure", "previous_value": "Previous period", "value": "This period", "change": "Change",
               "n": "Learners", "q_value": "q-value"}
    formats: dict[str, Any] = {"previous_value": val, "value": val, "change": chg, "n": "int", "q_value": "p"}
    footnotes = {"q_value": "The p-value corrected for the number of comparisons (false discovery rate)."}
    _review_columns(df, columns, formats, footnotes)
    return table(df, columns=columns, formats=formats, max_rows=max_rows,
                 caption="Significant changes against the previous period", empty="No measure changed significantly.",
                 footnotes=footnotes, note="Every measure at every touchpoint was compared.")


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
    columns = {"_tp": "Touchpoint", "previous_stop_rate": "Before", "stop_rate": "Now", "change": "Change",
               "stopped": "Stopped now", "reached": "Reached now", "q_value": "q-value"}
    formats: dict[str, Any] = {"previous_stop_rate": "pct", "stop_rate": "pct", "change": "+pct", "stopped": "int", "reached": "int", "q_value": "p"}
    footnotes: dict[str, str] = {}
    _review_columns(df, columns, formats, footnotes)
    return table(df, columns=columns, formats=formats, footnotes=footnotes or None,
                 spanners={"Stop rate": ["previous_stop_rate", "stop_rate", "change"]},
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
    from .privacy import suppress

    names = {t.id: t.name for t in jmap.touchpoints}
    df = gaps
    if significant_only:
        df = df.filter(pl.col("significant") | pl.col("suppressed"))
    df = suppress(df, count="segment_n", values=["segment_converted", "segment_rate", "difference", "effect_size", "p_value", "q_value",
                                                 *[c for c in ("segment_undecided",) if c in df.columns]], min_count=min_count)
    df = df.with_columns(
        (pl.col("attribute") + " = " + pl.col("value").cast(pl.Utf8)).alias("group"),
        pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("touchpoint"),
    ).sort([pl.col("suppressed"), pl.col("significant"), pl.col("difference").abs()], descending=[False, True, True], nulls_last=True)
    columns = {"group": "Group", "touchpoint": "Converting from", "segment_n": "Size", "segment_rate": "Rate", "rest_rate": "Everyone else",
               "difference": "Difference", "q_value": "q-value", "significant": "Significant"}
    formats: dict[str, Any] = {"segment_n": "int", "segment_rate": "pct", "rest_rate": "pct", "difference": "+pct", "q_value": "p",
                               "significant": lambda v, r: "–" if r.get("suppressed") else ("yes" if v else "no")}
    footnotes = {"q_value": "The p-value corrected for the number of comparisons (false discovery rate)."}
    _review_columns(df, columns, formats, footnotes, undecided="segment_undecided")
    if "finding" in columns:
        columns.pop("significant")
        base = formats["finding"]
        formats["finding"] = lambda v, r: "–" if r.get("suppressed") else base(v, r)
    if "tested_as" in df.columns:
        columns["tested_as"] = "Tested as"
        formats["tested_as"] = lambda v, r: "this group" if is_missing(v) else f"same test as {v}"
        footnotes["tested_as"] = "Identical or complementary groups (and personas derived from one column) share one test."
    return table(
        df,
        columns=columns,
        formats=formats,
        spanners={"The group": [c for c in ("segment_n", "segment_rate", "segment_undecided") if c in columns]},
        footnotes=footnotes,
        min_count=min_count, max_rows=max_rows,
        caption="Groups converting differently from everyone else",
        note=f"Groups smaller than {min_count} learners are suppressed (shown as 'fewer than {min_count}').",
        empty="No group differs from everyone else.",
    )



__all__ = [
    "CSS", "HTML", "METRIC_LABELS", "STATUS_SYMBOLS", "anchor_id", "changes_table", "data_quality_table", "emotion_headline", "emotion_outcomes",
    "emotion_stopping_table", "findings_box", "fmt_value", "funnel_note", "headline_cards", "hotspots_table", "house_style", "interventions_table",
    "journey_map_html", "kpi_table", "map_headline", "metric_kind", "muted", "no_data_page", "note", "notes", "period_words", "persona_summary",
    "review_header", "scorecard_table", "segment_table", "silent_touchpoints", "status_badge", "status_summary", "status_text", "stop_table",
    "suppressed_groups_note", "table", "takeaways_box", "text_on", "touchpoint_in", "verdict", "what_to_do",
]
