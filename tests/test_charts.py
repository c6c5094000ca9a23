"""Chart builders, the theme, consistent colours, fitting a width, and the report / notebook chart outputs."""

from __future__ import annotations

import json
import re

import altair as alt
import polars as pl
import pytest
import vl_convert as vlc
from hypothesis import given, settings
from hypothesis import strategies as st

from browser.harness import legend_exempt, series_fields
from specs import nested_dicts
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


def all_charts(jm) -> dict[str, alt.TopLevelMixin]:
    """One of every builder on small frames."""
    import datetime as dt

    f = funnel_frame()
    cohorts = pl.DataFrame({"cohort": [dt.date(2025, 1, 1), dt.date(2025, 2, 1)] * 2, "group": ["Everyone", "Everyone", "p1", "p1"],
                            "starters": [40, 30, 20, 15], "completed": [10, 5, 6, 2], "stopped": [20, 10, 10, 5], "undecided": [0, 15, 0, 8],
                            "completion": [0.33, 0.33, 0.37, 0.28], "completion_low": [0.2] * 4, "completion_high": [0.5] * 4, "last_step": ["c"] * 4,
                            "complete": [True, False, True, False], "undecided_share": [0.0, 0.5, 0.0, 0.53], "too_early": [False] * 4,
                            "suppressed": [False] * 4})
    dist = pl.DataFrame({"step": [2, 2, 3], "touchpoint_id": ["b", "b", "c"], "bucket": ["under 1 day", "1–3 days", "3–7 days"], "bucket_order": [0, 1, 2],
                         "learners": [30, 50, 60], "reached": [80, 80, 60], "share": [0.375, 0.625, 1.0], "median_days": [1.2, 1.2, 4.0],
                         "suppressed": [False] * 3})
    return {
        "funnel": charts.funnel_chart(f, jm, by="persona"),
        "funnel_all": charts.funnel_chart(f.filter(pl.col("persona") == "p1").drop("persona"), jm, by=None),
        "stops": charts.stops_chart(f, jm, by="persona"),
        "stops_all": charts.stops_chart(f.filter(pl.col("persona") == "p1").drop("persona"), jm, by=None),
        "ttc": charts.time_to_convert_chart(f, jm, by="persona"),
        "dist": charts.days_to_convert_chart(dist, jm),
        "cohort": charts.cohort_conversion_chart(cohorts, jm),
        "emotion": charts.emotion_curve(emotion_frame(), jm),
        "emotion_p": charts.emotion_curve(emotion_frame("persona"), jm, by="persona"),
        "lane": charts.emotion_lane_chart(emotion_frame(), jm),
        "gap": charts.emotion_gap_chart(pl.DataFrame({"touchpoint_id": ["a", "b", "c", "a"], "gap": [-0.5, 0.2, -1.0, 0.1], "stop_rate": [0.3, 0.1, 0.4, 0.12],
                                                      "n": [10, 12, 9, 8]}), jm),
        "evs": charts.emotion_stopping_chart(pl.DataFrame({"touchpoint_id": ["a"], "low_n": [10], "low_stop_rate": [0.5], "other_n": [40],
                                                           "other_stop_rate": [0.1], "difference": [0.4], "p_value": [0.01]}), jm),
        "drop": charts.dropoff_chart(pl.DataFrame({"touchpoint_id": ["c", "a"], "reached": [5, 9], "stopped": [1, 2], "stop_rate": [0.2, 0.22],
                                                   "stop_rate_low": [0.0, 0.1], "stop_rate_high": [0.5, 0.4]}), jm),
        "hot": charts.hotspots_chart(pl.DataFrame({"touchpoint_id": ["a", "b"], "stop_rate": [0.3, 0.2], "previous_stop_rate": [0.1, 0.25]}), jm),
        "iv": charts.interventions_chart(pl.DataFrame({"intervention_id": ["i", "j"], "touchpoint_id": ["a", "b"], "before_n": [5, 8], "before_rate": [0.2, 0.5],
                                                       "after_n": [6, 9], "after_rate": [0.5, 0.4], "difference": [0.3, -0.1], "low": [-0.1, -0.3],
                                                       "high": [0.6, 0.1], "p_value": [0.2, 0.4]})),
        "seg": charts.segment_gap_chart(pl.DataFrame({"attribute": ["d", "d"], "value": ["x", "y"], "touchpoint_id": ["a", "a"], "segment_n": [12, 3],
                                                      "segment_rate": [0.3, 0.0], "rest_n": [90, 99], "rest_rate": [0.7, 0.6], "difference": [-0.4, -0.6],
                                                      "q_value": [0.01, 0.5], "significant": [True, False], "suppressed": [False, True]})),
    }


