"""Hostile files end fast with one line: devices, FIFOs, paths outside the workspace, YAML bombs, huge maps, deep rules."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import yaml

from journeylib.errors import JourneyError, MapError
from journeylib.expr import parse_where
from journeylib.limits import Limits, confine, limits_from_env, open_regular
from journeylib.load import load_events
from journeylib.model import load_map, map_from_dict
from journeylib.workspace import load_workspace

UTC = dt.timezone.utc


@pytest.fixture
def ws(tmp_path, sample_dir):
    d = tmp_path / "ws"
    d.mkdir()
    shutil.copy(sample_dir / "journey.yml", d)
    with (sample_dir / "events.csv").open() as src:
        (d / "events.csv").write_text("".join(next(src) for _ in range(50)))
    return d


def quick(fn, seconds: float = 5.0):
    t0 = time.monotonic()
    with pytest.raises(JourneyError) as info:
        fn()
    assert time.monotonic() - t0 < seconds
    assert "\n" not in str(info.value)
    return str(info.value)


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.csv"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        assert "FIFO" in quick(lambda: open_regular(fifo))  # no writer: a blocking open would hang here
        assert "socket" in quick(lambda: open_regular(sock_path))
        assert "character device" in quick(lambda: open_regular("/dev/zero"))
        assert "folder" in quick(lambda: open_regular(tmp_path))
    finally:
        sock.close()


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_events_file_that_is_a_device_or_pipe_ends_at_once(ws, tmp_path, target, monkeypatch):
    (ws / "events.csv").unlink()
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    (ws / "events.csv").symlink_to(target)
    msg = quick(lambda: load_workspace(ws))
    assert "outside the workspace" in msg  # the link leaves the folder
    monkeypatch.setenv("JOURNEY_DATA_ROOTS", str(tmp_path) + os.pathsep + "/dev")
    msg = quick(lambda: load_workspace(ws))
    assert "not a regular file" in msg and "events.csv" in msg


def test_data_paths_stay_inside_the_workspace(ws, tmp_path, monkeypatch):
    secret = tmp_path / "secret.csv"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    m = yaml.safe_load((ws / "journey.yml").read_text())
    m["data"] = {**m.get("data", {}), "events": "../secret.csv", "learners": None}
    (ws / "journey.yml").write_text(yaml.safe_dump(m))
    msg = quick(lambda: load_workspace(ws))
    assert "outside the workspace" in msg and "root:x" not in msg
    monkeypatch.setenv("JOURNEY_DATA_ROOTS", str(tmp_path))
    msg = quick(lambda: load_workspace(ws))  # allowed now: read, and the error does not echo the file
    assert "required column" in msg and "root:x" not in msg and "bash" not in msg
    assert confine(ws, "sub/../events.csv").name == "events.csv"


def test_yaml_alias_bomb_and_huge_map_are_refused_quickly(ws):
    bomb = ['name: x', 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    (ws / "journey.yml").write_text("\n".join(bomb) + "\n")
    assert "alias bomb" in quick(lambda: load_map(ws / "journey.yml"), 3)
    (ws / "journey.yml").write_bytes(b"name: x\ndescription: '" + b"x" * (50 << 20) + b"'\n")
    assert "1 MiB limit" in quick(lambda: load_map(ws / "journey.yml"), 3)
    (ws / "journey.yml").write_text("a: &a [*a]\n")
    assert "cycle" in quick(lambda: load_map(ws / "journey.yml"))
    (ws / "journey.yml").write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    assert "journey.yml" in quick(lambda: load_map(ws / "journey.yml"))


def test_sources_yml_is_read_with_the_same_limits(tmp_path):
    from journeylib.sources.rules import load_rules

    p = tmp_path / "sources.yml"
    p.write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)))
    assert "alias bomb" in quick(lambda: load_rules(p))


def test_a_modest_alias_is_fine(tmp_path, tiny_map_dict):
    text = yaml.safe_dump(tiny_map_dict, sort_keys=False).replace("name: Course page", "name: &n Course page", 1)
    text = text.replace("name: Enrolment", "name: *n", 1)
    (tmp_path / "journey.yml").write_text(text)
    assert load_map(tmp_path / "journey.yml").touchpoints[1].name == "Course page"


def test_persona_rule_depth_and_length_limits(tiny_map_dict):
    for rule, msg in [("(" * 50 + "age_band = '18-24'" + ")" * 50, "nested 50 deep"),
                      ("NOT " * 60 + "device = 'x'", "nested 60 deep"),
                      ("device = 'x' OR " * 300 + "device = 'y'", "characters long")]:
        with pytest.raises(ValueError, match=msg):
            parse_where(rule)
        m = dict(tiny_map_dict, personas=[{"id": "p", "name": "P", "where": rule}])
        with pytest.raises(MapError, match=msg):
            map_from_dict(m)
    parse_where("(((" + "device = 'x'" + ")))")  # ordinary nesting is fine
    parse_where("NOT device = 'a' AND " * 40 + "device = 'b'")  # a long flat chain is not deep


def test_timestamps_outside_the_plausible_range_are_rejected(tmp_path, tiny_map_dict):
    rows = ["e1,L1,page,2025-03-01T10:00:00Z", "e2,L1,page,-0001-03-01T10:00:00Z", "e3,L1,page,9999-12-31T23:59:59Z",
            "e4,L1,page,1970-01-01T00:00:00Z", "e5,L1,page,1989-12-31", "e6,L1,page,2099-12-31"]
    p = tmp_path / "events.csv"
    p.write_text("event_id,learner_id,touchpoint_id,timestamp\n" + "\n".join(rows) + "\n")
    res = load_events(p, map_from_dict(tiny_map_dict))
    assert res.accepted["event_id"].to_list() == ["e1", "e6"]
    reasons = dict(zip(res.rejected["row"], res.rejected["reason"]))
    assert set(reasons.values()) <= {"timestamp out of range (1990-01-01..2100-01-01)", "unparseable timestamp"}
    assert {4, 5, 6} <= set(reasons) and len(reasons) == 4
    assert reasons[5] == reasons[6] == "timestamp out of range (1990-01-01..2100-01-01)"


def test_limits_from_the_environment():
    lim = limits_from_env({"JOURNEY_MAX_LINE_BYTES": "4096", "JOURNEY_TIMESTAMP_RANGE": "1960-01-01..2200-01-01"})
    assert lim.line_bytes == 4096 and lim.timestamp_min == dt.datetime(1960, 1, 1, tzinfo=UTC) and lim.field_bytes == Limits().field_bytes
    for bad in ({"JOURNEY_MAX_MAP_BYTES": "-5"}, {"JOURNEY_TIMESTAMP_RANGE": "2030-01-01..2020-01-01"}):
        with pytest.raises(JourneyError, match=next(iter(bad))):
            limits_from_env(bad)


def test_ingest_refuses_devices_and_reads_standard_input_on_purpose(tmp_path):
    from typer.testing import CliRunner

    from journeylib.cli import app

    fixtures = Path(__file__).resolve().parent / "fixtures" / "sources"
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(fixtures / "journey.yml", ws)
    shutil.copy(fixtures / "sources.yml", ws)
    runner = CliRunner()
    t0 = time.monotonic()
    res = runner.invoke(app, ["ingest", str(fixtures / "xapi_statements.jsonl"), "/dev/zero", "--into", str(ws), "--source-type", "xapi"])
    assert time.monotonic() - t0 < 10
    assert res.exit_code == 2 and "/dev/zero: not a regular file (a character device)" in res.stderr
    assert not (ws / "store.duckdb").exists()  # checked before the first file went in
    res = runner.invoke(app, ["ingest", "-", "--into", str(ws)], input="{}")
    assert res.exit_code == 2 and "needs --source-type" in res.stderr
    res = runner.invoke(app, ["ingest", "-", "--into", str(ws), "--source-type", "xapi"],
                        input=(fixtures / "xapi_statements.jsonl").read_text())
    assert res.exit_code == 1, res.output  # the fixture holds rejected statements on purpose
    saved = list((ws / "ingested").glob("stdin-*.jsonl"))
    assert len(saved) == 1 and saved[0].read_text() == (fixtures / "xapi_statements.jsonl").read_text()
    assert "read = " in res.stdout


def test_standard_input_from_dev_zero_or_too_long_ends_at_once(tmp_path, monkeypatch):
    """`journey ingest - < /dev/zero` (a real process): refused at the first NUL byte; nothing saved, nothing stored."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from journeylib.cli import app

    fixtures = Path(__file__).resolve().parent / "fixtures" / "sources"
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(fixtures / "journey.yml", ws)
    with open("/dev/zero", "rb") as zero:
        t0 = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "journeylib.cli", "ingest", "-", "--into", str(ws), "--source-type", "xapi"],
                             stdin=zero, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - t0 < 60  # mostly the interpreter starting on a busy machine
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "error: standard input: holds a NUL byte at byte 1: not text; nothing was saved"], res.stderr
    assert not list((ws / "ingested").glob("stdin-*")) and not (ws / "store.duckdb").exists()
    monkeypatch.setenv("JOURNEY_MAX_STDIN_BYTES", "100")
    res = CliRunner().invoke(app, ["ingest", "-", "--into", str(ws), "--source-type", "xapi"],
                             input=(fixtures / "xapi_statements.jsonl").read_text())
    assert res.exit_code == 2 and "larger than the 100-byte limit (raise it with JOURNEY_MAX_STDIN_BYTES)" in res.stderr
    assert not list((ws / "ingested").glob("stdin-*"))
