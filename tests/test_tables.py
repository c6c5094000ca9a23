"""Stakeholder tables and the journey-map canvas: escaping, status with text, suppression, references."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib import tables
from journeylib.charts import STATUS_COLORS
from journeylib.model import JourneyMap


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells: list[str] = []
        self.tags: list[str] = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "td" and "gt_row" in (dict(attrs).get("class") or ""):   # body cells (not titles, notes or footnotes)
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def parse(html: str) -> _Text:
    p = _Text()
    p.feed(html)
    p.close()
    return p


nasty = st.lists(st.sampled_from(list("ab <>&\"'/=;") + ["<script>", "</td>", "&amp;", "<img src=x onerror=1>"]), max_size=12).map("".join)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(nasty, min_size=1, max_size=6))
def test_table_escapes_any_text(values):
    df = pl.DataFrame({"name": values, "n": list(range(len(values)))})
    html = tables.table(df, caption="<b>cap</b>").html
    p = parse(html)
    # every cell's text is exactly the input: nothing was interpreted as markup
    assert p.cells[0::2] == values
    assert not {"script", "img", "b"} & set(p.tags)
    assert "<b>cap</b>" not in html


def test_fmt_value_reference_cases():
    assert tables.fmt_value(0.1234, "pct") == "12%"
    assert tables.fmt_value(0.1234, "pct1") == "12.3%"
    assert tables.fmt_value(0.05, "+pct") == "+5 pp"
    assert tables.fmt_value(-0.05, "+pct") == "−5 pp"
    assert tables.fmt_value(12345.6, "int") == "12,346"
    assert tables.fmt_value(2.25, "days") == "2.2 d" or tables.fmt_value(2.25, "days") == "2.3 d"
    assert tables.fmt_value(0.0004, "p") == "<0.001"
    assert tables.fmt_value(float("nan")) == "–" and tables.fmt_value(None, "pct") == "–"
    assert tables.fmt_value(True) == "yes"


@pytest.mark.parametrize("status", ["met", "near", "missed", "not enough data"])
def test_status_badge_has_colour_symbol_and_text(status):
    html = str(tables.status_badge(status))
    assert STATUS_COLORS[status] in html
    assert status in html and tables.STATUS_SYMBOLS[status] in html


MAP = {
    "name": "M", "stages": [{"id": "a", "name": "Think <1>", "learner_goal": "g & g"}, {"id": "b", "name": "Do"}],
    "touchpoints": [
        {"id": "t1", "name": "Page <x>", "stage": "a", "purpose": "p1 & more", "target_emotion": {"label": "curious"},
         "kpis": [{"metric": "conversion", "target": 0.6}], "pain_points": ["<script>alert(1)</script>"], "opportunities": ["o & o"]},
        {"id": "t2", "name": "Enrol", "stage": "b", "target_emotion": {"label": "excited"}, "kpis": [{"metric": "time_to_next", "target": 3}]},
        {"id": "t3", "name": "Lesson", "stage": "b", "target_emotion": {"label": "confident"}},
    ],
    "personas": [{"id": "p1", "name": "Persona <1>"}, {"id": "p2", "name": "P2"}],
    "interventions": [{"id": "i1", "date": "2025-01-01", "touchpoint": "t1", "description": "Fix <b>"}],
}


@pytest.fixture
def jmap():
    return JourneyMap.model_validate(MAP)


def test_kpi_table_order_status_and_targets(jmap):
    k = pl.DataFrame({
        "touchpoint_id": ["t2", "t1"], "metric": ["time_to_next", "conversion"], "value": [4.0, 0.7], "n": [30, 40],
        "low": [3.0, 0.55], "high": [5.0, 0.8], "target": [3.0, 0.6], "direction": ["lower", "higher"], "status": ["missed", "met"],
    })
    html = tables.kpi_table(k, jmap).html
    assert html.index("Page &lt;x&gt;") < html.index("Enrol")            # map order, not input order
    assert "≤ 3.0 d" in html and "≥ 60%" in html
    assert "✗ missed" in html and "✓ met" in html
    assert "70%" in html and "(55%–80%)</span>" in html


def test_scorecard_marks_significant_changes(jmap):
    sc = pl.DataFrame({
        "touchpoint_id": ["t1", "t2"], "metric": ["conversion", "time_to_next"], "value": [0.5, 2.0], "n": [50, 50], "low": [0.4, 1.0], "high": [0.6, 3.0],
        "target": [0.6, 3.0], "direction": ["higher", "lower"], "status": ["missed", "met"], "previous_value": [0.7, 2.5],
        "change": [-0.2, -0.5], "changed_significantly": [True, False],
    })
    html = tables.scorecard_table(sc, jmap).html
    assert "▼ −20 pp" in html and "significant" in html
    assert "−0.50" in html and html.count("▼") == 1 + 1  # one in the row, one in the note


def test_journey_map_canvas(jmap):
    emo = pl.DataFrame({"touchpoint_id": ["t1"], "n": [12], "mean_valence": [-0.5], "low": [-1.0], "high": [0.0], "gap": [-1.5]})
    k = pl.DataFrame({"touchpoint_id": ["t1"], "metric": ["conversion"], "value": [0.5], "n": [40], "target": [0.6], "direction": ["higher"], "status": ["missed"]})
    html = tables.journey_map_html(jmap, emotion=emo, kpis=k).html
    assert "repeat(3, minmax(52px, 1fr))" in html                     # one column per touchpoint
    assert "grid-column: span 1" in html and "grid-column: span 2" in html   # stage spans sum to 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "Think &lt;1&gt;" in html and "g &amp; g" in html and "p1 &amp; more" in html
    assert "−0.50" in html and "gap −1.50" in html and "−1.00 to 0.00" not in html and "✗ missed" in html
    assert ">−1.00</span> <span class=\"jm-nw\">to 0.00<" in html      # the interval's numbers never break inside
    assert "no re\u00adspons\u00ades" in html                          # t2, t3 have no emotion data
    lanes = ["Touchpoint", "Channel", "Purpose", "Target emotion", "Measured emotion", "KPIs", "Pain points", "Opportunities"]
    p = parse(html)
    assert p.tags.count("div") >= 1 + 1 + len(lanes) * 4


def reference_emotion_outcomes(emotion, drop, kpis):
    out = []
    for e in emotion.to_dicts():
        d = next((r for r in drop.to_dicts() if r["touchpoint_id"] == e["touchpoint_id"]), {})
        ks = [r for r in kpis.to_dicts() if r["touchpoint_id"] == e["touchpoint_id"] and r["status"] != "not enough data" and r["metric"] != "emotion"]
        met = sum(r["status"] == "met" for r in ks) / len(ks) if ks else None
        ratios = []
        for r in ks:
            x = r["target"] / r["value"] if r["direction"] == "lower" else r["value"] / r["target"]
            ratios.append(min(max(x, 0), 2))
        out.append({"touchpoint_id": e["touchpoint_id"], "stop_rate": d.get("stop_rate"), "kpis_met": met, "attainment": sum(ratios) / len(ratios) if ratios else None})
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_emotion_outcomes_matches_reference(data):
    tps = ["a", "b", "c"]
    emotion = pl.DataFrame({"touchpoint_id": tps, "n": [5, 6, 7], "mean_valence": [0.1, 0.2, 0.3], "gap": [-1.0, 0.0, 0.5]})
    drop = pl.DataFrame({"touchpoint_id": ["a", "c"], "reached": [10, 20], "stop_rate": data.draw(st.lists(st.floats(0, 1), min_size=2, max_size=2))})
    n = data.draw(st.integers(0, 8))
    kpis = pl.DataFrame({
        "touchpoint_id": data.draw(st.lists(st.sampled_from(tps), min_size=n, max_size=n)),
        "metric": data.draw(st.lists(st.sampled_from(["conversion", "time_to_next", "emotion"]), min_size=n, max_size=n)),
        "status": data.draw(st.lists(st.sampled_from(["met", "near", "missed", "not enough data"]), min_size=n, max_size=n)),
        "value": data.draw(st.lists(st.floats(0.1, 10), min_size=n, max_size=n)),
        "target": data.draw(st.lists(st.floats(0.1, 10), min_size=n, max_size=n)),
        "direction": data.draw(st.lists(st.sampled_from(["higher", "lower"]), min_size=n, max_size=n)),
    }, schema={"touchpoint_id": pl.Utf8, "metric": pl.Utf8, "status": pl.Utf8, "value": pl.Float64, "target": pl.Float64, "direction": pl.Utf8})
    got = tables.emotion_outcomes(emotion, drop, kpis).sort("touchpoint_id").select("touchpoint_id", "stop_rate", "kpis_met", "attainment").to_dicts()
    want = reference_emotion_outcomes(emotion, drop, kpis)
    for g, w in zip(got, want):
        assert g["touchpoint_id"] == w["touchpoint_id"] and g["stop_rate"] == w["stop_rate"]
        for k in ("kpis_met", "attainment"):
            assert (g[k] is None and w[k] is None) or abs(g[k] - w[k]) < 1e-9


def _funnel(persona_rows):
    rows = []
    for p, steps in persona_rows.items():
        start = steps[0][0]
        for i, (learners, stopped, inprog) in enumerate(steps):
            rows.append({"persona": p, "step": i + 1, "touchpoint_id": ["t1", "t2", "t3"][i], "learners": learners,
                         "conversion_from_start": learners / start, "conversion_from_start_low": 0.0, "conversion_from_start_high": 1.0,
                         "stopped": stopped, "in_progress": inprog})
    return pl.DataFrame(rows)


def test_persona_summary_matches_reference_and_suppresses(jmap):
    f = _funnel({"p1": [(100, 20, 5), (75, 30, 5), (40, 0, 0)], "p2": [(4, 1, 0), (3, 1, 0), (1, 0, 0)]})
    html = tables.persona_summary(f, jmap, min_count=5).html
    p = parse(html)
    rows = [p.cells[i:i + 7] for i in range(0, len(p.cells), 7)]
    by = {r[0]: r for r in rows}
    # reference by hand: p1 started 100; 40 reached the last step and 50 stopped, so 40 / (40 + 50) = 44% of the decided
    # reached it; 10 are still undecided; most stop at t2 ("Enrol")
    assert by["Persona <1>"][1] == "100" and by["Persona <1>"][2].startswith("44%")
    assert by["Persona <1>"][3:] == ["40", "50", "10", "Enrol"]
    assert by["P2"][1] == "fewer than 5" and "Enrol" not in by["P2"][6] and "Page" not in by["P2"][6]


def test_stop_table_shares_and_suppression(jmap):
    f = _funnel({"p1": [(100, 20, 5), (75, 30, 5), (40, 0, 0)], "p2": [(9, 3, 0), (6, 1, 0), (5, 0, 0)]})
    p = parse(tables.stop_table(f, jmap, min_count=5).html)
    rows = [p.cells[i:i + 5] for i in range(0, len(p.cells), 5)]
    assert rows[0] == ["Persona <1>", "Enrol", "2", "30", "60%"]
    assert rows[1] == ["Persona <1>", "Page <x>", "1", "20", "40%"]
    assert all(r[3] == "fewer than 5" and r[4] == "fewer than 5" for r in rows if r[0] == "P2")


def test_data_quality_and_silent_touchpoints(jmap):
    counts = pl.DataFrame({"table": ["events", "learners"], "file": ["/a/b/events.csv", "C:\\x\\learners.csv"], "read": [10, 3], "accepted": [8, 3], "rejected": [2, 0]})
    rej = pl.DataFrame({"table": ["events"] * 2, "file": ["f"] * 2, "row": [1, 2], "reason": ["unknown touchpoint <x>"] * 2, "field": ["touchpoint_id"] * 2, "record": ['{"learner_id": "L1"}'] * 2})
    a, b = tables.data_quality_table(counts, rej)
    assert "events.csv" in a.html and "/a/b" not in a.html and "learners.csv" in a.html
    assert "unknown touchpoint &lt;x&gt;" in b.html and "L1" not in b.html and ">2<" in b.html
    html = tables.silent_touchpoints(pl.DataFrame({"touchpoint_id": ["t1"]}), jmap).html
    assert "(2)" in html and "Enrol" in html and "Lesson" in html and "Page" not in html


def test_review_sections(jmap):
    h = tables.review_header(jmap, "2025-06", dt.datetime(2025, 6, 1), dt.datetime(2025, 7, 1), dt.datetime(2025, 5, 1), dt.datetime(2025, 6, 1)).html
    assert "2025-06-01 to 2025-06-30" in h and "2025-05-01 to 2025-05-31" in h
    fx = pl.DataFrame({"intervention_id": ["i1"], "touchpoint_id": ["t1"], "date": [dt.date(2025, 1, 1)], "before_n": [50], "before_rate": [0.5],
                       "after_n": [60], "after_rate": [0.7], "difference": [0.2], "low": [0.02], "high": [0.38], "p_value": [0.03]})
    html = tables.interventions_table(fx, jmap).html
    assert "Fix &lt;b&gt;" in html and "+20 pp" in html and "2025-01-01" in html
    f = tables.findings_box(["one <1>", "two", "three", "four"]).html
    assert f.count("<li>") == 3 and "one &lt;1&gt;" in f and "four" not in f


def test_review_tables_suppress_and_filter(jmap):
    h = pl.DataFrame({"touchpoint_id": ["t1", "t2", "t3"], "reached": [80, 3, 50], "stopped": [30, 2, 5], "stop_rate": [0.375, 0.67, 0.1],
                      "previous_reached": [90, 40, 50], "previous_stopped": [10, 4, 10], "previous_stop_rate": [0.11, 0.1, 0.2],
                      "change": [0.26, 0.57, -0.1], "q_value": [0.001, 0.01, 0.02], "significant": [True, True, True]})
    p = parse(tables.hotspots_table(h, jmap, min_count=5).html)
    rows = [p.cells[i:i + 7] for i in range(0, len(p.cells), 7)]
    assert [r[0] for r in rows] == ["Enrol", "Page <x>"]                 # only rises, largest first; the fall is left out
    assert rows[0][1:] == ["fewer than 5"] * 6                            # 3 reached now: suppressed
    assert rows[1][3] == "+26 pp"
    g = pl.DataFrame({"attribute": ["device", "device", "region"], "value": ["tablet", "laptop", "north"], "suppressed": [True, False, True]})
    html = tables.suppressed_groups_note(g, min_count=5, attributes=["device"]).html
    assert "device = tablet" in html and "north" not in html and "laptop" not in html
    assert "none was suppressed" in tables.suppressed_groups_note(g.filter(~pl.col("suppressed"))).html


def test_scorecard_puts_what_needs_attention_first(jmap):
    sc = pl.DataFrame({
        "touchpoint_id": ["t1", "t2", "t3"], "metric": ["conversion", "time_to_next", "conversion"], "value": [0.9, 5.0, 0.5], "n": [50, 50, 50],
        "target": [0.6, 3.0, 0.6], "direction": ["higher", "lower", "higher"], "status": ["met", "missed", "near"],
        "previous_value": [0.8, 4.0, 0.55], "change": [0.1, 1.0, -0.05], "changed_significantly": [False, False, False],
    })
    p = parse(tables.scorecard_table(sc, jmap).html)
    assert [c for c in p.cells if c in ("Page <x>", "Enrol", "Lesson")] == ["Enrol", "Lesson", "Page <x>"]
    p = parse(tables.scorecard_table(sc, jmap, order_by="map").html)
    assert [c for c in p.cells if c in ("Page <x>", "Enrol", "Lesson")] == ["Page <x>", "Enrol", "Lesson"]


@pytest.mark.parametrize("module", ["journeylib.charts", "journeylib.tables", "journeylib.privacy", "journeylib.report", "journeylib.explore"])
def test_public_functions_have_docstrings_with_examples(module):
    import importlib
    import inspect

    mod = importlib.import_module(module)
    missing = []
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = inspect.getdoc(obj) or ""
            if not doc or (inspect.isfunction(obj) and ">>>" not in doc):
                missing.append(name)
    assert not missing, f"{module}: document with an example: {missing}"


def test_review_tables_show_undecided_and_verdict(jmap):
    c = pl.DataFrame({"touchpoint_id": ["t1", "t2", "t3"], "metric": ["conversion"] * 3, "value": [0.5, 0.6, 0.7], "n": [80, 70, 60],
                      "undecided": [12, 0, 7], "previous_value": [0.7, 0.7, 0.6], "change": [-0.2, -0.1, 0.1], "q_value": [0.001, 0.01, 0.02],
                      "changed_significantly": [True, True, True], "finding": [True, False, False], "provisional": [False, False, True]})
    p = parse(tables.changes_table(c, jmap).html)
    rows = [p.cells[i:i + 9] for i in range(0, len(p.cells), 9)]
    assert [(r[0], r[7], r[8]) for r in rows] == [("Page <x>", "12", "finding"), ("Enrol", "0", "significant, below the minimum effect"),
                                                  ("Lesson", "7", "provisional: still being followed")]
    g = pl.DataFrame({"attribute": ["device", "device"], "value": ["tablet", "laptop"], "touchpoint_id": ["t1", "t1"], "segment_n": [3, 50],
                      "segment_converted": [1, 30], "segment_rate": [0.33, 0.6], "rest_n": [50, 3], "rest_converted": [30, 1], "rest_rate": [0.6, 0.33],
                      "difference": [-0.27, 0.27], "effect_size": [-0.5, 0.5], "test": ["fisher"] * 2, "p_value": [0.01] * 2, "q_value": [0.02] * 2,
                      "significant": [True, True], "suppressed": [True, False], "segment_undecided": [2, 9], "rest_undecided": [9, 2],
                      "tested_as": [None, "device = tablet"], "finding": [True, True]})
    html = tables.segment_table(g, jmap, min_count=5).html
    p = parse(html)
    assert "same test as device = tablet" in p.cells and "finding" in p.cells
    small = p.cells[p.cells.index("device = tablet"):][:4]
    assert "2" not in small                                                # a suppressed group's undecided count is not shown
