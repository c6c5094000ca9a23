"""Altair chart builders for journey reports, with one shared theme.

Every builder takes a small polars frame as returned by :mod:`journeylib.metrics`
(or :mod:`journeylib.insights`) and returns an ``alt.Chart`` (a value you can
test, save or render). Colours are consistent across charts: stages and
personas get fixed colours from a colour-blind-safe palette (Okabe & Ito) in
map order, see :func:`stage_colors` and :func:`persona_colors`. Every colour
means one thing and every chart with more than one series has a legend. Long
labels wrap over lines instead of being cut.

**Fitting the page.** Charts take the width of their container
(``width="container"``); faceted charts (one panel per persona) carry a hint
in ``usermeta`` so that the page picks as many panels per row as fit; the
emotional curve carries a vertical variant for narrow screens. The same
fitting runs in Python (:func:`fit_spec`) for the static image and for
notebooks, and in the page's script for live charts.

**Rendering.** :func:`show` is how notebooks display a chart:

* ``"notebook"`` mode (JupyterLab): a :class:`NotebookChart` — the chart
  compiled to a Vega spec and handed to JupyterLab's own Vega renderer
  (``application/vnd.vega.v5+json``), so nothing is loaded from the internet;
* ``"report"`` mode: a :class:`ChartHTML` — a ``<figure>`` holding a static SVG
  drawn in Python by vl-convert (what readers see with JavaScript off, in
  mail clients and locked-down viewers) and the chart's JSON spec, which the
  page's script (:func:`chart_page_scripts`, libraries inlined once per page)
  draws live in its place.

A chart with nothing to draw (:func:`no_data_chart`) is shown as one line of
text instead of an empty frame.

>>> import polars as pl
>>> from journeylib.model import JourneyMap
>>> jm = JourneyMap.model_validate({"name": "Demo", "stages": [{"id": "s", "name": "S"}],
...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
>>> stage_colors(jm)
{'s': '#0072B2'}
"""

from __future__ import annotations

import copy
import functools
import hashlib
import html as _html
import json
import math
import re
import textwrap
from typing import Any, Iterable, Sequence

import altair as alt
import polars as pl

from .model import JourneyMap

#: Okabe & Ito colour-blind-safe palette (yellow last: low contrast on white).
PALETTE: list[str] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
#: Colour for "unassigned" / "everyone else" / not enough data.
GREY = "#8C8C8C"
#: The designed target (emotion) in every chart.
TARGET_GREY = "#555555"
#: KPI status → colour (always shown together with the status text).
STATUS_COLORS: dict[str, str] = {
    "met": "#009E73",
    "near": "#E69F00",
    "missed": "#D55E00",
    "not enough data": GREY,
}
STATUS_ORDER = ["met", "near", "missed", "not enough data"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
THEME_NAME = "journey"
#: Sequential blues for ordered buckets (light = few days, dark = many).
BLUES = ["#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b"]

#: Vega-Embed options used in reports: SVG renderer (crisp, testable), tooltips, no action menu.
EMBED_OPTIONS: dict[str, Any] = {"actions": False, "renderer": "svg", "tooltip": {"theme": "light"}}
#: Width (px) at which the static image is drawn, and at which notebooks draw container-wide charts.
STATIC_WIDTH = 960
NOTEBOOK_WIDTH = 860
#: Page CSS for charts: live charts take the container's width; the static picture scales and hides once the live chart is drawn.
CSS = """
figure.journey-chart { margin: 0.6em 0 1.4em 0; max-width: 100%; }
figure.journey-chart .journey-chart-static svg { display: block; max-width: 100%; height: auto; }
figure.journey-chart.journey-live .journey-chart-static { display: none; }
figure.journey-chart .journey-chart-view, figure.journey-chart .journey-chart-view.vega-embed { display: block; width: 100%; }
figure.journey-chart .vega-embed summary { display: none; }
p.journey-nodata { color: #555; background: #f6f8fa; border-left: 4px solid #8C8C8C; padding: 6px 12px; margin: 0.6em 0 1.2em 0; }
@media print {
  figure.journey-chart { break-inside: avoid; }
  figure.journey-chart svg { max-width: 100% !important; height: auto !important; }
}
"""
#: Split a label on newlines (labels are wrapped in Python, see :func:`wrap`).
WRAP_EXPR = "split(datum.label, '\\n')"


@alt.theme.register(THEME_NAME, enable=True)
def journey_theme() -> alt.theme.ThemeConfig:
    """The journey report theme: readable sizes, system fonts, Okabe-Ito colours.

    Registered and enabled on import of :mod:`journeylib.charts`. Labels are
    never cut (``labelLimit`` 0): builders wrap long labels instead.

    >>> journey_theme()["config"]["range"]["category"][0]
    '#0072B2'
    """
    return {
        "config": {
            "font": FONT,
            "background": "#ffffff",
            "view": {"stroke": "transparent", "continuousWidth": 560, "continuousHeight": 300},
            "range": {"category": list(PALETTE)},
            "axis": {
                "labelFontSize": 12,
                "titleFontSize": 13,
                "titleFontWeight": "normal",
                "titleColor": "#333333",
                "labelColor": "#333333",
                "gridColor": "#e6e6e6",
                "domainColor": "#999999",
                "tickColor": "#999999",
                "labelLimit": 0,
            },
            "axisQuantitative": {"tickCount": 6},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "top", "labelLimit": 0, "titleLimit": 0},
            "header": {"labelFontSize": 13, "titleFontSize": 13, "labelFontWeight": "bold", "labelLimit": 0},
            "title": {"fontSize": 15, "anchor": "start", "frame": "bounds", "fontWeight": "bold", "color": "#1a1a1a", "subtitleFontSize": 12, "subtitleColor": "#555555",
                      "limit": 0},
            "text": {"fontSize": 12},
            "bar": {"cornerRadiusEnd": 2},
            "point": {"size": 70, "filled": True},
        }
    }


# --------------------------------------------------------------------------
# Consistent colours
# --------------------------------------------------------------------------

def stage_colors(jmap: JourneyMap) -> dict[str, str]:
    """Stage id → colour, in map order, cycling through :data:`PALETTE`.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
    ...     "touchpoints": [{"id": "t", "name": "T", "stage": "a", "target_emotion": {"label": "curious"}}]})
    >>> list(stage_colors(jm).values())
    ['#0072B2', '#E69F00']
    """
    return {s.id: PALETTE[i % len(PALETTE)] for i, s in enumerate(jmap.stages)}


def persona_colors(jmap: JourneyMap, extra: Iterable[str] = ()) -> dict[str, str]:
    """Persona id → colour in map order; ``"unassigned"`` and other extras are grey.

    The same persona gets the same colour in every chart of every report.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "a", "name": "A"}],
    ...     "touchpoints": [{"id": "t", "name": "T", "stage": "a", "target_emotion": {"label": "curious"}}],
    ...     "personas": [{"id": "p1", "name": "P1"}, {"id": "p2", "name": "P2"}]})
    >>> persona_colors(jm, extra=["unassigned"])
    {'p1': '#0072B2', 'p2': '#E69F00', 'unassigned': '#8C8C8C'}
    """
    out = {p.id: PALETTE[i % len(PALETTE)] for i, p in enumerate(jmap.personas)}
    for e in extra:
        out.setdefault(e, GREY)
    return out


def _scale(colors: dict[str, str], present: Iterable[Any] | None = None) -> alt.Scale:
    """A colour scale fixed to ``colors`` (keeps colours stable whatever is present)."""
    domain = list(colors)
    if present is not None:
        for v in present:
            if v is not None and v not in colors:
                domain.append(v)
    rng = [colors.get(d, GREY) for d in domain]
    return alt.Scale(domain=domain, range=rng)


def _names(jmap: JourneyMap) -> dict[str, str]:
    return {t.id: t.name for t in jmap.touchpoints}


def _stage_names(jmap: JourneyMap) -> dict[str, str]:
    return {s.id: s.name for s in jmap.stages}


def _persona_names(jmap: JourneyMap) -> dict[str, str]:
    return {p.id: p.name for p in jmap.personas}


def _by_col(by: str | Sequence[str] | None) -> str | None:
    if by is None:
        return None
    if isinstance(by, str):
        return by
    return by[0] if len(by) else None


def _named_by(frame: pl.DataFrame, jmap: JourneyMap, by) -> tuple[pl.DataFrame, str | None]:
    """``frame`` with display columns (:func:`_with_names`) and the grouping column,
    or ``None`` when the frame is not grouped by it."""
    by = _by_col(by)
    by = by if by in frame.columns else None
    return _with_names(frame, jmap, by), by


def _with_names(df: pl.DataFrame, jmap: JourneyMap, by: str | None = None) -> pl.DataFrame:
    """Add display columns: touchpoint_name, tp_label (wrapped), stage_name, tp_order, and by_name for personas."""
    names, stages = _names(jmap), _stage_names(jmap)
    order = {t: i for i, t in enumerate(jmap.touchpoint_ids)}
    out = df
    if "touchpoint_id" in out.columns:
        if "touchpoint_name" not in out.columns:
            out = out.with_columns(pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("touchpoint_name"))
        if "stage" not in out.columns:
            out = out.with_columns(pl.col("touchpoint_id").replace_strict({t.id: t.stage for t in jmap.touchpoints}, default=None).alias("stage"))
        out = out.with_columns(pl.col("touchpoint_id").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("tp_order"),
                               _wrapped("touchpoint_name").alias("tp_label"))
    if "stage" in out.columns:
        out = out.with_columns(pl.col("stage").replace_strict(stages, default=pl.col("stage")).alias("stage_name"))
    if by is not None and by in out.columns:
        pn = _persona_names(jmap) if by == "persona" else {}
        out = out.with_columns(pl.col(by).cast(pl.Utf8).replace_strict(pn, default=pl.col(by).cast(pl.Utf8)).alias("by_name"))
    return out


def _persona_scale(jmap: JourneyMap, df: pl.DataFrame, by: str, field: str = "by_name", first: dict[str, str] | None = None) -> alt.Scale:
    """Colour scale for ``field`` (display names): personas keep their map colours; ``first`` entries lead."""
    if by == "persona":
        pc = persona_colors(jmap, extra=["unassigned"])
        pn = _persona_names(jmap)
        colors = {pn.get(k, k): v for k, v in pc.items()}
    else:
        values = sorted(v for v in df[field].unique().to_list() if v is not None)
        colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(values)}
    present = [v for v in df[field].unique().to_list() if v is not None] if field in df.columns else []
    lead = dict(first or {})
    domain = list(lead) + [k for k in colors if k in present and k not in lead] + sorted(v for v in present if v not in colors and v not in lead)
    return alt.Scale(domain=domain, range=[lead.get(d) or colors.get(d, GREY) for d in domain])


def _title_of(by: str) -> str:
    return by.replace("_", " ").capitalize()


# --------------------------------------------------------------------------
# Labels that wrap instead of being cut
# --------------------------------------------------------------------------

#: characters per line of wrapped axis labels and panel titles
LABEL_CHARS = 24


def wrap(text: Any, width: int = LABEL_CHARS) -> Any:
    """``text`` wrapped into lines of at most ``width`` characters, joined by newlines (long words are kept whole).

    Axis labels use ``labelExpr`` :data:`WRAP_EXPR` to draw each line.

    >>> wrap("Lesson 4: Cleaning data with pandas", 20)
    'Lesson 4: Cleaning\\ndata with pandas'
    >>> wrap(None) is None
    True
    """
    if text is None:
        return None
    s = str(text)
    return "\n".join(textwrap.wrap(s, width, break_long_words=False, break_on_hyphens=False) or [s])


def _wrapped(col: str, width: int = LABEL_CHARS) -> pl.Expr:
    return pl.col(col).map_elements(lambda v: wrap(v, width), return_dtype=pl.Utf8)


