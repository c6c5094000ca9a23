"""From a raw export to a report with no hand-written rule: journey init → journey ingest → journey report.

Also: every table of every store holds no IP address, name, e-mail or user
agent; rejected rows are stored once across re-ingests; every rejected row
names its line; init never overwrites without --force; sources suggest.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.model import load_map
from journeylib.store import ingest_files
from journeylib.workspace import load_workspace

FIX = Path(__file__).resolve().parent / "fixtures" / "sources"
#: export, the sections its funnel must list in order, the learners who really enrolled
EXPORTS = {
    "openedx": ("openedx_course.log", ["Welcome orientation", "Week 1 foundations", "Practice lab", "Week 3 project"], 60),
    "moodle": ("moodle_course_logstore.csv", ["Page 201", "Quiz 202", "Page 203", "Assignment 204", "Quiz 205", "Feedback 206"], 50),
    "xapi": ("xapi_course.jsonl", ["Module 1: Orientation", "Module 2: Mapping journeys", "Module 3: Measuring",
                                   "Module 4: Acting on findings"], 40),
}
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    """Each export through `journey init` and `journey ingest`, in its own workspace."""
    out = {}
    for key, (name, _, _) in EXPORTS.items():
        ws = tmp_path_factory.mktemp(key) / "ws"
        r = cli("init", str(ws), "--from", str(FIX / name))
        assert r.exit_code == 0, r.output
        r = cli("ingest", str(FIX / name), "--into", str(ws))
        assert r.exit_code in (0, 1), r.output
        out[key] = ws
    return out


@pytest.mark.parametrize("key", list(EXPORTS))
def test_the_funnel_lists_the_sections_in_order_with_the_real_learners(drafted, key):
    from journeylib import metrics as jm

    _, sections, learners = EXPORTS[key]
    ws = load_workspace(drafted[key])
    names = {t.id: t.name for t in ws.map.touchpoints}
    funnel = [names[t] for t in ws.map.funnels["course"]]
    assert [n for n in funnel if n in sections] == sections
    assert funnel[0] == "Enrolment"
    f = jm.funnel(ws.events, ws.learners, ws.map, "course")
    assert f.sort("step")["learners"][0] == learners  # enrolled by themselves, an admin, staff or a command: all real
    ids = set(ws.events["learner_id"].unique().to_list())
    assert not ids & {"anonymous", "staff_ann", "5", "3", "2", "1", "0", "-1"}  # never a staff/system actor or a username


def funnel_steps(html: str) -> list[str]:
    """The steps of the report's funnel chart, in the order it draws them (its y-axis sort),
    read from the chart specs embedded in the page."""
    from specs import nested_dicts

    def sorts(spec):
        for o in nested_dicts(spec):
            y = (o.get("encoding") or {}).get("y")
            if isinstance(y, dict) and y.get("field") in ("touchpoint_name", "tp_label") and isinstance(y.get("sort"), list):
                yield [" ".join(str(label).split()) for label in y["sort"]]  # labels are wrapped onto lines

    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S):
        try:
            spec = json.loads(block.replace("<\\/", "</").replace("<\\!--", "<!--"))
        except ValueError:
            continue
        found = next(sorts(spec), None)
        if found:
            return found
    raise AssertionError("no funnel chart in the report")


@pytest.mark.slow
@pytest.mark.parametrize("key", list(EXPORTS))
def test_journey_report_runs_on_the_draft(drafted, key, tmp_path):
    out = tmp_path / "reports"
    r = cli("report", str(drafted[key]), "--out", str(out), "--notebooks", "persona_funnels")
    assert r.exit_code == 0, r.output
    steps = funnel_steps((out / "persona_funnels.html").read_text(encoding="utf-8"))
    assert steps[0] == "Enrolment" and [s for s in steps if s in EXPORTS[key][1]] == EXPORTS[key][1]


def test_the_default_review_of_a_short_course_is_a_month_with_events(drafted):
    """All the xAPI course's events fall in one month that has not ended: the review takes it, not an empty one."""
    from journeylib import metrics as jm

    ws = load_workspace(drafted["xapi"])
    rev = jm.review(ws.events, ws.learners, ws.map)
    ts = ws.events["timestamp"]
    assert rev.period == f"{ts.max():%Y-%m}" and ts.min().month == ts.max().month  # the one month with events
    in_period = ws.events.filter((pl.col("timestamp") >= rev.start) & (pl.col("timestamp") < rev.end)).height
    assert in_period == ws.events.height


def test_init_never_overwrites_without_force(drafted):
    ws = drafted["xapi"]
    before = (ws / "journey.yml").read_text()
    r = cli("init", str(ws), "--from", str(FIX / "xapi_course.jsonl"))
    assert r.exit_code == 2 and "--force" in r.output and (ws / "journey.yml").read_text() == before
    assert cli("init", str(ws), "--from", str(FIX / "xapi_course.jsonl"), "--force").exit_code == 0


