"""``journey validate``: exit codes, reasons with counts that reconcile, one-line fatal errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import polars as pl
import pytest

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def run(cmd: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=180, env=ENV)


@pytest.fixture
def ws_copy(tmp_path, sample_dir):
    dst = tmp_path / "ws"
    shutil.copytree(sample_dir, dst)
    return dst


def test_sample_is_clean(journey_cmd, sample_dir, truth):
    r = run(journey_cmd, "validate", sample_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    n = truth["learners"] + truth["events"]
    assert f"{n} rows read = {n} accepted + 0 rejected" in r.stdout


def test_console_script_available():
    exe = shutil.which("journey") or shutil.which("journey", path=os.path.dirname(os.sys.executable))
    assert exe, "the journey console script is installed with the package"
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0 and "validate" in r.stdout and "sample" in r.stdout


def test_bad_rows_reported_with_reconciling_counts(journey_cmd, ws_copy, tmp_path):
    events = ws_copy / "events.csv"
    lines = events.read_text().splitlines()
    injected = {
        "unknown touchpoint": ["x1,L00001,ghost,2025-03-01T10:00:00Z,viewed,,",
                               "x2,L00002,Course_Page,2025-03-01T10:00:00Z,viewed,,",
                               "x3,L00003,lesson_99,2025-03-01T10:00:00Z,viewed,,"],
        "unparseable timestamp": ["x4,L00001,course_page,31/02/2025 25:00,viewed,,",
                                  "x5,L00001,course_page,last tuesday,viewed,,"],
        "duplicate event_id": lines[1:5],
        "unknown learner": ["x6,L99999,course_page,2025-03-01T10:00:00Z,viewed,,"],
        "missing learner_id": ["x7,,course_page,2025-03-01T10:00:00Z,viewed,,",
                               "x8, ,course_page,2025-03-01T10:00:00Z,viewed,,"],
    }
    with events.open("a") as fh:
        for rows in injected.values():
            fh.write("\n".join(rows) + "\n")
    out_csv = tmp_path / "out" / "rejected.csv"
    r = run(journey_cmd, "validate", ws_copy, "--rejected", out_csv)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    for reason, rows in injected.items():
        m = re.search(rf"│\s*events\s*│\s*{re.escape(reason)}\s*│\s*(\d+)\s*│", r.stdout)
        assert m, (reason, r.stdout)
        assert int(m.group(1)) == len(rows), reason
    n_bad = sum(len(v) for v in injected.values())
    total = m = re.search(r"(\d+) rows read = (\d+) accepted \+ (\d+) rejected", r.stdout)
    read, acc, rej = map(int, total.groups())
    assert read == acc + rej and rej == n_bad
    assert read == len(lines) - 1 + n_bad + 3000
    # --rejected writes every rejected row with its reason
    rej_df = pl.read_csv(out_csv)
    assert rej_df.height == n_bad
    assert dict(rej_df.group_by("reason").len().iter_rows()) == {k: len(v) for k, v in injected.items()}
    assert {"table", "file", "row", "reason", "field", "record"} <= set(rej_df.columns)
    # rows are line numbers of events.csv (the header is line 1): the first injected row follows the original data
    assert rej_df.filter(pl.col("reason") == "unknown touchpoint")["row"].min() == len(lines) + 1


def test_missing_required_column_is_one_line_exit_2(journey_cmd, ws_copy):
    events = ws_copy / "events.csv"
    df = pl.read_csv(events, infer_schema=False).drop("timestamp")
    df.write_csv(events)
    r = run(journey_cmd, "validate", ws_copy)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert str(events) in lines[0] and "'timestamp'" in lines[0]


def test_yaml_syntax_error_names_file_and_line(journey_cmd, ws_copy):
    yml = ws_copy / "journey.yml"
    text = yml.read_text().splitlines()
    i = next(k for k, ln in enumerate(text) if ln.startswith("stages:"))
    text.insert(i + 1, "  - id: [broken")
    yml.write_text("\n".join(text) + "\n")
    r = run(journey_cmd, "validate", ws_copy)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    m = re.search(rf"{re.escape(str(yml))}:(\d+):", lines[0])
    assert m, lines[0]
    assert abs(int(m.group(1)) - (i + 2)) <= 1  # the broken line (or the next, where YAML notices)


def test_invalid_map_names_field(journey_cmd, ws_copy):
    yml = ws_copy / "journey.yml"
    yml.write_text(yml.read_text().replace("stage: engagement", "stage: engagment", 1))
    r = run(journey_cmd, "validate", ws_copy)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown stage 'engagment'" in lines[0] and ".stage" in lines[0]


@pytest.mark.parametrize("what", ["missing_folder", "empty_events"])
def test_other_fatal_inputs(journey_cmd, ws_copy, tmp_path, what):
    target = ws_copy
    if what == "missing_folder":
        target = tmp_path / "does-not-exist"
    else:
        (ws_copy / "events.csv").write_text("")
    r = run(journey_cmd, "validate", target)
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


def test_undecodable_row_is_rejected_alone(journey_cmd, ws_copy):
    with (ws_copy / "learners.csv").open("ab") as fh:
        fh.write(b"L\xff\xfe,,2025-01-01,x,x,x,x,x,x,x\n")
    r = run(journey_cmd, "validate", ws_copy)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "not valid utf-8 text" in r.stdout and "3002" in r.stdout  # the line it is on


def test_gap_summary(journey_cmd, ws_copy):
    with (ws_copy / "learners.csv").open("a") as fh:
        fh.write("L99998,,25-34,Europe,employed,laptop,none,master,search\n")
    r = run(journey_cmd, "validate", ws_copy)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Learners with no events: 1" in r.stdout
    assert "Touchpoints with no events: none" in r.stdout
    assert "Events from 2025-01-" in r.stdout and "(data end)" in r.stdout