def label_px(labels: Iterable[Any], *, font_px: float = 12) -> int:
    """Estimated width in pixels of the widest line of wrapped ``labels`` (0.62 × font size per character, plus a margin).

    >>> label_px(["Quiz 1", "Lesson 2: Summaries\\nand charts"])
    150
    """
    longest = max((len(line) for v in labels if v is not None for line in str(v).split("\n")), default=0)
    return int(math.ceil(longest * 0.62 * font_px)) + 8


def _steps_axis(**kw) -> alt.Axis:
    return alt.Axis(labelExpr=WRAP_EXPR, labelLimit=0, **kw)


#: Panels per row in persona small multiples at most (fewer on narrow screens).
FACET_COLUMNS = 5
#: Panel headers: the ``panel`` field holds the title wrapped with newlines; one line each.
PANEL_HEADER = alt.Header(labelFontSize=12, labelExpr=WRAP_EXPR, labelLimit=0, labelBaseline="bottom")


def _facet_order(jmap: JourneyMap, df: pl.DataFrame, by: str) -> list[str]:
    """Panel order: personas in map order (then anything else, e.g. unassigned, alphabetically)."""
    present = [v for v in df["by_name"].unique().to_list() if v is not None]
    if by == "persona":
        pn = _persona_names(jmap)
        first = [pn[p.id] for p in jmap.personas if pn[p.id] in present]
    else:
        first = []
    return first + sorted(v for v in present if v not in first)


def _panels(df: pl.DataFrame, jmap: JourneyMap, by: str, width: int = 18) -> tuple[pl.DataFrame, list[str]]:
    """Add ``panel``: the panel title wrapped to lines of about ``width`` characters, and the panel order."""
    order = [wrap(v, width) for v in _facet_order(jmap, df, by)]
    return df.with_columns(_wrapped("by_name", width).alias("panel")), order


def _journey_meta(chart: alt.TopLevelMixin, **meta) -> alt.TopLevelMixin:
    """Attach layout hints under ``usermeta.journey`` (read by :func:`fit_spec` and the page script)."""
    um = chart.usermeta if isinstance(getattr(chart, "usermeta", alt.Undefined), dict) else {}
    j = dict(um.get("journey", {}))
    j.update(meta)
    return chart.properties(usermeta={**um, "journey": j})


def _facet_meta(labels: Iterable[Any], *, panels: int = FACET_COLUMNS, panel: int = 150, max_panel: int = 260, spacing: int = 14) -> dict:
    return {"panel": panel, "max_panel": max_panel, "fixed": label_px(labels) + 24, "spacing": spacing, "max_columns": max(1, min(FACET_COLUMNS, panels))}


def _legend_meta(labels: Iterable[Any]) -> int:
    """Pixels per legend entry (symbol, gap and the longest label)."""
    return label_px(labels) + 30


def no_data_chart(title: str, message: str = "No data to show for this selection.") -> alt.Chart:
    """A placeholder for a chart with nothing to draw: :func:`show` displays it as one line of text.

    It is still a valid chart (a text mark) for code that renders it directly.

    >>> c = no_data_chart("Funnel")
    >>> c.to_dict()["mark"]["type"], no_data_message(c)
    ('text', 'No data to show for this selection.')
    """
    chart = alt.Chart(pl.DataFrame({"message": [message]})).mark_text(fontSize=13, color="#555555", align="left", x=0, y=20).encode(
        text="message:N").properties(width=480, height=40, title=alt.Title(title))
    return _journey_meta(chart, no_data=message)


def no_data_message(chart: alt.TopLevelMixin | dict) -> str | None:
    """The message of a :func:`no_data_chart`, else None.

    >>> no_data_message({"mark": "point"}) is None
    True
    """
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    return ((spec.get("usermeta") or {}).get("journey") or {}).get("no_data")


#: the widest a legend row may be (px): the report page is about 1130 px wide at a 1200 px window
LEGEND_ROW_WIDTH = 900


def legend_columns(labels: Iterable[Any], *, row_width: int = LEGEND_ROW_WIDTH) -> int:
    """How many legend entries fit on one row of ``row_width`` pixels, so a long legend wraps instead of widening the chart.

    Estimate: ``7 px`` per character of the longest label (at most
    ``labelLimit`` 220 px) plus ``30 px`` for the symbol and gap; at least 1,
    at most the number of labels.

    >>> legend_columns(["A", "B", "C"])
    3
    >>> legend_columns(["Persona number 1 with a long descriptive name"] * 9)
    3
    """
    labels = [str(v) for v in labels]
    if not labels:
        return 1
    entry = min(220, 7 * max(len(v) for v in labels)) + 30
    return max(1, min(len(labels), row_width // entry))


def _legend(labels: Iterable[Any], **kw) -> alt.Legend:
    labels = list(labels)
    kw.setdefault("symbolOpacity", 1)
    return alt.Legend(columns=legend_columns(labels), labelExpr=WRAP_EXPR, **kw)


def _pct(field: str, title: str) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:Q", title=title, format=".0%")


def _container(chart: alt.TopLevelMixin, height: Any, *, legend_labels: Iterable[Any] = (), legend_offset: int = 0) -> alt.TopLevelMixin:
    """The chart as wide as its container (axes included); legend columns refit to the width.

    ``legend_offset``: pixels left of the plot (the y-axis labels) that a top
    or bottom legend, which starts at the plot's left edge, cannot use.
    """
    out = chart.properties(width="container", height=height, autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    labels = list(legend_labels)
    if not labels:
        return out
    return _journey_meta(out, legend_entry=_legend_meta(labels), **({"legend_offset": legend_offset} if legend_offset else {}))


def _fmt_int(v: Any) -> str:
    return "–" if v is None else f"{int(v):,}"


# --------------------------------------------------------------------------
# Funnels
# --------------------------------------------------------------------------

def _facet(layered: alt.TopLevelMixin, df: pl.DataFrame, jmap: JourneyMap, by: str, labels: Iterable[Any], panel: int = 150,
           legend_labels: Iterable[Any] = ()) -> alt.TopLevelMixin:
    df, order_p = _panels(df, jmap, by)
    out = layered.properties(width=panel).facet(facet=alt.Facet("panel:N", title=None, header=PANEL_HEADER, sort=order_p),
                                                 columns=FACET_COLUMNS, data=df, spacing=14)
    meta = {"facet": _facet_meta(labels, panels=len(order_p), panel=panel)}
    legend_labels = list(legend_labels)
    if legend_labels:
        meta["legend_entry"] = _legend_meta(legend_labels)
    return _journey_meta(out, **meta)


#: bars at least this long carry their label inside; shorter ones right of the interval (at most here, so it stays in the panel)
LABEL_AT = 0.5


def funnel_chart(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", title: str = "Funnel: how many reach each step") -> alt.Chart:
    """Funnel bars (share of step-1 learners reaching each step, 95% interval) labelled with the count and the step-to-step conversion.

    ``funnel`` is the output of ``metrics.funnel`` (columns step,
    touchpoint_id, learners, conversion_from_start(+_low/_high), stopped,
    in_progress). The label on each bar reads "learners · conversion from the
    previous step", where the conversion counts only *decided* learners
    (:func:`journeylib.insights.step_conversion`: learners still in progress
    at the previous step are left out). With ``by`` each persona gets its own
    panel in its colour; panels wrap to fit the page.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"step": [1], "touchpoint_id": ["a"], "learners": [10], "conversion_from_start": [1.0],
    ...     "conversion_from_start_low": [0.7], "conversion_from_start_high": [1.0],
    ...     "conversion_from_previous": [1.0], "stopped": [2], "in_progress": [1]})
    >>> funnel_chart(f, jm, by=None).to_dict()["layer"][0]["mark"]["type"]
    'bar'
    """
    from .insights import step_conversion

    if not funnel.height:
        return no_data_chart(title, "No learner reached the first step of this funnel.")
    df, by = _named_by(funnel, jmap, by)
    df = step_conversion(df, by)
    first = pl.col("step") == pl.col("step").min().over(by) if by else pl.col("step") == pl.col("step").min()
    df = df.with_columns(
        pl.when(first).then(pl.col("learners").map_elements(_fmt_int, return_dtype=pl.Utf8) + pl.lit(" started"))
        .otherwise(pl.col("learners").map_elements(_fmt_int, return_dtype=pl.Utf8) + pl.lit(" · ")
                   + (pl.col("step_conversion") * 100).round(0).cast(pl.Int64).cast(pl.Utf8).fill_null("–") + pl.lit("%"))
        .alias("bar_label"),
    )
    keep = ["step", "tp_label", "touchpoint_name", "learners", "conversion_from_start", "conversion_from_start_low", "conversion_from_start_high",
            "step_conversion", "decided_before", "undecided_before", "bar_label"] + (["by_name"] if by else [])
    df = df.select(keep).with_columns(pl.min_horizontal("conversion_from_start_high", pl.lit(LABEL_AT)).alias("label_at"))
    order = df.sort("step")["tp_label"].unique(maintain_order=True).to_list()
    y = alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis())
    tips = [
        alt.Tooltip("touchpoint_name:N", title="Step"),
        alt.Tooltip("learners:Q", title="Learners reaching the step", format=","),
        _pct("conversion_from_start", "Of starters"),
        _pct("conversion_from_start_low", "95% interval from"),
        _pct("conversion_from_start_high", "95% interval to"),
        _pct("step_conversion", "From the previous step (decided learners)"),
        alt.Tooltip("undecided_before:Q", title="Undecided at the previous step (not counted)", format=","),
    ]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=_title_of(by)))
        color = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), legend=None)
    else:
        color = alt.value(PALETTE[0])
    base = alt.Chart() if by else alt.Chart(df)  # a faceted layer takes its data from the facet
    x = alt.X("conversion_from_start:Q", title="Share of starters", axis=alt.Axis(format="%", tickCount=4), scale=alt.Scale(domain=[0, 1]))
    bars = base.mark_bar(opacity=0.85).encode(y=y, x=x, color=color, tooltip=tips)
    rules = base.mark_rule(color="#222222").encode(y=y, x="conversion_from_start_low:Q", x2="conversion_from_start_high:Q", tooltip=tips)
    inside = base.transform_filter(f"datum.conversion_from_start >= {LABEL_AT}").mark_text(align="right", dx=-4, fontSize=11, color="#ffffff", fontWeight="bold").encode(
        y=y, x="conversion_from_start:Q", text="bar_label:N")
    out_base = base.transform_filter(f"datum.conversion_from_start < {LABEL_AT}")
    # a white halo under the outside label keeps it readable where it crosses the interval line
    halo = out_base.mark_text(align="left", dx=4, fontSize=11, stroke="#ffffff", strokeWidth=3, strokeJoin="round", color="#ffffff").encode(
        y=y, x="label_at:Q", text="bar_label:N")
    outside = out_base.mark_text(align="left", dx=4, fontSize=11, color="#222222").encode(y=y, x="label_at:Q", text="bar_label:N")
    layered = alt.layer(bars, rules, inside, halo, outside).properties(height=alt.Step(30))
    subtitle = ["Bars: share of starters who reached the step (black line: 95% interval).",
                "Label: learners · % who went on from the previous step, counting only learners who have decided (still in progress = not counted)."]
    if by:
        out = _facet(layered, df, jmap, by, order, panel=170)
    else:
        out = _container(layered, alt.Step(30))
    return out.properties(title=alt.Title(title, subtitle=subtitle))


STOP_STATES = {"stopped": "Stopped here", "in_progress": "Still in progress (undecided)"}


