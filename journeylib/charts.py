"""Altair chart builders for journey reports, with one shared theme.

Every builder takes a small polars frame as returned by :mod:`journeylib.metrics`
and returns an ``alt.Chart`` (a value you can test, save or render). Colours
are consistent across charts: stages and personas get fixed colours from a
colour-blind-safe palette (Okabe & Ito) in map order, see :func:`stage_colors`
and :func:`persona_colors`. KPI statuses always come with text as well as
colour.

Charts are shown in notebooks with :func:`show`. In ``"notebook"`` output mode
this is the chart itself (JupyterLab renders it). In ``"report"`` mode it is a
:class:`ChartHTML`: a ``<div>`` holding the chart's JSON spec and no script.
The report template adds the Vega / Vega-Lite / Vega-Embed JavaScript once per
page (from :func:`vega_bundle`, inlined, never fetched) and one small script
that draws every chart of the page.

>>> import polars as pl
>>> from journeylib.model import JourneyMap
>>> jm = JourneyMap.model_validate({"name": "Demo", "stages": [{"id": "s", "name": "S"}],
...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
>>> stage_colors(jm)
{'s': '#0072B2'}
"""

from __future__ import annotations

import functools
import html as _html
import json
from typing import Any, Iterable, Sequence

import altair as alt
import polars as pl

from .model import JourneyMap

#: Okabe & Ito colour-blind-safe palette (yellow last: low contrast on white).
PALETTE: list[str] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
#: Colour for "unassigned" / "everyone else" / not enough data.
GREY = "#8C8C8C"
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

#: Vega-Embed options used in reports: SVG renderer (crisp, testable), tooltips, no action menu.
EMBED_OPTIONS: dict[str, Any] = {"actions": False, "renderer": "svg", "tooltip": {"theme": "light"}}