def test_theme_is_registered_enabled_and_colour_blind_safe():
    assert alt.theme.active == charts.THEME_NAME
    cfg = charts.journey_theme()["config"]
    assert cfg["range"]["category"][:7] == ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"]
    assert cfg["axis"]["labelFontSize"] >= 11
    assert cfg["axis"]["labelLimit"] == 0 and cfg["legend"]["labelLimit"] == 0      # labels wrap, they are never cut


def _color_map(spec: dict) -> dict:
    """Domain value → colour for every colour scale in a spec (searched recursively)."""
    found = {}
    for x in nested_dicts(spec):
        sc = x.get("scale") if isinstance(x.get("scale"), dict) else None
        if sc and "domain" in sc and "range" in sc and isinstance(sc["range"], list):
            found.update(dict(zip(sc["domain"], sc["range"])))
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
        cm = {k: v for k, v in _color_map(spec).items() if k in expected}
        assert set(cm) == names, cm                      # only who is there ...
        for name in names:
            assert cm[name] == expected[name], (name, cm)   # ... each in its own fixed colour
    # the designed target is always the same grey, never a persona colour
    assert _color_map(specs[2])["Designed target"] == charts.TARGET_GREY


def test_stage_colours_follow_map_order(jmap):
    assert charts.stage_colors(jmap) == {"s1": charts.PALETTE[0], "s2": charts.PALETTE[1]}
    cm = _color_map(all_charts(jmap)["drop"].to_dict())
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


def test_every_builder_returns_a_valid_spec_with_tooltips_and_a_legend_for_each_series(jmap):
    built = all_charts(jmap)
    for name, chart in built.items():
        spec = chart.to_dict()           # validates against the Vega-Lite schema
        assert '"tooltip"' in json.dumps(spec), name
        assert spec.get("title") or spec.get("description"), name
        if series_fields(spec) and not legend_exempt(spec):
            svg = vlc.vegalite_to_svg(charts.fit_spec(spec, 900))
            assert "role-legend" in svg, f"{name}: a multi-series chart without a legend"
    # the suppressed group never reaches the chart data
    seg = json.dumps(built["seg"].to_dict(), ensure_ascii=False)
    assert "y → a" not in seg and "x → a" in seg
    # the funnel with personas is faceted, one panel per persona, and the panels refit to the page width
    funnel = built["funnel"].to_dict()
    assert "facet" in funnel
    # at most one column per panel (two personas here), never more than FACET_COLUMNS
    assert funnel["usermeta"]["journey"]["facet"]["max_columns"] == min(charts.FACET_COLUMNS, 2)


def test_one_meaning_per_colour(jmap):
    """A chart never uses the same colour for two different things (series domains map one-to-one onto colours)."""
    for name, chart in all_charts(jmap).items():
        spec = chart.to_dict()
        for field_scale in _scales(spec):
            domain, rng = field_scale
            pairs = dict(zip(domain, rng))
            assert len(set(pairs.values())) == len(pairs), (name, pairs)


def _scales(spec: dict) -> list[tuple[list, list]]:
    out = []
    for x in nested_dicts(spec):
        for ch in ("color", "fill", "stroke"):
            e = (x.get("encoding") or {}).get(ch) if isinstance(x.get("encoding"), dict) else None
            if isinstance(e, dict) and isinstance(e.get("scale"), dict) and isinstance(e["scale"].get("range"), list) and "domain" in e["scale"]:
                out.append((e["scale"]["domain"], e["scale"]["range"]))
    return out


def test_funnel_labels_count_and_decided_step_conversion(jmap):
    """The label on each bar: learners · learners / (learners + stopped at the previous step) — a per-row reference."""
    f = funnel_frame(("p1",)).drop("persona")
    spec = charts.funnel_chart(f, jmap, by=None).to_dict()
    data = next(v for v in spec["datasets"].values() if v and "bar_label" in v[0])
    rows = {r["step"]: r for r in f.to_dicts()}
    for r in data:
        s = r["step"]
        if s == 1:
            assert r["bar_label"] == f"{rows[1]['learners']} started"
        else:
            want = round(100 * rows[s]["learners"] / (rows[s]["learners"] + rows[s - 1]["stopped"]))
            assert r["bar_label"] == f"{rows[s]['learners']} · {want}%"


def test_stop_chart_shows_shares_of_starters_with_counts_in_tooltips(jmap):
    spec = charts.stops_chart(funnel_frame(("p1", "p2")), jmap, by="persona").to_dict()
    data = spec["data"]["values"] if "values" in spec.get("data", {}) else next(v for v in spec["datasets"].values() if v and "share" in v[0])
    for r in data:
        assert r["share"] == pytest.approx(r["learners"] / r["starters"])
    assert spec["spec"]["encoding"]["x"]["field"] == "share"
    assert any(t["field"] == "learners" for t in spec["spec"]["encoding"]["tooltip"])