def stops_chart(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", title: str = "Where journeys end, as a share of starters") -> alt.Chart:
    """For each step, the share of starters whose furthest step it is: *stopped* there vs *still in progress*.

    Shares (of the group's starters) make a small persona comparable with a
    big one; the counts are in the tooltips. In-progress learners (active
    within the map's dormancy window) are drawn apart, never counted as
    stopped. Input: ``metrics.funnel`` output.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"step": [1], "touchpoint_id": ["a"], "learners": [10], "stopped": [3], "in_progress": [1]})
    >>> "facet" in stops_chart(f, jm, by=None).to_dict()
    False
    """
    if not funnel.height:
        return no_data_chart(title, "No learner reached the first step of this funnel.")
    df, by = _named_by(funnel, jmap, by)
    first = pl.col("learners").sort_by("step").first()
    df = df.with_columns((first.over(by) if by else first).alias("starters"))
    keys = ["step", "tp_label", "touchpoint_name", "starters"] + (["by_name"] if by else [])
    long = (
        df.select(keys + ["stopped", "in_progress"])
        .unpivot(index=keys, on=["stopped", "in_progress"], variable_name="state", value_name="learners")
        .with_columns(pl.col("state").replace_strict(STOP_STATES), (pl.col("learners") / pl.col("starters")).alias("share"))
    )
    order = df.sort("step")["tp_label"].unique(maintain_order=True).to_list()
    tips = [alt.Tooltip("touchpoint_name:N", title="Furthest step"), alt.Tooltip("state:N", title="State"),
            alt.Tooltip("learners:Q", title="Learners", format=","), _pct("share", "Share of starters"),
            alt.Tooltip("starters:Q", title="Starters", format=",")]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=_title_of(by)))
    states = list(STOP_STATES.values())
    base = alt.Chart() if by else alt.Chart(long)
    chart = base.mark_bar().encode(
        y=alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis()),
        x=alt.X("share:Q", title="Share of starters", stack="zero", axis=alt.Axis(format="%", tickCount=4)),
        color=alt.Color("state:N", title=None, scale=alt.Scale(domain=states, range=["#D55E00", "#56B4E9"]), legend=_legend(states)),
        order=alt.Order("state:N", sort="descending"),
        tooltip=tips,
    ).properties(height=alt.Step(30))
    subtitle = "Orange: no event for longer than the dormancy window. Blue: still active and may carry on — not counted as stopped."
    if by:
        out = _facet(chart, long, jmap, by, order, panel=150, legend_labels=states)
    else:
        out = _container(chart, alt.Step(30), legend_labels=states, legend_offset=label_px(order) + 10)
    return out.properties(title=alt.Title(title, subtitle=subtitle))


def time_to_convert_chart(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", title: str = "Days from the previous step, per persona") -> alt.Chart:
    """Median (dot) and 90th percentile (end of line) days to reach each step, one colour per persona.

    Input: ``metrics.funnel`` output (median_days_to_convert, p90_days_to_convert).

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"step": [1, 2], "touchpoint_id": ["a", "a"], "median_days_to_convert": [None, 1.0], "p90_days_to_convert": [None, 4.0]})
    >>> time_to_convert_chart(f, jm, by=None).to_dict()["layer"][1]["mark"]["type"]
    'point'
    """
    df, by = _named_by(funnel, jmap, by)
    df = df.filter(pl.col("step") > 1) if df.height else df
    if not df.height:
        return no_data_chart(title, "The funnel has one step: there is no time to convert.")
    df = df.select(["step", "tp_label", "touchpoint_name", "median_days_to_convert", "p90_days_to_convert"] + (["by_name"] if by else []))
    order = df.sort("step")["tp_label"].unique(maintain_order=True).to_list()
    tips = [
        alt.Tooltip("touchpoint_name:N", title="Step"),
        alt.Tooltip("median_days_to_convert:Q", title="Median days", format=".1f"),
        alt.Tooltip("p90_days_to_convert:Q", title="90% within days", format=".1f"),
    ]
    enc: dict[str, Any] = {"y": alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis()), "tooltip": tips}
    names: list[str] = []
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=_title_of(by)))
        names = [v for v in df["by_name"].unique(maintain_order=True).to_list() if v is not None]
        enc["color"] = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), title=None, legend=_legend(names))
        enc["yOffset"] = alt.YOffset("by_name:N")
    else:
        enc["color"] = alt.value(PALETTE[0])
    base = alt.Chart(df)
    rule = base.mark_rule(strokeWidth=2, opacity=0.6).encode(x=alt.X("median_days_to_convert:Q", title="Days from previous step"), x2="p90_days_to_convert:Q", **enc)
    dot = base.mark_point(filled=True, size=70).encode(x="median_days_to_convert:Q", **enc)
    n_groups = max(1, len(names))
    return _container(alt.layer(rule, dot), len(order) * max(30, 9 * n_groups), legend_labels=names, legend_offset=label_px(order) + 10).properties(
        title=alt.Title(title, subtitle="Dot: median. Line ends at the 90th percentile."))


def days_to_convert_chart(dist: pl.DataFrame, jmap: JourneyMap, *, title: str = "How long learners take to reach each step") -> alt.Chart:
    """The distribution of days to convert per step as 100% bars split into time buckets (light = fast, dark = slow).

    Input: :func:`journeylib.insights.days_to_convert` (step, touchpoint_id,
    bucket, bucket_order, learners, reached, share, median_days, suppressed);
    suppressed buckets are left out.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> d = pl.DataFrame({"step": [2], "touchpoint_id": ["a"], "bucket": ["1–3 days"], "bucket_order": [1], "learners": [8], "reached": [8],
    ...     "share": [1.0], "median_days": [2.0], "suppressed": [False]})
    >>> days_to_convert_chart(d, jm).to_dict()["mark"]["type"]
    'bar'
    """
    from .insights import DAY_BUCKETS

    df = dist.filter(~pl.col("suppressed")) if dist.height else dist
    if not df.height:
        return no_data_chart(title, "Too few learners reached a second step to show how long they took.")
    df = _with_names(df, jmap).select("step", "tp_label", "touchpoint_name", "bucket", "bucket_order", "learners", "reached", "share", "median_days")
    order = df.sort("step")["tp_label"].unique(maintain_order=True).to_list()
    buckets = [lab for _, lab in DAY_BUCKETS]
    tips = [alt.Tooltip("touchpoint_name:N", title="Step"), alt.Tooltip("bucket:N", title="Days from the previous step"),
            alt.Tooltip("learners:Q", title="Learners", format=","), _pct("share", "Share of those who reached the step"),
            alt.Tooltip("reached:Q", title="Reached the step", format=","), alt.Tooltip("median_days:Q", title="Median days", format=".1f")]
    chart = alt.Chart(df).mark_bar().encode(
        y=alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis()),
        x=alt.X("share:Q", title="Share reaching the step", stack="zero", axis=alt.Axis(format="%", tickCount=5), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("bucket:N", title="Days from the previous step", scale=alt.Scale(domain=buckets, range=BLUES), legend=_legend(buckets)),
        order=alt.Order("bucket_order:Q"),
        tooltip=tips,
    )
    return _container(chart, alt.Step(30), legend_labels=buckets, legend_offset=label_px(order) + 10).properties(
        title=alt.Title(title, subtitle="Each bar splits the learners who reached the step by the days they took from the previous step. Dark: slow."))


def cohort_conversion_chart(cohorts: pl.DataFrame, jmap: JourneyMap, *, title: str | None = None) -> alt.Chart:
    """Share of each arrival cohort's decided starters who reached the funnel's last step, one line per persona and one for everyone.

    Input: :func:`journeylib.insights.cohort_conversion`. Cohorts still being
    followed (``complete`` False: more than a tenth still undecided) are drawn
    as open circles on a dashed line: their rate may still change and is not
    comparable yet. Suppressed cells are left out.

    >>> import polars as pl, datetime as dt
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> c = pl.DataFrame({"cohort": [dt.date(2025, 1, 1)], "group": ["Everyone"], "starters": [40], "completed": [10], "stopped": [20], "undecided": [10],
    ...     "completion": [0.33], "completion_low": [0.2], "completion_high": [0.5], "last_step": ["a"], "complete": [False],
    ...     "undecided_share": [0.25], "too_early": [False], "suppressed": [False]})
    >>> len(cohort_conversion_chart(c, jm).to_dict()["layer"])
    4
    """
    df = cohorts.filter(~pl.col("suppressed") & pl.col("completion").is_not_null()) if cohorts.height else cohorts
    if not df.height:
        return no_data_chart(title or "Conversion over time", "Too few learners per arrival cohort to show conversion over time.")
    dates = sorted(set(df["cohort"].to_list()))
    weekly = len(dates) > 1 and min(b - a for a, b in zip(dates, dates[1:])).days < 20
    title = title or f"Conversion over time, by {'week' if weekly else 'month'} of arrival"
    early = cohorts.filter(pl.col("too_early") & (pl.col("group") == "Everyone")) if "too_early" in cohorts.columns else cohorts.head(0)
    early_note = ""
    if early.height:
        fmt = "%d %b %Y" if weekly else "%B %Y"
        early_note = f" Left out, too early to judge (most still undecided): arrivals of {', '.join(d.strftime(fmt) for d in early['cohort'].sort().to_list())}."
    pn = _persona_names(jmap)
    last = _names(jmap).get(df["last_step"][0], df["last_step"][0])
    df = df.with_columns(
        pl.col("group").replace_strict(pn, default=pl.col("group")).alias("by_name"),
        pl.when(pl.col("complete")).then(pl.lit("followed long enough"))
        .otherwise(pl.format("provisional: {}% still undecided", (pl.col("undecided_share") * 100).round(0).cast(pl.Int64))).alias("status"),
        pl.col("cohort").cast(pl.Datetime("ms")).alias("cohort"),
    ).drop("last_step", "suppressed", *[c for c in ("too_early", "decided") if c in df.columns])
    names = df["by_name"].unique(maintain_order=True).to_list()
    scale = _persona_scale(jmap, df, "persona", first={"Everyone": "#000000"} if "Everyone" in names else None)
    legend_names = list(scale.domain)
    color = alt.Color("by_name:N", title=None, scale=scale, legend=_legend(legend_names, symbolType="circle"))
    x = alt.X("cohort:T", title="Arrival (first event at the funnel's first step)",
              axis=alt.Axis(format="%d %b %Y" if weekly else "%b %Y", labelAngle=0, tickCount=8, labelOverlap=True))
    y = alt.Y("completion:Q", title=f"Reached {last}", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1]))
    tips = [alt.Tooltip("by_name:N", title="Group"), alt.Tooltip("cohort:T", title="Arrived in the week of" if weekly else "Arrived in", format="%d %B %Y" if weekly else "%B %Y"),
            alt.Tooltip("starters:Q", title="Starters", format=","), alt.Tooltip("completed:Q", title=f"Reached {last}", format=","),
            alt.Tooltip("stopped:Q", title="Stopped", format=","), alt.Tooltip("undecided:Q", title="Still undecided (not counted)", format=","),
            _pct("completion", "Conversion (decided learners)"), _pct("completion_low", "95% interval from"), _pct("completion_high", "95% interval to"),
            alt.Tooltip("status:N", title="Cohort")]
    base = alt.Chart(df)
    dashed = base.mark_line(strokeDash=[4, 4], strokeWidth=1.5, opacity=0.7).encode(x=x, y=y, color=color)
    solid = base.transform_filter("datum.complete").mark_line(strokeWidth=2.5).encode(x=x, y=y, color=color)
    done = base.transform_filter("datum.complete").mark_point(filled=True, size=60, opacity=1).encode(x=x, y=y, color=color, tooltip=tips)
    open_ = base.transform_filter("!datum.complete").mark_point(filled=False, size=60, strokeWidth=2, fill="#ffffff", opacity=1).encode(
        x=x, y=y, color=color, tooltip=tips)
    return _container(alt.layer(dashed, solid, done, open_), 280, legend_labels=legend_names).properties(
        title=alt.Title(title, subtitle=[f"Share of each arrival cohort's decided starters who reached {last}; learners still in progress are not counted.",
                                         "Open circles on a dashed line: recent cohorts with more than 10% still undecided — not yet comparable." + early_note]))


