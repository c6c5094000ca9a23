"""Chart builders, the theme, consistent colours and the report chart HTML."""

from __future__ import annotations

import json
import re

import altair as alt
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib import charts
from journeylib.model import JourneyMap

MAP = {
    "name": "M",
    "stages": [{"id": "s1", "name": "See"}, {"id": "s2", "name": "Do"}],
    "touchpoints": [
        {"id": "a", "name": "Ad", "stage": "s1", "target_emotion": {"label": "curious"}},
        {"id": "b", "name": "Enrol </script>", "stage": "s2", "target_emotion": {"label": "excited"}},
        {"id": "c", "name": "Lesson", "stage": "s2", "target_emotion": {"label": "confident"}},
    ],
    "personas": [{"id": "p1", "name": "One"}, {"id": "p2", "name": "Two"}, {"id": "p3", "name": "Three"}],
}


@pytest.fixture
def jmap():
    return JourneyMap.model_validate(MAP)


def funnel_frame(personas=("p1", "p2")):
    rows = []
    for p in personas:
        for i, t in enumerate("abc"):
            rows.append({"persona": p, "step": i + 1, "touchpoint_id": t, "learners": 100 - 20 * i, "conversion_from_start": 1 - 0.2 * i,
                         "conversion_from_start_low": 0.9 - 0.2 * i, "conversion_from_start_high": 1.0 - 0.15 * i,
                         "conversion_from_previous": 0.8, "stopped": 10, "in_progress": 5,
                         "median_days_to_convert": float(i), "p90_days_to_convert": 2.0 * i})
    return pl.DataFrame(rows)


def emotion_frame(by=None):
    rows = []
    for p in ([None] if by is None else ["p1", "p3"]):
        for t, v in zip("abc", (0.5, None, -0.4)):
            r = {"touchpoint_id": t, "n": 0 if v is None else 12, "mean_valence": v, "low": None if v is None else v - 0.3,
                 "high": None if v is None else v + 0.3, "target_valence": 1.0, "gap": None if v is None else v - 1}
            if by:
                r[by] = p
            rows.append(r)
    return pl.DataFrame(rows)


def test_theme_is_registered_enabled_and_colour_blind_safe():
    assert alt.theme.active == charts.THEME_NAME
    cfg = charts.journey_theme()["config"]
    assert cfg["range"]["category"][:7] == ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"]
    assert cfg["axis"]["labelFontSize"] >= 11


def _color_map(spec: dict) -> dict:
    """Domain value → colour for every colour scale in a spec (searched recursively)."""
    found = {}

    def walk(x):
        if isinstance(x, dict):
            sc = x.get("scale") if isinstance(x.get("scale"), dict) else None
            if sc and "domain" in sc and "range" in sc and isinstance(sc["range"], list):
                found.update(dict(zip(sc["domain"], sc["range"])))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(spec)
    return found


def test_personas_keep_their_colour_across_charts(jmap):
    expected = {"One": charts.PALETTE[0], "Two": charts.PALETTE[1], "Three": charts.PALETTE[2]}
    specs = [
        charts.funnel_chart(funnel_frame(("p2",)), jmap, by="persona").to_dict(),           # only p2 present
        charts.time_to_convert_chart(funnel_frame(("p1", "p2")), jmap, by="persona").to_dict(),
        charts.emotion_curve(emotion_frame("persona"), jmap, by="persona").to_dict(),       # p1 and p3
    ]
    present = [{"Two"}, {"One", "Two"}, {"One", "Three"}]
    for spec, names in zip(specs, present):
        cm = _color_map(spec)
        assert set(cm) == names, cm                      # the legend lists only who is there ...
        for name in names:
            assert cm[name] == expected[name], (name, cm)   # ... each in its own fixed colour


def test_stage_colours_follow_map_order(jmap):
    assert charts.stage_colors(jmap) == {"s1": charts.PALETTE[0], "s2": charts.PALETTE[1]}
    cm = _color_map(charts.dropoff_chart(pl.DataFrame({"touchpoint_id": ["c", "a"], "reached": [5, 9], "stopped": [1, 2], "stop_rate": [0.2, 0.22],
                                                         "stop_rate_low": [0.0, 0.1], "stop_rate_high": [0.5, 0.4]}), jmap).to_dict())
    assert cm["See"] == charts.PALETTE[0] and cm["Do"] == charts.PALETTE[1]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20))
def test_persona_colours_are_stable_and_cycle(n):
    m = dict(MAP, personas=[{"id": f"p{i}", "name": f"P{i}"} for i in range(n)])
    jm = JourneyMap.model_validate(m)
    cols = charts.persona_colors(jm, extra=["unassigned"])
    assert list(cols)[:n] == [f"p{i}" for i in range(n)]
    assert all(cols[f"p{i}"] == charts.PALETTE[i % len(charts.PALETTE)] for i in range(n))
    assert cols["unassigned"] == charts.GREY


def _has_tooltips(spec) -> bool:
    return '"tooltip"' in json.dumps(spec)


