"""KPIs, measures, emotion, drop-off and segment gaps against plain-Python references."""

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

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(a, b, tol=1e-7):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


@SETTINGS
@given(data=datasets(), by=st.sampled_from([None, "persona"]), extra=st.sampled_from([None, 2]),
       period=st.sampled_from([None, (2, 6), (0, 13)]))
def test_measure_matches_reference(data, by, extra, period):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    per = None if period is None else (T0 + dt.timedelta(days=period[0]), T0 + dt.timedelta(days=period[1]))
    got = jm.measure(ev, ln, MAP, by=by, data_end=end, period=per)
    want = ref.measure(rows, learners, MAP.touchpoint_ids, end, MAP.dormancy_days, by=by, period=per)
    assert got.height == len(want)
    for r in got.iter_rows(named=True):
        w = want[(r[by] if by else None, r["touchpoint_id"], r["metric"])]
        assert r["n"] == w[1], (r, w)
        assert close(r["value"], w[0]), (r, w)
        assert close(r["low"], w[2], 1e-6) and close(r["high"], w[3], 1e-6), (r, w)


@SETTINGS
@given(data=datasets())
def test_kpi_status_follows_model(data):
    rows, learners = data
    ev, ln = frames(rows, learners)
    k = jm.kpis(ev, ln, MAP)
    kp = {(t.id, x.metric): x for t in MAP.touchpoints for x in t.kpis}
    assert k.height == len(kp)
    for r in k.iter_rows(named=True):
        assert r["status"] == kp[(r["touchpoint_id"], r["metric"])].status(r["value"], r["n"])
        assert r["status"] in {"met", "near", "missed", "not enough data"}


@SETTINGS
@given(data=datasets(), by=st.sampled_from([None, "persona"]))
def test_emotion_matches_reference(data, by):
    rows, learners = data
    ev, ln = frames(rows, learners)
    got = jm.emotion(ev, ln, MAP, by=by)
    group = {l["learner_id"]: (l[by] if by else None) for l in learners}
    for r in got.iter_rows(named=True):
        xs = [e["emotion"] for e in rows if e["touchpoint_id"] == r["touchpoint_id"] and e["emotion"] is not None
              and group[e["learner_id"]] == (r[by] if by else None)]
        m, lo, hi = ref.t_mean(xs)
        assert r["n"] == len(xs)
        assert close(r["mean_valence"], m) and close(r["low"], lo, 1e-6) and close(r["high"], hi, 1e-6)
        target = MAP.touchpoint(r["touchpoint_id"]).target_emotion.valence
        assert r["target_valence"] == target
        assert close(r["gap"], None if m is None else m - target)


@SETTINGS
@given(data=datasets(), extra=st.sampled_from([None, 2, 10]), by=st.sampled_from([None, "persona"]))
def test_dropoff_matches_reference(data, extra, by):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    got = jm.dropoff(ev, ln, MAP, by=by, data_end=end)
    j = ref.journeys(rows, learners, MAP.touchpoint_ids, "map", None, end, MAP.dormancy_days, POS)
    group = {l["learner_id"]: (l[by] if by else None) for l in learners}
    for r in got.iter_rows(named=True):
        g = r[by] if by else None
        members = [l for l in group if group[l] == g]
        i = POS[r["touchpoint_id"]]
        reached = len({e["learner_id"] for e in rows if e["touchpoint_id"] == r["touchpoint_id"] and e["learner_id"] in members and e["timestamp"] <= end})
        stopped = sum(j[l]["furthest_step"] == i and j[l]["state"] == "stopped" for l in members)
        inprog = sum(j[l]["furthest_step"] == i and j[l]["state"] == "in_progress" for l in members)
        all_stopped = sum(j[l]["state"] == "stopped" for l in members)
        assert (r["reached"], r["stopped"], r["in_progress"]) == (reached, stopped, inprog)
        assert stopped <= reached
        p, lo, hi = ref.wilson(stopped, reached)
        assert close(r["stop_rate"], p) and close(r["stop_rate_low"], lo, 1e-6)
        assert close(r["share_of_stopped"], stopped / all_stopped if all_stopped else None)


