"""The journey map: validation, cross-checks and error locations."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.errors import MapError
from journeylib.model import KPI, KPI_METRICS, JourneyMap, load_map, map_from_dict


def write(tmp_path, data, name="journey.yml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def line_of(path, needle, nth=1):
    """1-based line of the nth line containing needle (independent of the model's index)."""
    hits = [i + 1 for i, ln in enumerate(path.read_text().splitlines()) if needle in ln]
    return hits[nth - 1]


def test_sample_map_loads(sample_dir):
    m = load_map(sample_dir / "journey.yml")
    assert len(m.touchpoints) >= 18
    assert [s.id for s in m.stages] == ["awareness", "consideration", "onboarding", "engagement", "completion", "retention"]
    assert all(t.kpis for t in m.touchpoints)
    assert {"enrolment", "course", "full"} <= set(m.funnels)
    assert len(m.personas) >= 4 and all(p.where for p in m.personas)
    assert len(m.interventions) >= 2
    # the label-only target emotion got its valence from the scale
    assert all(t.target_emotion.valence is not None for t in m.touchpoints)


def test_tiny_map_defaults(tiny_map_dict):
    m = map_from_dict(tiny_map_dict)
    assert m.funnel() == ["page", "enrol", "lesson", "exam", "survey"]
    assert m.funnel("all") == m.funnel()
    assert m.funnel("core") == ["page", "enrol", "lesson", "exam"]
    assert m.touchpoint("enrol").target_emotion.valence == 2  # "excited" on the default scale
    assert m.dormancy_days == 30
    assert m.data.separator == "," and m.data.timezone == "UTC"
    with pytest.raises(KeyError):
        m.funnel("nope")
    # KPI defaults: direction from the metric, tolerance 0.05 for shares, 10% otherwise
    k = m.touchpoint("exam").kpis
    assert k[0].direction == "higher" and k[0].tolerance == 0.05
    assert k[1].tolerance == pytest.approx(7.0)


@pytest.mark.parametrize(
    "mutate, field, message",
    [
        (lambda d: d["touchpoints"][2].__setitem__("stage", "nowhere"), "touchpoints[2].stage", "unknown stage 'nowhere'"),
        (lambda d: d["touchpoints"][3].__setitem__("id", "page"), "touchpoints[3].id", "duplicate id 'page'"),
        (lambda d: d["stages"].append({"id": "do", "name": "Again"}), "stages[3].id", "duplicate id 'do'"),
        (lambda d: d["personas"].append({"id": "young", "name": "Y2"}), "personas[2].id", "duplicate id 'young'"),
        (lambda d: d["funnels"].__setitem__("bad", ["page", "ghost"]), "funnels.bad[1]", "unknown touchpoint 'ghost'"),
        (lambda d: d["funnels"].__setitem__("twice", ["page", "page"]), "funnels.twice", "appears twice"),
        (lambda d: d["funnels"].__setitem__("empty", []), "funnels.empty", "at least one touchpoint"),
        (lambda d: d["touchpoints"][1]["target_emotion"].__setitem__("valence", 3), "touchpoints[1].target_emotion.valence", "outside the emotion scale"),
        (lambda d: d["touchpoints"][1].__setitem__("target_emotion", {"label": "zen"}), "touchpoints[1].target_emotion.valence", "not on the emotion scale"),
        (lambda d: d["touchpoints"][0]["kpis"].append({"metric": "happiness", "target": 1}), "touchpoints[0].kpis[1].metric", "unknown KPI metric 'happiness'"),
        (lambda d: d["touchpoints"][0]["kpis"].append({"metric": "conversion", "target": 80}), "touchpoints[0].kpis[1].target", "must be in 0..1"),
        (lambda d: d["touchpoints"][2]["kpis"].append({"metric": "emotion", "target": 5}), "touchpoints[2].kpis[2].target", "outside the emotion scale"),
        (lambda d: d["touchpoints"][4]["kpis"].__setitem__(0, {"metric": "nps", "target": 150}), "touchpoints[4].kpis[0].target", "-100..100"),
        (lambda d: d["touchpoints"][4]["kpis"].append({"metric": "reach", "target": -5}), "touchpoints[4].kpis[1].target", "cannot be negative"),
        (lambda d: d["touchpoints"][0].__setitem__("colour", "red"), "touchpoints[0].colour", "unknown field"),
        (lambda d: d["touchpoints"][0].pop("name"), "touchpoints[0].name", "required field is missing"),
        (lambda d: d["personas"][0].__setitem__("where", "__import__('os').system('ls')"), "personas[0].where", "not allowed"),
        (lambda d: d.__setitem__("interventions", [{"id": "i", "date": "2025-01-01", "touchpoint": "ghost"}]), "interventions[0].touchpoint", "unknown touchpoint 'ghost'"),
        (lambda d: d.__setitem__("interventions", [{"id": "i", "date": "not a date", "touchpoint": "page"}]), "interventions[0].date", "date"),
        (lambda d: d.__setitem__("emotion_scale", {"min": 2, "max": -2}), "emotion_scale", "must be below"),
        (lambda d: d.__setitem__("dormancy_days", 0), "dormancy_days", "greater than 0"),
        (lambda d: d.__setitem__("data", {"separator": ";;"}), "data.separator", "single character"),
        (lambda d: d.__setitem__("data", {"timezone": "Mars/Olympus"}), "data.timezone", "unknown time zone"),
        (lambda d: d.__setitem__("stages", []), "stages", "at least 1"),
        (lambda d: d["touchpoints"].insert(0, d["touchpoints"].pop(2)), "touchpoints[1].stage", "stage order"),
    ],
)
def test_cross_checks_name_file_line_field(tmp_path, tiny_map_dict, mutate, field, message):
    mutate(tiny_map_dict)
    path = write(tmp_path, tiny_map_dict)
    with pytest.raises(MapError) as info:
        load_map(path)
    err = info.value
    assert err.file == str(path)
    # every problem reads "<file>:<line>: <field>: <message>"
    matching = [p for p in err.problems if f": {field}: " in p and message in p]
    assert matching, err.problems
    assert matching[0].startswith(f"{path}:")
    line = int(matching[0][len(str(path)) + 1:].split(":")[0])
    assert 1 <= line <= len(path.read_text().splitlines())


def test_error_line_points_at_the_field(tmp_path, tiny_map_dict):
    tiny_map_dict["touchpoints"][3]["stage"] = "nowhere"
    path = write(tmp_path, tiny_map_dict)
    with pytest.raises(MapError) as info:
        load_map(path)
    err = info.value
    assert err.field == "touchpoints[3].stage"
    assert err.line == line_of(path, "stage: nowhere")
    assert str(err).startswith(f"{path}:{err.line}: touchpoints[3].stage: unknown stage")


def test_unknown_kpi_metric_line(tmp_path, tiny_map_dict):
    tiny_map_dict["touchpoints"][4]["kpis"][0]["metric"] = "happiness"
    path = write(tmp_path, tiny_map_dict)
    with pytest.raises(MapError) as info:
        load_map(path)
    assert info.value.line == line_of(path, "metric: happiness")
    assert info.value.field == "touchpoints[4].kpis[0].metric"


def test_all_problems_listed(tmp_path, tiny_map_dict):
    tiny_map_dict["touchpoints"][1]["stage"] = "x"
    tiny_map_dict["funnels"]["core"].append("ghost")
    path = write(tmp_path, tiny_map_dict)
    with pytest.raises(MapError) as info:
        load_map(path)
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    "text, line",
    [
        ("name: x\nstages:\n  - id: a\n    name: [unclosed\ntouchpoints: []\n", 5),
        ("name: x\nstages:\n\t- id: a\n", 3),
        ("name: 'x\n", 2),
        ("name: x\n  bad: indent\n", 2),
    ],
)
def test_yaml_syntax_error_names_line(tmp_path, text, line):
    path = tmp_path / "journey.yml"
    path.write_text(text)
    with pytest.raises(MapError) as info:
        load_map(path)
    assert info.value.file == str(path)
    assert "YAML syntax error" in str(info.value)
    assert info.value.line == line


