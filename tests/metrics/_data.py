"""Small generated event sets for the metric tests (hypothesis strategies and helpers)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import strategies as st

from journeylib.model import JourneyMap

T0 = dt.datetime(2025, 3, 3, tzinfo=dt.timezone.utc)
TPS = ["a", "b", "c", "d", "x"]
EVENTS = ["reached", "viewed", "completed", "passed", "failed", "responded"]

MAP = JourneyMap.model_validate({
    "name": "Test map",
    "dormancy_days": 3,
    "stages": [{"id": "s1", "name": "One"}, {"id": "s2", "name": "Two"}],
    "touchpoints": [
        {"id": "a", "name": "A", "stage": "s1", "target_emotion": {"label": "curious"},
         "kpis": [{"metric": "conversion", "target": 0.5, "min_n": 1}, {"metric": "reach", "target": 3, "min_n": 1}]},
        {"id": "b", "name": "B", "stage": "s1", "target_emotion": {"label": "neutral"},
         "kpis": [{"metric": "completion", "target": 0.5, "min_n": 2}, {"metric": "emotion", "target": 0.5, "min_n": 2}]},
        {"id": "c", "name": "C", "stage": "s2", "target_emotion": {"label": "confident"}, "expected_within_days": 2,
         "kpis": [{"metric": "pass_rate", "target": 0.7}, {"metric": "score", "target": 5, "min_n": 1}]},
        {"id": "d", "name": "D", "stage": "s2", "target_emotion": {"label": "proud"},
         "kpis": [{"metric": "nps", "target": 10, "min_n": 1}, {"metric": "time_to_next", "target": 2, "min_n": 1}]},
        {"id": "x", "name": "X", "stage": "s2", "target_emotion": {"label": "satisfied"},
         "kpis": [{"metric": "csat", "target": 0.8, "min_n": 1}]},
    ],
    "funnels": {"abcd": ["a", "b", "c", "d"], "cab": ["c", "a", "b"]},
    "interventions": [{"id": "iv1", "date": "2025-03-08", "touchpoint": "b"}],
})
POS = {t: i + 1 for i, t in enumerate(TPS)}


@st.composite
def datasets(draw, max_learners: int = 6, max_events: int = 28, days: int = 5):
    """(events rows, learner rows): ties in timestamps, repeats, lone events and learners without events."""
    n = draw(st.integers(1, max_learners))
    lids = [f"u{i}" for i in range(n)]
    k = draw(st.integers(0, max_events))
    rows = []
    for i in range(k):
        day = draw(st.integers(0, days))
        half = draw(st.sampled_from([0, 12]))
        lid = draw(st.sampled_from(lids))
        ts = T0 + dt.timedelta(days=day, hours=half)
        if rows and draw(st.integers(0, 2)) == 0:  # a tie: same learner and time as an earlier event
            j = draw(st.integers(0, len(rows) - 1))
            lid, ts = rows[j]["learner_id"], rows[j]["timestamp"]
        rows.append({
            "learner_id": lid,
            "touchpoint_id": draw(st.sampled_from(TPS)),
            "timestamp": ts,
            "event": draw(st.sampled_from(EVENTS)),
            "value": draw(st.none() | st.integers(0, 10).map(float)),
            "emotion": draw(st.none() | st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0])),
            "event_id": f"e{i:03d}",
        })
    learners = [{"learner_id": l, "persona": draw(st.sampled_from(["p", "q"])),
                 "device": draw(st.sampled_from(["mobile", "desktop", None]))} for l in lids]
    return rows, learners


EVENT_SCHEMA = {"learner_id": pl.Utf8, "touchpoint_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC"),
                "event": pl.Utf8, "value": pl.Float64, "emotion": pl.Float64, "event_id": pl.Utf8}


def frames(rows, learners):
    ev = pl.DataFrame(rows, schema=EVENT_SCHEMA) if rows else pl.DataFrame(schema=EVENT_SCHEMA)
    ln = pl.DataFrame(learners, schema={"learner_id": pl.Utf8, "persona": pl.Utf8, "device": pl.Utf8})
    return ev, ln


def data_end_of(rows, extra_days: int | None):
    if not rows:
        return T0
    end = max(r["timestamp"] for r in rows)
    return end if extra_days is None else end + dt.timedelta(days=extra_days)


def with_optional(jmap, *ids: str):
    """A copy of ``jmap`` with the given touchpoints marked optional (side visits)."""
    d = jmap.model_dump()
    for t in d["touchpoints"]:
        t["optional"] = t["id"] in ids
    return JourneyMap.model_validate(d)


#: the test map with ``b`` as a side visit (reaching it is not progress)
OMAP = with_optional(MAP, "b")
