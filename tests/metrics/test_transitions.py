"""Transitions, paths and conformance against plain-Python references."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings

from journeylib import metrics as jm

from . import reference as ref
from ._data import MAP, POS, datasets, frames

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _full_stream(evs):
    """Ordered events (not collapsed)."""
    return sorted(evs, key=lambda e: (e["timestamp"], POS[e["touchpoint_id"]], e["event_id"]))


@SETTINGS
@given(data=datasets())
def test_transitions_match_reference(data):
    rows, learners = data
    ev, ln = frames(rows, learners)
    got = jm.transitions(ev, ln, MAP)
    moves = defaultdict(list)
    for lid, evs in ref.by_learner(rows).items():
        s = _full_stream(evs)
        for a, b in zip(s, s[1:]):
            if a["touchpoint_id"] != b["touchpoint_id"]:
                moves[(a["touchpoint_id"], b["touchpoint_id"])].append((lid, (b["timestamp"] - a["timestamp"]).total_seconds() / 86400))
    assert got.height == len(moves)
    for r in got.iter_rows(named=True):
        m = moves[(r["from_touchpoint"], r["to_touchpoint"])]
        assert r["transitions"] == len(m) and r["learners"] == len({l for l, _ in m})
        assert r["median_gap_days"] == pytest.approx(statistics.median(g for _, g in m))


@SETTINGS
@given(data=datasets())
def test_paths_match_reference(data):
    rows, learners = data
    ev, ln = frames(rows, learners)
    got = jm.paths(ev, ln, MAP, top=100)
    c = Counter(" → ".join(e["touchpoint_id"] for e in ref.stream(evs, POS)) for evs in ref.by_learner(rows).values())
    assert dict(zip(got["path"], got["learners"])) == dict(c)
    if c:
        assert sum(got["share"]) == pytest.approx(1.0)


@SETTINGS
@given(data=datasets())
def test_conformance_matches_reference(data):
    rows, learners = data
    ev, ln = frames(rows, learners)
    got = {r["touchpoint_id"]: r for r in jm.conformance(ev, ln, MAP).iter_rows(named=True)}
    firsts = defaultdict(dict)
    for e in rows:
        f = firsts[e["learner_id"]]
        f[e["touchpoint_id"]] = min(f.get(e["touchpoint_id"], e["timestamp"]), e["timestamp"])
    tps = MAP.touchpoint_ids
    for i, tp in enumerate(tps):
        reached = [l for l, f in firsts.items() if tp in f]
        skipped = [l for l, f in firsts.items() if tp not in f and any(t in f for t in tps[i + 1:])]
        ooo = [l for l in reached if any(firsts[l].get(t) is not None and firsts[l][t] < firsts[l][tp] for t in tps[i + 1:])]
        exp = MAP.touchpoint(tp).expected_within_days
        r = got[tp]
        assert (r["reached"], r["skipped"], r["out_of_order"]) == (len(reached), len(skipped), len(ooo))
        if exp is None or i == 0:
            assert r["late"] is None
        else:
            prev = tps[i - 1]
            late = [l for l in reached if prev in firsts[l] and (firsts[l][tp] - firsts[l][prev]).total_seconds() / 86400 > exp]
            assert r["late"] == len(late)