def test_emotion_curve_map_order_stage_bands_gaps_words_and_a_phone_variant(jmap):
    spec = charts.emotion_curve(emotion_frame(), jmap).to_dict()
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

    walk(spec["layer"])
    # touchpoint labels from the map, in map order, through a JSON array literal (no code built from names); valence in words
    assert json.dumps(["Ad", "Enrol </script>", "Lesson"]) + "[datum.value] || ''" in exprs
    assert any("very negative" in e and "very positive" in e for e in exprs)
    datasets = spec["datasets"].values()
    bands = next(d for d in datasets if d and "i0" in d[0])
    assert [(b["stage_name"], b["i0"], b["i1"]) for b in bands] == [("See", -0.5, 0.5), ("Do", 0.5, 2.5)]
    measured = next(d for d in spec["datasets"].values() if d and "mean_valence" in d[0])
    assert [r["x"] for r in measured] == [0.0, 2.0]       # the touchpoint without responses is left out ...
    assert measured[0]["segment"] != measured[1]["segment"]   # ... and the line breaks there instead of bridging it
    narrow = spec["usermeta"]["journey"]["narrow"]
    assert spec["usermeta"]["journey"]["min_width"] > 342 and "layer" in narrow
    assert charts.fit_spec(spec, 342)["layer"] == charts.fit_spec(narrow, 342)["layer"]   # phones get the vertical curve


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(st.integers(0, 12), min_size=1, max_size=13, unique=True))
def test_emotion_segments_break_exactly_at_gaps(xs):
    df = charts._segments(pl.DataFrame({"x": [float(x) for x in xs]}), None).sort("x")
    got = df["segment"].to_list()
    xs = sorted(xs)
    want, seg = [], 0
    for i, x in enumerate(xs):
        if i and x != xs[i - 1] + 1:
            seg += 1
        want.append(seg)
    assert got == want


def test_show_modes(jmap):
    c = charts.funnel_chart(funnel_frame(), jmap)
    charts.set_output("notebook")
    nb = charts.show(c)
    assert isinstance(nb, charts.NotebookChart)
    bundle, meta = nb._repr_mimebundle_()
    vega = bundle["application/vnd.vega.v5+json"]
    assert "marks" in vega and vega["$schema"].endswith("/v5.json")        # JupyterLab's own Vega renderer draws it
    assert meta["application/vnd.vega.v5+json"]["embed_options"]["actions"] is False
    assert "cdn" not in json.dumps(bundle).lower() and "<script" not in json.dumps(bundle)
    charts.set_output("report")
    try:
        h = charts.show(c)
        assert isinstance(h, charts.ChartHTML)
        html = h._repr_html_()
        assert html.startswith('<figure class="journey-chart"') and '<script type="application/json">' in html
        assert '<div class="journey-chart-static"><svg class="journey-static"' in html       # the picture without JavaScript
        assert html.count("</script") == 1                  # the touchpoint named "</script>" cannot close the element
        payload = re.search(r'<script type="application/json">(.*)</script>', html, re.S).group(1)
        assert json.loads(payload) == json.loads(json.dumps(c.to_dict(), default=str))
        nd = charts.show(charts.no_data_chart("Funnel", "Nobody <here>."))
        assert isinstance(nd, charts.NoData) and nd._repr_html_() == '<p class="journey-nodata"><strong>Funnel:</strong> Nobody &lt;here&gt;.</p>'
    finally:
        charts.set_output("notebook")
    with pytest.raises(ValueError):
        charts.set_output("svg")


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_chart_html_round_trips_any_text(text):
    spec = {"data": {"values": [{"label": text}]}, "mark": "point", "title": text}
    html = charts.ChartHTML(spec, static=False).html
    payload = re.search(r'<script type="application/json">(.*)</script></figure>$', html, re.S).group(1)
    assert "</" not in payload and "<!--" not in payload
    assert json.loads(payload) == spec