def test_every_builder_returns_a_valid_spec_with_tooltips(jmap):
    f = funnel_frame()
    built = {
        "funnel": charts.funnel_chart(f, jmap, by="persona"),
        "funnel_all": charts.funnel_chart(f.filter(pl.col("persona") == "p1").drop("persona"), jmap, by=None),
        "stops": charts.stops_chart(f, jmap, by="persona"),
        "ttc": charts.time_to_convert_chart(f, jmap, by="persona"),
        "emotion": charts.emotion_curve(emotion_frame(), jmap),
        "gap": charts.emotion_gap_chart(pl.DataFrame({"touchpoint_id": ["a", "c"], "gap": [-0.5, 0.2], "stop_rate": [0.3, 0.1], "n": [10, 12]}), jmap),
        "evs": charts.emotion_stopping_chart(pl.DataFrame({"touchpoint_id": ["a"], "low_n": [10], "low_stop_rate": [0.5], "other_n": [40],
                                                           "other_stop_rate": [0.1], "difference": [0.4], "p_value": [0.01]}), jmap),
        "hot": charts.hotspots_chart(pl.DataFrame({"touchpoint_id": ["a", "b"], "stop_rate": [0.3, 0.2], "previous_stop_rate": [0.1, 0.25]}), jmap),
        "iv": charts.interventions_chart(pl.DataFrame({"intervention_id": ["i"], "touchpoint_id": ["a"], "before_n": [5], "before_rate": [0.2], "after_n": [6],
                                                       "after_rate": [0.5], "difference": [0.3], "low": [-0.1], "high": [0.6], "p_value": [0.2]})),
        "seg": charts.segment_gap_chart(pl.DataFrame({"attribute": ["d", "d"], "value": ["x", "y"], "touchpoint_id": ["a", "a"], "segment_n": [12, 3],
                                                      "segment_rate": [0.3, 0.0], "rest_n": [90, 99], "rest_rate": [0.7, 0.6], "difference": [-0.4, -0.6],
                                                      "q_value": [0.01, 0.5], "significant": [True, False], "suppressed": [False, True]})),
    }
    for name, chart in built.items():
        spec = chart.to_dict()           # validates against the Vega-Lite schema
        assert _has_tooltips(spec), name
        assert spec.get("title"), name
    # the suppressed group never reaches the chart data
    assert "y → a" not in json.dumps(built["seg"].to_dict(), ensure_ascii=False) and "x → a" in json.dumps(built["seg"].to_dict(), ensure_ascii=False)
    # the funnel with personas is faceted side by side, one panel per persona
    assert "facet" in built["funnel"].to_dict()


