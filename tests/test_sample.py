"""The sample generator: deterministic, loadable, and the planted effects are in the data.

Effects are measured here with plain polars (and a per-learner Python loop
for the in-progress count), never with ``journeylib.metrics``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections import defaultdict

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from scipy import stats

from journeylib.sample import generate, generate_frames
from journeylib.workspace import load_workspace

FILES = ["journey.yml", "learners.csv", "events.csv", "ground_truth.json"]


# --------------------------------------------------------------------------
# determinism and round trip
# --------------------------------------------------------------------------

def test_same_seed_same_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, learners=300, seed=11)
    generate(b, learners=300, seed=11)
    generate(c, learners=300, seed=12)
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "events.csv").read_bytes() != (c / "events.csv").read_bytes()


def test_committed_sample_is_reproducible(tmp_path, sample_dir, truth):
    generate(tmp_path, learners=truth["learners"], seed=truth["seed"], start=dt.date.fromisoformat(truth["start"]))
    for f in FILES:
        assert (tmp_path / f).read_bytes() == (sample_dir / f).read_bytes(), f"{f} differs: run `make sample`"


def test_frames_equal_the_loaded_files(tmp_path):
    jmap, events, learners, truth = generate_frames(learners=400, seed=5, start=dt.date(2024, 9, 2))
    generate(tmp_path, learners=400, seed=5, start=dt.date(2024, 9, 2))
    ws = load_workspace(tmp_path)
    assert ws.rejected.height == 0
    assert_frame_equal(ws.events, events)
    assert_frame_equal(ws.learners, learners)
    assert ws.map == jmap
    assert json.loads((tmp_path / "ground_truth.json").read_text()) == truth


def test_other_start_date():
    _, events, learners, truth = generate_frames(learners=300, seed=2, start=dt.date(2023, 3, 15))
    assert events["timestamp"].min() >= dt.datetime(2023, 3, 10, tzinfo=dt.timezone.utc)
    assert truth["start"] == "2023-03-15"
    assert truth["intervention"]["date"] == "2023-07-19"
    # webinars are on Wednesdays at 17:00 UTC, whatever the start day
    web = events.filter(pl.col("touchpoint_id") == "info_webinar", pl.col("event") == "started")
    assert set(web["timestamp"].dt.weekday().to_list()) == {3}
    assert set(web["timestamp"].dt.hour().to_list()) == {17}


def test_scales_vectorised():
    import time

    t = time.perf_counter()
    _, events, learners, _ = generate_frames(learners=20_000, seed=1)
    assert time.perf_counter() - t < 20
    assert learners.height == 20_000
    assert events.height > 12 * 20_000
    assert events["event_id"].is_unique().all()


def test_tiny_sample():
    _, events, learners, truth = generate_frames(learners=1, seed=0)
    assert learners.height == 1 and truth["learners"] == 1
    with pytest.raises(ValueError):
        generate_frames(learners=0)


# --------------------------------------------------------------------------
# the committed sample
# --------------------------------------------------------------------------

def test_truth_contract(truth, sample_ws, sample_dir):
    keys = {"seed", "learners", "events", "start", "data_end", "onboarding_stopper", "emotion_dip",
            "small_segment", "null_segments", "intervention", "monthly_change", "in_progress", "survey_touchpoints",
            "sample_period"}
    assert keys <= set(truth)
    assert truth["seed"] == 7 and truth["learners"] == 3000
    assert truth["events"] == sample_ws.events.height
    assert sample_ws.learners.height == truth["learners"]
    assert dt.datetime.fromisoformat(truth["data_end"]) == sample_ws.events["timestamp"].max()
    tps = set(sample_ws.map.touchpoint_ids)
    assert set(truth["onboarding_stopper"]["touchpoints"]) <= tps
    assert all(sample_ws.map.stage_of(t) == "onboarding" for t in truth["onboarding_stopper"]["touchpoints"])
    assert truth["onboarding_stopper"]["persona"] in sample_ws.map.persona_ids()
    assert set(truth["emotion_dip"]["touchpoints"]) <= tps
    assert truth["small_segment"]["touchpoint"] in tps
    assert 0.02 <= truth["small_segment"]["share"] <= 0.04
    assert truth["intervention"]["id"] in {i.id for i in sample_ws.map.interventions}
    assert truth["intervention"]["sign"] == "+"
    assert set(truth["survey_touchpoints"]) <= tps
    assert len(truth["null_segments"]) >= 2
    assert all(n["attribute"] in sample_ws.learners.columns for n in truth["null_segments"])
    assert sum(f.stat().st_size for f in sample_dir.iterdir()) < 8_000_000
    assert sample_ws.rejected.height == 0


def test_learners_have_no_persona_column(sample_dir, sample_ws):
    header = (sample_dir / "learners.csv").read_text().splitlines()[0].split(",")
    assert "persona" not in header
    counts = dict(sample_ws.learners.group_by("persona").len().iter_rows())
    assert set(counts) == {*sample_ws.map.persona_ids(), "unassigned"}
    assert all(v >= 100 for v in counts.values())


def _journeys(ws) -> pl.DataFrame:
    """Per learner: furthest touchpoint (map order), last event time, stopped/in progress (plain polars)."""
    order = {t: i for i, t in enumerate(ws.map.touchpoint_ids)}
    end = ws.events["timestamp"].max()
    last_tp = ws.map.touchpoint_ids[-1]
    j = (
        ws.events.with_columns(pl.col("touchpoint_id").replace_strict(order).alias("pos"))
        .group_by("learner_id")
        .agg(pl.col("pos").max().alias("furthest"), pl.col("timestamp").max().alias("last"),
             (pl.col("touchpoint_id") == last_tp).any().alias("done"))
        .with_columns(
            pl.col("furthest").replace_strict({i: t for t, i in order.items()}, return_dtype=pl.Utf8).alias("furthest_tp"),
            (~pl.col("done") & (pl.col("last") > end - dt.timedelta(days=ws.map.dormancy_days))).alias("in_progress"),
        )
        .with_columns((~pl.col("done") & ~pl.col("in_progress")).alias("stopped"))
    )
    return j.join(ws.learners, on="learner_id")


@pytest.fixture(scope="module")
def journeys(sample_ws):
    return _journeys(sample_ws)


def test_in_progress_matches_a_plain_loop(sample_ws, truth):
    end = sample_ws.events["timestamp"].max()
    last: dict[str, dt.datetime] = {}
    done: set[str] = set()
    final = sample_ws.map.touchpoint_ids[-1]
    for lid, tp, ts in sample_ws.events.select("learner_id", "touchpoint_id", "timestamp").iter_rows():
        if lid not in last or ts > last[lid]:
            last[lid] = ts
        if tp == final:
            done.add(lid)
    cutoff = end - dt.timedelta(days=sample_ws.map.dormancy_days)
    n = sum(1 for lid, t in last.items() if t > cutoff and lid not in done)
    assert n == truth["in_progress"]
    assert 150 <= n <= 1000


def test_onboarding_stopper(journeys, truth):
    ob = truth["onboarding_stopper"]
    j = journeys.with_columns((pl.col("stopped") & pl.col("furthest_tp").is_in(ob["touchpoints"])).alias("onb"))
    rate = dict(j.group_by(pl.col("persona") == ob["persona"]).agg(pl.col("onb").mean()).iter_rows())
    assert rate[True] > 0.25
    assert rate[True] > 3 * rate[False]


def test_emotion_dip(sample_ws, truth, journeys):
    dip = truth["emotion_dip"]["touchpoints"]
    means = dict(
        sample_ws.events.filter(pl.col("emotion").is_not_null())
        .group_by("touchpoint_id").agg(pl.col("emotion").mean()).iter_rows()
    )
    assert all(means[t] < 0 for t in dip)
    others = [v for t, v in means.items() if t not in dip]
    assert len(others) >= 3
    assert max(means[t] for t in dip) < min(others) - 0.5
    # engagement dips too: more learners stop at the dip than at other lessons and quizzes
    engagement = [t.id for t in sample_ws.map.touchpoints if t.stage == "engagement"]
    reached = sample_ws.events.group_by("touchpoint_id").agg(pl.col("learner_id").n_unique().alias("reached"))
    stops = journeys.filter("stopped").group_by("furthest_tp").len()
    rates = dict(
        reached.join(stops, left_on="touchpoint_id", right_on="furthest_tp", how="left")
        .select("touchpoint_id", (pl.col("len").fill_null(0) / pl.col("reached")).alias("r")).iter_rows()
    )
    # quiz 1 (the small segment), the live session (a side visit) and lesson 2 (the planted month-long drop)
    # lose learners for other reasons
    other = ("quiz_1", "live_session", truth["monthly_change"]["touchpoint"])
    plain = [rates[t] for t in engagement if t not in dip and t not in other]
    assert min(rates[t] for t in dip) > 1.5 * max(plain)


def test_small_segment(journeys, truth, sample_ws):
    seg = truth["small_segment"]
    share = (sample_ws.learners[seg["attribute"]] == seg["value"]).mean()
    assert share == pytest.approx(seg["share"], abs=1e-4)
    tp_pos = sample_ws.map.touchpoint_ids.index(seg["touchpoint"])
    at = journeys.filter(pl.col("furthest") >= tp_pos, ~pl.col("in_progress"))
    at = at.with_columns((pl.col("furthest_tp") == seg["touchpoint"]).alias("stop_here"),
                         (pl.col(seg["attribute"]) == seg["value"]).alias("in_seg"))
    t = at.group_by("in_seg").agg(pl.len().alias("n"), pl.col("stop_here").sum().alias("k"))
    d = {r["in_seg"]: (r["n"], r["k"]) for r in t.iter_rows(named=True)}
    (n1, k1), (n0, k0) = d[True], d[False]
    assert k1 / n1 > 0.35 and k0 / n0 < 0.12
    p = stats.fisher_exact([[k1, n1 - k1], [k0, n0 - k0]]).pvalue
    # survives a Bonferroni correction over every (attribute value x touchpoint) test
    n_tests = sum(sample_ws.learners[c].n_unique() for c in sample_ws.learners.columns[3:]) * len(sample_ws.map.touchpoints)
    assert p * n_tests < 0.01


def test_null_segments(journeys, truth):
    for item in truth["null_segments"]:
        a = item["attribute"]
        t = journeys.filter(~pl.col("in_progress")).group_by(a).agg(
            pl.col("stopped").sum().alias("k"), (~pl.col("stopped")).sum().alias("m")).sort(a)
        chi = stats.chi2_contingency(t.select("k", "m").to_numpy())
        assert chi.pvalue > 0.01, (a, t)


def test_intervention_effect(sample_ws, truth):
    iv = truth["intervention"]
    when = dt.datetime.fromisoformat(iv["date"]).replace(tzinfo=dt.timezone.utc)
    tps = sample_ws.map.touchpoint_ids
    nxt = tps[tps.index(iv["touchpoint"]) + 1]
    end = sample_ws.events["timestamp"].max()
    first = sample_ws.events.filter(pl.col("touchpoint_id") == iv["touchpoint"]).group_by("learner_id").agg(
        pl.col("timestamp").min().alias("t"))
    went_on = sample_ws.events.filter(pl.col("touchpoint_id") == nxt).select("learner_id").unique()
    j = first.join(went_on.with_columns(pl.lit(True).alias("on")), on="learner_id", how="left").with_columns(
        pl.col("on").fill_null(False)).filter(pl.col("t") < end - dt.timedelta(days=30))
    r = dict(j.group_by(pl.col("t") >= when).agg(pl.col("on").mean()).iter_rows())
    assert r[True] - r[False] > 0.08


def test_survey_touchpoints(sample_ws, truth):
    resp = sample_ws.events.filter(pl.col("event") == "responded",
                                   pl.col("value").is_not_null() | pl.col("emotion").is_not_null())
    have = set(resp["touchpoint_id"].unique().to_list())
    assert set(truth["survey_touchpoints"]) == have
    nps = resp.filter(pl.col("touchpoint_id") == "feedback_survey")["value"]
    assert nps.min() >= 0 and nps.max() <= 10 and nps.len() > 100
    csat = resp.filter(pl.col("touchpoint_id") == "live_session")["value"]
    assert set(csat.to_list()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_sample_period_has_plenty(sample_ws, truth):
    month = sample_ws.events.filter(pl.col("timestamp").dt.strftime("%Y-%m") == truth["sample_period"])
    assert month.height > 0.08 * sample_ws.events.height
    assert month["learner_id"].n_unique() > 500


def test_realistic_mess(sample_ws, sample_dir):
    ev = sample_ws.events
    # emotion as labels in the raw file
    raw = pl.read_csv(sample_dir / "events.csv", infer_schema=False)
    labels = raw.filter(pl.col("emotion").is_not_null() & pl.col("emotion").cast(pl.Float64, strict=False).is_null())
    assert labels.height > 100
    assert set(labels["emotion"].unique().to_list()) <= set(sample_ws.map.emotion_scale.labels)
    # ties within a learner (enrolment and welcome email in the same second)
    assert ev.group_by("learner_id", "timestamp").len().filter(pl.col("len") > 1).height > 100
    # repeated touchpoints and look-backs out of map order
    order = {t: i for i, t in enumerate(sample_ws.map.touchpoint_ids)}
    seq = ev.sort("learner_id", "timestamp", "event_id").with_columns(pl.col("touchpoint_id").replace_strict(order).alias("pos"))
    back = seq.with_columns((pl.col("pos") < pl.col("pos").shift(1).over("learner_id")).alias("back"))
    assert back["back"].sum() > 100
    starts = ev.filter(pl.col("event") == "started").group_by("learner_id", "touchpoint_id").len()
    assert starts.filter(pl.col("len") > 1).height > 50  # retakes
    # late: some gaps far beyond expected_within_days
    firsts = ev.group_by("learner_id", "touchpoint_id").agg(pl.col("timestamp").min())
    late = 0
    tps = sample_ws.map.touchpoints
    for prev, tp in zip(tps, tps[1:]):
        if tp.expected_within_days is None:
            continue
        a = firsts.filter(pl.col("touchpoint_id") == prev.id).rename({"timestamp": "a"}).drop("touchpoint_id")
        b = firsts.filter(pl.col("touchpoint_id") == tp.id).rename({"timestamp": "b"}).drop("touchpoint_id")
        gap = a.join(b, on="learner_id").select(((pl.col("b") - pl.col("a")).dt.total_seconds() / 86400).alias("d"))
        late += gap.filter(pl.col("d") > tp.expected_within_days).height
    assert late > 100
    # prospects who never enrolled have no enrolled_at
    assert sample_ws.learners["enrolled_at"].null_count() > 300


def test_every_event_kind_present(sample_ws):
    assert {"reached", "viewed", "started", "completed", "passed", "failed", "responded"} <= set(
        sample_ws.events["event"].unique().to_list())
    scored = sample_ws.events.filter(pl.col("event").is_in(["passed", "failed"]))
    assert scored["value"].null_count() == 0
    assert ((scored["value"] >= 60) == (scored["event"] == "passed")).all()


def test_cli_sample(tmp_path, journey_cmd):
    out = tmp_path / "ws"
    r = subprocess.run([*journey_cmd, "sample", str(out), "--learners", "150", "--seed", "4", "--start", "2025-02-03"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert all((out / f).exists() for f in FILES)
    assert json.loads((out / "ground_truth.json").read_text())["learners"] == 150
    bad = subprocess.run([*journey_cmd, "sample", str(out), "--start", "yesterday"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "--start" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_cli_sample_unwritable(tmp_path, journey_cmd):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = subprocess.run([*journey_cmd, "sample", str(blocker / "ws"), "--learners", "10"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "a-file" in lines[0]


CORE = ["course_page", "enrolment", "welcome_email", "orientation", "lesson_1", "quiz_1", "lesson_2", "quiz_2",
        "lesson_3", "mid_assessment", "lesson_4", "quiz_3", "lesson_5", "final_assessment", "certificate",
        "feedback_survey", "alumni_newsletter", "next_course_invite"]


@given(n=st.integers(1, 250), seed=st.integers(0, 2**32 - 1),
       start=st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2035, 12, 31)))
@settings(max_examples=15, deadline=None)
def test_generator_invariants(n, seed, start):
    jmap, events, learners, truth = generate_frames(learners=n, seed=seed, start=start)
    assert learners.height == n and learners["learner_id"].is_unique().all()
    assert events["event_id"].is_unique().all()
    assert set(events["touchpoint_id"].unique().to_list()) <= set(jmap.touchpoint_ids)
    assert set(events["learner_id"].unique().to_list()) == set(learners["learner_id"].to_list())  # nobody without events
    end = dt.datetime.fromisoformat(truth["data_end"])
    assert events["timestamp"].max() == end
    assert end.date() <= start + dt.timedelta(days=281)
    emo = events["emotion"].drop_nulls()
    assert emo.is_between(-2, 2).all()
    # a learner on a core step has been on every earlier core step, and no earlier than there
    firsts = {(r[0], r[1]): r[2] for r in events.group_by("learner_id", "touchpoint_id").agg(pl.col("timestamp").min()).iter_rows()}
    per = defaultdict(set)
    for lid, tp in firsts:
        per[lid].add(tp)
    for lid, tps in per.items():
        steps = [i for i, t in enumerate(CORE) if t in tps]
        if steps:
            assert steps == list(range(max(steps) + 1)), (lid, sorted(tps))
        if "enrolment" in tps:
            assert firsts[(lid, "course_page")] <= firsts[(lid, "enrolment")]
    # enrolled_at is the enrolment time, and only for those who enrolled
    enrol = events.filter(pl.col("touchpoint_id") == "enrolment").select("learner_id", pl.col("timestamp").alias("t"))
    j = learners.join(enrol, on="learner_id", how="left")
    assert (j["enrolled_at"].is_null() == j["t"].is_null()).all()
    assert j.filter(pl.col("t").is_not_null()).select((pl.col("t") == pl.col("enrolled_at")).all()).item()


def test_parquet_workspace(tmp_path):
    truth = generate(tmp_path, learners=300, seed=9, file_format="parquet")
    assert (tmp_path / "events.parquet").exists() and not (tmp_path / "events.csv").exists()
    ws = load_workspace(tmp_path)
    _, events, learners, truth2 = generate_frames(learners=300, seed=9)
    assert ws.rejected.height == 0
    assert_frame_equal(ws.events, events)
    assert_frame_equal(ws.learners, learners)
    assert truth == truth2
    with pytest.raises(ValueError, match="file_format"):
        generate(tmp_path / "x", learners=10, file_format="xlsx")


def test_events_file_in_arrival_order(sample_dir):
    raw = pl.read_csv(sample_dir / "events.csv", infer_schema=False).with_columns(
        pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%SZ"))
    back = raw.select((pl.col("timestamp") < pl.col("timestamp").cum_max().shift(1)).sum()).item()
    assert 0.01 * raw.height < back < 0.05 * raw.height  # late arrivals: the file is not sorted by time
