"""Rebuilding the store with the current mapping rules: `journey ingest --rebuild`.

Checked against an independent reference (a fresh store filled by plain
ingests with the same rules, and a plain-Python replay for random files),
plus the failure paths: a missing or changed source file, an exception and a
SIGKILL part-way, a store written before the ingest log kept paths and flags.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.model import load_map
from journeylib.sources.base import NO_RULE
from journeylib.store import REBUILD_SUFFIX, STORE_FILE, ingest_files, rebuild_store
from journeylib.workspace import load_workspace
from store_replay import EVENT_FILES, replay, write_event_files

FIX = Path(__file__).resolve().parent / "fixtures" / "sources"
ROOT = Path(__file__).resolve().parents[1]
FILES = ["xapi_statements.jsonl", "moodle_logstore.csv", "xapi_array.json", "edx_tracking.log", "survey.csv", "learners.csv"]
LEARNERS = "learner_id,region,enrolled_at\n5,North,2025-03-01\n6,South,\n,East,\n1002,West,2025-02-01\n"
NEW_RULES = {
    "moodle:\n  rules:\n": "    - match: {eventname: '\\core\\event\\course_viewed', courseid: 8}\n      touchpoint: welcome\n",
    "xapi:\n  rules:\n": "    - match: {verb: http://example.org/verbs/bookmarked}\n      touchpoint: lesson_1\n",
}


def sid(n):
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
def ws(tmp_path):
    """A workspace plus private copies of the source files (so tests may delete or change them)."""
    d = tmp_path / "ws"
    d.mkdir()
    shutil.copy(FIX / "journey.yml", d)
    shutil.copy(FIX / "sources.yml", d)
    src = tmp_path / "src"
    src.mkdir()
    for f in FILES[:-1]:
        shutil.copy(FIX / f, src)
    (src / "learners.csv").write_text(LEARNERS)  # a learners table: its attributes are stored too
    return d


def src_files(ws: Path, names=FILES) -> list[Path]:
    return [ws.parent / "src" / f for f in names]


def add_rules(ws: Path) -> None:
    text = (ws / "sources.yml").read_text()
    for anchor, rule in NEW_RULES.items():
        assert anchor in text
        text = text.replace(anchor, anchor + rule)
    (ws / "sources.yml").write_text(text)


def tables(d: Path) -> dict:
    """Every visible table's rows, sorted, without the columns that legitimately differ (times, rules fingerprint)."""
    con = duckdb.connect(str(d / STORE_FILE), read_only=True)
    try:
        out = {}
        for t, cols in {
            "events": "*", "learners": "*", "rejected": "*", "voids": "*",
            "ingest_log": 'ingest_id, file, sha256, source_type, "table", "read", accepted, rejected, unmapped, '
                          "duplicates, voided, naive_timestamps, unmapped_shapes, path, strict",
        }.items():
            out[t] = sorted(con.sql(f"SELECT {cols} FROM {t}").pl().rows(), key=repr)
        return out
    finally:
        con.close()


