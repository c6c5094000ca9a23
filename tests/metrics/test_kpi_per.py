"""Reach targets given per a span (``per: month``) are scaled to the span measured."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeylib import metrics as jm
from journeylib.errors import MapError
from journeylib.model import KPI, PER_DAYS, map_from_dict


def test_per_only_for_reach(tiny_map_dict):
    d = tiny_map_dict
    d["touchpoints"][0]["kpis"] = [{"metric": "conversion", "target": 0.5, "per": "month"}]
    with pytest.raises(MapError, match=r"touchpoints\[0\]\.kpis\[0\].*per"):
        map_from_dict(d)


@given(target=st.floats(1, 1e4), days=st.floats(0.5, 2000), per=st.sampled_from(sorted(PER_DAYS)))
def test_for_span_scales_target_and_tolerance(target, days, per):
    k = KPI(metric="reach", target=target, per=per)
    s = k.for_span(days)
    assert s.target == pytest.approx(target * days / PER_DAYS[per])
    assert s.tolerance == pytest.approx(k.tolerance * days / PER_DAYS[per])
    assert KPI(metric="reach", target=target).for_span(days).target == target  # no per: unchanged
    assert k.for_span(None).target == target


def _with_per(ws, tp_id: str, target: float, per: str):
    jmap = ws.map.model_copy(deep=True)
    tp = jmap.touchpoint(tp_id)
    tp.kpis = [KPI(metric="reach", target=target, per=per)]
    return jmap


def _reference_status(value: float, target: float, tolerance: float, n: int, min_n: int) -> str:
    if n < min_n:
        return "not enough data"
    if value >= target:
        return "met"
    return "near" if target - value <= tolerance + 1e-12 else "missed"


@pytest.mark.parametrize("period, days", [("2025-06", 30), ("2025-Q2", 91), ("2025-W23", 7)])
def test_period_target_is_scaled_to_the_period(sample_ws, period, days):
    jmap = _with_per(sample_ws, "certificate", 60, "month")
    k = jm.kpis(sample_ws.events, sample_ws.learners, jmap, period=period).filter(
        (pl.col("touchpoint_id") == "certificate") & (pl.col("metric") == "reach"))
    assert k.height == 1
    row = k.row(0, named=True)
    expected = 60 * days / (365.25 / 12)
    assert row["target"] == pytest.approx(expected)
    assert row["tolerance"] == pytest.approx(expected * 0.1)
    assert row["status"] == _reference_status(row["value"], expected, expected * 0.1, row["n"], 20)


def test_all_data_target_is_scaled_to_the_data_span(sample_ws):
    jmap = _with_per(sample_ws, "certificate", 60, "month")
    k = jm.kpis(sample_ws.events, sample_ws.learners, jmap).filter(
        (pl.col("touchpoint_id") == "certificate") & (pl.col("metric") == "reach")).row(0, named=True)
    ts = sample_ws.events["timestamp"]
    days = (ts.max() - ts.min()).total_seconds() / 86400
    assert k["target"] == pytest.approx(60 * days / (365.25 / 12))
    # the count itself is every learner with an event there
    reached = sample_ws.events.filter(pl.col("touchpoint_id") == "certificate")["learner_id"].n_unique()
    assert k["value"] == reached


def test_review_scales_each_period_by_its_own_length(sample_ws):
    jmap = _with_per(sample_ws, "certificate", 60, "month")
    r = jm.review(sample_ws.events, sample_ws.learners, jmap, period="2025-06")
    row = r.scorecard.filter((pl.col("touchpoint_id") == "certificate") & (pl.col("metric") == "reach")).row(0, named=True)
    assert row["target"] == pytest.approx(60 * 30 / (365.25 / 12))
    assert row["status"] == _reference_status(row["value"], row["target"], row["target"] * 0.1, row["n"], 20)


def test_sample_map_reach_targets_are_monthly(sample_ws):
    reach = [kp for t in sample_ws.map.touchpoints for kp in t.kpis if kp.metric == "reach"]
    assert reach and all(kp.per == "month" for kp in reach)
