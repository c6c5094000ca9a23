"""Coverage and freshness: a planted source outage is a probable tracking problem, not a drop-off hot spot."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from journeylib import metrics as jm
from journeylib.cli import app
from journeylib.metrics.coverage import coverage, find_outages, daily_counts
from journeylib.model import map_from_dict

UTC = dt.timezone.utc
START = dt.datetime(2025, 2, 1, tzinfo=UTC)
END = dt.datetime(2025, 7, 1, tzinfo=UTC)

MAP = {
    "name": "Outage test", "dormancy_days": 5,
    "stages": [{"id": "join", "name": "Join"}, {"id": "learn", "name": "Learn"}],
    "touchpoints": [
        {"id": "signup", "name": "Sign-up", "stage": "join", "channel": "web", "target_emotion": {"label": "curious"}},
        {"id": "welcome", "name": "Welcome email", "stage": "join", "channel": "email", "target_emotion": {"label": "curious"}},
        {"id": "lesson", "name": "Lesson", "stage": "learn", "channel": "platform", "target_emotion": {"label": "curious"}},
        {"id": "quiz", "name": "Quiz", "stage": "learn", "channel": "platform", "target_emotion": {"label": "proud"}},
    ],
}


def journeys(seed: int = 1, per_day: int = 12, last_arrival: dt.datetime = END) -> pl.DataFrame:
    """Learners arrive every day; each step follows a day later with probability 0.9; steady over time."""
    rng = np.random.default_rng(seed)
    rows = []
    n_days = (last_arrival - START).days
    i = 0
    for d in range(n_days):
        for _ in range(rng.poisson(per_day)):
            i += 1
            t = START + dt.timedelta(days=d, seconds=int(rng.integers(0, 80_000)))
            for step, tp in enumerate(["signup", "welcome", "lesson", "quiz"]):
                if step and rng.random() > 0.9:
                    break
                ts = t + dt.timedelta(days=step, hours=step)
                if ts < END:
                    rows.append((f"L{i:05d}", tp, ts))
    ev = pl.DataFrame(rows, schema={"learner_id": pl.Utf8, "touchpoint_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC")},
                      orient="row")
    return ev.with_columns(pl.lit("reached").alias("event"), pl.lit(None, pl.Float64).alias("value"),
                           pl.lit(None, pl.Float64).alias("emotion"),
                           (pl.lit("e") + pl.int_range(pl.len()).cast(pl.Utf8)).alias("event_id"))


def silence(events: pl.DataFrame, touchpoints: list[str], first: dt.date, last: dt.date) -> pl.DataFrame:
    day = pl.col("timestamp").dt.date()
    return events.filter(~(pl.col("touchpoint_id").is_in(touchpoints) & (day >= first) & (day <= last)))


@pytest.fixture(scope="module")
def jmap():
    return map_from_dict(MAP)


@pytest.fixture(scope="module")
def steady():
    return journeys()


def _learners(events):
    return events.select("learner_id").unique().with_columns(pl.lit("unassigned").alias("persona"))


def test_steady_journey_has_no_outage(jmap, steady):
    cov = coverage(steady, jmap, period=("2025-06-01", "2025-07-01"))
    assert cov.outages.height == 0 and cov.affected == []
    assert set(cov.touchpoints["status"]) == {"ok"}


def test_planted_outage_is_a_tracking_problem_and_not_a_hot_spot(jmap, steady):
    # the platform (lesson, quiz) records nothing for the last ten days of the data
    events = silence(steady, ["lesson", "quiz"], dt.date(2025, 6, 21), dt.date(2025, 6, 30))
    learners = _learners(events)
    r = jm.review(events, learners, jmap, period="2025-06")
    out = r.coverage.outages
    assert out.select("source", "start", "end", "days", "ongoing").rows() == [
        ("platform", dt.date(2025, 6, 21), dt.date(2025, 6, 30), 10, True)]
    assert r.findings[0].startswith("Probable tracking problem: no events from source 'platform' (Lesson, Quiz)")
    # without the check, the welcome email would be the top hot spot: learners seem to stop there
    withheld = r.withheld_hotspots
    # (the quiz is the last touchpoint: there is nothing to carry on to, so it is never a hot spot)
    assert set(withheld["touchpoint_id"]) == {"welcome", "lesson"}
    top = withheld.sort("stopped", descending=True).row(0, named=True)
    assert top["touchpoint_id"] == "welcome" and top["significant"] and top["stop_rate"] > 2 * top["previous_stop_rate"]
    assert not set(r.hotspots["touchpoint_id"]) & {"welcome", "lesson", "quiz"}
    assert not any("stopped at Welcome" in f or "stopped at Lesson" in f for f in r.findings)
    statuses = dict(r.coverage.touchpoints.select("touchpoint_id", "status").iter_rows())
    assert statuses == {"signup": "ok", "welcome": "tracking problem", "lesson": "tracking problem", "quiz": "tracking problem"}


def test_outage_in_the_middle_that_resumes(jmap, steady):
    events = silence(steady, ["welcome"], dt.date(2025, 5, 5), dt.date(2025, 5, 14))
    out = find_outages(daily_counts(events, jmap), jmap, dt.date(2025, 6, 30))
    assert out.select("source", "start", "days", "ongoing", "others_active").rows() == [
        ("email", dt.date(2025, 5, 5), 10, False, True)]
    assert out["affected"].to_list() == [["signup", "welcome"]]
    # a review of a period long after (and its follow-up) does not carry it
    assert coverage(events, jmap, period=("2025-06-15", "2025-07-01")).outages.height == 0


def test_intake_ending_is_not_a_tracking_problem(jmap):
    # no new learners for the last ten days: the first touchpoints fall silent, but the journey paused, it is not broken
    events = journeys(last_arrival=END - dt.timedelta(days=10))
    cov = coverage(events, jmap, period=("2025-06-01", "2025-07-01"))
    assert cov.outages.height == 0


def test_short_gap_and_lumpy_source_are_not_flagged(jmap, steady):
    events = silence(steady, ["welcome"], dt.date(2025, 6, 10), dt.date(2025, 6, 13))  # four days
    assert coverage(events, jmap).outages.height == 0
    weekly = steady.filter((pl.col("touchpoint_id") != "welcome") | (pl.col("timestamp").dt.weekday() == 3))
    assert find_outages(daily_counts(weekly, jmap), jmap, dt.date(2025, 6, 30)).height == 0


def test_low_volume_and_no_data(jmap, steady):
    thin = steady.filter((pl.col("touchpoint_id") != "quiz") | (pl.col("timestamp") < dt.datetime(2025, 6, 1, tzinfo=UTC))
                         | (pl.col("learner_id").str.slice(-1).is_in(["0", "1"])))
    cov = coverage(thin, jmap, period=("2025-06-01", "2025-07-01"))
    row = cov.touchpoints.filter(pl.col("touchpoint_id") == "quiz").row(0, named=True)
    assert row["status"] == "low" and row["ratio"] < 0.5
    assert any(s.startswith("Quiz: ") for s in cov.sentences)
    none = steady.filter(pl.col("touchpoint_id") != "quiz")
    cov = coverage(none, jmap)
    assert cov.touchpoints.filter(pl.col("touchpoint_id") == "quiz")["status"].item() == "never measured"


def test_kpis_without_data(jmap, steady):
    from journeylib.metrics.coverage import kpis_without_data

    m = {**MAP, "touchpoints": [dict(t) for t in MAP["touchpoints"]]}
    m["touchpoints"][2]["kpis"] = [{"metric": "score", "target": 70}, {"metric": "conversion", "target": 0.5}]
    jm2 = map_from_dict(m)
    k = jm.kpis(steady, _learners(steady), jm2)
    none, sentence = kpis_without_data(k, jm2)
    assert none["metric"].to_list() == ["score"] and sentence == "KPIs with no data in the period: score at Lesson."


def test_per_source_counts_match_a_plain_loop(jmap, steady):
    cov = coverage(steady, jmap, period=("2025-05-01", "2025-06-01"))
    src = {t["id"]: t["channel"] for t in MAP["touchpoints"]}
    counts: dict[str, int] = {}
    last: dict[str, dt.datetime] = {}
    for tp, ts in steady.select("touchpoint_id", "timestamp").iter_rows():
        s = src[tp]
        last[s] = max(last.get(s, ts), ts)
        if dt.datetime(2025, 5, 1, tzinfo=UTC) <= ts < dt.datetime(2025, 6, 1, tzinfo=UTC):
            counts[s] = counts.get(s, 0) + 1
    got = {r["source"]: (r["events"], r["last_event"]) for r in cov.sources.iter_rows(named=True)}
    assert got == {s: (counts[s], last[s]) for s in counts}


def test_validate_shows_coverage(tmp_path, jmap, steady):
    events = silence(steady, ["lesson", "quiz"], dt.date(2025, 6, 21), dt.date(2025, 6, 30))
    (tmp_path / "journey.yml").write_text(yaml.safe_dump(MAP))
    events.write_csv(tmp_path / "events.csv")
    r = CliRunner().invoke(app, ["validate", str(tmp_path)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "Coverage and freshness by source" in r.output
    assert "Probable tracking problem: no events from source 'platform'" in r.output
    assert "Every KPI has data." in r.output
    assert (tmp_path / "map_history").is_dir()