@pytest.mark.parametrize("content", ["", "# only a comment\n", "- a\n- b\n", "just text\n"])
def test_not_a_mapping(tmp_path, content):
    path = tmp_path / "journey.yml"
    path.write_text(content)
    with pytest.raises(MapError, match="expected a mapping"):
        load_map(path)


def test_missing_and_undecodable_file(tmp_path):
    with pytest.raises(MapError, match="file not found") as info:
        load_map(tmp_path / "nope.yml")
    assert "nope.yml" in str(info.value)
    bad = tmp_path / "journey.yml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(MapError, match="not UTF-8"):
        load_map(bad)


def test_bom_is_fine(tmp_path, tiny_map_dict):
    path = tmp_path / "journey.yml"
    path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(tiny_map_dict).encode())
    assert load_map(path).name == "Tiny course"


def test_custom_emotion_scale(tiny_map_dict):
    d = copy.deepcopy(tiny_map_dict)
    d["emotion_scale"] = {"min": 1, "max": 7, "labels": {"Happy": 6, "sad": 2, "curious": 5, "excited": 7,
                                                         "confident": 6, "satisfied": 5}}
    m = map_from_dict(d)
    assert m.emotion_scale.valence(" HAPPY ") == 6
    assert m.emotion_scale.valence("bored") is None
    d["emotion_scale"]["labels"]["sad"] = 0
    with pytest.raises(MapError, match="outside 1..7"):
        map_from_dict(d)


