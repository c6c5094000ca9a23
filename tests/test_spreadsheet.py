"""The map as a spreadsheet and back: lossless round trip, edits, errors naming sheet/row/column, safe cells."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import shutil
from pathlib import Path

import openpyxl
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.errors import MapError
from journeylib.model import KPI_METRICS, RATE_METRICS, JourneyMap, load_map
from journeylib.spreadsheet import layout, map_data_from_file, read_map, read_map_data, write_csv_folder, write_workbook

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "journey.yml"

# ---------------------------------------------------------------------------
# generated maps
# ---------------------------------------------------------------------------

# printable text, with the characters a spreadsheet treats as a formula start among the first ones
_alphabet = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters="=+-@'\t")
text = st.text(_alphabet, max_size=12)
words = st.text(_alphabet, min_size=1, max_size=12).filter(lambda s: s.strip() == s and s.strip())
ident = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


def _target(metric: str):
    if metric in RATE_METRICS:
        return st.floats(0, 1, allow_nan=False)
    if metric == "emotion":
        return st.floats(-2, 2, allow_nan=False)
    if metric == "nps":
        return st.integers(-100, 100)
    return st.one_of(st.integers(0, 500), st.floats(0, 1e6, allow_nan=False))


@st.composite
def kpis(draw):
    metric = draw(st.sampled_from(sorted(KPI_METRICS)))
    k = {"metric": metric, "target": draw(_target(metric))}
    if draw(st.booleans()):
        k["direction"] = draw(st.sampled_from(["higher", "lower"]))
    if draw(st.booleans()):
        k["tolerance"] = draw(st.floats(0, 10, allow_nan=False))
    if draw(st.booleans()):
        k["min_n"] = draw(st.integers(1, 100))
    if metric == "reach" and draw(st.booleans()):
        k["per"] = draw(st.sampled_from(["day", "week", "month", "quarter", "year"]))
    return k


@st.composite
def maps(draw):
    stage_ids = draw(st.lists(ident, min_size=1, max_size=3, unique=True))
    stages = [{"id": s, "name": draw(words), **({"learner_goal": draw(text)} if draw(st.booleans()) else {})} for s in stage_ids]
    tp_ids = draw(st.lists(ident, min_size=1, max_size=4, unique=True))
    stage_of = sorted(draw(st.lists(st.integers(0, len(stage_ids) - 1), min_size=len(tp_ids), max_size=len(tp_ids))))
    labels = ["curious", "proud", "frustrated", "Calm"]
    tps = []
    for tid, si in zip(tp_ids, stage_of):
        tp = {"id": tid, "name": draw(words), "stage": stage_ids[si],
              "target_emotion": {"label": draw(st.sampled_from(labels))}}
        if draw(st.booleans()):
            tp["target_emotion"]["valence"] = draw(st.floats(-2, 2, allow_nan=False))
        for f in ("channel", "purpose"):
            if draw(st.booleans()):
                tp[f] = draw(text)
        for f in ("pain_points", "opportunities"):
            if draw(st.booleans()):
                tp[f] = draw(st.lists(st.text(_alphabet | st.just("\n"), max_size=10), max_size=3))
        if draw(st.booleans()):
            tp["kpis"] = draw(st.lists(kpis(), max_size=3, unique_by=lambda k: k["metric"]))
        if draw(st.booleans()):
            tp["expected_within_days"] = draw(st.floats(0.5, 60, allow_nan=False))
        tps.append(tp)
    m = {"name": draw(words), "stages": stages, "touchpoints": tps,
         "emotion_scale": {"min": -2, "max": 2, "labels": {"curious": 1, "proud": 2, "frustrated": -2, "calm": 0.5}}}
    if draw(st.booleans()):
        m["description"] = draw(text)
    if draw(st.booleans()):
        m["dormancy_days"] = draw(st.floats(1, 90, allow_nan=False))
    if draw(st.booleans()):
        m["data"] = {"separator": draw(st.sampled_from([",", ";", "\t"])), "timezone": "Europe/Berlin"}
    if draw(st.booleans()):
        m["personas"] = [{"id": "p1", "name": draw(words), "where": draw(st.sampled_from(
            ["region = 'Europe'", "age >= 30 AND device IN ('mobile', 'tablet')", "x IS NULL OR y LIKE '=%'"]))}]
    if draw(st.booleans()):
        m["funnels"] = {draw(ident): draw(st.lists(st.sampled_from(tp_ids), min_size=1, unique=True))}
    if draw(st.booleans()):
        m["interventions"] = [{"id": "iv1", "date": draw(st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1))),
                               "touchpoint": tp_ids[0], "description": draw(text)}]
    return m


# no shrinking phase: writing workbooks is slow, and a failing example is readable as drawn
_settings = settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@_settings
@given(maps())
def test_round_trip_xlsx_is_lossless(tmp_path_factory, data):
    expected = JourneyMap.model_validate(data)
    p = write_workbook(data, tmp_path_factory.mktemp("x") / "map.xlsx")
    got_data, got = read_map_data(p)
    assert got == expected
    # fields left out stay left out (so a default still follows e.g. a changed target)
    assert JourneyMap.model_validate(yaml.safe_load(yaml.safe_dump(got_data))) == expected


@_settings
@given(maps())
def test_round_trip_csv_is_lossless(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("c")
    write_csv_folder(data, folder)
    assert read_map(folder) == JourneyMap.model_validate(data)


def test_sample_round_trip_both_formats(tmp_path):
    data = map_data_from_file(SAMPLE)
    write_csv_folder(data, tmp_path / "csv")
    want = load_map(SAMPLE)
    assert read_map(write_workbook(data, tmp_path / "m.xlsx")) == want
    assert read_map(tmp_path / "csv") == want
    assert read_map(write_workbook(want, tmp_path / "from_model.xlsx")) == want  # from a validated map too


def _model_paths(model, prefix=()):
    from pydantic import BaseModel

    from journeylib.spreadsheet import _unwrap, kind_of

    for name, f in model.model_fields.items():
        path = prefix + (name,)
        kind = kind_of(f.annotation)
        tp = _unwrap(f.annotation)
        if kind == "model" and issubclass(tp, BaseModel):
            yield from _model_paths(tp, path)  # a nested settings model is placed by its fields
        else:
            yield ".".join(path)


def test_every_model_field_has_a_place_in_the_workbook():
    places = set()
    for t in layout():
        places.add(t.path)
        prefix = f"{t.path}." if t.path else ""
        places |= {prefix + c.header for c in t.columns}
    for path in _model_paths(JourneyMap):
        if path in ("stages", "touchpoints", "personas", "interventions", "funnels", "emotion_scale", "data"):
            continue
        parts = path.split(".")
        assert any(path == p or path.startswith(p + ".") for p in places) or ".".join(parts[:2]) in places, path
    for t in layout():
        if t.kind in ("items", "children"):
            for name in t.model.model_fields:
                assert any(c.path[0] == name for c in t.columns) or any(x.path == f"{t.path}.{name}" for x in layout()), (t.path, name)


# ---------------------------------------------------------------------------
# an edited workbook
# ---------------------------------------------------------------------------

def _row_of(ws, header, value):
    col = [c.value for c in ws[1]].index(header)
    for row in ws.iter_rows(min_row=2):
        if row[col].value == value:
            return row[0].row
    raise KeyError(value)


def test_edited_workbook_imports_with_exactly_those_changes(tmp_path):
    data = map_data_from_file(SAMPLE)
    p = write_workbook(data, tmp_path / "map.xlsx")
    wb = openpyxl.load_workbook(p)
    kp = wb["KPIs"]
    heads = [c.value for c in kp[1]]
    r = next(row[0].row for row in kp.iter_rows(min_row=2)
             if row[0].value == "orientation" and row[heads.index("metric")].value == "conversion")
    kp.cell(row=r, column=heads.index("target") + 1, value=0.85)
    tp = wb["Touchpoints"]
    heads = [c.value for c in tp[1]]
    at = _row_of(tp, "id", "quiz_1") + 1
    tp.insert_rows(at)
    new = {"id": "study_group", "name": "Peer study group", "stage": "engagement", "channel": "platform",
           "purpose": "Learn together", "target_emotion.label": "motivated", "pain_points": "Hard to schedule\nSmall groups only"}
    for h, v in new.items():
        tp.cell(row=at, column=heads.index(h) + 1, value=v)
    wb.save(p)

    expected = copy.deepcopy(data)
    i = [t["id"] for t in expected["touchpoints"]].index("orientation")
    expected["touchpoints"][i]["kpis"][0]["target"] = 0.85
    j = [t["id"] for t in expected["touchpoints"]].index("quiz_1") + 1
    expected["touchpoints"].insert(j, {"id": "study_group", "name": "Peer study group", "stage": "engagement",
                                       "channel": "platform", "purpose": "Learn together",
                                       "target_emotion": {"label": "motivated"},
                                       "pain_points": ["Hard to schedule", "Small groups only"]})
    got_data, got = read_map_data(p)
    assert got == JourneyMap.model_validate(expected)
    assert got_data["touchpoints"][j] == expected["touchpoints"][j]

    from journeylib.versions import design_diff

    assert sorted(design_diff(load_map(SAMPLE), got)["change"].to_list()) == ["KPI target changed", "touchpoint added"]


# ---------------------------------------------------------------------------
# errors name sheet, row and column
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_xlsx(tmp_path_factory):
    return write_workbook(map_data_from_file(SAMPLE), tmp_path_factory.mktemp("wb") / "sample.xlsx")


def _edit(tmp_path, sheet, cell, value, name="bad.xlsx", source=None):
    p = tmp_path / name
    shutil.copy(source, p) if source else write_workbook(map_data_from_file(SAMPLE), p)
    wb = openpyxl.load_workbook(p)
    wb[sheet][cell] = value
    wb.save(p)
    return p


@pytest.mark.parametrize("sheet, cell, value, message", [
    ("Touchpoints", "C4", "engagment", "sheet Touchpoints, row 4, column C (stage): unknown stage 'engagment'"),
    ("KPIs", "C5", "high", "sheet KPIs, row 5, column C (target): Input should be a valid number"),
    ("KPIs", "B3", "speed", "sheet KPIs, row 3, column B (metric): unknown KPI metric 'speed'"),
    ("KPIs", "A6", "nowhere", "sheet KPIs, row 6, column A (touchpoint): unknown touchpoint 'nowhere'"),
    ("KPIs", "C2", 3, "sheet KPIs, row 2, column C (target): conversion is a share: target must be in 0..1, got 3"),
    ("Touchpoints", "K1", "colour", "sheet Touchpoints, row 1, column K (colour): unknown column"),
    ("Touchpoints", "E3", "=1+1", "sheet Touchpoints, row 3, column E (purpose): this cell holds a formula"),
    ("Funnels", "B3", "nowhere", "sheet Funnels, row 3, column B (touchpoint): unknown touchpoint 'nowhere'"),
    ("Personas", "D2", "lower(region) = 'x'", "sheet Personas, row 2, column D (where): rule"),
    ("Interventions", "B2", "someday", "sheet Interventions, row 2, column B (date): Input should be a valid date"),
    ("Map", "B3", None, None),  # description emptied: fine
    ("Map", "B2", None, "sheet Map, row 2, column B (name): required field is missing"),
    ("Map", "B7", "soon", "sheet Map, row 7, column B (dormancy_days): Input should be a valid number"),
    ("Stages", "A3", "awareness", "sheet Stages, row 3, column A (id): duplicate id 'awareness'"),
    ("Touchpoints", "B2", None, "sheet Touchpoints, row 2, column B (name): required field is missing"),
])
def test_errors_name_sheet_row_and_column(tmp_path, sample_xlsx, sheet, cell, value, message):
    p = _edit(tmp_path, sheet, cell, value, source=sample_xlsx)
    if message is None:
        read_map(p)
        return
    with pytest.raises(MapError) as e:
        read_map(p)
    assert str(e.value).startswith(f"{p}: {message}"), str(e.value)


def test_missing_sheet_and_csv_errors(tmp_path):
    p = write_workbook(map_data_from_file(SAMPLE), tmp_path / "m.xlsx")
    wb = openpyxl.load_workbook(p)
    del wb["Touchpoints"]
    wb.save(p)
    with pytest.raises(MapError, match="no sheet 'Touchpoints'"):
        read_map(p)
    folder = tmp_path / "csv"
    write_csv_folder(map_data_from_file(SAMPLE), folder)
    rows = list(csv.reader((folder / "kpis.csv").open(encoding="utf-8-sig")))
    rows[4][2] = "lots"
    with (folder / "kpis.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(MapError) as e:
        read_map(folder)
    assert "sheet kpis.csv, row 5, column C (target): Input should be a valid number" in str(e.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MapError, match="expected an .xlsx workbook"):
        read_map(tmp_path / "notes.txt")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(MapError, match="cannot read the workbook"):
        read_map(tmp_path / "broken.xlsx")


# ---------------------------------------------------------------------------
# formula injection
# ---------------------------------------------------------------------------

PAYLOADS = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "'already quoted"]


def test_cells_are_safe_against_formula_injection_and_restored(tmp_path):
    data = map_data_from_file(SAMPLE)
    data["touchpoints"][0]["purpose"] = PAYLOADS[0]
    data["touchpoints"][0]["pain_points"] = PAYLOADS[1:3]
    data["touchpoints"][1]["channel"] = PAYLOADS[3]
    data["stages"][0]["learner_goal"] = PAYLOADS[4]
    data["stages"][1]["learner_goal"] = PAYLOADS[5]
    data["description"] = PAYLOADS[6]
    p = write_workbook(data, tmp_path / "m.xlsx")
    folder = tmp_path / "csv"
    write_csv_folder(data, folder)
    wb = openpyxl.load_workbook(p)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate)
                if isinstance(c.value, str):
                    assert not c.value.startswith(("=", "+", "-", "@", "\t", "\r")), (ws.title, c.coordinate, c.value)
    for f in folder.glob("*.csv"):
        for row in csv.reader(f.open(encoding="utf-8-sig")):
            for v in row:
                if v.startswith(("=", "+", "@", "\t", "\r")) or (v.startswith("-") and not _is_number(v)):
                    pytest.fail(f"{f.name}: {v!r}")
    want = JourneyMap.model_validate(data)
    assert read_map(folder) == want
    data["stages"][1]["learner_goal"] = "\n=1"  # a workbook holds no carriage return: it becomes a line break
    assert read_map(p) == JourneyMap.model_validate(data)
    assert read_map(p).touchpoints[0].purpose == PAYLOADS[0]


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def test_workbook_has_drop_down_lists(tmp_path):
    wb = openpyxl.load_workbook(write_workbook(map_data_from_file(SAMPLE), tmp_path / "m.xlsx"))
    lists = {ws.title: [(dv.formula1, str(dv.sqref)) for dv in ws.data_validations.dataValidation] for ws in wb.worksheets}
    assert ("'Stages'!$A$2:$A$500", "C2:C500") in lists["Touchpoints"]
    assert ("'Emotions'!$A$2:$A$500", "F2:F500") in lists["Touchpoints"]
    assert ("'Touchpoints'!$A$2:$A$500", "A2:A500") in lists["KPIs"]
    metric = [f for f, ref in lists["KPIs"] if ref.startswith("B2")][0]
    col = metric.split("$")[1]
    listed = [c.value for c in wb["Lists"][col][1:] if c.value]
    assert listed == list(KPI_METRICS)
    assert wb["Lists"].sheet_state == "hidden"


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def test_cli_export_import(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(SAMPLE, ws / "journey.yml")
    r = CliRunner().invoke(app, ["map", "export", str(ws), "--xlsx", str(tmp_path / "m.xlsx"), "--csv", str(tmp_path / "csv")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["map", "import", str(tmp_path / "m.xlsx"), "--into", str(ws)])
    assert r.exit_code == 0 and "No change" in r.output
    p = _edit(tmp_path, "KPIs", "C2", 0.7, name="e.xlsx")
    r = CliRunner().invoke(app, ["map", "import", str(p), "--into", str(ws), "--dry-run"])
    assert r.exit_code == 0 and "from 60% to 70%" in r.output
    assert load_map(ws / "journey.yml") == load_map(SAMPLE)
    r = CliRunner().invoke(app, ["map", "import", str(p), "--into", str(ws)])
    assert r.exit_code == 0, r.output
    assert load_map(ws / "journey.yml").touchpoints[0].kpis[0].target == 0.7
    assert len(list((ws / "map_history").glob("*.yml"))) == 2  # before and after
    bad = _edit(tmp_path, "Touchpoints", "C4", "engagment", name="b.xlsx")
    r = CliRunner().invoke(app, ["map", "import", str(bad), "--into", str(ws)])
    assert r.exit_code == 2 and "sheet Touchpoints, row 4, column C (stage)" in r.output
    assert load_map(ws / "journey.yml").touchpoints[0].kpis[0].target == 0.7  # untouched
    r = CliRunner().invoke(app, ["map", "export", str(ws)])
    assert r.exit_code == 2


# ---------------------------------------------------------------------------
# fields added to the model later are carried too
# ---------------------------------------------------------------------------

def test_fields_added_to_the_model_later_round_trip(tmp_path):
    from pydantic import BaseModel, ConfigDict, Field

    from journeylib.model import Touchpoint

    class ReviewSettings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        horizon_days: float | None = None
        min_effect_pp: float = 0

    class Tp(Touchpoint):
        optional: bool = False
        tags: list[str] = Field(default_factory=list)
        weights: dict[str, float] = Field(default_factory=dict)

    class Map(JourneyMap):
        touchpoints: list[Tp] = Field(min_length=1)
        outcomes: list[str] = Field(default_factory=list)
        review: ReviewSettings = Field(default_factory=ReviewSettings)
        thresholds: dict[str, float] = Field(default_factory=dict)

    data = map_data_from_file(SAMPLE)
    data["touchpoints"][3]["optional"] = True
    data["touchpoints"][4].update(optional=False, tags=["=risky", "core"], weights={"a": 0.5})
    data.update(outcomes=["final_result"], review={"horizon_days": 30, "min_effect_pp": 5}, thresholds={"x": 1.5, "y": -2})
    want = Map.model_validate(data)
    headers = {t.sheet: t.headers for t in layout(Map)}
    assert "optional" in headers["Touchpoints"] and "tags" in headers["Touchpoints"] and "weights" in headers["Touchpoints"]
    assert "Thresholds" in headers
    wb = write_workbook(data, tmp_path / "m.xlsx", model=Map)
    fields = [r[0].value for r in openpyxl.load_workbook(wb)["Map"].iter_rows(min_row=2)]
    assert {"outcomes", "review.horizon_days", "review.min_effect_pp"} <= set(fields)
    assert read_map_data(wb, model=Map)[1] == want
    write_csv_folder(data, tmp_path / "csv", model=Map)
    assert read_map_data(tmp_path / "csv", model=Map)[1] == want