# --------------------------------------------------------------------------
# Drop-off
# --------------------------------------------------------------------------

def survival_chart(curves: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", max_days: float | None = None,
                   title: str = "Still active: share of learners not yet stopped, by days since enrolment",
                   subtitle: str | None = None, x_title: str = "Days since enrolment") -> alt.Chart:
    """Kaplan–Meier curves of time to stopping with their 95 % bands, one colour per group.

    ``curves`` is :attr:`journeylib.metrics.survival.Survival.curves` (``<by>, days,
    at_risk, stopped, survival, low, high``). The step curves are drawn at
    whole days (the value at the end of each day) up to ``max_days`` (default:
    the longest follow-up), so the chart stays small on large data.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> c = pl.DataFrame({"days": [0.0, 2.5], "at_risk": [10, 8], "stopped": [0, 2], "survival": [1.0, 0.75],
    ...                   "low": [1.0, 0.4], "high": [1.0, 0.9]})
    >>> [l["mark"]["type"] for l in survival_chart(c, jm, by=None).to_dict()["layer"]]
    ['line', 'area']
    """
    if not curves.height:
        return no_data_chart(title, "Nobody has been followed long enough yet to tell who stopped.")
    df, by = _named_by(curves, jmap, by)
    keys = ["by_name"] if by else []
    top = float(max_days if max_days is not None else df["days"].max())
    grid = pl.DataFrame({"day": list(range(1, int(top) + 1))}, schema={"day": pl.Float64})
    daily = []
    for g, part in (df.group_by(keys, maintain_order=True) if keys else [((), df)]):
        part = part.sort("days")
        d = grid.join_asof(part.select("days", "survival", "low", "high", "at_risk"), left_on="day", right_on="days",
                           strategy="backward").filter(pl.col("days").is_not_null())
        d = d.filter(pl.col("day") <= part["days"].max() + 1)
        start = pl.DataFrame({"day": [0.0], "days": [0.0], "survival": [1.0], "low": [1.0], "high": [1.0],
                              "at_risk": [int(part["at_risk"].max())]})
        d = pl.concat([start, d], how="vertical_relaxed")
        if keys:
            d = d.with_columns(pl.lit(g[0]).alias("by_name"))
        daily.append(d)
    df = pl.concat(daily, how="vertical_relaxed")
    x = alt.X("day:Q", title=x_title, scale=alt.Scale(domain=[0, top], nice=False))
    y = alt.Y("survival:Q", title="Share not yet stopped", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1]))
    tips = [alt.Tooltip("day:Q", title="Day"), _pct("survival", "Not yet stopped"), _pct("low", "95% interval from"),
            _pct("high", "95% interval to"), alt.Tooltip("at_risk:Q", title="Still followed", format=",")]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=by.replace("_", " ").capitalize()))
        names = df["by_name"].unique(maintain_order=True).to_list()
        color = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), title=by.replace("_", " ").capitalize(),
                          legend=_legend(names, orient="bottom", symbolType="stroke", symbolStrokeWidth=3))
    else:
        names = []
        color = alt.value(PALETTE[0])
    base = alt.Chart(df)
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(x=x, y="low:Q", y2="high:Q", color=color)
    line = base.mark_line(interpolate="step-after", strokeWidth=2).encode(x=x, y=y, color=color, tooltip=tips)
    sub = subtitle or "Line: Kaplan–Meier estimate; band: 95% interval. Learners are followed until a stop can be known."
    # as wide as the page (phones included); the legend's columns refit to the width
    return _container(alt.layer(line, band), 300, legend_labels=names).properties(title=alt.Title(title, subtitle=sub))


def dropoff_chart(dropoff: pl.DataFrame, jmap: JourneyMap, *, title: str = "Stop rate per touchpoint") -> alt.Chart:
    """Share of learners who reached a touchpoint and stopped there, with 95% intervals, coloured by stage.

    Input: ``metrics.dropoff`` output (touchpoint_id, reached, stopped, stop_rate(+_low/_high)).

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> d = pl.DataFrame({"touchpoint_id": ["a"], "reached": [10], "stopped": [2], "stop_rate": [0.2],
    ...     "stop_rate_low": [0.05], "stop_rate_high": [0.5]})
    >>> dropoff_chart(d, jm).to_dict()["layer"][0]["mark"]["type"]
    'bar'
    """
    if not dropoff.height:
        return no_data_chart(title, "No learner reached these touchpoints.")
    df = _with_names(dropoff, jmap).select("tp_order", "tp_label", "touchpoint_name", "stage_name", "reached", "stopped", "stop_rate", "stop_rate_low", "stop_rate_high")
    order = df.sort("tp_order")["tp_label"].unique(maintain_order=True).to_list()
    sc = {_stage_names(jmap)[k]: v for k, v in stage_colors(jmap).items()}
    tips = [
        alt.Tooltip("touchpoint_name:N", title="Touchpoint"),
        alt.Tooltip("stage_name:N", title="Stage"),
        alt.Tooltip("reached:Q", title="Reached", format=","),
        alt.Tooltip("stopped:Q", title="Stopped here", format=","),
        _pct("stop_rate", "Stop rate"),
        _pct("stop_rate_low", "95% interval from"),
        _pct("stop_rate_high", "95% interval to"),
    ]
    y = alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis())
    base = alt.Chart(df)
    bars = base.mark_bar().encode(y=y, x=alt.X("stop_rate:Q", title="Stopped here / reached", axis=alt.Axis(format="%")),
                                  color=alt.Color("stage_name:N", title="Stage", scale=_scale(sc), sort=list(sc), legend=_legend(sc)), tooltip=tips)
    err = base.mark_rule(color="#222222").encode(y=y, x="stop_rate_low:Q", x2="stop_rate_high:Q", tooltip=tips)
    return _container(alt.layer(bars, err), alt.Step(30), legend_labels=list(sc)).properties(
        title=alt.Title(title, subtitle="Bars: learners whose journey ended here, excluding those still in progress. Black line: 95% interval."))


PERIODS = {"previous": "Previous period", "now": "This period"}


def hotspots_chart(hotspots: pl.DataFrame, jmap: JourneyMap, *, now: str = "stop_rate", before: str = "previous_stop_rate", title: str = "Stop rate: this period vs the previous one") -> alt.Chart:
    """Dumbbell chart of the stop rate per touchpoint, previous period (grey) → this period (orange), with a legend.

    Input: the review's ``hotspots`` frame; ``now``/``before`` name its rate columns.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> h = pl.DataFrame({"touchpoint_id": ["a"], "stop_rate": [0.3], "previous_stop_rate": [0.1]})
    >>> len(hotspots_chart(h, jm).to_dict()["layer"])
    2
    """
    if not hotspots.height:
        return no_data_chart(title, "No learner arrived at a touchpoint in these periods.")
    df = _with_names(hotspots, jmap)
    extra = [c for c in ("reached", "stopped") if c in df.columns]
    df = df.select("tp_order", "tp_label", "touchpoint_name", pl.col(before).alias("before"), pl.col(now).alias("now"), *extra)
    order = df.sort("tp_order")["tp_label"].unique(maintain_order=True).to_list()
    long = df.unpivot(index=["tp_order", "tp_label", "touchpoint_name", *extra], on=["before", "now"], variable_name="which", value_name="rate").with_columns(
        pl.col("which").replace_strict({"before": PERIODS["previous"], "now": PERIODS["now"]}).alias("period"))
    tips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"), alt.Tooltip("period:N", title="Period"), _pct("rate", "Stop rate")]
    for e, t in (("reached", "Reached (this period)"), ("stopped", "Stopped (this period)")):
        if e in extra:
            tips.append(alt.Tooltip(f"{e}:Q", title=t, format=","))
    y = alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis())
    periods = list(PERIODS.values())
    line = alt.Chart(df).mark_rule(color="#bbbbbb", strokeWidth=2).encode(y=y, x=alt.X("before:Q", title="Stop rate", axis=alt.Axis(format="%")), x2="now:Q")
    pts = alt.Chart(long).mark_point(filled=True, size=80, opacity=1).encode(
        y=y, x="rate:Q", tooltip=tips,
        color=alt.Color("period:N", title=None, scale=alt.Scale(domain=periods, range=[GREY, "#D55E00"]), legend=alt.Legend(symbolType="circle")))
    return _container(alt.layer(line, pts), alt.Step(30), legend_labels=periods).properties(
        title=alt.Title(title, subtitle="A long line means the stop rate moved; orange to the right of grey: more learners stop there than before."))


# --------------------------------------------------------------------------
# Emotion
# --------------------------------------------------------------------------

def valence_words(jmap: JourneyMap) -> dict[float, str]:
    """Words for the ends, the middle and the quarter points of the map's emotion scale.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> valence_words(jm)
    {-2.0: 'very negative', -1.0: 'negative', 0.0: 'neutral', 1.0: 'positive', 2.0: 'very positive'}
    """
    lo, hi = float(jmap.emotion_scale.min), float(jmap.emotion_scale.max)
    step = (hi - lo) / 4
    words = ["very negative", "negative", "neutral", "positive", "very positive"]
    return {lo + i * step: w for i, w in enumerate(words)}


def _valence_axis(jmap: JourneyMap, *, ends_only: bool = False, **kw) -> alt.Axis:
    words = valence_words(jmap)
    if ends_only:
        keys = sorted(words)
        words = {k: words[k] for k in (keys[0], keys[2], keys[4])}
    keys = sorted(words)
    texts = json.dumps([wrap(words[k], 8) if ends_only else words[k] for k in keys], ensure_ascii=False)
    return alt.Axis(values=keys, tickCount=len(keys), labelExpr=f"split({texts}[indexof({json.dumps(keys)}, datum.value)] || '', '\\n')", **kw)


def _segments(df: pl.DataFrame, group: str | None) -> pl.DataFrame:
    """A ``segment`` id per run of adjacent touchpoints (x, x+1, …) so lines break where a touchpoint has no responses."""
    keys = [group] if group else []
    df = df.sort([*keys, "x"])
    gap = (pl.col("x") - pl.col("x").shift(1).over(keys) if keys else pl.col("x") - pl.col("x").shift(1)).fill_null(1.0) != 1.0
    seg = gap.cast(pl.Int64).cum_sum().over(keys) if keys else gap.cast(pl.Int64).cum_sum()
    return df.with_columns(seg.alias("segment"))


def _stage_bands(jmap: JourneyMap, ids: Sequence[str], y_min: float, y_max: float, *, vertical: bool = False, labels: bool = True) -> alt.Chart:
    """Background bands and labels, one per stage, spanning its touchpoints."""
    pos = {t: i for i, t in enumerate(ids)}
    rows = []
    sc = stage_colors(jmap)
    for s in jmap.stages:
        idx = [pos[t.id] for t in jmap.touchpoints if t.stage == s.id and t.id in pos]
        if idx:
            width = max(idx) - min(idx) + 1
            rows.append({"stage_name": s.name, "stage_label": wrap(s.name, max(6, 7 * width)), "i0": min(idx) - 0.5, "i1": max(idx) + 0.5,
                         "im": (min(idx) + max(idx)) / 2, "color": sc[s.id], "v0": y_min, "v1": y_max})
    bands = pl.DataFrame(rows)
    base = alt.Chart(bands)
    if vertical:
        rect = base.mark_rect(opacity=0.09).encode(y=alt.Y("i0:Q"), y2="i1:Q", x=alt.X("v0:Q"), x2="v1:Q", fill=alt.Fill("color:N", scale=None),
                                                   tooltip=[alt.Tooltip("stage_name:N", title="Stage")])
        text = base.mark_text(align="right", baseline="top", dx=-3, dy=3, fontWeight="bold", fontSize=10, color="#333333", angle=0).encode(
            y="i0:Q", x="v1:Q", text="stage_name:N")
    else:
        rect = base.mark_rect(opacity=0.09).encode(x=alt.X("i0:Q"), x2="i1:Q", y=alt.Y("v0:Q"), y2="v1:Q", fill=alt.Fill("color:N", scale=None),
                                                   tooltip=[alt.Tooltip("stage_name:N", title="Stage")])
        text = base.mark_text(baseline="top", dy=4, fontWeight="bold", fontSize=11, color="#333333", lineBreak="\n").encode(x="im:Q", y="v1:Q", text="stage_label:N")
    return alt.layer(rect, text) if labels else rect