def test_static_picture_is_self_contained_and_ids_do_not_collide(jmap):
    built = all_charts(jmap)
    a, b = charts.static_svg(built["stops"]), charts.static_svg(built["funnel"])
    ids_a, ids_b = set(re.findall(r'id="([^"]+)"', a)), set(re.findall(r'id="([^"]+)"', b))
    assert ids_a and ids_b and not ids_a & ids_b                      # clip paths of two charts on one page never clash
    assert set(re.findall(r'url\(#([^)]+)\)', a)) <= ids_a                 # and every reference points inside its own picture
    for svg in (a, b):
        assert not re.search(r'(?:href|src)="(?!#)', svg) and "http://" not in svg.split(">", 1)[1] and "https://" not in svg
        assert "…" not in svg
    assert charts.static_svg(built["stops"]) == a                     # deterministic
    lane = charts.static_svg(built["lane"], stretch=True)
    assert 'preserveAspectRatio="none"' in lane


def test_page_scripts_inline_the_libraries_once():
    s = charts.chart_page_scripts()
    assert s.count("<script") == 2 and s.count("</script") == 2
    assert "window.vegaEmbed" in s and "src=" not in s[:200]
    assert '"actions": false' in charts.BOOTSTRAP_JS


def test_empty_frames_say_so_in_one_line(jmap):
    empty_f = funnel_frame().head(0)
    for chart in (charts.funnel_chart(empty_f, jmap), charts.stops_chart(empty_f, jmap), charts.time_to_convert_chart(empty_f, jmap),
                  charts.emotion_gap_chart(pl.DataFrame(schema={"touchpoint_id": pl.Utf8, "gap": pl.Float64, "stop_rate": pl.Float64}), jmap),
                  charts.segment_gap_chart(pl.DataFrame(schema={"attribute": pl.Utf8, "value": pl.Utf8, "touchpoint_id": pl.Utf8, "suppressed": pl.Boolean}))):
        spec = chart.to_dict()
        assert spec["mark"]["type"] == "text" and spec["title"]
        assert isinstance(charts.show(chart), charts.NoData)
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
# Fitting the page: nothing wider than its container, nothing cut off
# --------------------------------------------------------------------------

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


def _svg_width(svg: str) -> float:
    return float(re.search(r'<svg[^>]*\swidth="([\d.]+)"', svg).group(1))


def _texts(svg: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S))


@pytest.mark.parametrize("width", [1130, 342])
@pytest.mark.parametrize("builder", ["funnel_chart", "stops_chart", "time_to_convert_chart"])
def test_persona_charts_fit_any_width_with_many_personas(builder, width):
    """Nine personas with long names: laid out for a page or a phone, the chart is no wider than that and shows every persona, uncut."""
    jm2, f = _many_personas(8)
    svg = vlc.vegalite_to_svg(charts.fit_spec(getattr(charts, builder)(f, jm2, by="persona"), width))
    assert _svg_width(svg) <= width
    texts = _texts(svg)
    for i in range(8):
        assert f"Persona {i}" in texts, i
    assert "unassigned" in texts and "…" not in texts


@pytest.mark.parametrize("width", [1130, 342])
def test_every_chart_fits_the_width_uncut(jmap, width):
    for name, chart in all_charts(jmap).items():
        svg = vlc.vegalite_to_svg(charts.fit_spec(chart, width))
        assert _svg_width(svg) <= width + 1, (name, _svg_width(svg))
        assert "…" not in _texts(svg), name


@settings(max_examples=40, deadline=None)
@given(width=st.integers(300, 1600), personas=st.integers(1, 9))
def test_faceted_panels_fill_the_row_without_overflowing(width, personas):
    jm2, f = _many_personas(personas)
    spec = charts.fit_spec(charts.funnel_chart(f, jm2, by="persona"), width)
    meta = spec["usermeta"]["journey"]["facet"]
    cols, panel = spec["columns"], spec["spec"]["width"]
    assert 1 <= cols <= meta["max_columns"] == min(5, personas + 1)     # + the learners in no persona
    assert meta["fixed"] + cols * (panel + meta["spacing"]) - meta["spacing"] <= max(width, meta["fixed"] + 90)
    if cols < meta["max_columns"]:   # one more panel of the minimum width would not fit
        assert meta["fixed"] + (cols + 1) * (meta["panel"] + meta["spacing"]) - meta["spacing"] > width


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=30), row=st.integers(100, 2000))
def test_legend_columns_fit_the_row(labels, row):
    k = charts.legend_columns(labels, row_width=row)
    entry = min(220, 7 * max(len(v) for v in labels)) + 30
    assert 1 <= k <= len(labels)
    assert k == 1 or k * entry <= row          # a row of k entries fits ...
    assert k == len(labels) or (k + 1) * entry > row   # ... and one more would not


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80), width=st.integers(5, 40))
def test_wrap_keeps_every_word(text, width):
    out = charts.wrap(text, width)
    assert out.split() == text.split() or (not text.split() and out == text)
    for line in out.split("\n"):
        assert len(line) <= width or " " not in line.strip()       # only a single long word may exceed the width