@alt.theme.register(THEME_NAME, enable=True)
def journey_theme() -> alt.theme.ThemeConfig:
    """The journey report theme: readable sizes, system fonts, Okabe-Ito colours.

    Registered and enabled on import of :mod:`journeylib.charts`.

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
                "labelLimit": 220,
            },
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "top", "labelLimit": 220},
            "header": {"labelFontSize": 13, "titleFontSize": 13, "labelFontWeight": "bold"},
            "title": {"fontSize": 15, "anchor": "start", "fontWeight": "bold", "color": "#1a1a1a", "subtitleFontSize": 12, "subtitleColor": "#555555"},
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
    """Add display columns: touchpoint_name, stage_name, order, and by_name for personas."""
    names, stages = _names(jmap), _stage_names(jmap)
    order = {t: i for i, t in enumerate(jmap.touchpoint_ids)}
    out = df
    if "touchpoint_id" in out.columns:
        if "touchpoint_name" not in out.columns:
            out = out.with_columns(pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("touchpoint_name"))
        if "stage" not in out.columns:
            out = out.with_columns(pl.col("touchpoint_id").replace_strict({t.id: t.stage for t in jmap.touchpoints}, default=None).alias("stage"))
        out = out.with_columns(pl.col("touchpoint_id").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("tp_order"))
    if "stage" in out.columns:
        out = out.with_columns(pl.col("stage").replace_strict(stages, default=pl.col("stage")).alias("stage_name"))
    if by is not None and by in out.columns:
        pn = _persona_names(jmap) if by == "persona" else {}
        out = out.with_columns(pl.col(by).cast(pl.Utf8).replace_strict(pn, default=pl.col(by).cast(pl.Utf8)).alias("by_name"))
    return out


def _persona_scale(jmap: JourneyMap, df: pl.DataFrame, by: str) -> alt.Scale:
    """Colour scale for the ``by_name`` column: personas keep their map colours."""
    if by == "persona":
        pc = persona_colors(jmap, extra=["unassigned"])
        pn = _persona_names(jmap)
        colors = {pn.get(k, k): v for k, v in pc.items()}
    else:
        values = sorted(v for v in df["by_name"].unique().to_list() if v is not None)
        colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(values)}
    present = [v for v in df["by_name"].unique().to_list() if v is not None] if "by_name" in df.columns else []
    domain = [k for k in colors if k in present] + sorted(v for v in present if v not in colors)
    return alt.Scale(domain=domain, range=[colors.get(d, GREY) for d in domain])


#: Panels per row in persona small multiples (they wrap beyond this).
FACET_COLUMNS = 5
#: Panel headers: the ``panel`` field holds the title wrapped with newlines; one line each.
PANEL_HEADER = alt.Header(labelFontSize=12, labelExpr="split(datum.label, '\\n')", labelLimit=160, labelBaseline="bottom")


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
    """Add ``panel``: the panel title wrapped to lines of about ``width`` characters (joined by a newline), and its order.

    Long persona names then do not widen the panels; the header splits the lines.
    """
    import textwrap

    def wrap(v: str | None) -> str | None:
        return None if v is None else "\n".join(textwrap.wrap(v, width) or [v])

    order = [wrap(v) for v in _facet_order(jmap, df, by)]
    return df.with_columns(pl.col("by_name").map_elements(wrap, return_dtype=pl.Utf8).alias("panel")), order


def no_data_chart(title: str, message: str = "No data to show for this selection.") -> alt.Chart:
    """A chart-sized placeholder saying there is nothing to draw (keeps the page's layout and title).

    >>> no_data_chart("Funnel").to_dict()["mark"]["type"]
    'text'
    """
    return alt.Chart(pl.DataFrame({"message": [message]})).mark_text(fontSize=13, color="#555555", align="left", x=0, y=20).encode(
        text="message:N").properties(width=480, height=40, title=alt.Title(title))


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


def _pct(field: str, title: str) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:Q", title=title, format=".0%")


# --------------------------------------------------------------------------
# Funnels
# --------------------------------------------------------------------------

def funnel_chart(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", title: str = "Funnel: share of starters reaching each step") -> alt.Chart:
    """Funnel bars (share of step-1 learners reaching each step) with 95% intervals.

    ``funnel`` is the output of ``metrics.funnel`` (columns step, touchpoint_id,
    learners, conversion_from_start(+_low/_high), …). With ``by`` the personas
    are drawn side by side, one panel each, in their persona colours.

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
    if not funnel.height:
        return no_data_chart(title)
    df, by = _named_by(funnel, jmap, by)
    order = df.sort("step")["touchpoint_name"].unique(maintain_order=True).to_list()
    y = alt.Y("touchpoint_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    tips = [
        alt.Tooltip("touchpoint_name:N", title="Step"),
        alt.Tooltip("learners:Q", title="Learners", format=","),
        _pct("conversion_from_start", "Of starters"),
        _pct("conversion_from_start_low", "95% interval from"),
        _pct("conversion_from_start_high", "95% interval to"),
        _pct("conversion_from_previous", "From previous step"),
    ]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=by.replace("_", " ").capitalize()))
        color = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), legend=None)
    else:
        color = alt.value(PALETTE[0])
    base = alt.Chart() if by else alt.Chart(df)  # a faceted layer takes its data from the facet
    bars = base.mark_bar(opacity=0.85).encode(
        y=y, x=alt.X("conversion_from_start:Q", title="Share of starters", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=color, tooltip=tips,
    )
    rules = base.mark_rule(color="#222222").encode(y=y, x="conversion_from_start_low:Q", x2="conversion_from_start_high:Q", tooltip=tips)
    labels = base.mark_text(align="left", dx=4, dy=-7, fontSize=11, color="#333333").encode(
        y=y, x="conversion_from_start_high:Q", text=alt.Text("conversion_from_start:Q", format=".0%")
    )
    layered = alt.layer(bars, rules, labels).properties(width=125 if by else 480, height=alt.Step(24))
    if by:
        df, order_p = _panels(df, jmap, by)
        layered = layered.facet(facet=alt.Facet("panel:N", title=None, header=PANEL_HEADER, sort=order_p), columns=FACET_COLUMNS, data=df, spacing=14)
    return layered.properties(title=alt.Title(title, subtitle="Bars: share of learners at step 1 who reached the step. Black line: 95% interval."))


def stops_chart(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", title: str = "Where learners stop (and who is still in progress)") -> alt.Chart:
    """Learners whose furthest step is each step: *stopped* vs *still in progress*.

    In-progress learners (active within the map's dormancy window) are drawn
    apart, never counted as stopped. Input: ``metrics.funnel`` output.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"step": [1], "touchpoint_id": ["a"], "stopped": [3], "in_progress": [1]})
    >>> "facet" in stops_chart(f, jm, by=None).to_dict()
    False
    """
    if not funnel.height:
        return no_data_chart(title)
    df, by = _named_by(funnel, jmap, by)
    if by:
        df, order_p = _panels(df, jmap, by)
    keys = ["step", "touchpoint_name"] + (["by_name", "panel"] if by else [])
    long = (
        df.select(keys + ["stopped", "in_progress"])
        .unpivot(index=keys, on=["stopped", "in_progress"], variable_name="state", value_name="learners")
        .with_columns(pl.col("state").replace_strict({"stopped": "Stopped here", "in_progress": "In progress (not stopped)"}))
    )
    order = df.sort("step")["touchpoint_name"].unique(maintain_order=True).to_list()
    tips = [alt.Tooltip("touchpoint_name:N", title="Furthest step"), alt.Tooltip("state:N", title="State"), alt.Tooltip("learners:Q", title="Learners", format=",")]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=by.replace("_", " ").capitalize()))
    chart = alt.Chart(long).mark_bar().encode(
        y=alt.Y("touchpoint_name:N", sort=order, title=None),
        x=alt.X("learners:Q", title="Learners", stack="zero"),
        color=alt.Color("state:N", title=None, scale=alt.Scale(domain=["Stopped here", "In progress (not stopped)"], range=["#D55E00", "#56B4E9"])),
        order=alt.Order("state:N", sort="descending"),
        tooltip=tips,
    ).properties(width=125 if by else 480, height=alt.Step(22))
    if by:
        chart = chart.facet(facet=alt.Facet("panel:N", title=None, header=PANEL_HEADER, sort=order_p), columns=FACET_COLUMNS, spacing=14)
    return chart.properties(title=alt.Title(title, subtitle="Orange: no event for longer than the dormancy window. Blue: still active, may carry on."))