def _emotion_frames(emotion: pl.DataFrame, jmap: JourneyMap, by: str | None) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    """(measured rows with x and segment, target rows, by) for the emotion charts."""
    by = _by_col(by)
    ids = jmap.touchpoint_ids
    pos = {t: float(i) for i, t in enumerate(ids)}
    df = _with_names(emotion, jmap, by if by and by in emotion.columns else None)
    if by not in df.columns:
        by = None
    df = (df.with_columns(pl.col("touchpoint_id").replace_strict(pos, default=None, return_dtype=pl.Float64).alias("x"))
          .filter(pl.col("x").is_not_null() & pl.col("mean_valence").is_not_null()))
    keep = ["x", "touchpoint_name", "stage_name", "mean_valence", "low", "high", "target_valence", "n"] + (["by_name"] if by else [])
    df = _segments(df.select([c for c in keep if c in df.columns]), "by_name" if by else None)
    if by and df.height:
        groups = df["by_name"].unique(maintain_order=True).to_list()
        shift = {g: (i - (len(groups) - 1) / 2) * min(0.1, 0.5 / len(groups)) for i, g in enumerate(groups)}
        df = df.with_columns((pl.col("x") + pl.col("by_name").replace_strict(shift, return_dtype=pl.Float64)).alias("x"))
    if not by:
        df = df.with_columns(pl.lit("Measured (mean, 95% interval)").alias("by_name"))
    target = pl.DataFrame({"x": [float(i) for i in range(len(ids))], "touchpoint_name": [jmap.touchpoint(t).name for t in ids],
                           "target_valence": [jmap.touchpoint(t).target_emotion.valence for t in ids],
                           "target_label": [jmap.touchpoint(t).target_emotion.label for t in ids]}).with_columns(
        pl.lit("Designed target").alias("by_name"))
    return df, target, by


def _emotion_layers(df: pl.DataFrame, target: pl.DataFrame, jmap: JourneyMap, by: str | None, *, x: str, y: str, color: alt.Color, tips: list) -> list:
    """Target (dashed line, diamonds) and measured (interval rules, broken lines, dots) layers; ``x``/``y`` name the index and valence channels."""
    idx, val = ("x", "mean_valence")
    plain = color
    tb = alt.Chart(target)
    ttips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"), alt.Tooltip("target_label:N", title="Target emotion"),
             alt.Tooltip("target_valence:Q", title="Target valence")]
    enc_t = {x: f"{idx}:Q", y: "target_valence:Q"}
    tline = tb.mark_line(strokeDash=[6, 4], strokeWidth=1.5).encode(color=plain, order=alt.Order(f"{idx}:Q"), **enc_t)
    tpts = tb.mark_point(shape="diamond", filled=True, size=55).encode(color=plain, tooltip=ttips, **enc_t)
    mb = alt.Chart(df)
    detail = alt.Detail(["by_name:N", "segment:Q"])
    err = mb.mark_rule(strokeWidth=2, opacity=0.5).encode(color=plain, tooltip=tips, **{x: f"{idx}:Q", y: "low:Q", f"{y}2": "high:Q"})
    line = mb.mark_line(strokeWidth=2.5).encode(detail=detail, color=plain, order=alt.Order(f"{idx}:Q"), **{x: f"{idx}:Q", y: f"{val}:Q"})
    pts = mb.mark_point(filled=True, size=70, opacity=1).encode(color=color, tooltip=tips, **{x: f"{idx}:Q", y: f"{val}:Q"})
    # first, an invisible filled dot per series: legends take their symbol style from the first layer
    domain = color.to_dict().get("scale", {}).get("domain", [])
    keys = pl.DataFrame({"by_name": list(domain), idx: [float(target[idx][0])] * len(domain), "target_valence": [float(target["target_valence"].fill_null(0)[0])] * len(domain)})
    legend = alt.Chart(keys).mark_point(filled=True, opacity=0, size=1).encode(color=color, **enc_t)
    return [legend, tline, tpts, err, line, pts]


def _emotion_tips(by: str | None) -> list[alt.Tooltip]:
    tips = [
        alt.Tooltip("touchpoint_name:N", title="Touchpoint"),
        alt.Tooltip("stage_name:N", title="Stage"),
        alt.Tooltip("mean_valence:Q", title="Measured (mean)", format=".2f"),
        alt.Tooltip("low:Q", title="95% interval from", format=".2f"),
        alt.Tooltip("high:Q", title="95% interval to", format=".2f"),
        alt.Tooltip("target_valence:Q", title="Target", format=".2f"),
        alt.Tooltip("n:Q", title="Responses", format=","),
    ]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=_title_of(by)))
    return tips


def _emotion_color(jmap: JourneyMap, df: pl.DataFrame, by: str | None) -> tuple[alt.Color, list[str]]:
    lead = {"Designed target": TARGET_GREY}
    if by:
        scale = _persona_scale(jmap, df, by, first=lead)
    elif df.height:
        scale = alt.Scale(domain=["Designed target", "Measured (mean, 95% interval)"], range=[TARGET_GREY, PALETTE[0]])
    else:  # nothing measured: the legend names only what is drawn
        scale = alt.Scale(domain=["Designed target"], range=[TARGET_GREY])
    names = list(scale.domain)
    return alt.Color("by_name:N", title=None, scale=scale, legend=_legend(names, symbolType="circle")), names


def emotion_curve(emotion: pl.DataFrame, jmap: JourneyMap, *, by: str | None = None, title: str = "Emotion along the journey: target vs measured") -> alt.Chart:
    """The emotional curve drawn like a journey map, with a vertical variant for narrow screens.

    Touchpoints run left to right in map order, grouped under their stages
    (shaded bands). The dashed grey line is the designed target emotion; the
    coloured line is the measured mean valence with its 95% interval (one line
    per persona with ``by="persona"``, in the persona's colour). The line
    breaks where a touchpoint has no responses. The valence axis is labelled
    in words ("very negative" … "very positive"). A legend names every line.
    Input: ``metrics.emotion`` output (touchpoint_id, n, mean_valence, low,
    high, target_valence[, by]).

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> e = pl.DataFrame({"touchpoint_id": ["a"], "n": [12], "mean_valence": [0.5], "low": [0.1], "high": [0.9], "target_valence": [1.0]})
    >>> spec = emotion_curve(e, jm).to_dict()
    >>> len(spec["layer"]) >= 6, "narrow" in spec["usermeta"]["journey"]
    (True, True)
    """
    df, target, by = _emotion_frames(emotion, jmap, by)
    if by and not df.height:
        return no_data_chart(title, f"No {_title_of(by).lower()} has enough emotion responses to draw its curve.")
    ids = jmap.touchpoint_ids
    subtitle = "Dashed grey: designed target emotion. Coloured: measured mean with 95% interval; the line breaks where a touchpoint has no responses."
    if not df.height:
        subtitle = "No emotion responses in the data: only the designed target emotion (dashed) is shown."
    lo, hi = float(jmap.emotion_scale.min), float(jmap.emotion_scale.max)
    top = hi + 0.45 * (hi - lo) / 4
    color, names = _emotion_color(jmap, df, by)
    tips = _emotion_tips(by)
    labels = [jmap.touchpoint(t).name for t in ids]
    xaxis = alt.Axis(values=list(range(len(ids))), tickCount=len(ids), labelExpr=f"{json.dumps(labels)}[datum.value] || ''", labelAngle=-40, grid=False,
                     title=None, labelOverlap=False, labelFontSize=11, labelLimit=0, labelAlign="right")
    xs = alt.Scale(domain=[-0.5, len(ids) - 0.5], nice=False, zero=False)
    ys = alt.Scale(domain=[lo, top], nice=False)
    first = alt.Chart(target).mark_line(opacity=0).encode(x=alt.X("x:Q", axis=xaxis, scale=xs),
                                                          y=alt.Y("target_valence:Q", scale=ys, title="Emotion", axis=_valence_axis(jmap)))
    zero = alt.Chart(pl.DataFrame({"y": [(lo + hi) / 2]})).mark_rule(color="#bbbbbb").encode(y="y:Q")
    layers = [_stage_bands(jmap, ids, lo, top), zero, first, *_emotion_layers(df, target, jmap, by, x="x", y="y", color=color, tips=tips)]
    wide = alt.layer(*layers)
    wide = _container(wide, 320, legend_labels=names).properties(title=alt.Title(title, subtitle=subtitle))
    narrow = _emotion_curve_vertical(df, target, jmap, by, color, names, tips, title, subtitle)
    return _journey_meta(wide, narrow=narrow.to_dict(), min_width=max(560, 34 * len(ids) + 140))


def _emotion_curve_vertical(df, target, jmap, by, color, names, tips, title, subtitle) -> alt.TopLevelMixin:
    """The emotional curve with touchpoints running top to bottom (phones)."""
    ids = jmap.touchpoint_ids
    lo, hi = float(jmap.emotion_scale.min), float(jmap.emotion_scale.max)
    labels = [wrap(jmap.touchpoint(t).name, 18) for t in ids]
    yaxis = alt.Axis(values=list(range(len(ids))), tickCount=len(ids), labelExpr=f"split({json.dumps(labels)}[datum.value] || '', '\\n')", grid=False, title=None,
                     labelOverlap=False, labelFontSize=11, labelLimit=0)
    ys = alt.Scale(domain=[-0.5, len(ids) - 0.5], nice=False, zero=False, reverse=True)
    xs = alt.Scale(domain=[lo, hi], nice=False)
    first = alt.Chart(target).mark_line(opacity=0).encode(y=alt.Y("x:Q", axis=yaxis, scale=ys),
                                                          x=alt.X("target_valence:Q", scale=xs, title="Emotion", axis=_valence_axis(jmap, ends_only=True, labelAngle=0)))
    mid = alt.Chart(pl.DataFrame({"v": [(lo + hi) / 2]})).mark_rule(color="#bbbbbb").encode(x="v:Q")
    layers = [_stage_bands(jmap, ids, lo, hi, vertical=True, labels=False), mid, first, *_emotion_layers(df, target, jmap, by, x="y", y="x", color=color, tips=tips)]
    return _container(alt.layer(*layers), 34 * len(ids), legend_labels=names).properties(title=alt.Title(wrap(title, 40).split("\n"), subtitle=subtitle))


