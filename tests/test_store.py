"""The DuckDB store: idempotent ingest, voiding across files, atomicity (exception and SIGKILL), workspace loading."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from journeylib.model import load_map
from journeylib.store import STORE_FILE, connect, ingest_file, ingest_files, ingest_log
from journeylib.workspace import load_workspace
from store_replay import EVENT_FILES, replay, write_event_files

FIX = Path(__file__).resolve().parent / "fixtures" / "sources"
ROOT = Path(__file__).resolve().parents[1]


def sid(n):
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"
    d.mkdir()
    shutil.copy(FIX / "journey.yml", d)
    shutil.copy(FIX / "sources.yml", d)
    return d


def counts(d: Path) -> dict:
    con = duckdb.connect(str(d / STORE_FILE), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("events", "learners", "rejected", "ingest_log")}
    finally:
        con.close()


def test_ingest_twice_adds_nothing(ws):
    jmap = load_map(ws / "journey.yml")
    files = [FIX / "xapi_statements.jsonl", FIX / "moodle_logstore.csv", FIX / "edx_tracking.log", FIX / "survey.csv"]
    reps = ingest_files(files, ws, jmap)
    assert [r.source_type for r in reps] == ["xapi", "moodle", "edx", "survey"]
    assert all(r.reconciles for r in reps)
    before = counts(ws)
    again = ingest_files(files, ws, jmap)
    assert all(r.skipped for r in again)
    assert counts(ws) == before
    # a copy with another checksum: every event is a duplicate of a stored one
    copy = ws / "copy.jsonl"
    copy.write_bytes((FIX / "xapi_statements.jsonl").read_bytes() + b"\n")
    (rep,) = ingest_files([copy], ws, jmap)
    assert rep.accepted == 0 and rep.reconciles
    assert counts(ws)["events"] == before["events"]


def test_counts_reconcile_with_workspace(ws):
    jmap = load_map(ws / "journey.yml")
    reps = ingest_files([FIX / "xapi_statements.jsonl", FIX / "xapi_array.json", FIX / "moodle_report.csv"], ws, jmap)
    w = load_workspace(ws)
    assert w.source == "store"
    c = w.counts().filter(pl.col("table") == "events")
    assert (c["read"] == c["accepted"] + c["rejected"]).all()
    log = ingest_log(ws)
    assert log["read"].to_list() == [r.read for r in reps]
    assert (log["read"] == log["accepted"] + log["rejected"]).all()
    # per file the stored rows match the log (voiding moved events but kept each file's sum)
    assert c["accepted"].to_list() == log["accepted"].to_list()
    assert c["rejected"].to_list() == log["rejected"].to_list()
    assert w.events.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert w.events["event_id"].is_unique().all()
    assert set(w.learners["persona"].unique()) == {"unassigned"}


@pytest.mark.parametrize("order", [("xapi_statements.jsonl", "xapi_array.json"), ("xapi_array.json", "xapi_statements.jsonl")])
def test_voiding_across_files_either_order(ws, order):
    jmap = load_map(ws / "journey.yml")
    ingest_files([FIX / f for f in order], ws, jmap)
    w = load_workspace(ws)
    ids = set(w.events["event_id"].to_list())
    assert sid(2) not in ids  # voided in the same file
    assert sid(3) not in ids  # voided by the other file, whichever came first
    assert sid(1) in ids and sid(21) in ids
    voided = w.rejected.filter(pl.col("reason").str.starts_with("voided by statement"))
    assert sorted(voided["reason"].to_list()) == [f"voided by statement {sid(11)}", f"voided by statement {sid(23)}"]


def test_exception_mid_file_rolls_back(ws):
    jmap = load_map(ws / "journey.yml")
    ingest_files([FIX / "moodle_logstore.csv"], ws, jmap)
    before = counts(ws)
    from journeylib.sources import read_source

    def boom():
        raise RuntimeError("injected")

    con = connect(ws / STORE_FILE)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            ingest_file(con, FIX / "xapi_statements.jsonl", "xapi",
                         read_source(FIX / "xapi_statements.jsonl", "xapi", jmap, None), sha256="x", before_commit=boom)

        def failing_batches():
            yield from read_source(FIX / "edx_tracking.log", "edx", jmap, None, batch_size=2)
            raise ValueError("broken source")

        with pytest.raises(ValueError):
            ingest_file(con, FIX / "edx_tracking.log", "edx", failing_batches(), sha256="y")
    finally:
        con.close()
    assert counts(ws) == before


KILL_SCRIPT = r"""
import sys, time
from pathlib import Path
from journeylib.model import load_map
from journeylib.sources import read_source
from journeylib.store import STORE_FILE, connect, ingest_file
ws, src, when = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
jmap = load_map(ws / "journey.yml")
con = connect(ws / STORE_FILE)
def wait():
    print("MIDWAY", flush=True)
    time.sleep(60)
def batches():
    for i, b in enumerate(read_source(src, "xapi", jmap, None, batch_size=500)):
        yield b
        if i == 3 and when == "staging":
            wait()