def time_to_convert_chart(funnel: pl.DataFrame, jmap: JourneyMap, *, by: str | None = "persona", title: str = "Days from the previous step") -> alt.Chart:
    """Median (dot) and 90th percentile (end of line) days to reach each step.

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
        return no_data_chart(title)
    order = df.sort("step")["touchpoint_name"].unique(maintain_order=True).to_list()
    tips = [
        alt.Tooltip("touchpoint_name:N", title="Step"),
        alt.Tooltip("median_days_to_convert:Q", title="Median days", format=".1f"),
        alt.Tooltip("p90_days_to_convert:Q", title="90% within days", format=".1f"),
    ]
    if by:
        tips.insert(0, alt.Tooltip("by_name:N", title=by.replace("_", " ").capitalize()))
        color = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), title=None,
                          legend=alt.Legend(columns=legend_columns(df["by_name"].unique())))
        yoff = alt.YOffset("by_name:N")
    else:
        color = alt.value(PALETTE[0])
        yoff = alt.YOffset()
    y = alt.Y("touchpoint_name:N", sort=order, title=None)
    base = alt.Chart(df)
    enc = {"y": y, "color": color, "tooltip": tips}
    if by:
        enc["yOffset"] = yoff
    rule = base.mark_rule(strokeWidth=2, opacity=0.6).encode(x=alt.X("median_days_to_convert:Q", title="Days from previous step"), x2="p90_days_to_convert:Q", **enc)
    dot = base.mark_point(filled=True, size=70).encode(x="median_days_to_convert:Q", **enc)
    n_steps = max(1, len(order))
    n_groups = max(1, df["by_name"].n_unique()) if by else 1
    return alt.layer(rule, dot).properties(width=480, height=n_steps * max(22, 9 * n_groups), title=alt.Title(title, subtitle="Dot: median. Line ends at the 90th percentile."))


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
        color = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), title=by.replace("_", " ").capitalize(),
                          legend=alt.Legend(orient="bottom", columns=legend_columns(df["by_name"].unique().to_list()),
                                            symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=3))
    else:
        color = alt.value(PALETTE[0])
    base = alt.Chart(df)
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(x=x, y="low:Q", y2="high:Q", color=color)
    line = base.mark_line(interpolate="step-after", strokeWidth=2).encode(x=x, y=y, color=color, tooltip=tips)
    sub = subtitle or "Line: Kaplan–Meier estimate; band: 95% interval. Learners are followed until a stop can be known."
    return alt.layer(line, band).properties(width=560, height=300, title=alt.Title(title, subtitle=sub))


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
        return no_data_chart(title)
    df = _with_names(dropoff, jmap)
    order = df.sort("tp_order")["touchpoint_name"].unique(maintain_order=True).to_list()
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
    x = alt.X("touchpoint_name:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40))
    base = alt.Chart(df)
    bars = base.mark_bar().encode(x=x, y=alt.Y("stop_rate:Q", title="Stopped here / reached", axis=alt.Axis(format="%")),
                                  color=alt.Color("stage_name:N", title="Stage", scale=_scale(sc), sort=list(sc),
                                                  legend=alt.Legend(columns=legend_columns(sc))), tooltip=tips)
    err = base.mark_rule(color="#222222").encode(x=x, y="stop_rate_low:Q", y2="stop_rate_high:Q", tooltip=tips)
    return alt.layer(bars, err).properties(width=alt.Step(34), height=260, title=alt.Title(title, subtitle="Bars: learners whose journey ended here, excluding those still in progress. Black line: 95% interval."))


def hotspots_chart(hotspots: pl.DataFrame, jmap: JourneyMap, *, now: str = "stop_rate", before: str = "previous_stop_rate", title: str = "Stop rate: this period vs the previous one") -> alt.Chart:
    """Dumbbell chart of the stop rate per touchpoint, previous period (grey) → this period (colour).

    Input: the review's ``hotspots`` frame; ``now``/``before`` name its rate columns.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> h = pl.DataFrame({"touchpoint_id": ["a"], "stop_rate": [0.3], "previous_stop_rate": [0.1]})
    >>> len(hotspots_chart(h, jm).to_dict()["layer"])
    3
    """
    if not hotspots.height:
        return no_data_chart(title)
    df = _with_names(hotspots, jmap)
    order = df.sort("tp_order")["touchpoint_name"].unique(maintain_order=True).to_list()
    tips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"), _pct(before, "Previous period"), _pct(now, "This period")]
    for extra, t in (("reached", "Reached (this period)"), ("stopped", "Stopped (this period)")):
        if extra in df.columns:
            tips.append(alt.Tooltip(f"{extra}:Q", title=t, format=","))
    y = alt.Y("touchpoint_name:N", sort=order, title=None)
    base = alt.Chart(df)
    line = base.mark_rule(color="#999999", strokeWidth=2).encode(y=y, x=alt.X(f"{before}:Q", title="Stop rate", axis=alt.Axis(format="%")), x2=f"{now}:Q", tooltip=tips)
    prev = base.mark_point(filled=True, size=70, color=GREY).encode(y=y, x=f"{before}:Q", tooltip=tips)
    cur = base.mark_point(filled=True, size=90, color="#D55E00").encode(y=y, x=f"{now}:Q", tooltip=tips)
    return alt.layer(line, prev, cur).properties(width=480, height=alt.Step(22), title=alt.Title(title, subtitle="Grey dot: previous period. Orange dot: this period."))


# --------------------------------------------------------------------------
# Emotion
# --------------------------------------------------------------------------

def _index_axis(jmap: JourneyMap, ids: Sequence[str]) -> alt.Axis:
    names = _names(jmap)
    labels = [names.get(t, t) for t in ids]
    return alt.Axis(values=list(range(len(ids))), labelExpr=f"{json.dumps(labels)}[datum.value] || ''", labelAngle=-45, grid=False, title=None,
                    labelLimit=170, labelOverlap=False, labelFontSize=11)


def _stage_bands(jmap: JourneyMap, ids: Sequence[str], y_min: float, y_max: float) -> alt.Chart:
    """Background bands and labels, one per stage, spanning its touchpoints."""
    pos = {t: i for i, t in enumerate(ids)}
    rows = []
    sc = stage_colors(jmap)
    for s in jmap.stages:
        idx = [pos[t.id] for t in jmap.touchpoints if t.stage == s.id and t.id in pos]
        if idx:
            rows.append({"stage_name": s.name, "x0": min(idx) - 0.5, "x1": max(idx) + 0.5, "xm": (min(idx) + max(idx)) / 2, "color": sc[s.id], "y0": y_min, "y1": y_max})
    bands = pl.DataFrame(rows)
    base = alt.Chart(bands)
    rect = base.mark_rect(opacity=0.09).encode(x=alt.X("x0:Q"), x2="x1:Q", y=alt.Y("y0:Q"), y2="y1:Q", color=alt.Color("color:N", scale=None))
    text = base.mark_text(baseline="top", dy=4, fontWeight="bold", fontSize=12, color="#333333").encode(x="xm:Q", y="y1:Q", text="stage_name:N")
    return alt.layer(rect, text)


def emotion_curve(emotion: pl.DataFrame, jmap: JourneyMap, *, by: str | None = None, title: str = "Emotion along the journey: target vs measured") -> alt.Chart:
    """The emotional curve drawn like a journey map.

    Touchpoints run left to right in map order, grouped under their stages
    (shaded bands). The dashed grey line is the designed target emotion; the
    coloured line is the measured mean valence with its 95% interval (one line
    per persona with ``by="persona"``). Input: ``metrics.emotion`` output
    (touchpoint_id, n, mean_valence, low, high, target_valence[, by]).

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> e = pl.DataFrame({"touchpoint_id": ["a"], "n": [12], "mean_valence": [0.5], "low": [0.1], "high": [0.9], "target_valence": [1.0]})
    >>> spec = emotion_curve(e, jm).to_dict()
    >>> len(spec["layer"]) >= 4
    True
    """
    by = _by_col(by)
    ids = jmap.touchpoint_ids
    pos = {t: i for i, t in enumerate(ids)}
    df = _with_names(emotion, jmap, by if by and by in emotion.columns else None)
    if by not in df.columns:
        by = None
    df = (
        df.with_columns(pl.col("touchpoint_id").replace_strict(pos, default=None, return_dtype=pl.Float64).alias("x"))
        .filter(pl.col("x").is_not_null() & pl.col("mean_valence").is_not_null())  # the line joins measured touchpoints
        .sort("x")
    )
    subtitle = "Dashed grey: designed target emotion. Coloured: measured mean with 95% interval. Shaded columns: stages."
    if not df.height:
        subtitle = "No emotion responses in the data: only the designed target emotion (dashed) is shown."
    scale = jmap.emotion_scale
    ymin, ymax = float(scale.min), float(scale.max)
    target = pl.DataFrame({"x": [float(i) for i in range(len(ids))], "touchpoint_name": [jmap.touchpoint(t).name for t in ids],
                           "target_valence": [jmap.touchpoint(t).target_emotion.valence for t in ids],
                           "target_label": [jmap.touchpoint(t).target_emotion.label for t in ids]})
    xenc = alt.X("x:Q", axis=_index_axis(jmap, ids), scale=alt.Scale(domain=[-0.5, len(ids) - 0.5], nice=False, zero=False))
    yscale = alt.Scale(domain=[ymin, ymax + 0.45 * (ymax - ymin) / 4], nice=False)
    yenc = alt.Y("mean_valence:Q", title="Emotion (valence)", scale=yscale)
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
        tips.insert(0, alt.Tooltip("by_name:N", title=by.replace("_", " ").capitalize()))
        color = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), title=None, legend=None)
        color_legend = alt.Color("by_name:N", scale=_persona_scale(jmap, df, by), title=None,
                                 legend=alt.Legend(symbolOpacity=1, symbolType="circle", symbolSize=90, symbolStrokeWidth=0,
                                                   columns=legend_columns(df["by_name"].unique())))
        detail = [alt.Detail("by_name:N")]
    else:
        color = color_legend = alt.value(PALETTE[0])
        detail = []
    bands = _stage_bands(jmap, ids, ymin, ymax + 0.45 * (ymax - ymin) / 4)
    tbase = alt.Chart(target)
    tline = tbase.mark_line(strokeDash=[6, 4], color="#555555").encode(x=xenc, y=alt.Y("target_valence:Q", scale=yscale))
    tpts = tbase.mark_point(shape="diamond", color="#555555", filled=True, size=60).encode(
        x="x:Q", y="target_valence:Q",
        tooltip=[alt.Tooltip("touchpoint_name:N", title="Touchpoint"), alt.Tooltip("target_label:N", title="Target emotion"), alt.Tooltip("target_valence:Q", title="Target valence")],
    )
    mbase = alt.Chart(df)
    err = mbase.mark_rule(strokeWidth=2, opacity=0.55).encode(x="x:Q", y="low:Q", y2="high:Q", color=color, tooltip=tips, *detail)
    line = mbase.mark_line(strokeWidth=2.5).encode(x="x:Q", y=yenc, color=color, *detail)
    pts = mbase.mark_point(filled=True, size=80, opacity=1).encode(x="x:Q", y="mean_valence:Q", color=color_legend, tooltip=tips, *detail)
    zero = alt.Chart(pl.DataFrame({"y": [0.0]})).mark_rule(color="#bbbbbb").encode(y="y:Q")
    return alt.layer(bands, zero, tline, tpts, err, line, pts).properties(
        width=max(480, 46 * len(ids)), height=300,
        title=alt.Title(title, subtitle=subtitle),
    )


def emotion_gap_chart(frame: pl.DataFrame, jmap: JourneyMap, *, y: str = "stop_rate", y_title: str = "Stop rate", title: str = "Emotion gap vs stopping, per touchpoint",
                      subtitle: str = "Top-left: learners feel worse than designed AND stop more. Look there first.") -> alt.Chart:
    """Scatter: emotion gap (measured − target, x) against a KPI or stop rate (y), one dot per touchpoint.

    ``frame`` has touchpoint_id, gap and the ``y`` column (e.g. ``stop_rate`` or
    ``attainment``). Dots are coloured by stage and labelled with the touchpoint.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"touchpoint_id": ["a"], "gap": [-0.5], "stop_rate": [0.2]})
    >>> emotion_gap_chart(f, jm).to_dict()["layer"][1]["mark"]["type"]
    'point'
    """
    df = _with_names(frame, jmap).filter(pl.col("gap").is_not_null() & pl.col(y).is_not_null()) if frame.height else frame
    if not df.height:
        return no_data_chart(title, "No touchpoint has both emotion responses and this measure.")
    sc = {_stage_names(jmap)[k]: v for k, v in stage_colors(jmap).items()}
    fmt = ".0%" if y in ("stop_rate", "attainment", "conversion", "kpis_met") or y.endswith("_rate") else ".2f"
    tips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"), alt.Tooltip("stage_name:N", title="Stage"),
            alt.Tooltip("gap:Q", title="Emotion gap (measured − target)", format="+.2f"), alt.Tooltip(f"{y}:Q", title=y_title, format=fmt)]
    if "n" in df.columns:
        tips.append(alt.Tooltip("n:Q", title="Emotion responses", format=","))
    base = alt.Chart(df)
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#bbbbbb", strokeDash=[4, 3]).encode(x="x:Q")
    pts = base.mark_point(filled=True, size=110, opacity=0.9).encode(
        x=alt.X("gap:Q", title="Emotion gap (measured − target; below 0 = worse than designed)"),
        y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=fmt.replace("+", ""))),
        color=alt.Color("stage_name:N", title="Stage", scale=_scale(sc), sort=list(sc), legend=alt.Legend(columns=legend_columns(sc))), tooltip=tips,
    )
    labels = base.mark_text(align="left", dx=7, fontSize=11, color="#333333").encode(x="gap:Q", y=f"{y}:Q", text="touchpoint_name:N")
    return alt.layer(zero, pts, labels).properties(width=520, height=320, title=alt.Title(title, subtitle=subtitle))


def emotion_stopping_chart(frame: pl.DataFrame, jmap: JourneyMap, *, title: str = "Do learners who feel bad at a touchpoint stop at the next one?") -> alt.Chart:
    """Stop rate after a low-emotion response vs after other responses, per touchpoint.

    Input: ``metrics.emotion_vs_stopping`` output (touchpoint_id, low_n,
    low_stop_rate, other_n, other_stop_rate, difference, p_value).

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> f = pl.DataFrame({"touchpoint_id": ["a"], "low_n": [10], "low_stop_rate": [0.5], "other_n": [40],
    ...     "other_stop_rate": [0.1], "difference": [0.4], "p_value": [0.01]})
    >>> len(emotion_stopping_chart(f, jm).to_dict()["layer"])
    3
    """
    df = _with_names(frame, jmap).filter(pl.col("low_stop_rate").is_not_null() | pl.col("other_stop_rate").is_not_null()) if frame.height else frame
    if not df.height:
        return no_data_chart(title, "No emotion responses to compare.")
    df = df.with_columns(pl.when(pl.col("p_value") < 0.05).then(pl.lit("yes (p < 0.05)")).otherwise(pl.lit("no")).alias("significant"))
    order = df.sort("tp_order")["touchpoint_name"].unique(maintain_order=True).to_list()
    tips = [alt.Tooltip("touchpoint_name:N", title="Touchpoint"),
            alt.Tooltip("low_n:Q", title="Low-emotion responses"), _pct("low_stop_rate", "Stop rate after low emotion"),
            alt.Tooltip("other_n:Q", title="Other responses"), _pct("other_stop_rate", "Stop rate otherwise"),
            alt.Tooltip("p_value:Q", title="p-value", format=".3f"), alt.Tooltip("significant:N", title="Significant")]
    y = alt.Y("touchpoint_name:N", sort=order, title=None)
    base = alt.Chart(df)
    line = base.mark_rule(color="#999999", strokeWidth=2).encode(y=y, x=alt.X("other_stop_rate:Q", title="Stop rate", axis=alt.Axis(format="%")), x2="low_stop_rate:Q", tooltip=tips)
    other = base.mark_point(filled=True, size=70, color="#56B4E9").encode(y=y, x="other_stop_rate:Q", tooltip=tips)
    low = base.mark_point(filled=True, size=90).encode(
        y=y, x="low_stop_rate:Q", tooltip=tips,
        color=alt.Color("significant:N", title="Difference significant", scale=alt.Scale(domain=["yes (p < 0.05)", "no"], range=["#D55E00", "#E69F00"])),
        shape=alt.Shape("significant:N", title="Difference significant", scale=alt.Scale(domain=["yes (p < 0.05)", "no"], range=["diamond", "circle"])),
    )
    return alt.layer(line, other, low).properties(width=460, height=alt.Step(22), title=alt.Title(title, subtitle="Blue: stop rate after neutral/positive responses. Orange: after a low (negative) response."))


# --------------------------------------------------------------------------
# Periodic review
# --------------------------------------------------------------------------

def interventions_chart(effects: pl.DataFrame, jmap: JourneyMap | None = None, *, title: str = "Intervention effects: change in the touchpoint's rate") -> alt.Chart:
    """Difference after − before for each intervention with its 95% interval.

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
    df = effects
    if jmap is not None:
        desc = {i.id: i.description or i.id for i in jmap.interventions}
        names = _names(jmap)
        df = df.with_columns(
            pl.col("intervention_id").replace_strict(desc, default=pl.col("intervention_id")).alias("intervention_label"),
            pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("touchpoint_id"),
        )
        df = df.with_columns((pl.col("touchpoint_id") + ": " + pl.col("intervention_label").str.slice(0, 60)).alias("intervention_id"))
    tips = [alt.Tooltip("intervention_id:N", title="Intervention"), alt.Tooltip("touchpoint_id:N", title="Touchpoint"),
            alt.Tooltip("before_n:Q", title="Learners before"), _pct("before_rate", "Rate before"),
            alt.Tooltip("after_n:Q", title="Learners after"), _pct("after_rate", "Rate after"),
            alt.Tooltip("difference:Q", title="Difference", format="+.1%"), alt.Tooltip("p_value:Q", title="p-value", format=".3f")]
    y = alt.Y("intervention_id:N", title=None, axis=alt.Axis(labelLimit=420))
    base = alt.Chart(df)
    rule = base.mark_rule(strokeWidth=2, color="#333333").encode(y=y, x=alt.X("low:Q", title="Change in rate (after − before)", axis=alt.Axis(format="+%")), x2="high:Q", tooltip=tips)
    pt = base.mark_point(filled=True, size=100).encode(y=y, x="difference:Q", tooltip=tips,
                                                      color=alt.condition("datum.difference >= 0", alt.value("#009E73"), alt.value("#D55E00")))
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#999999", strokeDash=[4, 3]).encode(x="x:Q")
    return alt.layer(zero, pt, rule).properties(width=460, height=alt.Step(30), title=alt.Title(title, subtitle="Dot: estimated change. Line: 95% interval; if it crosses 0 the effect is not established."))