def emotion_lane_chart(emotion: pl.DataFrame, jmap: JourneyMap, *, height: int = 130) -> alt.Chart:
    """The emotional curve as a lane of the journey-map canvas: one column per touchpoint, no axes.

    The x positions line up with the map's equal-width touchpoint columns
    (domain −0.5 … n−0.5, no padding); grid lines mark the valence words,
    which the canvas prints in the lane's label (see
    :func:`journeylib.tables.journey_map_html`). Dashed grey diamonds: the
    designed target; blue: the measured mean with its 95 % interval, broken
    where a touchpoint has no responses.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> e = pl.DataFrame({"touchpoint_id": ["a"], "n": [12], "mean_valence": [0.5], "low": [0.1], "high": [0.9], "target_valence": [1.0]})
    >>> emotion_lane_chart(e, jm).to_dict()["usermeta"]["journey"]["lane"]
    True
    """
    e = emotion.filter(pl.lit(False)) if "persona" in emotion.columns else emotion
    df, target, _ = _emotion_frames(e, jmap, None)
    ids = jmap.touchpoint_ids
    lo, hi = lane_domain(jmap)
    xs = alt.Scale(domain=[-0.5, len(ids) - 0.5], nice=False, zero=False)
    ys = alt.Scale(domain=[lo, hi], nice=False, zero=False)
    grid = alt.Chart(pl.DataFrame({"v": list(valence_words(jmap))})).mark_rule(color="#e1e4e8").encode(y=alt.Y("v:Q", scale=ys, axis=None))
    first = alt.Chart(target).mark_line(opacity=0).encode(x=alt.X("x:Q", scale=xs, axis=None), y=alt.Y("target_valence:Q", scale=ys, axis=None))
    color = alt.Color("by_name:N", scale=alt.Scale(domain=["Designed target", "Measured (mean, 95% interval)"], range=[TARGET_GREY, PALETTE[0]]), legend=None)
    chart = alt.layer(grid, first, *_emotion_layers(df, target, jmap, None, x="x", y="y", color=color, tips=_emotion_tips(None)))
    chart = chart.properties(width="container", height=height, padding=0, autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
                             description="The emotional curve: designed target (dashed grey) and measured mean (blue) per touchpoint").configure_view(stroke=None)
    return _journey_meta(chart, lane=True)


def lane_domain(jmap: JourneyMap) -> tuple[float, float]:
    """The valence range drawn in the map's emotion lane: the scale with a margin of a tenth on each side.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> lane_domain(jm)
    (-2.4, 2.4)
    """
    lo, hi = float(jmap.emotion_scale.min), float(jmap.emotion_scale.max)
    m = (hi - lo) / 10
    return (round(lo - m, 6), round(hi + m, 6))


def emotion_gap_chart(frame: pl.DataFrame, jmap: JourneyMap, *, y: str = "stop_rate", y_title: str = "Stop rate", title: str = "Emotion gap vs stopping, per touchpoint",
                      subtitle: str = "Top-left: learners feel worse than designed AND stop more. Look there first.") -> alt.Chart:
    """Scatter of the emotion gap (measured − target, x) against a KPI or stop rate (y), one dot per touchpoint, with the relationship.

    ``frame`` has touchpoint_id, gap and the ``y`` column (e.g. ``stop_rate``
    or ``attainment``). Dots are coloured by stage. The least-squares line
    with its 95% confidence band and the correlation with its 95% interval
    (:func:`journeylib.insights.relationship`) show how strong the
    relationship is and how sure we are; the subtitle says it in words. The
    touchpoints furthest from the middle are labelled; every dot has a tooltip.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"touchpoint_id": ["a"], "gap": [-0.5], "stop_rate": [0.2]})
    >>> [layer["mark"]["type"] for layer in emotion_gap_chart(f, jm).to_dict()["layer"]]
    ['rule', 'point', 'text']
    """
    from .insights import relationship

    df = _with_names(frame, jmap).filter(pl.col("gap").is_not_null() & pl.col(y).is_not_null()) if frame.height else frame
    if not df.height:
        return no_data_chart(title, "No touchpoint has both emotion responses and this measure.")
    keep = ["touchpoint_name", "tp_label", "stage_name", "gap", y] + (["n"] if "n" in df.columns else [])
    df = df.select(keep)
    rel = relationship(df, "gap", y)
    sc = {_stage_names(jmap)[k]: v for k, v in stage_colors(jmap).items()}
    present = [s for s in sc if s in set(df["stage_name"].to_list())]
    fmt = ".0%" if y in ("stop_rate", "attainment", "conversion", "kpis_met") or y.endswith("_rate") else ".2f"
    tips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"), alt.Tooltip("stage_name:N", title="Stage"),
            alt.Tooltip("gap:Q", title="Emotion gap (measured − target)", format="+.2f"), alt.Tooltip(f"{y}:Q", title=y_title, format=fmt)]
    if "n" in df.columns:
        tips.append(alt.Tooltip("n:Q", title="Emotion responses", format=","))
    xenc = alt.X("gap:Q", title=["Emotion gap (measured − target)", "below 0 = worse than designed"], axis=alt.Axis(tickCount=8))
    yenc = alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=fmt.replace("+", "")))
    layers: list = [alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#bbbbbb", strokeDash=[4, 3]).encode(x="x:Q")]
    if rel.r is not None:
        line_df = rel.line
        if "%" in fmt:
            line_df = line_df.with_columns(pl.col("low", "high", "fit").clip(0, 1))
        band = alt.Chart(line_df).mark_area(opacity=0.15, color="#555555").encode(x="x:Q", y="low:Q", y2="high:Q")
        fit = alt.Chart(line_df).mark_line(color="#555555", strokeWidth=1.5).encode(x="x:Q", y="fit:Q")
        layers += [band, fit]
    layers.append(alt.Chart(df).mark_point(filled=True, size=110, opacity=0.9).encode(
        x=xenc, y=yenc, tooltip=tips, color=alt.Color("stage_name:N", title="Stage", scale=_scale({s: sc[s] for s in present}), legend=_legend(present))))
    # label the touchpoints furthest from the middle (the rest have tooltips)
    mid = df.with_columns(((pl.col("gap") - pl.col("gap").mean()).abs() / (pl.col("gap").std().fill_null(1) + 1e-9)
                           + (pl.col(y) - pl.col(y).mean()).abs() / (pl.col(y).std().fill_null(1) + 1e-9)).alias("_d"))
    lab = mid.sort("_d", descending=True).head(6).select("gap", y, pl.col("tp_label").map_elements(lambda s: wrap(s.replace("\n", " "), 18), return_dtype=pl.Utf8))
    # labels right of their dot, or left of it in the right half, so none runs off the plot
    half = (df["gap"].min() + df["gap"].max()) / 2
    for right_half, align, dx in ((False, "left", 8), (True, "right", -8)):
        part = lab.filter((pl.col("gap") > half) == right_half)
        if part.height:
            layers.append(alt.Chart(part).mark_text(align=align, dx=dx, fontSize=11, color="#333333", lineBreak="\n").encode(
                x="gap:Q", y=f"{y}:Q", text="tp_label:N"))
    sub = [subtitle, rel.sentence + (" Grey line and band: fitted line with its 95% interval." if rel.r is not None else "")]
    return _container(alt.layer(*layers), 340, legend_labels=present).properties(title=alt.Title(title, subtitle=sub))


RESPONSES = {"low": "After a low (negative) response", "other": "After other responses"}


def emotion_stopping_chart(frame: pl.DataFrame, jmap: JourneyMap, *, title: str = "Do learners who feel bad at a touchpoint stop more?") -> alt.Chart:
    """Stop rate after a low-emotion response vs after other responses, per touchpoint (dumbbell, one colour per kind of response).

    Input: ``metrics.emotion_vs_stopping`` output (touchpoint_id, low_n,
    low_stop_rate, other_n, other_stop_rate, difference, p_value). The
    difference is written next to each pair, with ``*`` when it is
    significant (p < 0.05); colour only says which kind of response.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"touchpoint_id": ["a"], "low_n": [10], "low_stop_rate": [0.5], "other_n": [40],
    ...     "other_stop_rate": [0.1], "difference": [0.4], "p_value": [0.01]})
    >>> len(emotion_stopping_chart(f, jm).to_dict()["layer"])
    3
    """
    df = _with_names(frame, jmap).filter(pl.col("low_stop_rate").is_not_null() & pl.col("other_stop_rate").is_not_null()) if frame.height else frame
    if not df.height:
        return no_data_chart(title, "No emotion responses to compare.")
    df = df.select("tp_order", "tp_label", "touchpoint_name", "low_n", "low_stop_rate", "other_n", "other_stop_rate", "difference", "p_value").with_columns(
        pl.max_horizontal("low_stop_rate", "other_stop_rate").alias("right"),
        (pl.format("{} pp", (pl.col("difference") * 100).round(0).cast(pl.Int64)).str.replace(r"^(\d)", "+$1").str.replace("-", "−")
         + pl.when(pl.col("p_value") < 0.05).then(pl.lit(" *")).otherwise(pl.lit(""))).alias("diff_label"),
        pl.when(pl.col("p_value") < 0.05).then(pl.lit("yes (p < 0.05)")).otherwise(pl.lit("no")).alias("significant"),
    )
    order = df.sort("tp_order")["tp_label"].unique(maintain_order=True).to_list()
    tips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"),
            alt.Tooltip("low_n:Q", title="Low-emotion responses"), _pct("low_stop_rate", "Stop rate after low emotion"),
            alt.Tooltip("other_n:Q", title="Other responses"), _pct("other_stop_rate", "Stop rate otherwise"),
            alt.Tooltip("difference:Q", title="Difference", format="+.0%"), alt.Tooltip("p_value:Q", title="p-value", format=".3f"),
            alt.Tooltip("significant:N", title="Significant")]
    long = df.unpivot(index=["tp_label", "touchpoint_name", "low_n", "other_n", "difference", "p_value", "significant", "low_stop_rate", "other_stop_rate"],
                      on=["low_stop_rate", "other_stop_rate"], variable_name="kind", value_name="rate").with_columns(
        pl.col("kind").replace_strict({"low_stop_rate": RESPONSES["low"], "other_stop_rate": RESPONSES["other"]}))
    y = alt.Y("tp_label:N", sort=order, title=None, axis=_steps_axis())
    kinds = [RESPONSES["low"], RESPONSES["other"]]
    xmax = min(1.0, float(df["right"].max()) * 1.15 + 0.06)
    line = alt.Chart(df).mark_rule(color="#bbbbbb", strokeWidth=2).encode(
        y=y, x=alt.X("other_stop_rate:Q", title="Stop rate", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, xmax])), x2="low_stop_rate:Q", tooltip=tips)
    pts = alt.Chart(long).mark_point(filled=True, size=80, opacity=1).encode(
        y=y, x="rate:Q", tooltip=tips,
        color=alt.Color("kind:N", title=None, scale=alt.Scale(domain=kinds, range=["#D55E00", "#56B4E9"]), legend=_legend(kinds, symbolType="circle")))
    text = alt.Chart(df).mark_text(align="left", dx=9, fontSize=11, color="#333333").encode(y=y, x="right:Q", text="diff_label:N", tooltip=tips)
    return _container(alt.layer(line, pts, text), alt.Step(30), legend_labels=kinds).properties(
        title=alt.Title(title, subtitle="Orange: stop rate after a low (negative) response there; blue: after other responses. "
                                         "Label: the difference in percentage points, * = significant (p < 0.05)."))


# --------------------------------------------------------------------------
# Periodic review
# --------------------------------------------------------------------------

DIRECTIONS = {"up": "Rate rose", "down": "Rate fell"}