@given(
    metric=st.sampled_from(sorted(KPI_METRICS)),
    target=st.floats(0, 1, allow_nan=False),
    value=st.floats(-5, 5, allow_nan=False),
    n=st.integers(0, 100),
    min_n=st.integers(1, 50),
)
@settings(max_examples=200, deadline=None)
def test_kpi_status_reference(metric, target, value, n, min_n):
    k = KPI(metric=metric, target=target, min_n=min_n)
    got = k.status(value, n)
    # reference: plain definition
    if n < min_n:
        want = "not enough data"
    else:
        better = value >= target if KPI_METRICS[metric] == "higher" else value <= target
        tol = 0.05 if metric in {"conversion", "stopped", "completion", "pass_rate", "csat"} else abs(target) * 0.1
        if better:
            want = "met"
        elif abs(value - target) <= tol + 1e-12:
            want = "near"
        else:
            want = "missed"
    assert got == want
    assert k.status(None, n) == "not enough data"
    assert k.status(float("nan"), 10**6) == "not enough data"


def test_model_validate_directly():
    with pytest.raises(Exception):
        JourneyMap.model_validate({"name": "x", "stages": [{"id": "a", "name": "A"}], "touchpoints": []})


def test_duplicate_yaml_key_names_line(tmp_path, tiny_map_dict):
    path = write(tmp_path, tiny_map_dict)
    lines = path.read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.strip() == "name: Enrolment")
    lines.insert(k + 1, lines[k])  # the same key twice in one touchpoint
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MapError, match="appears twice") as info:
        load_map(path)
    assert info.value.line == k + 2
    assert info.value.field == "touchpoints[1].name"


@pytest.mark.parametrize("section", ["stages", "touchpoints", "personas"])
def test_empty_ids_rejected(tiny_map_dict, section):
    tiny_map_dict[section][0]["id"] = ""
    with pytest.raises(MapError, match=rf"{section}\[0\]\.id"):
        map_from_dict(tiny_map_dict)