#: colours of significant / not significant groups in :func:`segment_gap_chart`
SIG_COLOURS = {"significant": "#D55E00", "not significant": "#0072B2"}


def segment_gap_chart(gaps: pl.DataFrame, jmap: JourneyMap | None = None, *, top: int = 15, title: str = "Groups converting differently from everyone else") -> alt.Chart:
    """Segment rate vs everyone else's rate for the largest gaps (suppressed cells left out).

    Input: ``metrics.segment_gaps`` output. Shows at most ``top`` rows, the
    significant ones first, then by absolute difference.

    >>> import polars as pl
    >>> g = pl.DataFrame({"attribute": ["region"], "value": ["north"], "touchpoint_id": ["a"], "segment_n": [12],
    ...     "segment_rate": [0.3], "rest_n": [200], "rest_rate": [0.7], "difference": [-0.4], "q_value": [0.01],
    ...     "significant": [True], "suppressed": [False]})
    >>> len(segment_gap_chart(g).to_dict()["layer"])
    3
    """
    if gaps.height == 0 or gaps.filter(~pl.col("suppressed")).height == 0:
        return no_data_chart(title, "No group converts differently from everyone else.")
    names = _names(jmap) if jmap is not None else {}
    df = (
        gaps.filter(~pl.col("suppressed"))
        .with_columns(pl.col("touchpoint_id").replace_strict(names, default=pl.col("touchpoint_id")).alias("tp_label"))
        .with_columns((pl.col("attribute") + " = " + pl.col("value").cast(pl.Utf8) + " → " + pl.col("tp_label")).alias("segment"),
                      pl.when(pl.col("significant")).then(pl.lit("significant")).otherwise(pl.lit("not significant")).alias("sig"))
        .sort([pl.col("significant"), pl.col("difference").abs()], descending=[True, True])
        .head(top)
    )
    order = df["segment"].to_list()
    # the legend lists only what is drawn (colours stay fixed)
    sig_domain = [v for v in SIG_COLOURS if v in set(df["sig"].to_list())]
    tips = [alt.Tooltip("segment:N", title="Group → converting from"), alt.Tooltip("segment_n:Q", title="Group size"), _pct("segment_rate", "Group rate"),
            alt.Tooltip("rest_n:Q", title="Everyone else"), _pct("rest_rate", "Everyone else's rate"),
            alt.Tooltip("difference:Q", title="Difference", format="+.1%"), alt.Tooltip("q_value:Q", title="q-value (FDR)", format=".2g")]
    y = alt.Y("segment:N", sort=order, title=None, axis=alt.Axis(labelLimit=420))
    base = alt.Chart(df)
    line = base.mark_rule(color="#999999", strokeWidth=2).encode(y=y, x=alt.X("rest_rate:Q", title="Conversion (axis starts near the lowest rate shown)", axis=alt.Axis(format="%"),
                                                                                   scale=alt.Scale(zero=False, nice=True, padding=10)), x2="segment_rate:Q", tooltip=tips)
    rest = base.mark_point(filled=True, size=60, color=GREY).encode(y=y, x="rest_rate:Q", tooltip=tips)
    seg = base.mark_point(filled=True, size=90).encode(y=y, x="segment_rate:Q", tooltip=tips,
                                                       color=alt.Color("sig:N", title=None, scale=alt.Scale(domain=sig_domain, range=[SIG_COLOURS[v] for v in sig_domain])))
    return alt.layer(line, rest, seg).properties(width=420, height=alt.Step(22), title=alt.Title(title, subtitle="Grey: everyone else. Coloured: the group. Significant after false-discovery-rate correction in orange."))


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