def interventions_chart(effects: pl.DataFrame, jmap: JourneyMap | None = None, *, title: str = "Intervention effects: change in the touchpoint's rate") -> alt.Chart:
    """Difference after − before for each intervention with its 95% interval; colour says whether the rate rose or fell.

    Input: ``metrics.intervention_effects`` (intervention_id, touchpoint_id,
    before_rate, after_rate, difference, low, high, p_value, before_n, after_n).

    >>> import polars as pl
    >>> f = pl.DataFrame({"intervention_id": ["i1"], "touchpoint_id": ["a"], "before_n": [50], "before_rate": [0.5],
    ...     "after_n": [60], "after_rate": [0.7], "difference": [0.2], "low": [0.02], "high": [0.38], "p_value": [0.03]})
    >>> interventions_chart(f).to_dict()["layer"][1]["mark"]["type"]
    'point'
    """
    if not effects.height:
        return no_data_chart(title, "No interventions are recorded in the map.")
    df = effects.with_columns(pl.col("intervention_id").alias("intervention_label"))
    if jmap is not None:
        desc = {i.id: i.description or i.id for i in jmap.interventions}
        df = df.with_columns(pl.col("intervention_id").replace_strict(desc, default=pl.col("intervention_id")).alias("intervention_label"),
                             pl.col("touchpoint_id").replace_strict(_names(jmap), default=pl.col("touchpoint_id")).alias("touchpoint_id"))
    df = df.with_columns((pl.col("touchpoint_id") + ": " + pl.col("intervention_label")).alias("what"))
    df = df.with_columns(pl.col("what").map_elements(lambda s: wrap(s, 44), return_dtype=pl.Utf8).alias("label"),
                         pl.when(pl.col("difference") >= 0).then(pl.lit(DIRECTIONS["up"])).otherwise(pl.lit(DIRECTIONS["down"])).alias("direction"))
    df = df.select("label", "what", "touchpoint_id", "before_n", "before_rate", "after_n", "after_rate", "difference", "low", "high", "p_value", "direction")
    tips = [alt.Tooltip("what:N", title="Intervention"),
            alt.Tooltip("before_n:Q", title="Learners before"), _pct("before_rate", "Rate before"),
            alt.Tooltip("after_n:Q", title="Learners after"), _pct("after_rate", "Rate after"),
            alt.Tooltip("difference:Q", title="Difference", format="+.1%"), alt.Tooltip("p_value:Q", title="p-value", format=".3f")]
    y = alt.Y("label:N", title=None, axis=_steps_axis())
    base = alt.Chart(df)
    dirs = [d for d in DIRECTIONS.values() if d in set(df["direction"].to_list())]
    rule = base.mark_rule(strokeWidth=2, color="#333333").encode(y=y, x=alt.X("low:Q", title="Change in rate (after − before)", axis=alt.Axis(format="+%")), x2="high:Q", tooltip=tips)
    pt = base.mark_point(filled=True, size=100, opacity=1).encode(y=y, x="difference:Q", tooltip=tips, color=alt.Color(
        "direction:N", title=None, scale=alt.Scale(domain=dirs, range=["#009E73" if d == DIRECTIONS["up"] else "#D55E00" for d in dirs]),
        legend=alt.Legend(symbolType="circle")))
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#999999", strokeDash=[4, 3]).encode(x="x:Q")
    lines = max(s.count("\n") + 1 for s in df["label"].to_list())
    return _container(alt.layer(zero, pt, rule), alt.Step(max(30, 15 * lines + 8)), legend_labels=dirs).properties(
        title=alt.Title(title, subtitle="Dot: estimated change. Line: 95% interval; if it crosses 0 the effect is not established."))


#: colours of significant / not significant groups and of everyone else in :func:`segment_gap_chart`
SIG_COLOURS = {"Group: significant": "#D55E00", "Group: not significant": "#0072B2", "Everyone else": GREY}


def segment_gap_chart(gaps: pl.DataFrame, jmap: JourneyMap | None = None, *, top: int = 15, title: str = "Groups converting differently from everyone else") -> alt.Chart:
    """Segment rate vs everyone else's rate for the largest gaps (suppressed cells left out).

    Input: ``metrics.segment_gaps`` output. Shows at most ``top`` rows, the
    significant ones first, then by absolute difference. Colours: grey =
    everyone else, orange = a group whose difference is significant after the
    false-discovery-rate correction, blue = a group whose difference is not.

    >>> import polars as pl
    >>> g = pl.DataFrame({"attribute": ["region"], "value": ["north"], "touchpoint_id": ["a"], "segment_n": [12],
    ...     "segment_rate": [0.3], "rest_n": [200], "rest_rate": [0.7], "difference": [-0.4], "q_value": [0.01],
    ...     "significant": [True], "suppressed": [False]})
    >>> len(segment_gap_chart(g).to_dict()["layer"])
    2
    """
    if gaps.height == 0 or gaps.filter(~pl.col("suppressed")).height == 0:
        return no_data_chart(title, "No group converts differently from everyone else.")
    names = _names(jmap) if jmap is not None else {}
    df = (
        gaps.filter(~pl.col("suppressed"))
        .with_columns(pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("tp_label"))
        .with_columns((pl.col("attribute") + " = " + pl.col("value").cast(pl.Utf8) + " → " + pl.col("tp_label")).alias("segment"),
                      pl.when(pl.col("significant")).then(pl.lit("Group: significant")).otherwise(pl.lit("Group: not significant")).alias("sig"))
        .sort([pl.col("significant"), pl.col("difference").abs()], descending=[True, True])
        .head(top)
        .with_columns(pl.col("segment").map_elements(lambda s: wrap(s, 34), return_dtype=pl.Utf8).alias("label"))
        .select("label", "segment", "segment_n", "segment_rate", "rest_n", "rest_rate", "difference", "q_value", "sig")
    )
    order = df["label"].to_list()
    long = df.unpivot(index=["label", "segment", "segment_n", "rest_n", "difference", "q_value", "sig", "segment_rate", "rest_rate"],
                      on=["segment_rate", "rest_rate"], variable_name="who", value_name="rate").with_columns(
        pl.when(pl.col("who") == "rest_rate").then(pl.lit("Everyone else")).otherwise(pl.col("sig")).alias("series"))
    series = [v for v in SIG_COLOURS if v in set(long["series"].to_list())]
    tips = [alt.Tooltip("segment:N", title="Group → converting from"), alt.Tooltip("segment_n:Q", title="Group size"), _pct("segment_rate", "Group rate"),
            alt.Tooltip("rest_n:Q", title="Everyone else"), _pct("rest_rate", "Everyone else's rate"),
            alt.Tooltip("difference:Q", title="Difference", format="+.1%"), alt.Tooltip("q_value:Q", title="q-value (FDR)", format=".2g")]
    y = alt.Y("label:N", sort=order, title=None, axis=_steps_axis())
    line = alt.Chart(df).mark_rule(color="#cccccc", strokeWidth=2).encode(
        y=y, x=alt.X("rest_rate:Q", title="Conversion (axis starts near the lowest rate shown)", axis=alt.Axis(format="%"),
                     scale=alt.Scale(zero=False, nice=True, padding=10)), x2="segment_rate:Q", tooltip=tips)
    pts = alt.Chart(long).mark_point(filled=True, size=85, opacity=1).encode(
        y=y, x="rate:Q", tooltip=tips,
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=series, range=[SIG_COLOURS[v] for v in series]), legend=_legend(series, symbolType="circle")))
    return _container(alt.layer(line, pts), alt.Step(40), legend_labels=series).properties(
        title=alt.Title(title, subtitle="Grey: everyone else. Orange: a group whose difference is significant after false-discovery-rate correction; blue: not significant."))


# --------------------------------------------------------------------------
# Fitting a chart to a width (the same rules as the page script)
# --------------------------------------------------------------------------

def _walk(obj: Any, fn) -> None:
    if isinstance(obj, dict):
        fn(obj)
        for v in obj.values():
            _walk(v, fn)
    elif isinstance(obj, list):
        for v in obj:
            _walk(v, fn)