def test_emotion_curve_places_touchpoints_in_map_order_with_stage_bands(jmap):
    spec = charts.emotion_curve(emotion_frame(), jmap).to_dict()
    # axis labels come from the map, in map order, through a JSON array literal (no code built from names)
    exprs = []

    def walk(x):
        if isinstance(x, dict):
            if "labelExpr" in x:
                exprs.append(x["labelExpr"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(spec)
    assert exprs == [json.dumps(["Ad", "Enrol </script>", "Lesson"]) + "[datum.value] || ''"]
    datasets = spec["datasets"].values()
    bands = next(d for d in datasets if d and "x0" in d[0])
    assert [(b["stage_name"], b["x0"], b["x1"]) for b in bands] == [("See", -0.5, 0.5), ("Do", 0.5, 2.5)]
    measured = next(d for d in spec["datasets"].values() if d and "mean_valence" in d[0])
    assert [r["x"] for r in measured] == [0.0, 2.0]       # the touchpoint without responses is left out of the line


def test_show_modes_and_chart_html(jmap):
    c = charts.funnel_chart(funnel_frame(), jmap)
    charts.set_output("notebook")
    assert charts.show(c) is c
    charts.set_output("report")
    try:
        h = charts.show(c)
        assert isinstance(h, charts.ChartHTML)
        html = h._repr_html_()
        assert html.startswith('<figure class="journey-chart"') and "<script type=\"application/json\">" in html
        assert html.count("</script") == 1                  # the touchpoint named "</script>" cannot close the element
        payload = re.search(r'<script type="application/json">(.*)</script>', html, re.S).group(1)
        assert json.loads(payload) == json.loads(json.dumps(c.to_dict(), default=str))
    finally:
        charts.set_output("notebook")
    with pytest.raises(ValueError):
        charts.set_output("svg")


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_chart_html_round_trips_any_text(text):
    spec = {"data": {"values": [{"label": text}]}, "mark": "point", "title": text}
    html = charts.ChartHTML(spec).html
    payload = re.search(r'<script type="application/json">(.*)</script></figure>$', html, re.S).group(1)
    assert "</" not in payload and "<!--" not in payload
    assert json.loads(payload) == spec


def test_page_scripts_inline_the_libraries_once():
    s = charts.chart_page_scripts()
    assert s.count("<script") == 2 and s.count("</script") == 2
    assert "window.vegaEmbed" in s and "src=" not in s[:200]
    assert '"actions": false' in charts.BOOTSTRAP_JS


def test_empty_frames_give_a_placeholder_not_an_error(jmap):
    empty_f = funnel_frame().head(0)
    for chart in (charts.funnel_chart(empty_f, jmap), charts.stops_chart(empty_f, jmap), charts.time_to_convert_chart(empty_f, jmap),
                  charts.emotion_gap_chart(pl.DataFrame(schema={"touchpoint_id": pl.Utf8, "gap": pl.Float64, "stop_rate": pl.Float64}), jmap),
                  charts.segment_gap_chart(pl.DataFrame(schema={"attribute": pl.Utf8, "value": pl.Utf8, "touchpoint_id": pl.Utf8, "suppressed": pl.Boolean}))):
        spec = chart.to_dict()
        assert spec["mark"]["type"] == "text" and spec["title"]
    # no responses: the designed curve is still drawn, and the subtitle says so
    spec = charts.emotion_curve(emotion_frame().head(0), jmap).to_dict()
    assert "No emotion responses" in json.dumps(spec)


def test_panel_headers_wrap_long_names(jmap):
    m = dict(MAP, personas=[{"id": "p1", "name": "Employer-sponsored learner"}, {"id": "p2", "name": "Two"}])
    jm2 = JourneyMap.model_validate(m)
    spec = charts.funnel_chart(funnel_frame(), jm2, by="persona").to_dict()
    assert spec["facet"]["field"] == "panel" and "split(datum.label" in spec["facet"]["header"]["labelExpr"]
    assert spec["facet"]["sort"] == ["Employer-sponsored\nlearner", "Two"]


# --------------------------------------------------------------------------
# Readability at report width: nothing wider than the page, nothing cut off
# --------------------------------------------------------------------------

#: the chart area of a report page at a 1200 px browser window
PAGE_WIDTH = 1130


def _many_personas(n: int = 8):
    tps = [{"id": f"t{i}", "name": f"Lesson {i}: a rather long touchpoint name", "stage": "s", "target_emotion": {"label": "curious"}}
           for i in range(7)]
    pers = [{"id": f"p{i}", "name": f"Persona {i} with a long descriptive name"} for i in range(n)]
    jm2 = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}], "touchpoints": tps, "personas": pers})
    rows = []
    for p in [x["id"] for x in pers] + ["unassigned"]:
        for s, t in enumerate(tps, start=1):
            rows.append({"persona": p, "step": s, "touchpoint_id": t["id"], "learners": 100 - s, "conversion_from_start": 1 - s / 10,
                         "conversion_from_start_low": 0.5, "conversion_from_start_high": 0.95, "conversion_from_previous": 0.9,
                         "stopped": 3, "in_progress": 2, "median_days_to_convert": 1.0, "p90_days_to_convert": 3.0})
    return jm2, pl.DataFrame(rows)


def _svg(chart) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())


def _svg_width(svg: str) -> float:
    return float(re.search(r'<svg[^>]*\swidth="([\d.]+)"', svg).group(1))


@pytest.mark.parametrize("builder", ["funnel_chart", "stops_chart", "time_to_convert_chart"])
def test_persona_charts_fit_the_page_with_many_personas(builder):
    """Nine personas with long names: the chart is no wider than the page and shows every persona (no horizontal scrollbar)."""
    jm2, f = _many_personas(8)
    chart = getattr(charts, builder)(f, jm2, by="persona")
    svg = _svg(chart)
    assert _svg_width(svg) <= PAGE_WIDTH
    texts = " ".join(re.sub(r"<[^>]+>", " ", t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S))
    for i in range(8):
        assert f"Persona {i}" in texts, i
    assert "unassigned" in texts


@pytest.mark.parametrize("builder", ["funnel_chart", "stops_chart"])
def test_faceted_charts_wrap_and_keep_axis_titles_short(builder, jmap):
    """Facets wrap into rows, and the x-axis title repeated under each panel is short enough not to overlap its neighbours."""
    jm2, f = _many_personas(8)
    spec = getattr(charts, builder)(f, jm2, by="persona").to_dict()
    assert 1 <= spec["columns"] <= 5
    inner = spec["spec"]
    layers = inner.get("layer", [inner])
    x_titles = [layer["encoding"]["x"].get("title") for layer in layers if "title" in layer.get("encoding", {}).get("x", {})]
    panel_width = inner["width"]
    assert x_titles and all(len(t) * 7 < panel_width for t in x_titles), (x_titles, panel_width)


def test_legends_wrap_instead_of_widening_the_chart():
    jm2, f = _many_personas(8)
    spec = charts.time_to_convert_chart(f, jm2, by="persona").to_dict()
    cols = [layer["encoding"]["color"]["legend"]["columns"] for layer in spec["layer"] if "legend" in layer["encoding"].get("color", {})]
    assert cols and all(c < 9 for c in cols)


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=30), row=st.integers(100, 2000))
def test_legend_columns_fit_the_row(labels, row):
    k = charts.legend_columns(labels, row_width=row)
    entry = min(220, 7 * max(len(v) for v in labels)) + 30
    assert 1 <= k <= len(labels)
    assert k == 1 or k * entry <= row          # a row of k entries fits ...
    assert k == len(labels) or (k + 1) * entry > row   # ... and one more would not
