"""The effects planted in data/sample (ground_truth.json) are recovered."""

from __future__ import annotations

import polars as pl
import pytest

from journeylib import metrics as jm


@pytest.fixture(scope="module")
def gaps(sample_ws):
    return jm.segment_gaps(sample_ws.events, sample_ws.learners, sample_ws.map, fdr=0.05)


def test_small_segment_flagged_at_its_touchpoint(gaps, truth):
    ss = truth["small_segment"]
    seg = gaps.filter((pl.col("attribute") == ss["attribute"]) & (pl.col("value") == ss["value"]))
    flagged = seg.filter("significant")
    assert ss["touchpoint"] in flagged["touchpoint_id"].to_list()
    row = seg.filter(pl.col("touchpoint_id") == ss["touchpoint"]).row(0, named=True)
    assert row["difference"] < 0 and row["effect_size"] < -0.5 and not row["suppressed"]
    # the flag is specific: the segment's strongest gap is at the planted touchpoint
    assert seg.sort("p_value", nulls_last=True).row(0, named=True)["touchpoint_id"] == ss["touchpoint"]


def test_null_segments_not_flagged(gaps, truth):
    for ns in truth["null_segments"]:
        rows = gaps.filter(pl.col("attribute") == ns["attribute"])
        assert rows.height > 0
        assert rows.filter("significant").height == 0, rows.filter("significant")


def test_onboarding_stopper_persona_stops_at_onboarding(sample_ws, truth):
    ob = truth["onboarding_stopper"]
    j = jm.journeys(sample_ws.events, sample_ws.learners, sample_ws.map)
    stopped = j.filter(pl.col("state") == "stopped")
    mine = stopped.filter(pl.col("persona") == ob["persona"])
    rest = stopped.filter(pl.col("persona") != ob["persona"])
    share_mine = (mine["furthest_stage"] == ob["stage"]).mean()
    share_rest = (rest["furthest_stage"] == ob["stage"]).mean()
    assert mine["furthest_stage"].mode().to_list() == [ob["stage"]]
    assert share_mine > 2 * share_rest
    d = jm.dropoff(sample_ws.events, sample_ws.learners, sample_ws.map, by="persona")
    for tp in ob["touchpoints"]:
        at = d.filter(pl.col("touchpoint_id") == tp)
        p = at.filter(pl.col("persona") == ob["persona"]).row(0, named=True)
        others = at.filter(pl.col("persona") != ob["persona"])
        assert p["stop_rate_low"] > others["stop_rate_high"].max()


def test_intervention_effect_detected_with_sign(sample_ws, truth):
    iv = truth["intervention"]
    eff = jm.intervention_effects(sample_ws.events, sample_ws.learners, sample_ws.map)
    row = eff.filter(pl.col("intervention_id") == iv["id"]).row(0, named=True)
    assert row["touchpoint_id"] == iv["touchpoint"]
    sign = 1 if iv["sign"] == "+" else -1
    assert sign * row["difference"] > 0
    assert row["p_value"] < 0.01
    assert (row["low"] > 0) if sign > 0 else (row["high"] < 0)


def test_in_progress_count(sample_ws, truth):
    j = jm.journeys(sample_ws.events, sample_ws.learners, sample_ws.map)
    assert (j["state"] == "in_progress").sum() == truth["in_progress"]
    assert j.height == truth["learners"]


def test_emotion_dip(sample_ws, truth):
    e = jm.emotion(sample_ws.events, sample_ws.learners, sample_ws.map)
    worst = e.filter(pl.col("n") > 0).sort("gap").head(len(truth["emotion_dip"]["touchpoints"]))
    assert set(worst["touchpoint_id"]) == set(truth["emotion_dip"]["touchpoints"])
    assert (worst["high"] < worst["target_valence"]).all()


def test_review_of_sample_period(sample_ws, truth):
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"])
    assert r.findings and all(isinstance(s, str) and s for s in r.findings)
    assert set(r.frames()) >= {"scorecard", "changes", "hotspots", "segment_alerts", "interventions"}
    assert {"previous_value", "change", "changed_significantly", "status"} <= set(r.scorecard.columns)
    assert r.interventions.filter(pl.col("intervention_id") == truth["intervention"]["id"]).height == 1
    assert r.segment_alerts["significant"].all() if r.segment_alerts.height else True
    assert r.hotspots["reached"].min() > 0


def test_review_scorecard_statistics(sample_ws, truth):
    from journeylib.model import RATE_METRICS

    from . import reference as ref

    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"])
    sc = r.scorecard
    ps = []
    for row in sc.iter_rows(named=True):
        if row["metric"] in RATE_METRICS and row["n"] and row["previous_n"] and row["value"] is not None and row["previous_value"] is not None:
            _, p = ref.two_by_two(round(row["value"] * row["n"]), row["n"], round(row["previous_value"] * row["previous_n"]), row["previous_n"])
            assert row["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12)
        ps.append(row["p_value"])
    for row, q in zip(sc.iter_rows(named=True), ref.bh(ps)):
        assert (row["q_value"] is None) == (q is None)
        if q is not None:
            assert row["q_value"] == pytest.approx(q, rel=1e-9)
        assert row["changed_significantly"] == (q is not None and q < 0.05)
    # the period is the one asked for, and the previous one ends where it starts
    assert r.previous_end == r.start and r.start.strftime("%Y-%m") == truth["sample_period"]
