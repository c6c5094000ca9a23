"""Interactive exploration: the logic behind ``notebooks/explore.ipynb``.

:class:`Explorer` holds the widgets (funnel, persona, segment attribute,
period, touchpoint) and the outputs. Every callback recomputes plain polars
frames and HTML strings that are kept as attributes (``funnel_frame``,
``segment_frame``, ``drill_html`` …), so tests drive it by setting widget
values and reading the attributes, without a browser or a kernel.

:func:`restrict` is the one place that cuts a workspace to a period and a set
of personas; the report notebooks use it too.

Charts are shown through :func:`journeylib.charts.show`, i.e. by JupyterLab's
own Vega renderer: nothing is fetched from the internet, so the notebook works
in firewalled and offline labs. Tables are the report's great_tables tables.

>>> from journeylib.workspace import load_workspace
>>> import contextlib, io
>>> quiet = contextlib.redirect_stdout(io.StringIO())   # outside JupyterLab the outputs print as text
>>> with quiet:
...     ex = Explorer(load_workspace("data/sample"))
>>> ex.touchpoint.value in ex.jmap.funnel(ex.funnel_name)
True
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import polars as pl

from .model import JourneyMap
from .privacy import suppress
from .tables import HTML, fmt_value, kpi_table, segment_table, table, takeaways_box

ALL = "(all)"


def restrict(
    events: pl.DataFrame,
    learners: pl.DataFrame,
    *,
    period: str | None = None,
    personas: Sequence[str] | str | None = None,
    data_end: Any = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dt.datetime | None]:
    """Cut events and learners to "the journey as at the end of ``period``" and to some personas.

    Definition: with a ``period`` (any form ``metrics.period_bounds`` accepts,
    e.g. "2025-06", "2025-Q2", "month"), only events before the period's end
    are kept and the returned ``data_end`` is that end, so in-progress and
    stopped learners are judged as they stood then; learners with no event
    left are dropped. With ``personas`` only those learners (and their events)
    are kept. ``data_end`` is None without a period.

    >>> import polars as pl, datetime as dt
    >>> ev = pl.DataFrame({"learner_id": ["a", "b"], "timestamp": [dt.datetime(2025, 1, 5, tzinfo=dt.timezone.utc), dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)]})
    >>> le = pl.DataFrame({"learner_id": ["a", "b"], "persona": ["x", "y"]})
    >>> e, l, end = restrict(ev, le, personas=["y"])
    >>> l["learner_id"].to_list(), end
    (['b'], None)
    """
    end = None
    if period:
        from . import metrics as jm

        if data_end is None and events.height:
            data_end = events["timestamp"].max()
        _, end = jm.period_bounds(period, data_end=data_end)
        events = events.filter(pl.col("timestamp") < end)
        learners = learners.filter(pl.col("learner_id").is_in(events["learner_id"].unique().implode()))
    if personas:
        keep = [personas] if isinstance(personas, str) else list(personas)
        learners = learners.filter(pl.col("persona").is_in(keep))
        events = events.filter(pl.col("learner_id").is_in(learners["learner_id"].implode()))
    return events, learners, end


def default_funnel(jmap: JourneyMap, funnel: str | None = None) -> str | None:
    """The funnel a report shows: ``funnel`` if given, else the map's longest named funnel (first on ties), else None (all touchpoints).

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": t, "name": t, "stage": "s", "target_emotion": {"label": "curious"}} for t in "abc"],
    ...     "funnels": {"short": ["a", "b"], "long": ["a", "b", "c"]}})
    >>> default_funnel(jm), default_funnel(jm, "short")
    ('long', 'short')
    """
    if funnel:
        jmap.funnel(funnel)  # unknown names raise KeyError naming the funnels
        return funnel
    if not jmap.funnels:
        return None
    return max(jmap.funnels, key=lambda k: (len(jmap.funnels[k]), -list(jmap.funnels).index(k)))


def month_options(events: pl.DataFrame) -> list[str]:
    """The months ("YYYY-MM") that have events, oldest first.

    >>> import polars as pl, datetime as dt
    >>> month_options(pl.DataFrame({"timestamp": [dt.datetime(2025, 2, 1), dt.datetime(2025, 1, 9)]}))
    ['2025-01', '2025-02']
    """
    if not events.height:
        return []
    return events.select(pl.col("timestamp").dt.strftime("%Y-%m").unique().sort())["timestamp"].to_list()


def before_stop(events: pl.DataFrame, learners: pl.DataFrame, jmap: JourneyMap, touchpoint: str, *, data_end: Any = None, funnel: str | None = None, top: int = 8) -> pl.DataFrame:
    """What learners who stopped at ``touchpoint`` did just before: their previous touchpoint, counted.

    Definition: for every learner whose journey state is "stopped" with
    ``stopped_at == touchpoint`` (``metrics.journeys``), take the touchpoint of
    the last event before their first event at ``touchpoint`` ("(none)" when
    there is none). Returns previous_touchpoint, learners, share — no ids.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> b = before_stop(ws.events, ws.learners, ws.map, "orientation", funnel="course")
    >>> b.select("previous_touchpoint", "learners", pl.col("share").round(3)).rows()
    [('Welcome email', 135, 0.871), ('Enrolment and payment', 20, 0.129)]
    """
    from . import metrics as jm

    j = jm.journeys(events, learners, jmap, funnel=funnel, data_end=data_end)
    stoppers = j.filter((pl.col("state") == "stopped") & (pl.col("stopped_at") == touchpoint)).select("learner_id")
    if not stoppers.height:
        return pl.DataFrame(schema={"previous_touchpoint": pl.Utf8, "learners": pl.UInt32, "share": pl.Float64})
    ev = events.join(stoppers, on="learner_id").sort(["learner_id", "timestamp"])
    first_here = ev.filter(pl.col("touchpoint_id") == touchpoint).group_by("learner_id").agg(pl.col("timestamp").min().alias("t0"))
    prev = (
        ev.join(first_here, on="learner_id", how="left")
        .filter(pl.col("t0").is_null() | (pl.col("timestamp") < pl.col("t0")))
        .filter(pl.col("touchpoint_id") != touchpoint)
        .group_by("learner_id").agg(pl.col("touchpoint_id").sort_by("timestamp").last().alias("previous_touchpoint"))
    )
    prev = stoppers.join(prev, on="learner_id", how="left").with_columns(pl.col("previous_touchpoint").fill_null("(none)"))
    names = {t.id: t.name for t in jmap.touchpoints}
    out = (
        prev.group_by("previous_touchpoint").agg(pl.len().alias("learners"))
        .with_columns((pl.col("learners") / pl.col("learners").sum()).alias("share"))
        .sort(["learners", "previous_touchpoint"], descending=[True, False])
        .head(top)
        .with_columns(pl.col("previous_touchpoint").replace_strict(names, default=pl.col("previous_touchpoint")))
    )
    return out


def start_touchpoint(events: pl.DataFrame, learners: pl.DataFrame, jmap: JourneyMap, funnel: str | None = None, *, data_end: Any = None,
                     min_count: int = 5) -> str:
    """The touchpoint the drill-down opens on: where the funnel's largest drop starts (:func:`journeylib.insights.funnel_takeaways`),
    else the funnel's first step — always a step of the funnel shown.

    >>> from journeylib.workspace import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> start_touchpoint(ws.events, ws.learners, ws.map, "course") in ws.map.funnel("course")
    True
    """
    from . import insights
    from . import metrics as jm

    steps = jmap.funnel(funnel)
    if events.height:
        overall = jm.funnel(events, learners, jmap, funnel, data_end=data_end)
        for t in insights.funnel_takeaways(overall, jmap, min_count=min_count):
            if t.kind == "largest drop" and t.touchpoint_id in steps:
                return t.touchpoint_id
    return steps[0]


def page_style() -> str:
    """A ``<style>`` element with the report's CSS for cards, boxes and notes, so the notebook's tables look like the report's.

    >>> page_style().startswith("<style>") and ".journey-findings" in page_style()
    True
    """
    from .tables import CSS

    return f"<style>{CSS}</style>"


class Explorer:
    """Widgets and outputs of the exploration notebook.

    Pickers: ``funnel`` (map funnels), ``persona`` (all or one), ``segment``
    (a learner attribute to compare groups on), ``period`` (all data or a
    month: the journey as at its end, see :func:`restrict`), ``touchpoint``
    (the drill-down). Changing any picker calls :meth:`refresh`, which
    recomputes ``funnel_frame``, ``segment_frame``, ``kpi_frame`` and
    ``drill_frame``/``drill_html`` and redraws the outputs. Small groups
    (below ``min_count``) are suppressed; no learner id is ever shown.

    >>> from journeylib import load_workspace
    >>> import contextlib, io
    >>> quiet = contextlib.redirect_stdout(io.StringIO())   # outside JupyterLab the outputs print as text
    >>> with quiet:
    ...     ex = Explorer(load_workspace("data/sample"))
    >>> type(ex.widget).__name__   # ex.widget, last in a notebook cell, shows the pickers and outputs
    'VBox'
    >>> ex.funnel.value, ex.persona.value, ex.touchpoint.value
    ('course', '(all)', 'lesson_2')
    >>> ex.funnel_frame.select("persona", "step", "learners").head(2).rows()
    [('career_changer', 1, 304), ('career_changer', 2, 281)]
    """

    def __init__(self, ws, *, min_count: int = 5, attributes: list[str] | None = None):
        """``attributes``: the learner attributes the Segment picker offers
        (default: every attribute; leave out outcome columns such as a final result)."""
        import ipywidgets as w

        self.ws = ws
        self.jmap: JourneyMap = ws.map
        self.min_count = min_count
        jmap = self.jmap
        attrs = [c for c in ws.learners.columns if c not in ("learner_id", "persona", "enrolled_at")]
        if attributes is not None:
            unknown = [a for a in attributes if a not in attrs]
            if unknown:
                raise ValueError(f"unknown learner attribute(s): {', '.join(unknown)}; the learners have: {', '.join(attrs)}")
            attrs = list(attributes)
        self.funnel = w.Dropdown(options=[("All touchpoints", ALL)] + [(k, k) for k in jmap.funnels], value=default_funnel(jmap) or ALL, description="Funnel")
        persona_opts = [("Everyone", ALL)] + [(p.name, p.id) for p in jmap.personas]
        if "unassigned" in set(ws.learners["persona"].unique().to_list()):
            persona_opts.append(("Unassigned", "unassigned"))
        self.persona = w.Dropdown(options=persona_opts, value=ALL, description="Persona")
        self.segment = w.Dropdown(options=[("(none)", ALL)] + [(a, a) for a in attrs], value=ALL, description="Segment")
        self.period = w.Dropdown(options=[("All data", ALL)] + [(m, m) for m in month_options(ws.events)], value=ALL, description="Up to")
        start = start_touchpoint(ws.events, ws.learners, jmap, self.funnel_name, data_end=ws.data_end, min_count=min_count)
        self.touchpoint = w.Dropdown(options=[(t.name, t.id) for t in jmap.touchpoints], value=start, description="Touchpoint")
        self.takeaways_html = ""
        self.status = w.HTML()
        self.status.add_class("journey-status")
        self.style = w.HTML(page_style())
        self.out_funnel = w.Output()
        self.out_segment = w.Output()
        self.out_drill = w.Output()
        self.funnel_frame = pl.DataFrame()
        self.segment_frame = pl.DataFrame()
        self.kpi_frame = pl.DataFrame()
        self.drill_frame = pl.DataFrame()
        self.drill_html = ""
        self.events = ws.events
        self.learners = ws.learners
        self.data_end = ws.data_end
        for picker in (self.funnel, self.persona, self.segment, self.period):
            picker.observe(self._on_change, names="value")
        self.touchpoint.observe(self._on_drill, names="value")
        controls = w.HBox([self.funnel, self.persona, self.segment, self.period], layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([
            self.style, controls, self.status,
            w.HTML("<h3>Funnel</h3>"), self.out_funnel,
            w.HTML("<h3>Groups compared</h3>"), self.out_segment,
            w.HTML("<h3>Drill into a touchpoint</h3>"), self.touchpoint, self.out_drill,
        ])
        self.refresh()

    # -- callbacks -----------------------------------------------------------
    def _on_change(self, change: dict) -> None:
        if change.get("owner") is self.funnel and self.touchpoint.value not in self.jmap.funnel(self.funnel_name):
            self.touchpoint.unobserve(self._on_drill, names="value")
            self.touchpoint.value = self.jmap.funnel(self.funnel_name)[0]  # stay on a step of the funnel shown
            self.touchpoint.observe(self._on_drill, names="value")
        self.refresh()

    def _on_drill(self, change: dict) -> None:
        self.update_drill()

    @property
    def funnel_name(self) -> str | None:
        return None if self.funnel.value == ALL else self.funnel.value

    def refresh(self) -> None:
        """Recompute everything for the current pickers and redraw the outputs.

        Sets ``events``/``learners``/``data_end`` (see :func:`restrict`),
        ``funnel_frame`` (``metrics.funnel`` by persona, small groups
        suppressed), ``segment_frame`` (``metrics.segment_gaps`` for the chosen
        attribute, empty without one) and the drill-down. Called by every picker.

        >>> from journeylib import load_workspace
        >>> import contextlib, io
        >>> quiet = contextlib.redirect_stdout(io.StringIO())   # outside JupyterLab the outputs print as text
        >>> with quiet:
        ...     ex = Explorer(load_workspace("data/sample"))
        >>> with quiet:
        ...     ex.persona.value = "career_changer"   # a picker's change calls refresh()
        ...     ex.refresh()                          # the same, by hand
        >>> ex.learners.height, ex.funnel_frame.height, "persona" in ex.funnel_frame.columns
        (538, 13, False)
        """
        from . import charts, insights
        from . import metrics as jm

        period = None if self.period.value == ALL else self.period.value
        personas = None if self.persona.value == ALL else [self.persona.value]
        ev, le, end = restrict(self.ws.events, self.ws.learners, period=period, personas=personas, data_end=self.ws.data_end)
        self.events, self.learners = ev, le
        self.data_end = end or self.ws.data_end
        self.status.value = str(HTML(f"<p>{le.height:,} learners, {ev.height:,} events, data up to {fmt_value(str(self.data_end)[:16])}</p>"))
        if not le.height or not ev.height:
            self.funnel_frame = pl.DataFrame()
            self.segment_frame = pl.DataFrame()
            self._draw(self.out_funnel, HTML("<p>No learners for this choice.</p>"))
            self._draw(self.out_segment, HTML(""))
            self.update_drill()
            return
        by = "persona" if personas is None else None
        f = jm.funnel(ev, le, self.jmap, self.funnel_name, by=by, data_end=self.data_end)
        self.funnel_frame = suppress(f, count="learners", values=[], min_count=self.min_count) if by else f
        shown = self.funnel_frame.filter(~pl.col("suppressed")) if "suppressed" in self.funnel_frame.columns else self.funnel_frame
        overall = jm.funnel(ev, le, self.jmap, self.funnel_name, data_end=self.data_end)
        self.takeaways_html = takeaways_box(insights.funnel_takeaways(overall, self.jmap, by_group=shown if by else None, min_count=self.min_count), link=None).html
        self._draw(self.out_funnel, HTML(self.takeaways_html), charts.show(charts.funnel_chart(shown, self.jmap, by=by)),
                   charts.show(charts.stops_chart(shown, self.jmap, by=by)))
        if self.segment.value != ALL:
            g = jm.segment_gaps(ev, le, self.jmap, attributes=[self.segment.value], funnel=self.funnel_name, min_count=self.min_count)
            self.segment_frame = g
            self._draw(self.out_segment, charts.show(charts.segment_gap_chart(g, self.jmap)), segment_table(g, self.jmap, min_count=self.min_count))
        else:
            self.segment_frame = pl.DataFrame()
            self._draw(self.out_segment, HTML("<p>Pick a segment attribute to compare its groups with everyone else.</p>"))
        self.update_drill()

    def update_drill(self) -> None:
        """Recompute the drill-down for the selected touchpoint: KPIs, emotion, who stops, what they did before.

        Sets ``kpi_frame`` (the touchpoint's ``metrics.kpis`` rows),
        ``drill_frame`` (:func:`before_stop`) and ``drill_html`` (escaped,
        aggregates only, persona cells below ``min_count`` suppressed).

        >>> from journeylib import load_workspace
        >>> import contextlib, io
        >>> quiet = contextlib.redirect_stdout(io.StringIO())   # outside JupyterLab the outputs print as text
        >>> with quiet:
        ...     ex = Explorer(load_workspace("data/sample"))
        >>> with quiet:
        ...     ex.touchpoint.value = "orientation"   # calls update_drill()
        >>> "<h4>Orientation</h4>" in ex.drill_html
        True
        >>> ex.kpi_frame.select("metric", "status").rows()
        [('conversion', 'near'), ('csat', 'missed'), ('emotion', 'near')]
        """
        from . import metrics as jm

        tp = self.touchpoint.value
        t = self.jmap.touchpoint(tp)
        if not self.learners.height or not self.events.height:
            self.kpi_frame = pl.DataFrame()
            self.drill_frame = pl.DataFrame()
            self.drill_html = "<p>No learners for this choice.</p>"
            self._draw(self.out_drill, HTML(self.drill_html))
            return
        k = jm.kpis(self.events, self.learners, self.jmap, data_end=self.data_end)
        self.kpi_frame = k.filter(pl.col("touchpoint_id") == tp)
        e = jm.emotion(self.events, self.learners, self.jmap).filter(pl.col("touchpoint_id") == tp)
        d = jm.dropoff(self.events, self.learners, self.jmap, funnel=self.funnel_name, data_end=self.data_end).filter(pl.col("touchpoint_id") == tp)
        stopped_by = jm.dropoff(self.events, self.learners, self.jmap, by="persona", funnel=self.funnel_name, data_end=self.data_end).filter(pl.col("touchpoint_id") == tp)
        stopped_by = suppress(stopped_by.select("persona", "reached", "stopped", "in_progress", "stop_rate"), count=["reached"], values=["stopped", "in_progress", "stop_rate"], min_count=self.min_count)
        self.drill_frame = before_stop(self.events, self.learners, self.jmap, tp, data_end=self.data_end, funnel=self.funnel_name)
        parts = [f"<h4>{_esc(t.name)}</h4><p>{_esc(t.purpose)}</p>"]
        if e.height and e["n"][0]:
            r = e.row(0, named=True)
            parts.append(f"<p>Emotion: measured {fmt_value(r['mean_valence'], '+float2')} (95% interval {fmt_value(r['low'], 'float2')} to {fmt_value(r['high'], 'float2')}, "
                         f"{fmt_value(r['n'], 'int')} responses); designed target {_esc(t.target_emotion.label)} ({fmt_value(t.target_emotion.valence, '+float2')}).</p>")
        else:
            parts.append(f"<p>Emotion: no responses; designed target {_esc(t.target_emotion.label)}.</p>")
        if d.height:
            r = d.row(0, named=True)
            parts.append(f"<p>Reached by {fmt_value(r['reached'], 'int')} learners; {fmt_value(r['stopped'], 'int')} stopped here "
                         f"({fmt_value(r['stop_rate'], 'pct')}), {fmt_value(r['in_progress'], 'int')} still in progress.</p>")
        parts.append(kpi_table(self.kpi_frame, self.jmap, caption="KPIs at this touchpoint").html if self.kpi_frame.height else "<p>No KPI targets at this touchpoint.</p>")
        names = {p.id: p.name for p in self.jmap.personas}
        stopped_by = stopped_by.with_columns(pl.col("persona").cast(pl.Utf8).replace_strict(names, default=pl.col("persona").cast(pl.Utf8)))
        parts.append(table(stopped_by, columns={"persona": "Persona", "reached": "Reached", "stopped": "Stopped here", "in_progress": "In progress", "stop_rate": "Stop rate"},
                           formats={"reached": "int", "stopped": "int", "in_progress": "int", "stop_rate": "pct"}, min_count=self.min_count, caption="Who stops here").html)
        parts.append(table(self.drill_frame, columns={"previous_touchpoint": "Last touchpoint before this one", "learners": "Learners who stopped here", "share": "Share"},
                           formats={"learners": "int", "share": "pct"}, caption="What those who stopped here did just before", empty="Nobody stopped here.").html)
        self.drill_html = "".join(parts)
        self._draw(self.out_drill, HTML(self.drill_html))

    @staticmethod
    def _draw(out, *items) -> None:
        from IPython.display import display

        out.clear_output(wait=True)
        with out:
            for it in items:
                display(it)


def _esc(s: Any) -> str:
    from markupsafe import escape

    return str(escape("" if s is None else s))


__all__ = ["ALL", "Explorer", "before_stop", "default_funnel", "month_options", "page_style", "restrict", "segment_table", "start_touchpoint"]
