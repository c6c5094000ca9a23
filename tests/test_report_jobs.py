"""Report notebooks side by side: ``run_notebooks`` runs ``jobs`` at a time, keeps the order, and fails cleanly.

The runner itself is tested with plain functions (threads that wait for each
other prove that two run at once); the real notebooks run two at a time in
``test_two_kernels_side_by_side_leave_the_working_folder_alone``.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from typer.testing import CliRunner

from journeylib.report import default_jobs, run_notebooks


class Tracker:
    """Records which names started and the most that ran at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started: list[str] = []

    def __enter__(self):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.running -= 1


def test_two_at_a_time_in_the_order_given():
    barrier = threading.Barrier(2, timeout=20)
    t = Tracker()

    def run(name: str) -> str:
        t.started.append(name)
        with t:
            barrier.wait()          # returns only when two run at once
            return name.upper()

    assert run_notebooks(["a", "b", "c", "d"], run, jobs=2) == ["A", "B", "C", "D"]
    assert t.most == 2 and t.started[:2] == ["a", "b"]


def test_one_job_runs_one_at_a_time():
    t = Tracker()

    def run(name: str) -> str:
        with t:
            time.sleep(0.05)
        return name

    assert run_notebooks(["a", "b", "c"], run, jobs=1) == ["a", "b", "c"]
    assert t.most == 1


def test_a_failure_starts_nothing_more_and_waits_for_the_running():
    started, finished = [], []

    def run(name: str) -> str:
        started.append(name)
        if name == "b":
            raise ValueError("b failed")
        time.sleep(1.0 if name == "a" else 0.5)
        finished.append(name)
        return name

    with pytest.raises(ValueError, match="b failed"):
        run_notebooks(["a", "b", "c", "d", "e"], run, jobs=2)
    assert "a" in finished                         # the one already running was not abandoned
    assert "d" not in started and "e" not in started


def test_the_earliest_failure_in_order_is_the_one_raised():
    def run(name: str) -> str:
        if name == "a":
            time.sleep(0.5)
            raise ValueError("a failed")
        raise KeyError("b failed at once")

    with pytest.raises(ValueError, match="a failed"):
        run_notebooks(["a", "b"], run, jobs=2)


def test_progress_callbacks_see_every_notebook():
    seen = []
    run_notebooks(["x", "y"], str, jobs=2, on_start=lambda n, i: seen.append(("start", n, i)),
                  on_done=lambda n: seen.append(("done", n)))
    assert sorted(seen) == [("done", "x"), ("done", "y"), ("start", "x", 0), ("start", "y", 1)]


def test_default_jobs():
    assert default_jobs("spark") == 1
    assert default_jobs("polars", notebooks=1) == 1
    assert 1 <= default_jobs("polars") <= min(4, os.cpu_count() or 1)


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_two_kernels_side_by_side_leave_the_working_folder_alone(tmp_path):
    """Two real notebooks at once (``-j 2``): both pages, in index order, and this process's working folder unchanged."""
    from browser.harness import SAMPLE
    from journeylib.cli import app

    cwd = os.getcwd()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(SAMPLE), "--notebooks", "journey_map,persona_funnels", "--out", str(out),
                                   "--jobs", "2", "--period", "2025-06"])
    assert res.exit_code == 0, res.output
    assert os.getcwd() == cwd
    assert (out / "journey_map.html").exists() and (out / "persona_funnels.html").exists()
    text = res.output
    assert text.index("The journey map") < text.index("Persona funnels")   # listed in the order asked for


def test_jobs_below_one_is_refused(tmp_path):
    from browser.harness import SAMPLE
    from journeylib.cli import app

    res = CliRunner().invoke(app, ["report", str(SAMPLE), "--jobs", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--jobs" in res.output
