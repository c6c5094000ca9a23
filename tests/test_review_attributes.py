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
from metrics import reference as ref

ATTRS = ["age_band", "region", "employment", "device", "accessibility", "prior_education", "referral_channel", "persona"]


def _mentions(findings: list[str], attribute: str) -> bool:
    return any(f"Learners with {attribute.replace('_', ' ')} “" in s for s in findings)


def reference_alerts(ws, period: str, attributes: list[str], *, min_count: int = 5) -> dict:
    """(attribute, value, touchpoint) → (segment_n, segment_converted, p, tested_as), by a per-learner loop.

    Conversion at a touchpoint (docs/metrics.md): learners who arrived there
    before the end of the period, each judged by the outcome model as of the
    data's end with the map's horizon; undecided learners are left out.
    Segments splitting the learners the same way are one test (the smallest).
    """
    from metrics.test_measures_reference import reference_segments

    jmap = ws.map
    _, end = jm.period_bounds(period, data_end=ws.data_end)
    events = ws.events.to_dicts()
    learners = ws.learners.to_dicts()
    cells = reference_segments(events, learners, jmap, attributes, min_count, ws.data_end, jmap.horizon_days,
                               arrived_before=end)
    return {k: (c["n"][0], c["n"][1], c["p"], c["tested_as"]) for k, c in cells.items()}


def test_alerts_and_findings_against_reference(sample_ws, truth):
    attrs = ["accessibility", "device"]
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"], attributes=attrs)
    want = reference_alerts(sample_ws, truth["sample_period"], attrs)
    got_cells = {(x["attribute"], x["value"], x["touchpoint_id"]): x for x in r.segment_gaps.iter_rows(named=True)}
    assert set(got_cells) == set(want)
    for k, (sn, sx, p, tested_as) in want.items():
        g = got_cells[k]
        assert (g["segment_n"], g["segment_converted"], g["tested_as"]) == (sn, sx, tested_as), k
        assert g["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12) if p is not None else g["p_value"] is None
    # one family for the whole review: its q-values are BH over every comparison, and every table reads them
    fam = r.comparisons
    for got, want_q in zip(fam["q_value"].to_list(), ref.bh(fam["p_value"].to_list())):
        assert got == pytest.approx(want_q, rel=1e-9, abs=1e-12)
    q_of = dict(zip(fam["test_key"], fam["q_value"]))
    for frame in (r.segment_gaps, r.hotspots, r.scorecard, r.interventions):
        for row in frame.filter(pl.col("p_value").is_not_null()).iter_rows(named=True):
            assert row["q_value"] == q_of[row["test_key"]]
    expected = {(x["attribute"], x["value"], x["touchpoint_id"]) for x in r.segment_gaps.iter_rows(named=True)
                if x["significant"] and x["tested_as"] is None and not x["suppressed"]
                and abs(x["difference"]) * 100 >= sample_ws.map.review.min_effect_pp}
    got = {(x["attribute"], x["value"], x["touchpoint_id"]) for x in r.segment_alerts.iter_rows(named=True)}
    assert got == expected and expected, "the review shows exactly the significant, large-enough tested cells"


def test_planted_small_segment_found_when_listed(sample_ws, truth):
    seg = truth["small_segment"]
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"],
                  attributes=[seg["attribute"], "region"])
    hit = r.segment_alerts.filter((pl.col("attribute") == seg["attribute"]) & (pl.col("value") == seg["value"])
                                  & (pl.col("touchpoint_id") == seg["touchpoint"]))
    assert hit.height == 1 and hit["difference"][0] < 0
    assert any(f"Learners with {seg['attribute']} “{seg['value'].replace('_', ' ')}” carried on less often" in s for s in r.findings)
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
    # the rest of the review's measures and p-values do not depend on the segment choice (the q-values
    # do: the one false-discovery family holds every comparison of the review)
    family = ["q_value", "changed_significantly", "significant", "finding"]
    for a, b in ((r.scorecard, everything.scorecard), (r.hotspots, everything.hotspots)):
        assert a.drop([c for c in family if c in a.columns]).equals(b.drop([c for c in family if c in b.columns]))


def test_no_attributes_means_no_alerts(sample_ws, truth):
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"], attributes=[])
    assert r.segment_alerts.height == 0 and r.segment_gaps.height == 0
    assert not any("Learners with " in s for s in r.findings)
    assert not any(k.startswith("segment|") for k in r.comparisons["test_key"])


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
    # an alert is a significant, non-suppressed, tested cell; the family holds exactly the tested cells of the chosen attributes
    tested = r.segment_gaps.filter(~pl.col("suppressed") & pl.col("tested_as").is_null() & pl.col("p_value").is_not_null())
    seg_keys = {k for k in r.comparisons["test_key"] if k.startswith("segment|")}
    assert seg_keys == set(tested["test_key"])
    assert r.segment_alerts.height == tested.filter(
        (pl.col("q_value") < 0.2) & (pl.col("difference").abs() * 100 >= jmap.review.min_effect_pp)).height


def test_sample_period_is_a_date_range(sample_ws, truth):
    start, end = jm.period_bounds(truth["sample_period"], data_end=sample_ws.data_end)
    assert isinstance(start, dt.datetime) and start < end