def file_hash(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_rebuild_after_adding_rules_maps_unmapped_records(ws, tmp_path):
    jmap = load_map(ws / "journey.yml")
    ingest_files(src_files(ws), ws, jmap)
    before = tables(ws)
    w0 = load_workspace(ws)
    unmapped0 = w0.rejected.filter(w0.rejected["reason"].str.starts_with(NO_RULE)).height
    add_rules(ws)
    rep = rebuild_store(ws, jmap)
    # reference: a fresh store filled by ordinary ingests with the new rules
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(ws / "journey.yml", ref)
    shutil.copy(ws / "sources.yml", ref)
    ingest_files(src_files(ws), ref, jmap)
    after, expected = tables(ws), tables(ref)
    for t in ("events", "learners", "rejected", "voids"):
        assert after[t] == expected[t], t
    assert [r[:13] for r in after["ingest_log"]] == [r[:13] for r in expected["ingest_log"]]
    # the two new rules map exactly two records (one xAPI bookmark, one Moodle course 8 view)
    assert rep.newly_mapped == 2
    assert rep.before.unmapped == unmapped0 and rep.after.unmapped == unmapped0 - 2
    assert rep.after.read == rep.before.read
    assert rep.after.events == rep.before.events + 2 == len(before["events"]) + 2
    assert rep.after.rejected_total == rep.before.rejected_total - 2
    w = load_workspace(ws)
    c = w.counts()
    assert (c["read"] == c["accepted"] + c["rejected"]).all()
    assert sid(6) in set(w.events["event_id"].to_list()) and "moodle:5010" in set(w.events["event_id"].to_list())
    assert not (ws / (STORE_FILE + REBUILD_SUFFIX)).exists()


def test_rebuild_with_unchanged_rules_gives_identical_store(ws):
    jmap = load_map(ws / "journey.yml")
    ingest_files(src_files(ws), ws, jmap)
    before = tables(ws)
    rep = rebuild_store(ws, jmap)
    assert tables(ws) == before
    assert rep.newly_mapped == 0 and rep.before == rep.after
    assert all(r.reconciles and not r.skipped for r in rep.files)
    # and once more: rebuilding is idempotent, ingesting again still adds nothing
    rebuild_store(ws, jmap)
    assert tables(ws) == before
    assert all(r.skipped for r in ingest_files(src_files(ws), ws, jmap))
    assert tables(ws) == before


@pytest.mark.parametrize("order", [("xapi_statements.jsonl", "xapi_array.json"), ("xapi_array.json", "xapi_statements.jsonl")])
def test_voiding_across_files_survives_rebuild(ws, order):
    jmap = load_map(ws / "journey.yml")
    ingest_files(src_files(ws, order), ws, jmap)
    add_rules(ws)
    rebuild_store(ws, jmap)
    w = load_workspace(ws)
    ids = set(w.events["event_id"].to_list())
    assert sid(2) not in ids and sid(3) not in ids
    assert sid(1) in ids and sid(21) in ids and sid(6) in ids
    voided = w.rejected.filter(w.rejected["reason"].str.starts_with("voided by statement"))
    assert sorted(voided["reason"].to_list()) == [f"voided by statement {sid(11)}", f"voided by statement {sid(23)}"]
    c = w.counts()
    assert (c["read"] == c["accepted"] + c["rejected"]).all()


@pytest.mark.parametrize("problem", ["missing", "changed"])
def test_missing_or_changed_source_exits_2_and_keeps_store(ws, problem):
    jmap = load_map(ws / "journey.yml")
    ingest_files(src_files(ws), ws, jmap)
    store_hash, before = file_hash(ws / STORE_FILE), tables(ws)
    victim = src_files(ws)[1]
    if problem == "missing":
        victim.unlink()
    else:
        victim.write_text(victim.read_text() + "\n")
    add_rules(ws)
    r = CliRunner().invoke(app, ["ingest", "--rebuild", "--into", str(ws)])
    assert r.exit_code == 2, r.output
    assert "moodle_logstore.csv" in r.output and ("missing" if problem == "missing" else "changed") in r.output
    assert "Traceback" not in r.output
    assert file_hash(ws / STORE_FILE) == store_hash and tables(ws) == before
    assert not (ws / (STORE_FILE + REBUILD_SUFFIX)).exists()


@pytest.mark.parametrize("where", ["mid-file", "before-replace"])
def test_exception_during_rebuild_keeps_old_store(ws, where):
    jmap = load_map(ws / "journey.yml")
    ingest_files(src_files(ws), ws, jmap)
    before = tables(ws)
    add_rules(ws)
    calls = []

    def on_report(rep):
        calls.append(rep)
        if where == "mid-file" and len(calls) == 2:
            raise RuntimeError("injected")

    def before_replace():
        if where == "before-replace":
            raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        rebuild_store(ws, jmap, on_report=on_report, before_replace=before_replace)
    assert tables(ws) == before
    assert not (ws / (STORE_FILE + REBUILD_SUFFIX)).exists()
    rep = rebuild_store(ws, jmap)
    assert rep.newly_mapped == 2 and rep.before.events == len(before["events"])


KILL_SCRIPT = r"""
import sys, time
from pathlib import Path
from journeylib.model import load_map
from journeylib.store import rebuild_store
ws, when = Path(sys.argv[1]), sys.argv[2]
def wait(*_):
    print("MIDWAY", flush=True)
    time.sleep(60)
n = []
def on_report(rep):
    n.append(rep)
    if when == "mid-rebuild" and len(n) == 2:
        wait()
rebuild_store(ws, load_map(ws / "journey.yml"), on_report=on_report, before_replace=wait if when == "before-replace" else None)
"""


@pytest.mark.parametrize("when", ["mid-rebuild", "before-replace"])
def test_sigkill_mid_rebuild_keeps_old_store_and_next_rebuild_works(ws, when):
    jmap = load_map(ws / "journey.yml")
    ingest_files(src_files(ws), ws, jmap)
    before = tables(ws)
    add_rules(ws)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ws), when], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "MIDWAY"
        # while the rebuild runs the old store can be read, but not written (that ingest would be lost)
        assert load_workspace(ws).events.height == len(before["events"])
        r = CliRunner().invoke(app, ["ingest", str(FIX / "moodle_report.csv"), "--into", str(ws)])
        assert r.exit_code == 2 and "cannot open the store" in r.output, r.output
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert tables(ws) == before
    assert (ws / (STORE_FILE + REBUILD_SUFFIX)).exists()  # the dead rebuild's file is left behind …
    r = CliRunner().invoke(app, ["ingest", "--rebuild", "--into", str(ws)])
    assert r.exit_code == 1, r.output  # … and ignored: the next rebuild starts afresh
    assert "2 record(s) with no mapping rule before are now mapped" in r.output
    assert not (ws / (STORE_FILE + REBUILD_SUFFIX)).exists()
    assert len(tables(ws)["events"]) == len(before["events"]) + 2


