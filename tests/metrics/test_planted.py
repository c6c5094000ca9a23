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
    """Scorecard rows: proportions of fully followed cohorts by the 2×2 test, continuation by the
    log-rank test of the time to carrying on; q-values from the review's one family."""
    from journeylib.metrics.survival import continuation_times

    from . import reference as ref

    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"])
    assert r.followed and r.previous_followed  # the sample's review period has had its whole horizon
    sc = r.scorecard
    of = jm.outcomes(sample_ws.events, sample_ws.learners, sample_ws.map, horizon=r.horizon_days)
    times = continuation_times(of, as_of=sample_ws.data_end, horizon=r.horizon_days)
    for row in sc.iter_rows(named=True):
        if row["p_value"] is None:
            continue
        if row["metric"] in ("conversion", "stopped"):
            at = times.filter(pl.col("touchpoint_id") == row["touchpoint_id"])
            a = at.filter((pl.col("arrived_at") >= r.start) & (pl.col("arrived_at") < r.end))
            b = at.filter((pl.col("arrived_at") >= r.previous_start) & (pl.col("arrived_at") < r.previous_end))
            p = ref.logrank(a["days"], a["carried"], b["days"], b["carried"])
        elif row["metric"] in ("completion", "pass_rate", "csat"):
            _, p = ref.two_by_two(round(row["value"] * row["n"]), row["n"],
                                  round(row["previous_value"] * row["previous_n"]), row["previous_n"])
        else:
            continue
        assert row["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12), row
    q_of = dict(zip(r.comparisons["test_key"], r.comparisons["q_value"]))
    for row in sc.iter_rows(named=True):
        assert row["q_value"] == (q_of.get(row["test_key"]) if row["p_value"] is not None else None)
        assert row["changed_significantly"] == (row["q_value"] is not None and row["q_value"] < 0.05)
    # the period is the one asked for, and the previous one ends where it starts
    assert r.previous_end == r.start and r.start.strftime("%Y-%m") == truth["sample_period"]


def test_sample_review_finds_the_planted_change_and_nothing_else(sample_ws, truth):
    """The default review (the last month whose horizon has elapsed) is the planted month; it flags the drop at
    its touchpoint and no other change in carrying on, and its first findings say so in plain words."""
    ch = truth["monthly_change"]
    r = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map)
    assert r.period == ch["period"] and r.label == "July 2025" and r.previous_label == "June 2025"
    flagged = r.hotspots.filter("finding")
    assert flagged["touchpoint_id"].to_list() == [ch["touchpoint"]]
    row = flagged.row(0, named=True)
    assert row["stop_rate"] - row["previous_stop_rate"] > 0.15
    assert abs((1 - row["previous_stop_rate"]) - ch["before"]) < 0.05 and abs((1 - row["stop_rate"]) - ch["after"]) < 0.1
    changed = set(r.scorecard.filter("finding")["touchpoint_id"]) | set(r.changes.filter("finding")["touchpoint_id"])
    assert changed <= {ch["touchpoint"]}, "no change is a finding except at the planted touchpoint"
    text = "\n".join(r.findings)
    assert "Fewer learners carried on from Lesson 2: Summaries and charts in July 2025" in text
    assert " month" not in text.replace("monthly", "")  # real period names, never "month"
