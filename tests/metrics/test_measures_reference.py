"""KPIs, measures, emotion, drop-off and segment gaps against plain-Python references."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib import metrics as jm

from . import reference as ref
from ._data import MAP, OMAP, T0, data_end_of, datasets, frames

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(a, b, tol=1e-7):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def optional_of(jmap):
    return {t.id for t in jmap.touchpoints if t.optional}


@SETTINGS
@given(data=datasets(), by=st.sampled_from([None, "persona"]), extra=st.sampled_from([None, 2]),
       period=st.sampled_from([None, (2, 6), (0, 13)]), jmap=st.sampled_from([MAP, OMAP]))
def test_measure_matches_reference(data, by, extra, period, jmap):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    per = None if period is None else (T0 + dt.timedelta(days=period[0]), T0 + dt.timedelta(days=period[1]))
    got = jm.measure(ev, ln, jmap, by=by, data_end=end, period=per)
    want = ref.measure(rows, learners, jmap.touchpoint_ids, end, jmap.dormancy_days, by=by, period=per,
                       optional=optional_of(jmap), horizon=jmap.horizon_days if per else None)
    assert got.height == len(want)
    for r in got.iter_rows(named=True):
        w = want[(r[by] if by else None, r["touchpoint_id"], r["metric"])]
        assert r["n"] == w[1], (r, w)
        if len(w) > 4:
            assert r["undecided"] == w[4], (r, w)
        assert close(r["value"], w[0]), (r, w)
        assert close(r["low"], w[2], 1e-6) and close(r["high"], w[3], 1e-6), (r, w)


@SETTINGS
@given(data=datasets(), by=st.sampled_from([None, "persona"]), extra=st.sampled_from([None, 2]),
       period=st.sampled_from([(2, 6), (0, 13)]), jmap=st.sampled_from([MAP, OMAP]))
def test_measure_from_a_given_outcome_table_is_the_same(data, by, extra, period, jmap):
    """``measure(outcomes=…)`` (the review's reuse) gives exactly what ``measure`` computes itself."""
    from journeylib.metrics import engine as E
    from journeylib.metrics.outcomes import outcome_frame

    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    per = (T0 + dt.timedelta(days=period[0]), T0 + dt.timedelta(days=period[1]))
    lev, lln, _ = E.prepare(ev, ln)
    of = E.collect(outcome_frame(lev, lln, jmap, as_of=end, horizon=jmap.horizon_days, learner_cols=[by] if by else []))
    got = jm.measure(ev, ln, jmap, by=by, data_end=end, period=per, outcomes=of)
    want = jm.measure(ev, ln, jmap, by=by, data_end=end, period=per)
    assert got.equals(want, null_equal=True)


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
@given(data=datasets(), extra=st.sampled_from([None, 2, 10]), by=st.sampled_from([None, "persona"]),
       jmap=st.sampled_from([MAP, OMAP]), horizon=st.sampled_from([None, 2]))
def test_dropoff_matches_reference(data, extra, by, jmap, horizon):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, extra)
    got = jm.dropoff(ev, ln, jmap, by=by, data_end=end, horizon=horizon)
    oc = ref.outcomes(rows, learners, jmap.touchpoint_ids, optional_of(jmap), end, jmap.dormancy_days, horizon=horizon)
    group = {l["learner_id"]: (l[by] if by else None) for l in learners}
    for r in got.iter_rows(named=True):
        g = r[by] if by else None
        mine = [o for (lid, tp), o in oc.items() if tp == r["touchpoint_id"] and group[lid] == g]
        count = {k: sum(o["outcome"] == k for o in mine) for k in ("carried_on", "stopped", "undecided")}
        assert (r["reached"], r["carried_on"], r["stopped"], r["undecided"]) == (
            len(mine), count["carried_on"], count["stopped"], count["undecided"]), (r, count)
        assert r["in_progress"] == r["undecided"]
        all_stops = sum(o["outcome"] == "stopped" for (lid, _), o in oc.items() if group[lid] == g)
        p, lo, hi = ref.wilson(count["stopped"], count["stopped"] + count["carried_on"])
        assert close(r["stop_rate"], p) and close(r["stop_rate_low"], lo, 1e-6)
        assert close(r["share_of_stopped"], count["stopped"] / all_stops if all_stops else None)


