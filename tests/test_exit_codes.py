"""Exit codes a scheduler can trust: every command, with a fault planted at each stage.

0 clean, 1 rows rejected, 2 bad input or usage (one line), 3 internal error
(one line naming the log file that holds the traceback), never a bare
traceback. Output paths are checked before any work starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.errors import DataError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
OULAD_DIR = FIXTURES  # the command is stopped at its first stage, before the files are read


@pytest.fixture
def env(tmp_path, sample_dir, monkeypatch):
    ws = tmp_path / "ws"
    shutil.copytree(sample_dir, ws)
    logs = tmp_path / "logs"
    monkeypatch.setenv("JOURNEY_LOG_DIR", str(logs))
    return {"ws": str(ws), "tmp": str(tmp_path), "xapi": str(FIXTURES / "xapi_statements.jsonl"), "oulad": str(OULAD_DIR),
            "logs": logs}


def _fake_execute(src, dst, **_):
    """Stands in for papermill: the notebook 'runs' without a kernel."""
    shutil.copy(src, dst)


REPORT = ["report", "{ws}", "--out", "{tmp}/reports", "--notebooks", "journey_map"]
#: (command line, where the fault is planted, expected code for bad input, expected code for a bug)
STAGES = [
    (["validate", "{ws}"], "journeylib.validation.load_map", 2, 3),
    (["validate", "{ws}"], "journeylib.validation.load_learners", 2, 3),
    (["validate", "{ws}"], "journeylib.load.EventChecker.check", 2, 3),
    (["validate", "{ws}"], "journeylib.validation._cross_batch_duplicates", 2, 3),
    (["validate", "{ws}"], "journeylib.validation._summary", 2, 3),
    (["validate", "{ws}"], "journeylib.validation._coverage", 2, 3),
    (["validate", "{ws}"], "journeylib.versions.record_version", 0, 3),  # a map history that cannot be kept is not fatal
    (["validate", "{ws}", "--rejected", "{tmp}/r.csv"], "journeylib.validation._write_rejected", 2, 3),
    (["metrics", "funnel", "{ws}", "--out", "{tmp}/f.csv"], "journeylib.workspace.load_workspace", 2, 3),
    (["metrics", "funnel", "{ws}", "--out", "{tmp}/f.csv"], "journeylib.metrics.funnel", 2, 3),
    (["metrics", "funnel", "{ws}", "--out", "{tmp}/f.csv"], "journeylib.exports.write_table", 2, 3),
    (["metrics", "review", "{ws}", "--period", "month", "--out", "{tmp}/rv"], "journeylib.metrics.review", 2, 3),
    (["sample", "{tmp}/s", "--learners", "20"], "journeylib.sample.generate", 2, 3),
    (["ingest", "{xapi}", "--into", "{ws}", "--source-type", "xapi"], "journeylib.sources.rules.find_rules", 2, 3),
    (["ingest", "{xapi}", "--into", "{ws}", "--source-type", "xapi"], "journeylib.store.ingest_files", 2, 3),
    (["ingest", "--rebuild", "--into", "{ws}"], "journeylib.store.rebuild_store", 2, 3),
    (["oulad", "{oulad}", "--into", "{tmp}/o"], "journeylib.sources.oulad.build_oulad_workspace", 2, 3),
    (["map", "export", "{ws}", "--xlsx", "{tmp}/map.xlsx"], "journeylib.spreadsheet.map_data_from_file", 2, 3),
    (["map", "export", "{ws}", "--xlsx", "{tmp}/map.xlsx"], "journeylib.spreadsheet.write_workbook", 2, 3),
    (["map", "import", "{tmp}/map.xlsx", "--into", "{ws}"], "journeylib.spreadsheet.read_map_data", 2, 3),
    (["personas", "suggest", "{ws}", "--out", "{tmp}/p.csv"], "journeylib.personas.suggest_personas", 2, 3),
    (["personas", "suggest", "{ws}", "--out", "{tmp}/p.csv"], "journeylib.exports.write_table", 2, 3),
    (REPORT, "journeylib.workspace.load_workspace", 2, 3),
    (REPORT, "papermill.execute_notebook", 3, 3),  # a notebook that fails is an internal error
    (REPORT, "journeylib.report.export_html", 2, 3),
    (REPORT, "journeylib.report.write_index", 2, 3),
    (REPORT, "journeylib.report._publish", 2, 3),
]


def _plant(monkeypatch, target: str, exc: BaseException) -> None:
    module, _, attr = target.rpartition(".")
    if module.endswith("EventChecker"):
        import journeylib.load as load

        def boom(*a, **k):
            raise exc

        monkeypatch.setattr(load.EventChecker, attr, boom)
        return

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(target, boom)


def _run(args: list[str], env: dict) -> tuple[int, list[str], str]:
    res = CliRunner().invoke(app, [a.format(**env) for a in args])
    lines = [ln for ln in (res.stderr or "").splitlines() if ln.strip() and not ln.startswith("running ")]  # not the progress bar
    return res.exit_code, lines, res.output


@pytest.mark.parametrize("args, target, bad_input, bug", STAGES, ids=[f"{s[0][0]}:{s[1].rsplit('.', 1)[1]}" for s in STAGES])
def test_fault_at_each_stage(env, monkeypatch, args, target, bad_input, bug):
    if args[0] == "report":
        monkeypatch.setattr("papermill.execute_notebook", _fake_execute)
    # bad input planted at this stage: 2 (or the stage's own code), one line naming it
    _plant(monkeypatch, target, DataError("planted bad input", file="somewhere.csv", line=7))
    code, lines, output = _run(args, env)
    assert code == bad_input, output
    assert len(lines) == 1 and "Traceback" not in output, output
    assert ("somewhere.csv:7" in lines[0] and "planted bad input" in lines[0]) or bad_input == 3
    # a bug planted at this stage: 3, one line that says so and names the log, the traceback in the log
    _plant(monkeypatch, target, ZeroDivisionError("planted bug"))
    code, lines, output = _run(args, env)
    assert code == bug, output
    assert len(lines) == 1 and "Traceback" not in output, output
    if args[0] != "report" or "execute_notebook" not in target:
        assert "internal error" in lines[0]
        log = Path(lines[0].rsplit("traceback is in ", 1)[1].strip())
        assert log.parent == env["logs"] and "ZeroDivisionError: planted bug" in log.read_text()
        assert "planted bug" not in lines[0]  # the message of an unexpected error may quote data: only the log has it


def test_memory_error_and_interrupt(env, monkeypatch):
    _plant(monkeypatch, "journeylib.validation._summary", MemoryError())
    code, lines, _ = _run(["validate", "{ws}"], env)
    assert code == 3 and "ran out of memory" in lines[0]
    _plant(monkeypatch, "journeylib.validation._summary", KeyboardInterrupt())
    code, lines, _ = _run(["validate", "{ws}"], env)
    assert code == 130


def test_usage_errors_exit_2(env):
    for args in (["validate"], ["metrics", "funnel"], ["report", "{ws}", "--min-count", "lots"], ["nope"]):
        code, _, output = _run(args, env)
        assert code == 2 and "Traceback" not in output, (args, output)


# --------------------------------------------------------------------------
# Output paths are checked before any work starts
# --------------------------------------------------------------------------

@pytest.fixture
def no_work(monkeypatch):
    """Loading the workspace is the first piece of work: it must not happen."""
    def boom(*a, **k):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr("journeylib.workspace.load_workspace", boom)
    monkeypatch.setattr("journeylib.validation.validate_workspace", boom)
    monkeypatch.setattr("journeylib.sample.generate", boom)
    monkeypatch.setattr("journeylib.spreadsheet.map_data_from_file", boom)


@pytest.mark.parametrize("args, message", [
    (["report", "{ws}", "--out", "/"], "root folder"),
    (["report", "{ws}", "--out", "{home}"], "home folder"),
    (["report", "{ws}", "--out", "{file}"], "not a folder"),
    (["report", "{ws}", "--out", "{ws}"], "holds no previous report"),
    (["report", "{ws}", "--out", "{file}/sub"], "is not a folder"),
    (["report", "{ws}", "--out", "{readonly}/r"], "no permission"),
    (["metrics", "funnel", "{ws}", "--out", "{tmp}/adir.csv"], "is a folder"),
    (["metrics", "funnel", "{ws}", "--out", "{ws}/events.csv"], "input of this command"),
    (["metrics", "funnel", "{ws}", "--out", "{readonly}/f.csv"], "no permission"),
    (["validate", "{ws}", "--rejected", "{ws}/learners.csv"], "input of this command"),
    (["validate", "{ws}", "--rejected", "{tmp}/r.txt"], "must end in .csv, .xlsx"),
    (["personas", "suggest", "{ws}", "--out", "{tmp}/p.txt"], "must end in .csv, .xlsx"),
    (["personas", "suggest", "{ws}", "--yaml", "{ws}/journey.yml"], "input of this command"),
    (["map", "export", "{ws}", "--xlsx", "{tmp}/adir.csv"], "must end in .xlsx"),
    (["map", "export", "{ws}", "--csv", "{file}"], "not a folder"),
    (["sample", "{ws}"], "not empty"),
    (["sample", "/"], "root folder"),
])
def test_output_paths_checked_before_work(env, monkeypatch, no_work, tmp_path, args, message):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.csv").mkdir()
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    real_access = os.access
    monkeypatch.setattr("journeylib.outputs.os.access",  # also when the tests run as root
                        lambda p, mode: False if Path(p) == readonly else real_access(p, mode))
    if args[0] == "sample":
        (Path(env["ws"]) / "ground_truth.json").unlink()
    code, lines, output = _run(args, {**env, "home": str(home), "file": str(tmp_path / "afile"), "readonly": str(readonly)})
    assert code == 2, output
    assert len(lines) == 1 and message in lines[0], output


def test_report_force_writes_into_a_folder_without_a_previous_report(env, monkeypatch):
    out = Path(env["tmp"]) / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    monkeypatch.setattr("papermill.execute_notebook", _fake_execute)
    code, lines, output = _run(["report", "{ws}", "--out", str(out), "--notebooks", "journey_map"], env)
    assert code == 2 and "--force" in lines[0]
    code, _, output = _run(["report", "{ws}", "--out", str(out), "--notebooks", "journey_map", "--force"], env)
    assert code == 0, output
    assert (out / "notes.txt").read_text() == "keep me" and (out / "index.html").exists()