def test_cli_rebuild_summary_and_new_sources_after(ws):
    run = CliRunner().invoke
    files = [str(p) for p in src_files(ws)]
    assert run(app, ["ingest", *files[:3], "--into", str(ws)]).exit_code == 1
    add_rules(ws)
    r = run(app, ["ingest", "--rebuild", *files[3:], "--into", str(ws)])
    assert r.exit_code == 1, r.output
    assert "re-read xapi_statements.jsonl" in r.output and "Store rebuilt from 3 file(s)" in r.output
    assert "2 record(s) with no mapping rule before are now mapped" in r.output
    assert "edx_tracking.log (edx)" in r.output  # the new files are ingested after the rebuilt ones
    con = duckdb.connect(str(ws / STORE_FILE), read_only=True)
    try:
        log = con.execute("SELECT file FROM ingest_log ORDER BY ingest_id").fetchall()
    finally:
        con.close()
    assert [Path(f).name for (f,) in log] == FILES
    # --rules: another rules file instead of DIR/sources.yml (here: the old rules, so the two records are unmapped again)
    (ws.parent / "old.yml").write_text((FIX / "sources.yml").read_text())
    r = run(app, ["ingest", "--rebuild", "--into", str(ws), "--rules", str(ws.parent / "old.yml")])
    assert r.exit_code == 1 and "2 record(s) mapped before now have no mapping rule" in r.output, r.output
    r = run(app, ["ingest", "--into", str(ws)])
    assert r.exit_code == 2 and "--rebuild" in r.output
    r = run(app, ["ingest", "--rebuild", str(ws / "nope.csv"), "--into", str(ws)])
    assert r.exit_code == 2 and "nope.csv" in r.output
    empty = ws.parent / "empty"
    empty.mkdir()
    shutil.copy(FIX / "journey.yml", empty)
    r = run(app, ["ingest", "--rebuild", "--into", str(empty)])
    assert r.exit_code == 2 and "no store to rebuild" in r.output


