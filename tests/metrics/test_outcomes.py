"""The outcome model, survival times, Kaplan–Meier and log-rank figures against plain-Python references,
and the as-of property: events after the as-of time never change an as-of result."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib import metrics as jm
from journeylib.metrics.survival import compare_continuation, continuation_times, km_at, logrank_p, stop_times

from . import reference as ref
from ._data import MAP, OMAP, T0, TPS, datasets, frames

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAPS = st.sampled_from([MAP, OMAP])
FUNNELS = st.sampled_from([None, None, ["a", "b", "c", "d"], ["c", "a", "b"]])


def optional_of(jmap):
    return {t.id for t in jmap.touchpoints if t.optional}


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


@SETTINGS
@given(data=datasets(), jmap=MAPS, funnel=FUNNELS, horizon=st.sampled_from([None, 1, 2.5]),
       as_of_day=st.sampled_from([None, 1, 3, 9]), mode=st.sampled_from(["ordered", "strict", "any_order"]))
def test_outcomes_match_reference(data, jmap, funnel, horizon, as_of_day, mode):
    rows, learners = data
    ev, ln = frames(rows, learners)
    as_of = max((r["timestamp"] for r in rows), default=T0) if as_of_day is None else T0 + dt.timedelta(days=as_of_day)
    got = jm.outcomes(ev, ln, jmap, as_of=as_of, funnel=funnel, mode=mode if funnel else None, horizon=horizon)
    want = ref.outcomes(rows, learners, jmap.touchpoint_ids, optional_of(jmap), as_of, jmap.dormancy_days,
                        horizon=horizon, funnel=funnel, mode=mode)
    assert got.height == len(want)
    for r in got.iter_rows(named=True):
        w = want[(r["learner_id"], r["touchpoint_id"])]
        assert (r["arrived_at"], r["carried_on_at"], r["last_at"], r["outcome"]) == (
            w["arrived"], w["carried_on_at"], w["last"], w["outcome"]), (r, w)
        assert r["followed"] == w["followed"]


def test_optional_side_visit_is_not_progress():
    """A learner who goes from a to the optional b and nowhere else has not carried on from a."""
    t = lambda h: T0 + dt.timedelta(hours=h)  # noqa: E731
    rows = [{"learner_id": "u", "touchpoint_id": tp, "timestamp": t(h), "event": "viewed", "value": None, "emotion": None,
             "event_id": f"e{h}"} for tp, h in (("a", 0), ("b", 1))]
    ev, ln = frames(rows, [{"learner_id": "u", "persona": "p", "device": None}])
    later = T0 + dt.timedelta(days=30)
    plain = jm.outcomes(ev, ln, MAP, as_of=later).filter(pl.col("touchpoint_id") == "a")["outcome"].item()
    side = jm.outcomes(ev, ln, OMAP, as_of=later).filter(pl.col("touchpoint_id") == "a")["outcome"].item()
    assert (plain, side) == ("carried_on", "stopped")


@st.composite
def with_late_events(draw):
    """A data set, an as-of time inside it, and extra events after that time."""
    rows, learners = draw(datasets())
    cut = T0 + dt.timedelta(days=draw(st.integers(0, 5)), hours=draw(st.sampled_from([6, 18])))
    k = draw(st.integers(1, 8))
    lids = [l["learner_id"] for l in learners]
    extra = [{"learner_id": draw(st.sampled_from(lids)), "touchpoint_id": draw(st.sampled_from(TPS)),
              "timestamp": cut + dt.timedelta(hours=draw(st.integers(1, 200))),
              "event": draw(st.sampled_from(["viewed", "completed", "passed", "responded"])),
              "value": draw(st.none() | st.integers(0, 10).map(float)),
              "emotion": draw(st.none() | st.sampled_from([-2.0, 1.0])), "event_id": f"late{i}"} for i in range(k)]
    return rows, learners, cut, extra


AS_OF_METRICS = {
    "outcomes": lambda e, l, m, t: jm.outcomes(e, l, m, as_of=t, horizon=2),
    "outcomes_funnel": lambda e, l, m, t: jm.outcomes(e, l, m, as_of=t, funnel=["a", "b", "c", "d"]),
    "measure": lambda e, l, m, t: jm.measure(e, l, m, data_end=t, period=(T0, T0 + dt.timedelta(days=4))),
    "dropoff": lambda e, l, m, t: jm.dropoff(e, l, m, data_end=t),
    "funnel": lambda e, l, m, t: jm.funnel(e, l, m, ["a", "b", "c"], data_end=t),
    "segments": lambda e, l, m, t: jm.segment_gaps(e, l, m, attributes=["persona", "device"], min_count=1, data_end=t),
    "emotion_vs_stopping": lambda e, l, m, t: jm.emotion_vs_stopping(e, l, m, data_end=t),
    "interventions": lambda e, l, m, t: jm.intervention_effects(e, l, m, data_end=t, window_days=3),
    "stop_times": lambda e, l, m, t: stop_times(e, l, m, origin="first_event", as_of=t),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=with_late_events(), jmap=MAPS)
def test_events_after_as_of_never_change_a_result(case, jmap):
    rows, learners, cut, extra = case
    ev, ln = frames(rows, learners)
    ev2, _ = frames(rows + extra, learners)
    for name, f in AS_OF_METRICS.items():
        a, b = f(ev, ln, jmap, cut), f(ev2, ln, jmap, cut)
        assert a.equals(b), name


# --------------------------------------------------------------------------
# Kaplan–Meier and log-rank against the textbook formulas
# --------------------------------------------------------------------------

samples = st.lists(st.tuples(st.integers(0, 30).map(lambda h: h / 4), st.booleans()), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(s=samples, t=st.sampled_from([0.5, 1.0, 2.0, 5.0, 8.0]))
def test_kaplan_meier_matches_product_limit(s, t):
    d = np.array([x for x, _ in s])
    e = np.array([y for _, y in s])
    est, lo, hi = km_at(d, e, t)
    want = ref.product_limit(d.tolist(), e.tolist(), t)
    assert close(est, want, 1e-9), (est, want)
    if est is not None and lo is not None:
        assert lo - 1e-12 <= est <= hi + 1e-12


@settings(max_examples=60, deadline=None)
@given(a=samples, b=samples)
def test_logrank_matches_reference(a, b):
    p = logrank_p([x for x, _ in a], [y for _, y in a], [x for x, _ in b], [y for _, y in b])
    want = ref.logrank([x for x, _ in a], [y for _, y in a], [x for x, _ in b], [y for _, y in b])
    if not any(y for _, y in a + b):
        assert p is None
    else:
        assert close(p, want, 1e-6), (p, want)


@SETTINGS
@given(data=datasets(max_learners=10, max_events=40), jmap=MAPS, horizon=st.sampled_from([None, 2, 4]),
       origin=st.sampled_from(["first_event", "a", "c"]), extra=st.sampled_from([0, 3, 10]))
def test_stop_times_and_survival_match_reference(data, jmap, horizon, origin, extra):
    rows, learners = data
    ev, ln = frames(rows, learners)
    as_of = max((r["timestamp"] for r in rows), default=T0) + dt.timedelta(days=extra)
    got = stop_times(ev, ln, jmap, origin=origin, as_of=as_of, horizon=horizon)
    want = ref.stop_times(rows, learners, jmap.touchpoint_ids, optional_of(jmap), as_of, jmap.dormancy_days,
                          origin=origin, horizon=horizon)
    assert set(got["learner_id"]) == set(want)
    for r in got.iter_rows(named=True):
        d, s = want[r["learner_id"]]
        assert close(r["days"], d, 1e-9) and r["stopped"] == s, (r, want[r["learner_id"]])
    sv = jm.survival(ev, ln, jmap, origin=origin, as_of=as_of, horizon=horizon, by="persona", times=(0.5, 1.0, 3.0))
    for row in sv.summary.iter_rows(named=True):
        mine = [want[l["learner_id"]] for l in learners if l["persona"] == row["persona"] and l["learner_id"] in want]
        assert row["learners"] == len(mine) and row["stopped"] == sum(s for _, s in mine)
        for t in (0.5, 1.0, 3.0):
            assert close(row[f"active_{t:g}d"], ref.product_limit([d for d, _ in mine], [s for _, s in mine], t) if mine else None)


@SETTINGS
@given(data=datasets(max_learners=10, max_events=40), jmap=MAPS, horizon=st.sampled_from([1, 3]))
def test_continuation_comparison_matches_reference(data, jmap, horizon):
    """The review's cohort comparison: KM estimate of carrying on within the horizon and the log-rank test,
    each learner censored at min(as_of, arrival + horizon)."""
    rows, learners = data
    ev, ln = frames(rows, learners)
    as_of = max((r["timestamp"] for r in rows), default=T0)
    of = jm.outcomes(ev, ln, jmap, as_of=as_of, horizon=horizon)
    ct = continuation_times(of, as_of=as_of, horizon=horizon)
    split = T0 + dt.timedelta(days=2)
    a, b = ct.filter(pl.col("arrived_at") >= split), ct.filter(pl.col("arrived_at") < split)
    got = compare_continuation(a, b, horizon=horizon)
    oc = ref.outcomes(rows, learners, jmap.touchpoint_ids, optional_of(jmap), as_of, jmap.dormancy_days, horizon=horizon)
    sides = {True: ([], []), False: ([], [])}
    for o in oc.values():
        if o["outcome"] is None:
            continue
        end = o["carried_on_at"] if o["outcome"] == "carried_on" else min(as_of, o["arrived"] + dt.timedelta(days=horizon))
        d, e = sides[o["arrived"] >= split]
        d.append((end - o["arrived"]).total_seconds() / 86400)
        e.append(o["outcome"] == "carried_on")
    for key, side in (("estimate", True), ("previous_estimate", False)):
        d, e = sides[side]
        s = ref.product_limit(d, e, horizon) if d else None
        assert close(got[key], None if s is None else 1 - s, 1e-9), (key, got, s)
    want_p = ref.logrank(*sides[True], *sides[False]) if sides[True][0] and sides[False][0] and any(sides[True][1] + sides[False][1]) else None
    assert close(got["p_value"], want_p, 1e-6)


@SETTINGS
@given(data=datasets(max_learners=10, max_events=40), jmap=MAPS)
def test_emotion_vs_stopping_matches_reference(data, jmap):
    """Emotion answers given at a touchpoint before carrying on from it, against the outcome there (decided only)."""
    rows, learners = data
    ev, ln = frames(rows, learners)
    as_of = max((r["timestamp"] for r in rows), default=T0)
    got = {r["touchpoint_id"]: r for r in jm.emotion_vs_stopping(ev, ln, jmap).iter_rows(named=True)}
    oc = ref.outcomes(rows, learners, jmap.touchpoint_ids, optional_of(jmap), as_of, jmap.dormancy_days,
                      horizon=jmap.horizon_days)
    counts: dict = {}
    for (lid, tp), o in oc.items():
        if o["outcome"] is None:
            continue
        xs = [r["emotion"] for r in rows if r["learner_id"] == lid and r["touchpoint_id"] == tp and r["emotion"] is not None
              and (o["carried_on_at"] is None or r["timestamp"] < o["carried_on_at"])]
        if not xs:
            continue
        low = sum(xs) / len(xs) < 0
        c = counts.setdefault(tp, {True: [0, 0, 0], False: [0, 0, 0]})[low]
        if o["outcome"] == "undecided":
            c[2] += 1
        else:
            c[0] += 1
            c[1] += o["outcome"] == "stopped"
    assert set(got) == set(counts)
    for tp, c in counts.items():
        g = got[tp]
        (ln_, lx, lu), (on, ox, ou) = c[True], c[False]
        assert (g["low_n"], g["other_n"], g["low_undecided"], g["other_undecided"]) == (ln_, on, lu, ou)
        assert close(g["low_stop_rate"], lx / ln_ if ln_ else None) and close(g["other_stop_rate"], ox / on if on else None)
        assert close(g["p_value"], ref.two_by_two(lx, ln_, ox, on)[1], 1e-9)
