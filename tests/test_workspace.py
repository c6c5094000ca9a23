"""The workspace: finding files, reconciling counts and assigning personas."""

from __future__ import annotations

import copy

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.errors import DataError, MapError
from journeylib.model import map_from_dict
from journeylib.workspace import UNASSIGNED, assign_personas, load_workspace

EV = [
    {"event_id": "e1", "learner_id": "L1", "touchpoint_id": "page", "timestamp": "2025-01-01T10:00:00Z", "event": "viewed"},
    {"event_id": "e2", "learner_id": "L2", "touchpoint_id": "page", "timestamp": "2025-01-02T10:00:00Z", "event": "viewed"},
    {"event_id": "e3", "learner_id": "L3", "touchpoint_id": "enrol", "timestamp": "2025-01-03T10:00:00Z", "event": "completed"},
    {"event_id": "e4", "learner_id": "L4", "touchpoint_id": "page", "timestamp": "2025-01-04T10:00:00Z", "event": "viewed"},
]


def test_persona_given_kept_first_rule_wins_unassigned_kept(tmp_path, tiny_map_dict, make_workspace):
    learners = [
        {"learner_id": "L1", "persona": "mobile", "age_band": "18-24", "device": "laptop"},  # given: kept
        {"learner_id": "L2", "persona": "", "age_band": "18-24", "device": "mobile"},  # both rules: first wins
        {"learner_id": "L3", "persona": "", "age_band": "35-44", "device": "mobile"},  # second rule
        {"learner_id": "L4", "persona": "", "age_band": "", "device": ""},  # none: unassigned
        {"learner_id": "L5", "persona": "", "age_band": "55+", "device": "tablet"},  # no events: still a learner
    ]
    ws = make_workspace(tmp_path, tiny_map_dict, EV, learners)
    assert ws.learners["learner_id"].to_list() == ["L1", "L2", "L3", "L4", "L5"]
    assert ws.learners["persona"].to_list() == ["mobile", "young", "mobile", UNASSIGNED, UNASSIGNED]
    assert ws.learners.columns[:3] == ["learner_id", "persona", "enrolled_at"]


def test_rule_order_matters(tmp_path, tiny_map_dict, make_workspace):
    tiny_map_dict["personas"].reverse()
    ws = make_workspace(tmp_path, tiny_map_dict, EV, [{"learner_id": "L2", "age_band": "18-24", "device": "mobile"}])
    assert ws.learners["persona"].to_list() == ["mobile"]


def test_rule_on_missing_attribute(tmp_path, tiny_map_dict, make_workspace):
    tiny_map_dict["personas"].append({"id": "x", "name": "X", "where": "employer = 'acme'"})
    with pytest.raises(DataError, match="employer") as info:
        make_workspace(tmp_path, tiny_map_dict, EV, [{"learner_id": "L1", "age_band": "x", "device": "y"}])
    assert info.value.field == "personas.x.where"
    assert info.value.file.endswith("learners.csv")


def test_counts_reconcile_and_rejected_collected(tmp_path, tiny_map_dict, make_workspace):
    ev = EV + [
        {"event_id": "e5", "learner_id": "L9", "touchpoint_id": "page", "timestamp": "2025-01-04T10:00:00Z"},
        {"event_id": "e6", "learner_id": "L1", "touchpoint_id": "nope", "timestamp": "2025-01-04T10:00:00Z"},
    ]
    learners = [{"learner_id": x, "age_band": "", "device": ""} for x in ("L1", "L2", "L3", "L4", "L4")]
    ws = make_workspace(tmp_path, tiny_map_dict, ev, learners)
    c = {r["table"]: r for r in ws.counts().iter_rows(named=True)}
    assert c["events"]["read"] == 6 and c["events"]["accepted"] == 4 and c["events"]["rejected"] == 2
    assert c["learners"]["read"] == 5 and c["learners"]["rejected"] == 1
    assert sorted(ws.rejected["reason"].to_list()) == ["duplicate learner_id", "unknown learner", "unknown touchpoint"]
    assert set(ws.rejected["table"].to_list()) == {"events", "learners"}
    assert ws.data_end.isoformat() == "2025-01-04T10:00:00+00:00"


