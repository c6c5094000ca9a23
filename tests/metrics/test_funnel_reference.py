"""Journeys and funnels against the brute-force reference, plus invariants."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib import metrics as jm

from . import reference as ref
from ._data import MAP, POS, T0, data_end_of, datasets, frames

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEPS = st.sampled_from([["a", "b", "c", "d"], ["a"], ["b", "a"], ["c", "a", "b"], ["a", "c"], ["d", "c", "b", "a"]])
MODES = st.sampled_from(["ordered", "strict", "any_order"])
WINDOWS = st.sampled_from([None, None, 0.5, 2, 5])


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


@SETTINGS
@given(data=datasets(), steps=STEPS, mode=MODES, window=WINDOWS, extra=st.sampled_from([None, 0, 2, 5]))
def test_journeys_match_reference(data, steps, mode, window, extra):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    got = jm.journeys(ev, ln, MAP, funnel=steps, mode=mode, window=window, data_end=end)
    want = ref.journeys(rows, learners, steps, mode, window, end, MAP.dormancy_days, POS)
    assert got.height == len(learners)
    for r in got.iter_rows(named=True):
        w = want[r["learner_id"]]
        assert r["furthest_step"] == w["furthest_step"], (r, w)
        assert r["state"] == w["state"], (r, w)
        assert r["n_events"] == w["n_events"]
        assert r["last_touchpoint"] == w["last_touchpoint"]
        assert r["furthest_touchpoint"] == (steps[w["furthest_step"] - 1] if w["furthest_step"] else None)
        assert r["stopped_at"] == (r["furthest_touchpoint"] if w["state"] == "stopped" else None)


@SETTINGS
@given(data=datasets(), extra=st.sampled_from([None, 1, 4]))
def test_map_progress_matches_reference(data, extra):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    got = jm.journeys(ev, ln, MAP, data_end=end)
    want = ref.journeys(rows, learners, MAP.touchpoint_ids, "map", None, end, MAP.dormancy_days, POS)
    for r in got.iter_rows(named=True):
        assert (r["furthest_step"], r["state"]) == (want[r["learner_id"]]["furthest_step"], want[r["learner_id"]]["state"])


@SETTINGS
@given(data=datasets(), steps=STEPS, mode=MODES, window=WINDOWS, by=st.sampled_from([None, "persona"]))
def test_funnel_matches_reference(data, steps, mode, window, by):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, None)
    got = jm.funnel(ev, ln, MAP, steps, by=by, mode=mode, window=window)
    want = ref.funnel(rows, learners, steps, mode, window, end, MAP.dormancy_days, POS, by=by)
    key = (lambda r: (r[by] if by else None, r["step"]))
    gmap = {key(r): r for r in got.iter_rows(named=True)}
    assert len(gmap) == len(want)
    for w in want:
        g = gmap[(w["group"], w["step"])]
        assert g["touchpoint_id"] == steps[w["step"] - 1]
        assert (g["learners"], g["stopped"], g["in_progress"]) == (w["learners"], w["stopped"], w["in_progress"])
        assert g["undecided"] == w["undecided"]
        assert close(g["median_days_to_convert"], w["median"]) and close(g["p90_days_to_convert"], w["p90"])
        p, lo, hi = ref.wilson(w["learners"], w["prev"])
        assert close(g["conversion_from_previous"], p) and close(g["conversion_from_previous_low"], lo, 1e-7)
        assert close(g["conversion_from_previous_high"], hi, 1e-7)
        p, lo, hi = ref.wilson(w["learners"], w["start"])
        assert close(g["conversion_from_start"], p) and close(g["conversion_from_start_low"], lo, 1e-7)


@SETTINGS
@given(data=datasets(), steps=STEPS, mode=MODES, window=WINDOWS)
def test_funnel_invariants(data, steps, mode, window):
    rows, learners = data
    ev, ln = frames(rows, learners)
    total = jm.funnel(ev, ln, MAP, steps, mode=mode, window=window)
    # counts never increase along the steps
    counts = total["learners"].to_list()
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    # per-group sums reconcile with the total
    byp = jm.funnel(ev, ln, MAP, steps, by="persona", mode=mode, window=window)
    summed = byp.group_by("step").agg(pl.col("learners", "stopped", "in_progress").sum()).sort("step")
    assert summed["learners"].to_list() == counts
    assert summed["stopped"].to_list() == total["stopped"].to_list()
    assert summed["in_progress"].to_list() == total["in_progress"].to_list()
    # states partition the learners
    j = jm.journeys(ev, ln, MAP, funnel=steps, mode=mode, window=window)
    states = j["state"].value_counts()
    assert states["count"].sum() == len(learners)
    assert set(states["state"]) <= set(jm.STATES)
    # stopped + in_progress at each step + completed + not started = learners
    assert total["stopped"].sum() + total["in_progress"].sum() + (j["state"] == "completed").sum() + (j["state"] == "not_started").sum() == len(learners)


@SETTINGS
@given(data=datasets(), steps=STEPS, mode=MODES, window=WINDOWS,
       extra=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "x"]), st.integers(1, 5)), min_size=1, max_size=4))
def test_later_events_never_lower_furthest(data, steps, mode, window, extra):
    rows, learners = data
    ev, ln = frames(rows, learners)
    before = jm.journeys(ev, ln, MAP, funnel=steps, mode=mode, window=window)
    lid = learners[0]["learner_id"]
    last = max([r["timestamp"] for r in rows if r["learner_id"] == lid], default=T0)
    more = rows + [{"learner_id": lid, "touchpoint_id": tp, "timestamp": last + dt.timedelta(hours=h),
                    "event": "viewed", "value": None, "emotion": None, "event_id": f"z{i}"} for i, (tp, h) in enumerate(extra)]
    ev2, _ = frames(more, learners)
    after = jm.journeys(ev2, ln, MAP, funnel=steps, mode=mode, window=window)
    b = dict(zip(before["learner_id"], before["furthest_step"]))
    a = dict(zip(after["learner_id"], after["furthest_step"]))
    assert all(a[k] >= b[k] for k in b)


def _ev(spec):
    """Events from (learner, touchpoint, hour) triples."""
    rows = [{"learner_id": l, "touchpoint_id": t, "timestamp": T0 + dt.timedelta(hours=h), "event": "viewed",
             "value": None, "emotion": None, "event_id": f"e{i:02d}"} for i, (l, t, h) in enumerate(spec)]
    learners = [{"learner_id": l, "persona": "p", "device": None} for l in sorted({s[0] for s in spec})]
    return frames(rows, learners)


@pytest.mark.parametrize(
    "spec, steps, mode, expected",
    [
        # equal timestamps count as in order for ordered, in both directions
        ([("u", "a", 0), ("u", "b", 0)], ["a", "b"], "ordered", 2),
        ([("u", "a", 0), ("u", "b", 0)], ["b", "a"], "ordered", 2),
        # strict breaks ties by map position: a before b
        ([("u", "b", 0), ("u", "a", 0)], ["a", "b"], "strict", 2),
        ([("u", "b", 0), ("u", "a", 0)], ["b", "a"], "strict", 1),
        # another touchpoint in between breaks strict but not ordered
        ([("u", "a", 0), ("u", "x", 1), ("u", "b", 2)], ["a", "b"], "strict", 1),
        ([("u", "a", 0), ("u", "x", 1), ("u", "b", 2)], ["a", "b"], "ordered", 2),
        # repeats of a touchpoint collapse in strict
        ([("u", "a", 0), ("u", "a", 1), ("u", "b", 2)], ["a", "b"], "strict", 2),
        # b before a: ordered needs a later b; any_order does not
        ([("u", "b", 0), ("u", "a", 1)], ["a", "b"], "ordered", 1),
        ([("u", "b", 0), ("u", "a", 1)], ["a", "b"], "any_order", 2),
        # a later second attempt completes the ordered funnel
        ([("u", "b", 0), ("u", "a", 1), ("u", "b", 2)], ["a", "b"], "ordered", 2),
        # one event only
        ([("u", "b", 0)], ["a", "b"], "ordered", 0),
        ([("u", "a", 0)], ["a", "b"], "any_order", 1),
    ],
)
def test_tie_and_order_rules(spec, steps, mode, expected):
    ev, ln = _ev(spec)
    j = jm.journeys(ev, ln, MAP, funnel=steps, mode=mode)
    assert j["furthest_step"].to_list() == [expected]


def test_window_counts_from_first_step():
    ev, ln = _ev([("u", "a", 0), ("u", "b", 30), ("u", "a", 40), ("u", "b", 41)])
    # window of 1 day from the first 'a' (hour 0): b at hour 30 is too late, the later attempt does not count
    assert jm.journeys(ev, ln, MAP, funnel=["a", "b"], window=1)["furthest_step"].to_list() == [1]
    assert jm.journeys(ev, ln, MAP, funnel=["a", "b"], window=2)["furthest_step"].to_list() == [2]
    f = jm.funnel(ev, ln, MAP, ["a", "b"])
    assert f["median_days_to_convert"].to_list()[1] == pytest.approx(30 / 24)


def test_in_progress_never_counted_as_stopped():
    ev, ln = _ev([("u1", "a", 0), ("u2", "a", 0), ("u2", "b", 200)])
    f = jm.funnel(ev, ln, MAP, ["a", "b", "c"])
    # data_end = hour 200; u1 idle 200 h (> 3 days) stopped at a; u2 active now: in progress at b
    assert f["stopped"].to_list() == [1, 0, 0]
    assert f["in_progress"].to_list() == [0, 1, 0]
    j = jm.journeys(ev, ln, MAP, funnel=["a", "b", "c"])
    assert dict(zip(j["learner_id"], j["state"])) == {"u1": "stopped", "u2": "in_progress"}


def test_unknown_funnel_and_column_raise():
    from journeylib.errors import DataError

    ev, ln = _ev([("u", "a", 0)])
    with pytest.raises(DataError, match="unknown funnel"):
        jm.funnel(ev, ln, MAP, "nope")
    with pytest.raises(DataError, match="unknown learner column"):
        jm.funnel(ev, ln, MAP, by="nope")
    with pytest.raises(DataError, match="unknown funnel mode"):
        jm.funnel(ev, ln, MAP, mode="nope")