ingest_file(con, src, "xapi", batches(), sha256="big", before_commit=wait if when == "publish" else None)
"""


@pytest.mark.parametrize("when", ["staging", "publish"])
def test_sigkill_mid_ingest_leaves_store_unchanged(ws, tmp_path, when):
    jmap = load_map(ws / "journey.yml")
    ingest_files([FIX / "moodle_logstore.csv"], ws, jmap)
    before = counts(ws)
    big = tmp_path / "big.jsonl"
    with open(big, "w") as f:
        for i in range(5000):
            f.write(json.dumps({"id": sid(10_000 + i), "actor": {"account": {"homePage": "h", "name": str(i % 50)}},
                                "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
                                "object": {"id": "https://lms.example.org/course/42/welcome"},
                                "timestamp": "2025-03-03T09:00:00Z"}) + "\n")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ws), str(big), when], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        assert line.strip() == "MIDWAY"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert counts(ws) == before
    w = load_workspace(ws)
    assert w.events.height == before["events"]
    # the store still takes new ingests
    (rep,) = ingest_files([big], ws, jmap)
    assert rep.accepted == 5000 and counts(ws)["events"] == before["events"] + 5000
    con = duckdb.connect(str(ws / STORE_FILE), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM staging_events").fetchall()[0][0] == 0
    finally:
        con.close()


def test_learners_file_attributes_and_personas(ws):
    jmap = load_map(ws / "journey.yml")
    text = (ws / "journey.yml").read_text() + (
        "personas:\n  - {id: north, name: North, where: \"region = 'North'\"}\n")
    (ws / "journey.yml").write_text(text)
    jmap = load_map(ws / "journey.yml")
    ingest_files([FIX / "moodle_logstore.csv"], ws, jmap)
    lp = ws.parent / "learners.csv"
    lp.write_text("learner_id,region,enrolled_at\n5,North,2025-03-01\n6,South,\n,East,\n")
    (rep,) = ingest_files([lp], ws, jmap)
    assert (rep.table, rep.read, rep.accepted, rep.rejected) == ("learners", 3, 2, 1)
    w = load_workspace(ws)
    lr = w.learners.sort("learner_id")
    assert lr["learner_id"].to_list() == ["5", "6"]
    assert lr["region"].to_list() == ["North", "South"]
    assert lr["persona"].to_list() == ["north", "unassigned"]
    assert w.rejected.filter(pl.col("table") == "learners")["reason"].to_list() == ["missing learner_id"]


def test_map_change_after_ingest_rejects_stale_touchpoints(ws):
    jmap = load_map(ws / "journey.yml")
    ingest_files([FIX / "moodle_logstore.csv"], ws, jmap)
    text = (ws / "journey.yml").read_text().replace(
        "  - {id: quiz_1, name: Quiz 1, stage: learning, target_emotion: {label: confident}}\n", "")
    (ws / "journey.yml").write_text(text)
    w = load_workspace(ws)
    assert "quiz_1" not in w.events["touchpoint_id"].to_list()
    assert w.rejected.filter(pl.col("reason").str.starts_with("unknown touchpoint")).height == 2


def test_cli_ingest_exit_codes_and_fatal_message(ws, tmp_path):
    from typer.testing import CliRunner

    from journeylib.cli import app

    run = CliRunner().invoke
    r = run(app, ["ingest", str(FIX / "moodle_logstore.csv"), "--into", str(ws)])
    assert r.exit_code == 1, r.output
    assert "11 read = 5 accepted + 6 rejected" in r.output
    assert "Most common unmapped shapes" in r.output
    r = run(app, ["ingest", str(FIX / "moodle_logstore.csv"), "--into", str(ws)])
    assert r.exit_code == 0 and "already ingested" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("id,eventname\n1,x\n")
    r = run(app, ["ingest", str(bad), "--into", str(ws), "--source-type", "moodle"])
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit)
    assert "bad.csv" in r.output and "Traceback" not in r.output
    r = run(app, ["ingest", str(bad), "--into", str(ws), "--source-type", "blackboard"])
    assert r.exit_code == 2 and "unknown --source-type" in r.output


# -- property: store contents equal a plain-Python replay of the ingests ------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(EVENT_FILES)
def test_store_equals_replay(tmp_path_factory, files):
    d = tmp_path_factory.mktemp("st")
    jmap, paths = write_event_files(d, files)
    ingest_files(paths, d, jmap)
    stored, _, _ = replay(paths, files)
    w = load_workspace(d)
    got = {r["event_id"]: (r["learner_id"], r["touchpoint_id"]) for r in w.events.to_dicts()}
    assert got == stored
    c = w.counts().filter(pl.col("table") == "events")
    assert (c["read"] == c["accepted"] + c["rejected"]).all()


def test_statement_result_more_link_is_noted(ws):
    jmap = load_map(ws / "journey.yml")
    (rep,) = ingest_files([FIX / "xapi_statement_result.json"], ws, jmap)
    assert rep.notes == ["the LRS page names more statements (/xapi/statements?more=7b0c3a); export and ingest those pages too"]
    assert rep.read == 3 and rep.reconciles