def reference_segments(rows, learners, jmap, attrs, min_count, end, horizon, fdr=0.05, arrived_before=None):
    """(attribute, value, touchpoint) → dict of counts, p, q, tested_as — by a per-learner loop.

    Decided (learner, touchpoint) outcomes with the horizon; segments that split the
    learners the same way (same or complementary members) are one test, run on the
    smallest of them (then attribute order, then value)."""
    oc = ref.outcomes(rows, learners, jmap.touchpoint_ids, optional_of(jmap), end, jmap.dormancy_days, horizon=horizon)
    if arrived_before is not None:
        oc = {k: o for k, o in oc.items() if o["arrived"] < arrived_before}
    val = {a: {l["learner_id"]: ("(missing)" if l[a] is None else l[a]) for l in learners} for a in attrs}
    members = {(a, v): frozenset(l for l, x in val[a].items() if x == v) for a in attrs for v in set(val[a].values())}
    everyone = frozenset(l["learner_id"] for l in learners)
    part = {k: frozenset({m, everyone - m}) for k, m in members.items()}
    rep = {}
    for k in sorted(members, key=lambda k: (len(members[k]), attrs.index(k[0]), k[1])):
        rep.setdefault(part[k], k)
    cells = {}
    for (a, v), m in members.items():
        for tp in {t for (_, t) in oc}:
            here = [(lid, o["outcome"]) for (lid, t), o in oc.items() if t == tp and o["outcome"] is not None]
            seg = [o for lid, o in here if lid in m]
            rest = [o for lid, o in here if lid not in m]
            if not seg:
                continue
            sn = sum(o != "undecided" for o in seg)
            sx = sum(o == "carried_on" for o in seg)
            rn = sum(o != "undecided" for o in rest)
            rx = sum(o == "carried_on" for o in rest)
            p = None if sn < min_count else ref.two_by_two(sx, sn, rx, rn)[1]
            cells[(a, v, tp)] = {"n": (sn, sx, rn, rx), "undecided": (len(seg) - sn, len(rest) - rn), "own_p": p,
                                 "rep": rep[part[(a, v)]]}
    for (a, v, tp), c in cells.items():
        ra, rv = c["rep"]
        c["tested_as"] = None if (ra, rv) == (a, v) else f"{ra} = {rv}"
        c["p"] = cells[(ra, rv, tp)]["own_p"] if (ra, rv, tp) in cells else None
    fam = [k for k, c in cells.items() if c["tested_as"] is None and c["p"] is not None]
    qs = dict(zip(fam, ref.bh([cells[k]["p"] for k in fam])))
    for (a, v, tp), c in cells.items():
        c["q"] = qs.get((c["rep"][0], c["rep"][1], tp)) if c["p"] is not None else None
    return cells


@SETTINGS
@given(data=datasets(max_learners=12, max_events=40), min_count=st.sampled_from([1, 2, 5]),
       jmap=st.sampled_from([MAP, OMAP]), horizon=st.sampled_from([None, 1, 3]))
def test_segment_gaps_match_reference(data, min_count, jmap, horizon):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, None)
    got = jm.segment_gaps(ev, ln, jmap, attributes=["persona", "device"], min_count=min_count, horizon=horizon)
    want = reference_segments(rows, learners, jmap, ["persona", "device"], min_count, end,
                              jmap.horizon_days if horizon is None else horizon)
    assert got.height == len(want)
    for r in got.iter_rows(named=True):
        w = want[(r["attribute"], r["value"], r["touchpoint_id"])]
        assert (r["segment_n"], r["segment_converted"], r["rest_n"], r["rest_converted"]) == w["n"]
        assert (r["segment_undecided"], r["rest_undecided"]) == w["undecided"]
        assert r["suppressed"] == (w["n"][0] < min_count)
        assert r["tested_as"] == w["tested_as"]
        assert close(r["p_value"], w["p"], 1e-9), (r, w)
        assert close(r["q_value"], w["q"], 1e-9), (r, w)
        assert r["significant"] == (w["q"] is not None and w["q"] < 0.05)