@SETTINGS
@given(data=datasets(max_learners=12, max_events=40), min_count=st.sampled_from([1, 2, 5]))
def test_segment_gaps_match_reference(data, min_count):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, None)
    got = jm.segment_gaps(ev, ln, MAP, attributes=["persona", "device"], min_count=min_count)
    # reference: decided (learner, touchpoint) pairs, as in the KPI 'conversion'
    j = ref.journeys(rows, learners, MAP.touchpoint_ids, "map", None, end, MAP.dormancy_days, POS)
    pairs = []
    for l in learners:
        lid = l["learner_id"]
        le = [e for e in rows if e["learner_id"] == lid]
        for tp in MAP.touchpoint_ids[:-1]:
            here = [e["timestamp"] for e in le if e["touchpoint_id"] == tp]
            if not here:
                continue
            f = min(here)
            conv = any(POS[e["touchpoint_id"]] > POS[tp] and e["timestamp"] >= f for e in le)
            if not conv and j[lid]["state"] == "in_progress":
                continue
            pairs.append((l, tp, conv))
    want = {}
    for attr in ("persona", "device"):
        values = {("(missing)" if l[attr] is None else l[attr]) for l, _, _ in pairs}
        for v in values:
            for tp in MAP.touchpoint_ids[:-1]:
                seg = [c for l, t, c in pairs if t == tp and ("(missing)" if l[attr] is None else l[attr]) == v]
                rest = [c for l, t, c in pairs if t == tp and ("(missing)" if l[attr] is None else l[attr]) != v]
                if not seg:
                    continue
                want[(attr, v, tp)] = (len(seg), sum(seg), len(rest), sum(rest))
    assert got.height == len(want)
    ps = []
    for r in got.iter_rows(named=True):
        w = want[(r["attribute"], r["value"], r["touchpoint_id"])]
        assert (r["segment_n"], r["segment_converted"], r["rest_n"], r["rest_converted"]) == w
        assert r["suppressed"] == (w[0] < min_count)
        if r["suppressed"]:
            assert r["p_value"] is None and not r["significant"]
        else:
            test, p = ref.two_by_two(*[w[1], w[0], w[3], w[2]])
            assert r["test"] == test and close(r["p_value"], p, 1e-9)
        ps.append(r["p_value"])
    for r, q in zip(got.iter_rows(named=True), ref.bh(ps)):
        assert close(r["q_value"], q, 1e-9)
        assert r["significant"] == (q is not None and q < 0.05)


def test_segment_small_group_flagged():
    """A planted segment of 8 learners who all stop at b is flagged; a null attribute is not."""
    import random

    rnd = random.Random(3)
    rows, learners = [], []
    for i in range(200):
        lid = f"L{i:03d}"
        special = i < 8
        learners.append({"learner_id": lid, "persona": "s" if special else "o", "device": rnd.choice(["m", "d"])})
        t = T0 + dt.timedelta(days=rnd.randint(0, 20))
        path = ["a", "b"] if special else (["a", "b", "c", "d"] if rnd.random() < 0.85 else ["a", "b"])
        for j, tp in enumerate(path):
            rows.append({"learner_id": lid, "touchpoint_id": tp, "timestamp": t + dt.timedelta(hours=j), "event": "viewed",
                         "value": None, "emotion": None, "event_id": f"{lid}-{j}"})
    ev, ln = frames(rows, learners)
    g = jm.segment_gaps(ev, ln, MAP, attributes=["persona", "device"], data_end=T0 + dt.timedelta(days=90))
    sig = g.filter("significant")
    assert ("persona", "s", "b") in set(zip(sig["attribute"], sig["value"], sig["touchpoint_id"]))
    assert sig.filter(pl.col("attribute") == "device").height == 0


@SETTINGS
@given(data=datasets(max_learners=10, max_events=40), window=st.sampled_from([1, 3, 60]))
def test_intervention_effects_match_reference(data, window):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, None)
    got = jm.intervention_effects(ev, ln, MAP, window_days=window).row(0, named=True)
    iv = MAP.interventions[0]
    d = dt.datetime(iv.date.year, iv.date.month, iv.date.day, tzinfo=dt.timezone.utc)
    j = ref.journeys(rows, learners, MAP.touchpoint_ids, "map", None, end, MAP.dormancy_days, POS)
    counts = {"before": [0, 0], "after": [0, 0]}
    for l in learners:
        le = [e for e in rows if e["learner_id"] == l["learner_id"]]
        here = [e["timestamp"] for e in le if e["touchpoint_id"] == iv.touchpoint]
        if not here:
            continue
        f = min(here)
        conv = any(POS[e["touchpoint_id"]] > POS[iv.touchpoint] and e["timestamp"] >= f for e in le)
        if not conv and j[l["learner_id"]]["state"] == "in_progress":
            continue
        side = "before" if d - dt.timedelta(days=window) <= f < d else ("after" if d <= f < d + dt.timedelta(days=window) else None)
        if side:
            counts[side][0] += 1
            counts[side][1] += conv
    (bn, bx), (an, ax) = counts["before"], counts["after"]
    assert (got["before_n"], got["after_n"]) == (bn, an)
    assert close(got["before_rate"], bx / bn if bn else None) and close(got["after_rate"], ax / an if an else None)
    _, p = ref.two_by_two(ax, an, bx, bn)
    assert close(got["p_value"], p, 1e-9)
    if bn and an:
        assert got["low"] <= got["difference"] <= got["high"]
