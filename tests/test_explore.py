"""The exploration widgets' logic: restrict, before_stop and the Explorer callbacks."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib import metrics as jm
from journeylib.explore import ALL, Explorer, before_stop, default_funnel, month_options, restrict
from journeylib.tables import segment_table

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

# learner -> (attributes, [(touchpoint, day offset)])
PLAN = {
    "L01": ({"age_band": "18-24", "device": "mobile"}, [("page", 0), ("enrol", 1), ("lesson", 3), ("exam", 10), ("survey", 12)]),
    "L02": ({"age_band": "18-24", "device": "laptop"}, [("page", 0), ("enrol", 2)]),
    "L03": ({"age_band": "25-34", "device": "mobile"}, [("page", 1), ("enrol", 2)]),
    "L04": ({"age_band": "25-34", "device": "laptop"}, [("page", 2), ("enrol", 3), ("lesson", 4)]),
    "L05": ({"age_band": "35-44", "device": "laptop"}, [("page", 3)]),
    "L06": ({"age_band": "35-44", "device": "tablet"}, [("page", 5), ("enrol", 6), ("lesson", 9), ("exam", 15)]),
    "L07": ({"age_band": "25-34", "device": "laptop"}, [("page", 40), ("enrol", 41)]),
    "L08": ({"age_band": "18-24", "device": "tablet"}, [("page", 50), ("lesson", 52)]),
    "L09": ({"age_band": "25-34", "device": "laptop"}, [("page", 60), ("enrol", 61), ("lesson", 62), ("exam", 63), ("survey", 64)]),
    "L10": ({"age_band": "35-44", "device": "laptop"}, [("page", 100), ("enrol", 101)]),
}


@pytest.fixture
def tiny_ws(tmp_path, make_workspace):
    events, learners, k = [], [], 0
    for lid, (attrs, steps) in PLAN.items():
        learners.append({"learner_id": lid, **attrs})
        for tp, day in steps:
            k += 1
            ev = {"event_id": f"e{k:03d}", "learner_id": lid, "touchpoint_id": tp, "timestamp": (T0 + dt.timedelta(days=day)).isoformat(), "event": "reached"}
            if tp == "lesson":
                ev["emotion"] = -1 if lid in ("L04", "L08") else 1
            events.append(ev)
    return make_workspace(tmp_path, None, events, learners)


def reference_restrict(events, learners, end, personas):
    ev = [r for r in events.to_dicts() if end is None or r["timestamp"] < end]
    have = {r["learner_id"] for r in ev}
    le = [r for r in learners.to_dicts() if (end is None or r["learner_id"] in have) and (not personas or r["persona"] in personas)]
    keep = {r["learner_id"] for r in le}
    ev = [r for r in ev if r["learner_id"] in keep]
    return sorted(r["event_id"] for r in ev), sorted(keep)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the workspace is only read
@given(month=st.sampled_from([None, "2025-01", "2025-02", "2025-03", "2025-04"]),
       personas=st.sampled_from([None, ["young"], ["mobile"], ["young", "unassigned"]]))
def test_restrict_matches_reference(tiny_ws, month, personas):
    ev, le, end = restrict(tiny_ws.events, tiny_ws.learners, period=month, personas=personas)
    want_end = jm.period_bounds(month, data_end=tiny_ws.data_end)[1] if month else None
    assert end == want_end
    got = (sorted(ev["event_id"].to_list()), sorted(le["learner_id"].to_list()))
    assert got == reference_restrict(tiny_ws.events, tiny_ws.learners, want_end, personas)
    assert set(ev["learner_id"].to_list()) <= set(le["learner_id"].to_list())


def test_before_stop_matches_reference(tiny_ws):
    j = jm.journeys(tiny_ws.events, tiny_ws.learners, tiny_ws.map)
    for tp in ("page", "enrol", "lesson"):
        stoppers = set(j.filter((pl.col("state") == "stopped") & (pl.col("stopped_at") == tp))["learner_id"].to_list())
        ref: dict[str, int] = {}
        for lid in stoppers:
            steps = sorted(PLAN[lid][1], key=lambda s: s[1])
            first_here = min(d for t, d in steps if t == tp)
            before = [t for t, d in steps if d < first_here and t != tp]
            prev = tiny_ws.map.touchpoint(before[-1]).name if before else "(none)"
            ref[prev] = ref.get(prev, 0) + 1
        got = before_stop(tiny_ws.events, tiny_ws.learners, tiny_ws.map, tp)
        assert dict(zip(got["previous_touchpoint"], got["learners"])) == ref, tp
        if got.height:
            assert abs(got["share"].sum() - 1) < 1e-9
        assert "learner_id" not in got.columns


def test_default_funnel_and_months(tiny_ws):
    assert default_funnel(tiny_ws.map) == "core"
    assert default_funnel(tiny_ws.map, "core") == "core"
    with pytest.raises(KeyError):
        default_funnel(tiny_ws.map, "nope")
    assert month_options(tiny_ws.events) == ["2025-01", "2025-02", "2025-03", "2025-04"]


def test_explorer_callbacks_update_outputs(tiny_ws):
    ex = Explorer(tiny_ws, min_count=1)
    assert ex.funnel.value == "core"
    assert "persona" in ex.funnel_frame.columns and ex.funnel_frame.height > 0
    first = ex.funnel_frame.filter(pl.col("step") == 1)["learners"].sum()
    # persona picker: one persona, no persona split
    ex.persona.value = "young"
    young = tiny_ws.learners.filter(pl.col("persona") == "young")["learner_id"].to_list()
    assert sorted(ex.learners["learner_id"].to_list()) == sorted(young)
    assert "persona" not in ex.funnel_frame.columns
    assert ex.funnel_frame.filter(pl.col("step") == 1)["learners"].sum() <= first
    ex.persona.value = ALL
    # segment picker: groups of one attribute compared with everyone else
    ex.segment.value = "device"
    assert ex.segment_frame.height > 0 and set(ex.segment_frame["attribute"].to_list()) == {"device"}
    # period picker: the journey as it stood at the end of January
    ex.period.value = "2025-01"
    assert ex.data_end == dt.datetime(2025, 2, 1, tzinfo=UTC)
    assert ex.events["timestamp"].max() < ex.data_end
    ex.period.value = ALL
    # drill-down: the touchpoint's KPIs, emotion, who stops, what they did before; no ids
    ex.touchpoint.value = "lesson"
    assert "Lesson" in ex.drill_html and "Emotion: measured" in ex.drill_html
    assert set(ex.kpi_frame["touchpoint_id"].to_list()) == {"lesson"}
    for lid in PLAN:
        assert lid not in ex.drill_html
    ex.touchpoint.value = "enrol"
    assert "What those who stopped here did just before" in ex.drill_html
    assert "Course page" in ex.drill_html


def test_explorer_suppresses_small_groups(tiny_ws):
    ex = Explorer(tiny_ws, min_count=5)
    small = ex.funnel_frame.filter(pl.col("suppressed"))
    assert small.height > 0 and small["learners"].null_count() == small.height
    ex.touchpoint.value = "enrol"
    assert "fewer than 5" in ex.drill_html


def test_segment_table_marks_suppressed_rows(tiny_ws):
    g = jm.segment_gaps(tiny_ws.events, tiny_ws.learners, tiny_ws.map, attributes=["device"], min_count=3)
    html = segment_table(g, tiny_ws.map, min_count=3).html
    for r in g.filter(pl.col("suppressed")).iter_rows(named=True):
        assert f"device = {r['value']}" in html
    if g.filter(pl.col("suppressed")).height:
        assert "fewer than 3" in html


def test_explorer_segment_picker_offers_only_the_given_attributes(tiny_ws):
    every = Explorer(tiny_ws, min_count=1)
    assert "device" in [v for _, v in every.segment.options]
    ex = Explorer(tiny_ws, min_count=1, attributes=["device"])
    assert [v for _, v in ex.segment.options] == [ALL, "device"]
    with pytest.raises(ValueError, match="no_such_column"):
        Explorer(tiny_ws, attributes=["no_such_column"])