def test_two_valued_attribute_is_tested_once():
    """Both values of a two-valued attribute show one test: the same p and q, one family member."""
    import random

    rnd = random.Random(5)
    rows, learners = [], []
    for i in range(120):
        lid = f"L{i:03d}"
        learners.append({"learner_id": lid, "persona": "s" if i < 30 else "o", "device": "m"})
        t = T0 + dt.timedelta(days=rnd.randint(0, 20))
        path = ["a", "b"] if (i < 30 and rnd.random() < 0.6) else ["a", "b", "c", "d"]
        for j, tp in enumerate(path):
            rows.append({"learner_id": lid, "touchpoint_id": tp, "timestamp": t + dt.timedelta(hours=j), "event": "viewed",
                         "value": None, "emotion": None, "event_id": f"{lid}-{j}"})
    ev, ln = frames(rows, learners)
    g = jm.segment_gaps(ev, ln, MAP, attributes=["persona"], data_end=T0 + dt.timedelta(days=90))
    at_b = g.filter(pl.col("touchpoint_id") == "b").sort("value")
    o, s_ = at_b.row(0, named=True), at_b.row(1, named=True)
    assert s_["tested_as"] is None and o["tested_as"] == "persona = s"     # the smaller group is the one tested
    assert o["p_value"] == s_["p_value"] and o["q_value"] == s_["q_value"] and s_["significant"]
    tested = g.filter(pl.col("tested_as").is_null() & pl.col("p_value").is_not_null())
    assert tested.height == g.filter(pl.col("p_value").is_not_null()).height // 2


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
@given(data=datasets(max_learners=10, max_events=40), window=st.sampled_from([1, 3, 60]), jmap=st.sampled_from([MAP, OMAP]))
def test_intervention_effects_match_reference(data, window, jmap):
    rows, learners = data
    ev, ln = frames(rows, learners)
    end = data_end_of(rows, None)
    got = jm.intervention_effects(ev, ln, jmap, window_days=window).row(0, named=True)
    iv = jmap.interventions[0]
    d = dt.datetime(iv.date.year, iv.date.month, iv.date.day, tzinfo=dt.timezone.utc)
    oc = ref.outcomes(rows, learners, jmap.touchpoint_ids, optional_of(jmap), end, jmap.dormancy_days,
                      horizon=jmap.horizon_days)
    counts = {"before": [0, 0, 0], "after": [0, 0, 0]}
    for (lid, tp), o in oc.items():
        if tp != iv.touchpoint or o["outcome"] is None:
            continue
        f = o["arrived"]
        side = "before" if d - dt.timedelta(days=window) <= f < d else ("after" if d <= f < d + dt.timedelta(days=window) else None)
        if side:
            c = counts[side]
            if o["outcome"] == "undecided":
                c[2] += 1
            else:
                c[0] += 1
                c[1] += o["outcome"] == "carried_on"
    (bn, bx, bu), (an, ax, au) = counts["before"], counts["after"]
    assert (got["before_n"], got["after_n"], got["before_undecided"], got["after_undecided"]) == (bn, an, bu, au)
    assert close(got["before_rate"], bx / bn if bn else None) and close(got["after_rate"], ax / an if an else None)
    _, p = ref.two_by_two(ax, an, bx, bn)
    assert close(got["p_value"], p, 1e-9)
    if bn and an:
        assert got["low"] <= got["difference"] <= got["high"]