def test_store_from_before_path_and_strict_were_logged(ws, monkeypatch):
    """An older store (no path/strict columns, relative file names) still rebuilds."""
    monkeypatch.chdir(ws.parent)
    jmap = load_map(ws / "journey.yml")
    ingest_files([Path("src") / f for f in FILES[:3]], ws, jmap)
    con = duckdb.connect(str(ws / STORE_FILE))
    try:
        for c in ("path", "strict", "rules_digest"):
            con.execute(f"ALTER TABLE ingest_log DROP COLUMN {c}")
    finally:
        con.close()
    add_rules(ws)
    rep = rebuild_store(ws, jmap)
    assert rep.newly_mapped == 2
    assert rep.notes == ["the store did not record --strict; files re-read lenient"]
    con = duckdb.connect(str(ws / STORE_FILE), read_only=True)
    try:
        rows = con.execute("SELECT file, path, strict FROM ingest_log ORDER BY ingest_id").fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == [str(Path("src") / f) for f in FILES[:3]]  # names as given, kept
    assert all(Path(r[1]).is_absolute() and r[2] is False for r in rows)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(EVENT_FILES)
def test_rebuild_equals_replay(tmp_path_factory, files):
    """Ingest then rebuild: the store is unchanged and equals a plain-Python replay (first event id wins)."""
    d = tmp_path_factory.mktemp("rb")
    jmap, paths = write_event_files(d, files)
    ingest_files(paths, d, jmap)
    before = tables(d)
    rep = rebuild_store(d, jmap)
    assert tables(d) == before
    stored, read, rejected = replay(paths, files)
    w = load_workspace(d)
    assert {r["event_id"]: (r["learner_id"], r["touchpoint_id"]) for r in w.events.to_dicts()} == stored
    assert rep.after.read == read and rep.after.events == len(stored)
    assert rep.after.rejected_total == rejected  # a rejected record repeated by a later file is stored once


VERBS = ["http://adlnet.gov/expapi/verbs/experienced", "http://example.org/verbs/bookmarked", "http://example.org/verbs/shared"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.sampled_from(VERBS), st.integers(0, 4)), min_size=1, max_size=10), min_size=1, max_size=3),
       st.sets(st.sampled_from(VERBS)))
def test_rebuild_with_added_rules_equals_per_statement_reference(tmp_path_factory, files, added):
    """Random xAPI files, then rules for a random set of verbs: each statement is mapped exactly as a plain loop says."""
    import json

    d = tmp_path_factory.mktemp("rv")
    shutil.copy(FIX / "journey.yml", d)
    shutil.copy(FIX / "sources.yml", d)
    jmap = load_map(d / "journey.yml")
    paths, n = [], 0
    for k, stmts in enumerate(files):
        p = d / f"s{k}.jsonl"
        with open(p, "w") as f:
            for verb, u in stmts:
                n += 1
                f.write(json.dumps({"id": sid(n), "actor": {"account": {"homePage": "h", "name": f"u{u}"}}, "verb": {"id": verb},
                                    "object": {"id": "https://lms.example.org/course/42/welcome"},
                                    "timestamp": "2025-03-03T09:00:00Z"}) + "\n")
        paths.append(p)
    ingest_files(paths, d, jmap)
    text = (d / "sources.yml").read_text()
    new = "".join(f"    - match: {{verb: {v}}}\n      touchpoint: lesson_1\n" for v in sorted(added))
    (d / "sources.yml").write_text(text.replace("xapi:\n  rules:\n", "xapi:\n  rules:\n" + new))
    rep = rebuild_store(d, jmap)
    # reference: the added rules come first; the old rule maps only "experienced" (to welcome)
    expected, i, before_mapped = {}, 0, 0
    for stmts in files:
        for verb, u in stmts:
            i += 1
            before_mapped += verb == VERBS[0]
            if verb in added:
                expected[sid(i)] = (f"u{u}", "lesson_1")
            elif verb == VERBS[0]:
                expected[sid(i)] = (f"u{u}", "welcome")
    w = load_workspace(d)
    assert {r["event_id"]: (r["learner_id"], r["touchpoint_id"]) for r in w.events.to_dicts()} == expected
    assert rep.before.events == before_mapped and rep.after.events == len(expected)
    assert rep.newly_mapped == len(expected) - before_mapped
    assert rep.after.read == rep.before.read == n
    assert rep.after.rejected_total == n - len(expected) == rep.after.unmapped