class ChartHTML:
    """A chart as report HTML: a ``<figure class="journey-chart">`` holding its JSON spec.

    No script is included: the report page loads the Vega libraries once and
    draws every ``.journey-chart``. ``</`` in the spec is escaped so that user
    text cannot close the element.

    >>> import altair as alt, polars as pl
    >>> h = ChartHTML(alt.Chart(pl.DataFrame({"a": ["</script>"]})).mark_point().encode(x="a:N")).html
    >>> h.count("</script")  # only the element's own closing tag
    1
    """

    def __init__(self, chart: alt.TopLevelMixin | dict):
        self.spec = chart if isinstance(chart, dict) else chart.to_dict()

    @property
    def html(self) -> str:
        payload = json.dumps(self.spec, separators=(",", ":"), ensure_ascii=False, default=str)
        payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
        desc = _html.escape(_chart_title(self.spec))
        return f'<figure class="journey-chart" role="img" aria-label="{desc}"><script type="application/json">{payload}</script></figure>'

    def _repr_html_(self) -> str:
        return self.html


def _chart_title(spec: dict) -> str:
    t = spec.get("title")
    if isinstance(t, dict):
        t = t.get("text", "")
    if isinstance(t, list):
        t = " ".join(map(str, t))
    return str(t or "chart")


