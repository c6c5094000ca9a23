"""The journey map as a canvas: stages over touchpoint columns, one lane (row) per aspect.

Lanes: stage, touchpoint, channel, purpose, **the emotional curve** (a chart
lane whose points sit in the touchpoint columns, broken where nobody
responded, with the valence words in the lane's label), target emotion,
measured emotion, KPIs with status, pain points and opportunities.

The canvas is a CSS grid (the one piece of hand-written HTML in the reports:
no table or chart library lays out a journey map). It fits the page: the
touchpoint columns share the width equally (at least :data:`MIN_COLUMN` px
each), text wraps, lane labels stay in view while the canvas scrolls
sideways on screens narrower than that, and it prints on A4 landscape (A3
for maps with more than :data:`A4_MAX_TOUCHPOINTS` touchpoints) with nothing
cut off. Every text is escaped. Each touchpoint column carries the anchor
``tp-<id>`` that KPI tables, findings and takeaways link to.

>>> from journeylib.model import JourneyMap
>>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "See"}],
...     "touchpoints": [{"id": "a", "name": "Ad <1>", "stage": "s", "purpose": "x", "target_emotion": {"label": "curious"},
...                      "pain_points": ["slow & dull"]}]})
>>> h = journey_map_html(jm).html
>>> "Ad &lt;1&gt;" in h and "slow &amp; dull" in h and "See" in h and 'id="tp-a"' in h
True
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterable

import polars as pl
from markupsafe import Markup, escape

from .charts import GREY, ChartHTML, emotion_lane_chart, lane_domain, stage_colors, valence_words
from .model import JourneyMap
from .formats import HTML, anchor_id, fmt_interval, fmt_value, is_missing, metric_kind, status_text, target_text, text_on

#: the narrowest a touchpoint column gets before the canvas scrolls sideways (px)
MIN_COLUMN = 52
#: width of the lane-label column (px)
LANE_WIDTH = 80
#: height of the emotional-curve lane (px)
LANE_HEIGHT = 150
#: a map whose columns would be narrower than this in the page's text column spreads over the window's full width
INLINE_COLUMN = 130
#: width of the report page's text column (px)
PAGE_WIDTH = 1132
#: maps with more touchpoints than this print on A3 landscape
A4_MAX_TOUCHPOINTS = 14

LANES = ("stage", "touchpoint", "channel", "purpose", "emotion_curve", "target_emotion", "measured_emotion", "kpis", "pain_points", "opportunities")
LANE_TITLES = {
    "touchpoint": "Touch\u00adpoint", "channel": "Channel", "purpose": "Purpose", "emotion_curve": "Emotion", "target_emotion": "Target emotion",
    "measured_emotion": "Measured emotion", "kpis": "KPIs", "pain_points": "Pain points", "opportunities": "Opportunities",
}
METRIC_SHORT = {
    "reach": "Reach", "conversion": "Conversion", "stopped": "Stop\u00adped", "completion": "Completion", "pass_rate": "Pass rate", "score": "Score",
    "csat": "CSAT", "nps": "NPS", "emotion": "Emotion", "time_to_next": "Days to next", "events_per_learner": "Events each",
}

CSS = f"""
.journey-map {{ margin: 0.5em 0 1.5em 0; overflow-x: auto; }}
.journey-map.jm-wide {{ width: calc(100vw - 40px); margin-left: calc(50% - 50vw + 20px); max-width: 1900px; }}
@media (min-width: 1940px) {{ .journey-map.jm-wide {{ margin-left: calc(50% - 950px); }} }}
.journey-map .jm-grid {{ display: grid; font-size: 10.5px; line-height: 1.3; }}
.journey-map .jm-lane {{ position: sticky; left: 0; z-index: 2; background: #f4f6f8; font-weight: 700; padding: 5px 6px; border-bottom: 1px solid #d0d7de;
  color: #1a1a1a; overflow-wrap: anywhere; }}
.journey-map .jm-stage {{ padding: 5px 6px; font-weight: 700; font-size: 12px; border-left: 2px solid #fff; overflow-wrap: anywhere; }}
.journey-map .jm-stage small {{ display: block; font-weight: 400; font-size: 10.5px; }}
.journey-map .jm-cell {{ padding: 4px 3px; border-bottom: 1px solid #e1e4e8; border-left: 1px solid #eef0f2; min-width: 0;
  overflow-wrap: anywhere; hyphens: auto; }}
.journey-map .jm-tp {{ font-weight: 700; font-size: 11px; }}
.journey-map .jm-tp a {{ color: inherit; text-decoration: none; }}
.journey-map .jm-muted {{ color: #666; }}
.journey-map .jm-nw {{ white-space: nowrap; }}
.journey-map ul {{ margin: 0; padding-left: 0.9em; }}
.journey-map li {{ margin: 0 0 2px 0; }}
.journey-map .jm-kpi {{ border-left: 3px solid #8C8C8C; padding: 1px 0 1px 3px; margin: 0 0 4px 0; }}
.journey-map .jm-kpi .jm-status {{ font-weight: 700; display: block; font-size: 9px; }}
.journey-map .jm-curve {{ border-bottom: 1px solid #e1e4e8; padding: 0; min-width: 0; }}
.journey-map .jm-curve figure.journey-chart {{ margin: 0; }}
.journey-map .jm-curve svg {{ display: block; width: 100% !important; height: {LANE_HEIGHT}px !important; max-width: none; }}
.journey-map .jm-lane-emotion {{ position: sticky; height: {LANE_HEIGHT}px; padding: 0 6px; }}
.journey-map .jm-lane-emotion .jm-lane-title {{ position: absolute; top: 4px; bottom: 4px; left: 3px; writing-mode: vertical-rl; transform: rotate(180deg);
  font-size: 9.5px; white-space: nowrap; text-align: center; }}
.journey-map .jm-scale {{ position: absolute; right: 4px; font-weight: 400; font-size: 9.5px; color: #555; line-height: 1; white-space: nowrap;
  text-align: right; transform: translateY(-50%); }}
.journey-map .jm-key {{ font-weight: 400; font-size: 10px; color: #555; }}
@media (max-width: 900px) {{
  .journey-map .jm-grid {{ grid-template-columns: 72px repeat(var(--jm-n), minmax(92px, 1fr)) !important; font-size: 11.5px; }}
}}
@media print {{
  .journey-map, .journey-map.jm-wide {{ width: auto; margin-left: 0; overflow: visible; }}
  .journey-map .jm-grid {{ grid-template-columns: 64px repeat(var(--jm-n), minmax(0, 1fr)) !important; font-size: 8.5px; }}
  .journey-map .jm-tp {{ font-size: 9px; }}
  .journey-map .jm-stage {{ font-size: 9.5px; }}
  .journey-map .jm-stage small {{ font-size: 8.5px; }}
  .journey-map .jm-lane {{ position: static; }}
  .journey-map .jm-lane-emotion {{ position: relative; }}
  .journey-map .jm-cell, .journey-map .jm-lane {{ break-inside: avoid; }}
}}
"""


@functools.lru_cache(maxsize=1)
def _dictionary():
    import pyphen

    return pyphen.Pyphen(lang="en_US")


def soft_hyphens(text: Any, *, min_length: int = 8) -> str:
    """``text`` with soft hyphens (U+00AD) at the syllable breaks of words of ``min_length`` letters or more (pyphen's
    English patterns), so narrow map columns break long words at a syllable with a hyphen instead of anywhere.

    >>> soft_hyphens("Information webinar").replace("\u00ad", "-")
    'In-for-ma-tion webinar'
    """
    d = _dictionary()
    return re.sub(r"[A-Za-z]{%d,}" % min_length, lambda m: d.inserted(m.group(0), hyphen="\u00ad"), str(text or ""))


def _valence_color(v: float | None, lo: float, hi: float) -> str:
    if is_missing(v):
        return GREY
    mid = (lo + hi) / 2
    if v >= mid + (hi - mid) * 0.25:
        return "#007a5a"
    if v <= mid - (mid - lo) * 0.25:
        return "#b34700"
    return "#555555"


def _ul(items: Iterable[str]) -> Markup:
    items = list(items)
    if not items:
        return Markup('<span class="jm-muted">–</span>')
    return Markup("<ul>") + Markup("").join(Markup("<li>{}</li>").format(soft_hyphens(i, min_length=6)) for i in items) + Markup("</ul>")


def _kpi_block(r: dict) -> Markup:
    from .charts import STATUS_COLORS

    s = r.get("status") or "not enough data"
    color = STATUS_COLORS.get(s, GREY)
    value = fmt_value(r.get("value"), metric_kind(r.get("metric", "")))
    return Markup('<div class="jm-kpi" style="border-left-color:{}"><span class="jm-status" style="color:{}">{}</span>{} {}'
                  '<br><span class="jm-muted">target {}</span></div>').format(
        color, "#1a1a1a" if s == "near" else color, status_text(s), soft_hyphens(METRIC_SHORT.get(r["metric"], r["metric"]), min_length=6), value, target_text(r))


def _designed_kpis(t) -> Markup:
    return Markup("").join(Markup('<div class="jm-kpi">{} <span class="jm-muted">target {}</span></div>').format(
        METRIC_SHORT.get(k.metric, k.metric), target_text({"metric": k.metric, "target": k.target, "direction": k.direction})) for k in t.kpis)


def _cell(lane: str, t, jmap: JourneyMap, emo: dict[str, dict], kp: dict[str, list[dict]]) -> Markup:
    lo, hi = jmap.emotion_scale.min, jmap.emotion_scale.max
    if lane == "touchpoint":
        return Markup('<a href="#{}" title="{}">{}</a>').format(anchor_id("tp", t.id), t.name, soft_hyphens(t.name, min_length=6))
    if lane == "channel":
        return escape(soft_hyphens(t.channel) or "–")
    if lane == "purpose":
        return escape(soft_hyphens(t.purpose) or "–")
    if lane == "target_emotion":
        v = t.target_emotion.valence
        return Markup('<span style="color:{};font-weight:600">{}</span> <span class="jm-muted">({})</span>').format(
            _valence_color(v, lo, hi), soft_hyphens(t.target_emotion.label, min_length=7), fmt_value(v, "+float2") if v is not None else "–")
    if lane == "measured_emotion":
        r = emo.get(t.id)
        if not r or is_missing(r.get("mean_valence")):
            return Markup('<span class="jm-muted">no {}</span>').format(soft_hyphens("responses", min_length=6))
        # numbers never break inside: value, interval bounds and count each stay on one line
        interval = Markup(" ").join(Markup('<span class="jm-nw">{}</span>').format(w)
                                    for w in fmt_interval(r.get("low"), r.get("high"), "float2").replace(" to ", "\0to ").split("\0"))
        body = Markup('<span style="color:{};font-weight:600">{}</span><br><span class="jm-muted">{} <span class="jm-nw">n={}</span></span>').format(
            _valence_color(r["mean_valence"], lo, hi), fmt_value(r["mean_valence"], "+float2"), interval, fmt_value(r.get("n"), "int"))
        if not is_missing(r.get("gap")):
            body += Markup('<br><span class="jm-muted jm-nw">gap {}</span>').format(fmt_value(r["gap"], "+float2"))
        return body
    if lane == "kpis":
        rows = kp.get(t.id)
        if rows:
            return Markup("").join(_kpi_block(r) for r in rows)
        return _designed_kpis(t) if t.kpis else Markup('<span class="jm-muted">–</span>')
    if lane == "pain_points":
        return _ul(t.pain_points)
    if lane == "opportunities":
        return _ul(t.opportunities)
    return Markup("")


def _stage_row(jmap: JourneyMap) -> list[str]:
    sc = stage_colors(jmap)
    out = ['<div class="jm-lane">Stage</div>']
    for s in jmap.stages:
        span = sum(1 for t in jmap.touchpoints if t.stage == s.id)
        if span:
            out.append(str(Markup('<div class="jm-stage" style="grid-column: span {}; background:{}; color:{}">{}<small>{}</small></div>').format(
                span, sc[s.id], text_on(sc[s.id]), soft_hyphens(s.name), soft_hyphens(s.learner_goal))))
    return out


def _curve_row(jmap: JourneyMap, emotion: pl.DataFrame | None) -> list[str]:
    """The emotional-curve lane: the valence words in the label at the heights of the chart's grid lines, the chart over all columns."""
    lo, hi = lane_domain(jmap)
    words = []
    for v, w in valence_words(jmap).items():
        top = LANE_HEIGHT * (hi - v) / (hi - lo)
        words.append(str(Markup('<span class="jm-scale" style="top:{}px">{}</span>').format(round(top, 1), Markup("<br>").join(w.split(" ", 1) if w.startswith("very") else [w]))))
    e = emotion if emotion is not None else pl.DataFrame(schema={"touchpoint_id": pl.Utf8, "n": pl.Int64, "mean_valence": pl.Float64,
                                                                 "low": pl.Float64, "high": pl.Float64, "target_valence": pl.Float64})
    chart = ChartHTML(emotion_lane_chart(e, jmap, height=LANE_HEIGHT), static_width=len(jmap.touchpoints) * 58)
    label = ('<div class="jm-lane jm-lane-emotion"><span class="jm-lane-title">Emotion <span class="jm-key">'
             '<span style="color:#555555">◆ target</span> · <span style="color:#0072B2">● measured</span></span></span>' + "".join(words) + "</div>")
    return [label, f'<div class="jm-curve" style="grid-column: 2 / span {len(jmap.touchpoints)}">{chart.html}</div>']


def journey_map_html(
    jmap: JourneyMap,
    *,
    emotion: pl.DataFrame | None = None,
    kpis: pl.DataFrame | None = None,
    lanes: Iterable[str] = LANES,
) -> HTML:
    """The designed map as a canvas: stages over touchpoint columns, one lane (row) per aspect.

    ``emotion`` is ``metrics.emotion`` (without ``by``): it draws the
    emotional-curve lane and fills the measured-emotion lane (mean, interval,
    n, gap). ``kpis`` is ``metrics.kpis``: each KPI with its status (colour,
    symbol and word), value and target. Every text is escaped.

    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": t, "name": t, "stage": "s", "target_emotion": {"label": "curious"}} for t in "ab"]})
    >>> h = journey_map_html(jm).html
    >>> "repeat(2, minmax(52px, 1fr))" in h and "very<br>positive" in h
    True
    """
    tps = jmap.touchpoints
    n = len(tps)
    emo: dict[str, dict] = {}
    if emotion is not None and emotion.height and "persona" not in emotion.columns:
        emo = {r["touchpoint_id"]: r for r in emotion.to_dicts()}
    kp: dict[str, list[dict]] = {}
    if kpis is not None and kpis.height:
        for r in kpis.to_dicts():
            kp.setdefault(r["touchpoint_id"], []).append(r)
    page = "A3" if n > A4_MAX_TOUCHPOINTS else "A4"
    out = [f'<style>@page {{ size: {page} landscape; margin: 10mm; }}</style>',
           f'<div class="journey-map{" jm-wide" if LANE_WIDTH + n * INLINE_COLUMN > PAGE_WIDTH else ""}" data-touchpoints="{n}"><div class="jm-grid" style="--jm-n: {n}; '
           f'grid-template-columns: {LANE_WIDTH}px repeat({n}, minmax({MIN_COLUMN}px, 1fr));">']
    for lane in lanes:
        if lane == "stage":
            out += _stage_row(jmap)
            continue
        if lane == "emotion_curve":
            out += _curve_row(jmap, emotion)
            continue
        out.append(str(Markup('<div class="jm-lane">{}</div>').format(soft_hyphens(LANE_TITLES.get(lane, lane), min_length=6))))
        for t in tps:
            attrs = Markup(' id="{}"').format(anchor_id("tp", t.id)) if lane == "touchpoint" else Markup("")
            cls = "jm-cell jm-tp" if lane == "touchpoint" else "jm-cell"
            out.append(str(Markup('<div class="{}"{}>{}</div>').format(cls, attrs, _cell(lane, t, jmap, emo, kp))))
    out.append("</div></div>")
    return HTML("".join(out))


__all__ = ["A4_MAX_TOUCHPOINTS", "CSS", "LANES", "LANE_HEIGHT", "MIN_COLUMN", "journey_map_html"]