def test_the_draft_marks_placeholders_and_validates(drafted):
    text = (drafted["openedx"] / "journey.yml").read_text()
    assert text.count("to review") >= 10
    jmap = load_map(drafted["openedx"] / "journey.yml")
    assert [s.id for s in jmap.stages] == ["before", "onboarding", "engagement", "completion"]
    rules = yaml.safe_load((drafted["openedx"] / "sources.yml").read_text())
    assert rules["staff_users"] == ["5"] and rules["course"] == "course-v1:JourneyX+JL101+2026_T1"
    assert cli("validate", str(drafted["openedx"])).exit_code in (0, 1)


# -- privacy: every table of every store ---------------------------------------------------------------

_IP = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
PERSONAL = ["learner1", "staff_ann", "student3", "Mozilla", "Firefox", "Ann Lee", "Bo Ng", "Chen Moss", "Dana Lee",
            "ann.lee@example.org", "lrs-user@example.org", "en-GB"]


def dump_all(ws: Path) -> str:
    con = duckdb.connect(str(ws / "store.duckdb"), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return "\n".join(str(row) for t in tables for row in con.execute(f'SELECT * FROM "{t}"').fetchall())
    finally:
        con.close()


def test_no_ip_name_email_or_user_agent_anywhere_in_the_store(drafted, tmp_path):
    bare = tmp_path / "bare"  # no rules at all: every record is rejected, with its raw record kept
    bare.mkdir()
    shutil.copy(FIX / "journey.yml", bare)
    files = ["openedx_course.log", "openedx_course_events.jsonl", "openedx_xapi.jsonl", "moodle_course_logstore.csv",
             "moodle_report.csv", "xapi_course.jsonl", "xapi_learning_locker.jsonl", "xapi_ralph.jsonl", "edx_tracking.log"]
    ingest_files([FIX / f for f in files], bare, load_map(bare / "journey.yml"))
    for ws in [bare, *drafted.values()]:
        text = dump_all(ws)
        assert len(text) > 10_000
        assert not _IP.findall(text), _IP.findall(text)[:3]
        assert not _EMAIL.findall(text), _EMAIL.findall(text)[:3]
        found = [p for p in PERSONAL if p in text]
        assert not found, found


# -- rejected rows: stored once, each naming its line ----------------------------------------------------

def counts(ws: Path) -> tuple[int, int]:
    con = duckdb.connect(str(ws / "store.duckdb"), read_only=True)
    try:
        return tuple(con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rejected)").fetchall()[0])
    finally:
        con.close()


def test_rejected_rows_are_stored_once_across_re_ingests(tmp_path, drafted):
    ws = tmp_path / "ws"
    shutil.copytree(drafted["xapi"], ws)
    events, rejected = counts(ws)
    copy = tmp_path / "same_statements_other_name.jsonl"
    copy.write_text((FIX / "xapi_course.jsonl").read_text().replace('", "', '","'))  # same statements, other bytes
    (rep,) = ingest_files([copy], ws, load_map(ws / "journey.yml"))
    assert rep.accepted == 0 and rep.repeated == 1  # the one rejected statement is already in the store
    e2, r2 = counts(ws)
    assert e2 == events and r2 == rejected + rep.duplicates  # only the newly repeated events are recorded, once
    for f in ("xapi_ralph.jsonl", "xapi_learning_locker.jsonl"):  # the same statements again, wrapped
        ingest_files([FIX / f], ws, load_map(ws / "journey.yml"))
    assert counts(ws) == (e2, r2)


def test_every_rejected_row_names_its_line(drafted):
    for ws in drafted.values():
        rej = load_workspace(ws).rejected
        assert rej.height and rej["row"].null_count() == 0
    r = cli("validate", str(drafted["moodle"]))
    assert "None" not in r.output and re.search(r"\b(row|line) \d+", r.output)


# -- sources suggest ---------------------------------------------------------------------------------

def test_sources_suggest_gives_ready_rules_with_full_ids(tmp_path):
    ws = tmp_path / "ws"
    assert cli("init", str(ws), "--from", str(FIX / "openedx_course.log")).exit_code == 0
    rules = yaml.safe_load((ws / "sources.yml").read_text())
    rules["edx"]["rules"] = [r for r in rules["edx"]["rules"] if r.get("touchpoint") != "week_3_project"]
    (ws / "sources.yml").write_text(yaml.safe_dump(rules))
    cli("ingest", str(FIX / "openedx_course.log"), "--into", str(ws))
    r = cli("sources", "suggest", str(ws))
    assert r.exit_code == 0
    assert "section: 'block-v1:JourneyX+JL101+2026_T1+type@chapter+block@week_3_project'" in r.output
    assert "block-v1:JourneyX+JL101+2026_T1+type@problem+block@p_project" in r.output
    assert re.search(r"Week 3 project: 18 learners", r.output)
    snippet = r.output.split("# journey.yml")[0]
    pasted = yaml.safe_load("\n".join(ln[4:] for ln in snippet.splitlines() if ln.startswith("    ")))
    assert {p["touchpoint"] for p in pasted} == {"week_3_project"}