def show(chart: alt.TopLevelMixin):
    """Display value for a chart: the chart itself, or :class:`ChartHTML` in report mode.

    >>> import altair as alt, polars as pl
    >>> c = alt.Chart(pl.DataFrame({"a": [1]})).mark_point().encode(x="a:Q")
    >>> show(c) is c
    True
    """
    if _OUTPUT["mode"] == "report":
        return ChartHTML(chart)
    return chart


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """The Vega, Vega-Lite and Vega-Embed JavaScript as one inline-able string.

    Taken from vl-convert's bundled copies (no network); defines
    ``window.vegaEmbed``. ``</script`` never occurs inside it.

    >>> "vegaEmbed" in vega_bundle()
    True
    """
    import vl_convert as vlc
    from altair.utils._importers import vl_version_for_vl_convert

    js = vlc.javascript_bundle(vl_version=vl_version_for_vl_convert())
    return js.replace("</script", "<\\/script")


#: Draws every ``figure.journey-chart`` on the page (added once per page after :func:`vega_bundle`).
BOOTSTRAP_JS = """
(function () {
  var opts = %s;
  var figs = document.querySelectorAll("figure.journey-chart");
  figs.forEach(function (fig) {
    var src = fig.querySelector('script[type="application/json"]');
    if (!src) { return; }
    var spec = JSON.parse(src.textContent);
    var target = document.createElement("div");
    target.className = "journey-chart-view";
    fig.appendChild(target);
    window.vegaEmbed(target, spec, opts).then(function () {
      fig.setAttribute("data-rendered", "true");
    }).catch(function (err) {
      fig.setAttribute("data-error", String(err));
      console.error(err);
    });
  });
})();
""" % json.dumps(EMBED_OPTIONS)


def chart_page_scripts() -> str:
    """The ``<script>`` elements a report page needs to draw its charts (bundle + bootstrap), once per page.

    >>> chart_page_scripts().count("<script")
    2
    """
    return f'<script type="text/javascript">{vega_bundle()}</script>\n<script type="text/javascript">{BOOTSTRAP_JS}</script>'
