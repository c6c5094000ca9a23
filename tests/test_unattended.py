"""Scheduled report runs: one run per output folder at a time; a run killed midway leaves the previous reports."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.outputs import folder_lock
from journeylib.report import MANIFEST


def _previous_report(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True)
    (out / "index.html").write_text("previous index", encoding="utf-8")
    (out / "journey_map.html").write_text("previous page", encoding="utf-8")
    (out / MANIFEST).write_text('{"files": ["index.html", "journey_map.html"]}', encoding="utf-8")
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _fake_execute(src, dst, **_):
    shutil.copy(src, dst)


def test_second_run_on_the_same_folder_is_refused_at_once(tmp_path, sample_dir, monkeypatch):
    out = tmp_path / "reports"
    before = _previous_report(out)
    monkeypatch.setattr("papermill.execute_notebook", _fake_execute)
    with folder_lock(out):  # a run in progress
        t0 = time.monotonic()
        res = CliRunner().invoke(app, ["report", str(sample_dir), "--out", str(out), "--notebooks", "journey_map"])
        assert time.monotonic() - t0 < 10
    assert res.exit_code == 2
    line = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(line) == 1 and f"another journey report run (pid {os.getpid()}" in line[0] and str(out) in line[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # (once it is over, the next run goes ahead: below)


@pytest.mark.slow
def test_run_killed_midway_leaves_previous_reports_and_no_lock(tmp_path, sample_dir, monkeypatch):
    out = tmp_path / "reports"
    before = _previous_report(out)
    started = tmp_path / "started"
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    params = nbformat.v4.new_code_cell("workspace = None")
    params.metadata["tags"] = ["parameters"]
    slow = nbformat.v4.new_code_cell(f"import pathlib, time\npathlib.Path({str(started)!r}).write_text('x')\ntime.sleep(300)")
    nb = nbformat.v4.new_notebook(cells=[params, slow])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(nbs / "journey_map.ipynb"))
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "journeylib.cli", "report", str(sample_dir), "--out", str(out),
                             "--notebooks", "journey_map", "--notebooks-dir", str(nbs)],
                            stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not started.exists():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "the notebook did not start"
            time.sleep(0.2)
        # a second run while the first is in its notebook: refused
        res = CliRunner().invoke(app, ["report", str(sample_dir), "--out", str(out), "--notebooks", "journey_map"])
        assert res.exit_code == 2 and "another journey report run" in res.stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its kernel, mid-notebook
        proc.wait(timeout=60)
        log.close()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # previous reports intact
    assert list(tmp_path.glob(".reports.partial-*"))  # the killed run's partial folder is left behind ...
    monkeypatch.setattr("papermill.execute_notebook", _fake_execute)
    res = CliRunner().invoke(app, ["report", str(sample_dir), "--out", str(out), "--notebooks", "journey_map"])
    assert res.exit_code == 0, res.output  # ... no stale lock: the next run goes ahead
    assert not list(tmp_path.glob(".reports.partial-*"))  # and clears the partial folder
    assert (out / "index.html").read_text() != "previous index"
