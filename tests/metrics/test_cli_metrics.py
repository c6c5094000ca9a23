"""journey metrics NAME DIR: outputs, and one-line errors with exit 2."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from journeylib.cli import app

runner = CliRunner()


@pytest.mark.parametrize("name, suffix, extra", [
    ("funnel", ".csv", ["--funnel", "course", "--by", "persona", "--mode", "strict"]),
    ("dropoff", ".parquet", ["--by", "persona", "--by", "device"]),
    ("transitions", ".json", []),
    ("kpis", ".csv", ["--period", "2025-06"]),
    ("emotion", ".parquet", ["--by", "persona"]),
    ("segments", ".csv", ["--by", "accessibility", "--funnel", "course", "--window", "60"]),
    ("survival", ".csv", ["--by", "persona"]),
    ("survival", ".json", ["--origin", "lesson_1", "--period", "2025-06"]),
])
def test_metric_tables(name, suffix, extra, sample_dir, tmp_path):
    out = tmp_path / f"{name}{suffix}"
    res = runner.invoke(app, ["metrics", name, str(sample_dir), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    if suffix == ".csv":
        df = pl.read_csv(out)
    elif suffix == ".parquet":
        df = pl.read_parquet(out)
    else:
        data = json.loads(out.read_text())
        df = pl.DataFrame(data["summary"] if name == "survival" else data)
    assert df.height > 0


def test_review_json_and_folder(sample_dir, tmp_path, truth):
    out = tmp_path / "review.json"
    res = runner.invoke(app, ["metrics", "review", str(sample_dir), "--period", truth["sample_period"], "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {"scorecard", "changes", "hotspots", "segment_alerts", "interventions", "findings", "period"} <= set(data)
    assert data["findings"]
    folder = tmp_path / "review"
    res = runner.invoke(app, ["metrics", "review", str(sample_dir), "--period", truth["sample_period"], "--out", str(folder)])
    assert res.exit_code == 0, res.output
    assert (folder / "scorecard.csv").exists() and (folder / "findings.txt").read_text().strip()


def test_review_compares_only_the_given_attributes(sample_dir, tmp_path, truth):
    out = tmp_path / "review.json"
    res = runner.invoke(app, ["metrics", "review", str(sample_dir), "--period", truth["sample_period"],
                              "--by", "region", "--out", str(out)])
    assert res.exit_code == 0, res.output
    alerts = json.loads(out.read_text())["segment_alerts"]
    attributes = {row["attribute"] for row in alerts} if isinstance(alerts, list) else set(alerts.get("attribute", []))
    assert attributes <= {"region"}


@pytest.mark.parametrize("args, message", [
    (["metrics", "nope", "{d}", "--out", "{o}"], "unknown metric"),
    (["metrics", "funnel", "{d}", "--funnel", "nope", "--out", "{o}"], "unknown funnel"),
    (["metrics", "funnel", "{d}", "--by", "nope", "--out", "{o}"], "unknown learner column"),
    (["metrics", "funnel", "{d}", "--mode", "sideways", "--out", "{o}"], "unknown mode"),
    (["metrics", "kpis", "{d}", "--period", "2025-13", "--out", "{o}"], "invalid period"),
    (["metrics", "survival", "{d}", "--origin", "nowhere", "--out", "{o}"], "unknown origin"),
    (["metrics", "segments", "{d}", "--by", "persona", "--by", "nope", "--out", "{o}"], "unknown learner column"),
    (["metrics", "funnel", "{d}", "--out", "{x}"], "--out must end"),
    (["metrics", "funnel", "{missing}", "--out", "{o}"], "not found"),
])
def test_bad_input_exits_2_with_one_line(args, message, sample_dir, tmp_path):
    subst = {"d": str(sample_dir), "o": str(tmp_path / "o.csv"), "x": str(tmp_path / "o.txt"), "missing": str(tmp_path / "nowhere")}
    res = runner.invoke(app, [a.format(**subst) for a in args])
    assert res.exit_code == 2
    text = (res.stderr if hasattr(res, "stderr") and res.stderr else res.output).strip()
    assert message in text and len(text.splitlines()) == 1, text
    assert "Traceback" not in text


def test_help():
    res = runner.invoke(app, ["metrics", "--help"])
    assert res.exit_code == 0 and "--funnel" in res.output and "review" in res.output