def fit_spec(chart: alt.TopLevelMixin | dict, width: int, *, fixed: bool = True) -> dict:
    """The chart's spec laid out for a container ``width`` pixels wide.

    The page script (:data:`BOOTSTRAP_JS`) applies the same rules to live charts:

    * below ``usermeta.journey.min_width`` the ``narrow`` variant is used;
    * a faceted chart (``usermeta.journey.facet``) gets as many panels per row
      as fit (at most 5) and its panels share the remaining width;
    * legends take as many columns as fit (``legend_entry`` px each);
    * with ``fixed`` a ``"container"`` width becomes ``width`` (for the static
      image and for notebooks, where there is no container to measure).

    >>> import altair as alt, polars as pl
    >>> c = alt.Chart(pl.DataFrame({"a": [1]})).mark_point().encode(x="a:Q").properties(width="container")
    >>> fit_spec(c, 400)["width"]
    400
    """
    spec = copy.deepcopy(chart if isinstance(chart, dict) else chart.to_dict())
    meta = (spec.get("usermeta") or {}).get("journey") or {}
    if meta.get("narrow") and width < meta.get("min_width", 0):
        return fit_spec(meta["narrow"], width, fixed=fixed)
    f = meta.get("facet")
    if f and "spec" in spec:
        avail = width - f["fixed"]
        cols = max(1, min(f["max_columns"], (avail + f["spacing"]) // (f["panel"] + f["spacing"])))
        spec["columns"] = cols
        spec["spec"]["width"] = int(max(min(f["panel"], max(90, avail)), min(f["max_panel"], (avail + f["spacing"]) // cols - f["spacing"])))
    if meta.get("legend_entry"):
        lc = max(1, min(width - meta.get("legend_offset", 0), LEGEND_ROW_WIDTH) // meta["legend_entry"])

        def set_columns(o: dict) -> None:
            if isinstance(o.get("legend"), dict) and o["legend"].get("columns"):
                o["legend"]["columns"] = lc

        _walk(spec, set_columns)
    if isinstance(spec.get("title"), dict):
        t = spec["title"]
        t["text"] = _wrap_lines(t.get("text", ""), int(width / 9.4))
        if t.get("subtitle"):
            t["subtitle"] = _wrap_lines(t["subtitle"], int(width / 7.2))
    if fixed and spec.get("width") == "container":
        spec["width"] = width
    return spec


def _wrap_lines(text: Any, chars: int) -> list[str]:
    """Title text (a string or lines) re-wrapped to lines of at most ``chars`` characters."""
    lines = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(str(line), max(20, chars), break_long_words=False) or [""]
    return out


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

_OUTPUT = {"mode": "notebook"}


def set_output(mode: str) -> None:
    """Choose how :func:`show` renders: ``"notebook"`` (live JupyterLab) or ``"report"`` (offline HTML).

    >>> set_output("report"); set_output("notebook")
    """
    if mode not in ("notebook", "report"):
        raise ValueError(f"output mode must be 'notebook' or 'report', got {mode!r}")
    _OUTPUT["mode"] = mode


def _vl_version() -> str:
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_version_for_vl_convert()


@functools.lru_cache(maxsize=256)
def _svg_cached(payload: str) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(json.loads(payload), vl_version=_vl_version(), allowed_base_urls=[])


_NUM = re.compile(r"(-?\d+\.\d{2})\d+")
_DROP_ATTRS = re.compile(r'\s(?:class|role|aria-[a-z]+|pointer-events)="[^"]*"|\sopacity="1"|\sstroke-miterlimit="10"')


def static_svg(chart: alt.TopLevelMixin | dict, *, width: int = STATIC_WIDTH, label: str = "", stretch: bool = False) -> str:
    """The chart drawn in Python (vl-convert) as a compact inline SVG: the picture readers get without JavaScript.

    Laid out for ``width`` (:func:`fit_spec`); no resource is fetched. The
    SVG scales with its container (CSS), its ids are prefixed so that several
    charts on one page never share a clip path, coordinates keep two
    decimals and the repeated font and accessibility attributes of the marks
    are dropped (the figure carries the label). With ``stretch`` the picture
    fills its box whatever the box's proportions (for the map's emotion lane,
    whose points must stay under the touchpoint columns).

    >>> import altair as alt, polars as pl
    >>> s = static_svg(alt.Chart(pl.DataFrame({"a": [1, 2]})).mark_point().encode(x="a:Q"), label="A & B")
    >>> s.startswith('<svg class="journey-static"') and 'aria-label="A &amp; B"' in s and "http" not in s.split(">", 1)[1]
    True
    """
    spec = fit_spec(chart, width)
    payload = json.dumps(spec, sort_keys=True, default=str)
    svg = _svg_cached(payload)
    prefix = "j" + hashlib.sha1(payload.encode()).hexdigest()[:8]
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = svg.replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')
    svg = re.sub(r'="([^"]*)"', lambda m: '="' + _NUM.sub(r"\1", m.group(1)) + '"', svg)
    fonts = re.findall(r'font-family="([^"]*)"', svg)
    font = max(set(fonts), key=fonts.count) if fonts else FONT
    svg = svg.replace(f' font-family="{font}"', "")
    svg = _DROP_ATTRS.sub("", svg)
    svg = re.sub(r'<path d="M0,0h0v0h0Z"/>', "", svg)
    fit = 'preserveAspectRatio="none" ' if stretch else ""
    head = (f'<svg class="journey-static" xmlns="http://www.w3.org/2000/svg" \\1 role="img" {fit}'
            f'aria-label="{_html.escape(label or "chart", quote=True)}" font-family="{_html.escape(font, quote=True)}">')
    svg = re.sub(r"^<svg [^>]*?(width=\"[^\"]*\" height=\"[^\"]*\" viewBox=\"[^\"]*\")[^>]*>", lambda m: head.replace("\\1", m.group(1)), svg, count=1)
    return svg


def _chart_title(spec: dict) -> str:
    t = spec.get("title")
    if isinstance(t, dict):
        t = t.get("text", "")
    if isinstance(t, list):
        t = " ".join(map(str, t))
    return str(t or spec.get("description") or "chart")


def _chart_description(spec: dict) -> str:
    t = spec.get("title")
    sub = t.get("subtitle", "") if isinstance(t, dict) else ""
    sub = " ".join(map(str, sub)) if isinstance(sub, list) else str(sub or "")
    return (_chart_title(spec) + (". " + sub if sub else "")).strip()


class ChartHTML:
    """A chart as report HTML: a ``<figure class="journey-chart">`` with a static SVG and its JSON spec.

    The static SVG (:func:`static_svg`) is what a reader sees with JavaScript
    off; the page's script draws the live chart from the spec in its place.
    No script is included here: the report page loads the Vega libraries once.
    ``</`` in the spec is escaped so that user text cannot close the element.

    >>> import altair as alt, polars as pl
    >>> h = ChartHTML(alt.Chart(pl.DataFrame({"a": ["</script>"]})).mark_point().encode(x="a:N")).html
    >>> h.count("</script"), "<svg" in h  # only the element's own closing tag; the static picture is inline
    (1, True)
    """

    def __init__(self, chart: alt.TopLevelMixin | dict, *, static: bool = True, static_width: int = STATIC_WIDTH):
        self.spec = chart if isinstance(chart, dict) else chart.to_dict()
        self.static = static
        self.static_width = static_width

    @property
    def html(self) -> str:
        payload = json.dumps(self.spec, separators=(",", ":"), ensure_ascii=False, default=str)
        payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
        desc = _chart_description(self.spec)
        meta = (self.spec.get("usermeta") or {}).get("journey") or {}
        cls = "journey-chart journey-lane" if meta.get("lane") else "journey-chart"
        svg = static_svg(self.spec, label=desc, width=self.static_width, stretch=bool(meta.get("lane"))) if self.static else ""
        pic = f'<div class="journey-chart-static">{svg}</div>' if self.static else ""
        return (f'<figure class="{cls}" aria-label="{_html.escape(desc)}">{pic}'
                f'<script type="application/json">{payload}</script></figure>')

    def _repr_html_(self) -> str:
        return self.html


class NotebookChart:
    """A chart for JupyterLab: compiled to Vega and shown by JupyterLab's built-in Vega renderer (no CDN, works offline).

    ``_repr_mimebundle_`` returns ``application/vnd.vega.v5+json`` (the
    chart laid out for :data:`NOTEBOOK_WIDTH` px) and a plain-text line, with
    the report's embed options (SVG renderer, tooltips, no action menu).

    >>> import altair as alt, polars as pl
    >>> b, meta = NotebookChart(alt.Chart(pl.DataFrame({"a": [1]})).mark_point().encode(x="a:Q").properties(title="T"))._repr_mimebundle_()
    >>> sorted(b), b["text/plain"], meta["application/vnd.vega.v5+json"]["embed_options"]["renderer"]
    (['application/vnd.vega.v5+json', 'text/plain'], '<chart: T>', 'svg')
    """

    MIMETYPE = "application/vnd.vega.v5+json"

    def __init__(self, chart: alt.TopLevelMixin | dict, *, width: int = NOTEBOOK_WIDTH):
        self.spec = chart if isinstance(chart, dict) else chart.to_dict()
        self.width = width

    def vega(self) -> dict:
        """The Vega spec (compiled by vl-convert, no network).

        >>> import altair as alt, polars as pl
        >>> "marks" in NotebookChart(alt.Chart(pl.DataFrame({"a": [1]})).mark_point().encode(x="a:Q")).vega()
        True
        """
        import vl_convert as vlc

        spec = vlc.vegalite_to_vega(fit_spec(self.spec, self.width), vl_version=_vl_version())
        spec["$schema"] = "https://vega.github.io/schema/vega/v5.json"  # a name, never fetched: JupyterLab draws it with its Vega 5
        return spec

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict, dict]:
        data = {self.MIMETYPE: self.vega(), "text/plain": f"<chart: {_chart_title(self.spec)}>"}
        return data, {self.MIMETYPE: {"embed_options": EMBED_OPTIONS}}


class NoData:
    """One line saying a chart or section has no data for its subject (``<p class="journey-nodata">``), escaped.

    >>> NoData("Funnel", "No <learners>.")._repr_html_()
    '<p class="journey-nodata"><strong>Funnel:</strong> No &lt;learners&gt;.</p>'
    """

    def __init__(self, title: str, message: str):
        self.title, self.message = title, message

    def _repr_html_(self) -> str:
        return f'<p class="journey-nodata"><strong>{_html.escape(self.title)}:</strong> {_html.escape(self.message)}</p>'

    def __repr__(self) -> str:
        return f"{self.title}: {self.message}"


def show(chart: alt.TopLevelMixin):
    """Display value for a chart: :class:`NotebookChart` (JupyterLab) or :class:`ChartHTML` (report); a chart
    with nothing to draw becomes one line of text (:class:`NoData`).

    >>> import altair as alt, polars as pl
    >>> type(show(alt.Chart(pl.DataFrame({"a": [1]})).mark_point().encode(x="a:Q"))).__name__
    'NotebookChart'
    >>> type(show(no_data_chart("Funnel"))).__name__
    'NoData'
    """
    spec = chart.to_dict() if not isinstance(chart, dict) else chart
    msg = no_data_message(spec)
    if msg:
        return NoData(_chart_title(spec), msg)
    if _OUTPUT["mode"] == "report":
        return ChartHTML(spec)
    return NotebookChart(spec)


def _altair_renderer(spec: dict, **kwargs) -> tuple[dict, dict]:
    """Altair renderer ``journey``: every displayed chart goes to JupyterLab's own Vega renderer (offline)."""
    return NotebookChart(spec)._repr_mimebundle_()


alt.renderers.register(THEME_NAME, _altair_renderer)
alt.renderers.enable(THEME_NAME)


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """The Vega, Vega-Lite and Vega-Embed JavaScript as one inline-able string.

    Taken from vl-convert's bundled copies (no network); defines
    ``window.vegaEmbed``. ``</script`` never occurs inside it.

    >>> "vegaEmbed" in vega_bundle()
    True
    """
    import vl_convert as vlc

    js = vlc.javascript_bundle(vl_version=_vl_version())
    return js.replace("</script", "<\\/script")


#: Draws every ``figure.journey-chart`` on the page at its container's width (added once per page after :func:`vega_bundle`).
BOOTSTRAP_JS = """
(function () {
  var opts = %s, LEGEND_ROW = %d;
  function walk(o, f) {
    if (Array.isArray(o)) { o.forEach(function (v) { walk(v, f); }); }
    else if (o && typeof o === "object") { f(o); Object.keys(o).forEach(function (k) { walk(o[k], f); }); }
  }
  function wrapLines(text, chars) {
    chars = Math.max(20, chars);
    var out = [];
    (Array.isArray(text) ? text : [text]).forEach(function (line) {
      var cur = "";
      String(line).split(/\\s+/).forEach(function (w) {
        if (!w) { return; }
        if (cur && (cur + " " + w).length > chars) { out.push(cur); cur = w; } else { cur = cur ? cur + " " + w : w; }
      });
      out.push(cur);
    });
    return out;
  }
  function fit(spec, width) {
    var m = (spec.usermeta && spec.usermeta.journey) || {};
    if (m.narrow && width < (m.min_width || 0)) { return fit(m.narrow, width); }
    spec = JSON.parse(JSON.stringify(spec));
    var f = m.facet;
    if (f && spec.spec) {
      var avail = width - f.fixed;
      var cols = Math.max(1, Math.min(f.max_columns, Math.floor((avail + f.spacing) / (f.panel + f.spacing))));
      spec.columns = cols;
      spec.spec.width = Math.max(Math.min(f.panel, Math.max(90, avail)), Math.min(f.max_panel, Math.floor((avail + f.spacing) / cols) - f.spacing));
    }
    if (m.legend_entry) {
      var lc = Math.max(1, Math.floor(Math.min(width - (m.legend_offset || 0), LEGEND_ROW) / m.legend_entry));
      walk(spec, function (o) { if (o.legend && typeof o.legend === "object" && o.legend.columns) { o.legend.columns = lc; } });
    }
    if (spec.title && typeof spec.title === "object") {
      spec.title.text = wrapLines(spec.title.text || "", Math.floor(width / 9.4));
      if (spec.title.subtitle) { spec.title.subtitle = wrapLines(spec.title.subtitle, Math.floor(width / 7.2)); }
    }
    return spec;
  }
  function draw(fig) {
    var src = fig.querySelector('script[type="application/json"]');
    if (!src) { return; }
    var width = Math.floor(fig.getBoundingClientRect().width);
    var last = Number(fig.getAttribute("data-width") || 0);
    if (last && Math.abs(last - width) < 24) { return; }
    fig.setAttribute("data-width", String(width));
    var target = fig.querySelector(".journey-chart-view");
    if (!target) { target = document.createElement("div"); target.className = "journey-chart-view"; fig.appendChild(target); }
    if (fig.__view) { fig.__view.finalize(); fig.__view = null; target.innerHTML = ""; }
    var full = JSON.parse(src.textContent);
    window.vegaEmbed(target, fit(full, width), opts).then(function (res) {
      // text measured wider than estimated: lay the chart out once more for the width it overshot by
      var svg = target.querySelector("svg"), over = svg ? Math.ceil(svg.getBoundingClientRect().width) - width : 0;
      if (over > 1 && !fig.classList.contains("journey-lane")) {
        res.view.finalize(); target.innerHTML = "";
        return window.vegaEmbed(target, fit(full, width - over - 4), opts);
      }
      return res;
    }).then(function (res) {
      fig.__view = res.view;
      if (fig.classList.contains("journey-lane")) {
        var svg = target.querySelector("svg");
        if (svg) { svg.setAttribute("preserveAspectRatio", "none"); }
      }
      fig.classList.add("journey-live");
      fig.setAttribute("data-rendered", "true");
    }).catch(function (err) {
      fig.setAttribute("data-error", String(err));
      console.error(err);
    });
  }
  var figs = Array.prototype.slice.call(document.querySelectorAll("figure.journey-chart"));
  figs.forEach(draw);
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { figs.forEach(draw); }, 200);
  });
})();
""" % (json.dumps(EMBED_OPTIONS), LEGEND_ROW_WIDTH)


def chart_page_scripts() -> str:
    """The ``<script>`` elements a report page needs to draw its charts (bundle + bootstrap), once per page.

    >>> chart_page_scripts().count("<script")
    2
    """
    return f'<script type="text/javascript">{vega_bundle()}</script>\n<script type="text/javascript">{BOOTSTRAP_JS}</script>'