def test_without_learners_file(tmp_path, tiny_map_dict, make_workspace):
    ws = make_workspace(tmp_path, tiny_map_dict, EV, None)
    assert sorted(ws.learners["learner_id"].to_list()) == ["L1", "L2", "L3", "L4"]
    assert set(ws.learners["persona"].to_list()) == {UNASSIGNED}
    assert ws.learners["enrolled_at"].null_count() == 4


def test_files_named_in_the_map(tmp_path, tiny_map_dict, make_workspace):
    folder = make_workspace(tmp_path, tiny_map_dict, EV, [{"learner_id": "L1", "age_band": "", "device": ""}], load=False)
    (folder / "events.csv").rename(folder / "clicks.txt")
    m = copy.deepcopy(tiny_map_dict)
    m["data"] = {"events": "clicks.txt"}
    import yaml

    (folder / "journey.yml").write_text(yaml.safe_dump(m))
    ws = load_workspace(folder)
    assert ws.events.height == 1  # only L1 is a known learner
    m["data"] = {"events": "missing.csv"}
    (folder / "journey.yml").write_text(yaml.safe_dump(m))
    with pytest.raises(DataError, match="missing.csv"):
        load_workspace(folder)


def test_workspace_fatal(tmp_path, tiny_map_dict, make_workspace):
    with pytest.raises(DataError, match="workspace folder not found"):
        load_workspace(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MapError, match="journey.yml"):
        load_workspace(tmp_path / "empty")
    folder = make_workspace(tmp_path / "w", tiny_map_dict, EV, None, load=False)
    (folder / "events.csv").unlink()
    with pytest.raises(DataError, match="no events file"):
        load_workspace(folder)


def test_sample_workspace(sample_ws):
    assert sample_ws.events.columns == ["learner_id", "touchpoint_id", "timestamp", "event", "value", "emotion", "event_id"]
    assert sample_ws.learners.columns[:3] == ["learner_id", "persona", "enrolled_at"]
    assert sample_ws.learners["persona"].null_count() == 0
    assert sample_ws.counts()["rejected"].sum() == 0


# --------------------------------------------------------------------------
# Property: persona assignment against a plain-Python loop
# --------------------------------------------------------------------------

RULES = [
    ("young", "age_band = '18-24'", lambda r: r["age_band"] == "18-24"),
    ("mobile", "device IN ('mobile', 'tablet')", lambda r: r["device"] in ("mobile", "tablet")),
    ("older_desktop", "age_band >= '45' AND device = 'desktop'",
     lambda r: r["age_band"] is not None and r["device"] is not None and r["age_band"] >= "45" and r["device"] == "desktop"),
    ("no_device", "device IS NULL", lambda r: r["device"] is None),
]


@given(
    rows=st.lists(
        st.fixed_dictionaries({
            "persona": st.one_of(st.none(), st.sampled_from(["young", "mobile", "given_elsewhere"])),
            "age_band": st.one_of(st.none(), st.sampled_from(["18-24", "25-34", "45-54", "55+"])),
            "device": st.one_of(st.none(), st.sampled_from(["mobile", "tablet", "desktop"])),
        }),
        max_size=40,
    ),
    order=st.permutations(range(len(RULES))),
    take=st.integers(0, len(RULES)),
)
@settings(max_examples=150, deadline=None)
def test_persona_assignment_reference(rows, order, take):
    chosen = [RULES[i] for i in order][:take]
    m = map_from_dict({
        "name": "p", "stages": [{"id": "s", "name": "S"}],
        "touchpoints": [{"id": "t", "name": "T", "stage": "s", "target_emotion": {"label": "proud"}}],
        "personas": [{"id": pid, "name": pid, "where": rule} for pid, rule, _ in chosen],
    })
    lr = pl.DataFrame(
        [{"learner_id": f"L{i}", **r} for i, r in enumerate(rows)],
        schema={"learner_id": pl.Utf8, "persona": pl.Utf8, "age_band": pl.Utf8, "device": pl.Utf8},
    )
    got = assign_personas(lr, m)
    want = []
    for r in rows:
        if r["persona"] is not None:
            want.append(r["persona"])
            continue
        want.append(next((pid for pid, _, f in chosen if f(r)), UNASSIGNED))
    assert got["persona"].to_list() == want
    assert got["learner_id"].to_list() == lr["learner_id"].to_list()
    assert got.drop("persona").equals(lr.drop("persona"))
