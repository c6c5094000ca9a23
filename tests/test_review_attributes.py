"""The periodic review compares only the chosen segment attributes.

``jm.review(..., attributes=[...])`` restricts the segment gaps behind
``segment_alerts`` and ``findings`` (and their false-discovery family) to the
listed learner columns. Checked against a plain-Python per-learner reference
of the segment comparison, the sample's planted small group, and a property
test over random attribute subsets.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib import metrics as jm
from journeylib.metrics.segments import MISSING
from metrics import reference as ref

ATTRS = ["age_band", "region", "employment", "device", "accessibility", "prior_education", "referral_channel", "persona"]


def _mentions(findings: list[str], attribute: str) -> bool:
    return any(f"Learners with {attribute} = " in s for s in findings)


def reference_alerts(ws, period: str, attributes: list[str], *, min_count: int = 5, fdr: float = 0.05) -> dict:
    """(attribute, value, touchpoint) → (segment_n, segment_converted, p, q, significant), by a per-learner loop.

    Conversion at a touchpoint (docs/metrics.md): learners with an event
    there; converted = an event at a later touchpoint of the map at or after
    their first event there; not-yet-converted learners still in progress are
    left out. Events up to the end of the period; state judged at the end of
    the period (or of the data, if earlier).
    """
    jmap = ws.map
    start, end = jm.period_bounds(period, data_end=ws.data_end)
    data_end = min(end, ws.data_end)
    tps = jmap.touchpoint_ids
    pos = {t: i + 1 for i, t in enumerate(tps)}
    events = [e for e in ws.events.to_dicts() if e["timestamp"] < end]
    learners = ws.learners.to_dicts()
    journeys = ref.journeys(events, learners, tps, "map", None, data_end, jmap.dormancy_days, pos)
    by = ref.by_learner(events)
    decided: dict[str, list[tuple[str, bool]]] = {}
    for lr in learners:
        lid = lr["learner_id"]
        out = []
        for tp in tps[:-1]:
            here = [e["timestamp"] for e in by.get(lid, []) if e["touchpoint_id"] == tp]
            if not here:
                continue
            first = min(here)
            conv = any(pos[e["touchpoint_id"]] > pos[tp] and e["timestamp"] >= first for e in by.get(lid, []))
            if not conv and journeys[lid]["state"] == "in_progress":
                continue
            out.append((tp, conv))
        decided[lid] = out
    cells = []
    for a in attributes:
        value_of = {lr["learner_id"]: (MISSING if lr[a] is None else str(lr[a])) for lr in learners}
        for v in sorted(set(value_of.values())):
            for tp in tps[:-1]:
                sn = sx = rn = rx = 0
                for lid, rows in decided.items():
                    for t, c in rows:
                        if t != tp:
                            continue
                        if value_of[lid] == v:
                            sn, sx = sn + 1, sx + c
                        else:
                            rn, rx = rn + 1, rx + c
                if sn == 0:
                    continue
                p = None if sn < min_count else ref.two_by_two(sx, sn, rx, rn)[1]
                cells.append(((a, v, tp), sn, sx, p))
    qs = ref.bh([c[3] for c in cells])
    return {k: (sn, sx, p, q, q is not None and q < fdr) for (k, sn, sx, p), q in zip(cells, qs)}


def test_alerts_and_findings_against_reference(sample_ws, truth):
    attrs = ["accessibility", "device"]
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"], attributes=attrs)
    want = reference_alerts(sample_ws, truth["sample_period"], attrs)
    got_cells = {(x["attribute"], x["value"], x["touchpoint_id"]): x for x in r.segment_gaps.iter_rows(named=True)}
    assert set(got_cells) == set(want)
    for k, (sn, sx, p, q, sig) in want.items():
        g = got_cells[k]
        assert (g["segment_n"], g["segment_converted"]) == (sn, sx), k
        assert g["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12) if p is not None else g["p_value"] is None
        assert g["q_value"] == pytest.approx(q, rel=1e-9, abs=1e-12) if q is not None else g["q_value"] is None
    expected = {k for k, v in want.items() if v[4]}
    got = {(x["attribute"], x["value"], x["touchpoint_id"]) for x in r.segment_alerts.iter_rows(named=True)}
    assert got == expected and expected, "the reference finds alerts and the review shows exactly those"


def test_planted_small_segment_found_when_listed(sample_ws, truth):
    seg = truth["small_segment"]
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"],
                  attributes=[seg["attribute"], "region"])
    hit = r.segment_alerts.filter((pl.col("attribute") == seg["attribute"]) & (pl.col("value") == seg["value"])
                                  & (pl.col("touchpoint_id") == seg["touchpoint"]))
    assert hit.height == 1 and hit["difference"][0] < 0
    assert any(f"Learners with {seg['attribute']} = {seg['value']} carried on less often" in s for s in r.findings)
    assert r.attributes == [seg["attribute"], "region"]


def test_unlisted_attribute_never_appears(sample_ws, truth):
    seg = truth["small_segment"]
    everything = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"])
    assert seg["attribute"] in set(everything.segment_alerts["attribute"])  # it would appear by default ...
    listed = [a for a in ATTRS if a != seg["attribute"]]
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"], attributes=listed)
    assert seg["attribute"] not in set(r.segment_alerts["attribute"])  # ... and never when left out
    assert set(r.segment_gaps["attribute"]) <= set(listed)
    assert not _mentions(r.findings, seg["attribute"])
    # the rest of the review does not depend on the segment choice
    assert r.scorecard.equals(everything.scorecard) and r.hotspots.equals(everything.hotspots)


def test_no_attributes_means_no_alerts(sample_ws, truth):
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"], attributes=[])
    assert r.segment_alerts.height == 0 and r.segment_gaps.height == 0
    assert not any("Learners with " in s for s in r.findings)


def test_unknown_attribute_is_a_clear_error(sample_ws, truth):
    from journeylib.errors import DataError

    with pytest.raises(DataError, match="unknown learner column"):
        jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"], attributes=["final_result"])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.lists(st.sampled_from(ATTRS), unique=True, max_size=4))
def test_property_only_chosen_attributes(small_sample, chosen):
    jmap, events, learners, truth = small_sample
    r = jm.review(events, learners, jmap, period=truth["sample_period"], attributes=chosen, min_count=3, fdr=0.2)
    assert set(r.segment_alerts["attribute"]) <= set(chosen)
    assert set(r.segment_gaps["attribute"]) == (set(chosen) if r.segment_gaps.height else set())
    for a in set(ATTRS) - set(chosen):
        assert not _mentions(r.findings, a)
    # an alert is a significant, non-suppressed cell, and the FDR family is the chosen attributes' cells only
    tested = r.segment_gaps.filter(~pl.col("suppressed"))
    qs = ref.bh(tested["p_value"].to_list())
    for got, want in zip(tested["q_value"].to_list(), qs):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert r.segment_alerts.height == tested.filter(pl.col("q_value") < 0.2).height


def test_sample_period_is_a_date_range(sample_ws, truth):
    start, end = jm.period_bounds(truth["sample_period"], data_end=sample_ws.data_end)
    assert isinstance(start, dt.datetime) and start < end
