"""Mapping rules: validation with file/line/field, and vectorised matching vs a plain loop."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.errors import MapError
from journeylib.sources.rules import Condition, Rule, SourceRules, apply_rules, first_matching_rule, load_rules


def write(tmp_path, text):
    p = tmp_path / "sources.yml"
    p.write_text(text)
    return p


def test_fixture_rules_load(rules):
    assert len(rules.xapi.rules) == 4
    assert rules.moodle.rules[0].match["courseid"].equals == "7"  # numbers are compared as text
    assert rules.survey.learner_column == "learner"


def test_unknown_match_field_names_line_and_field(tmp_path):
    p = write(tmp_path, "xapi:\n  rules:\n    - match: {verb: x}\n      touchpoint: a\n    - match: {colour: red}\n      touchpoint: a\n")
    with pytest.raises(MapError) as e:
        load_rules(p)
    assert e.value.line == 5
    assert e.value.field == "xapi.rules[1].match.colour"
    assert "unknown field 'colour'" in e.value.message


def test_unknown_touchpoint(tmp_path):
    p = write(tmp_path, "moodle:\n  rules:\n    - match: {eventname: x}\n      touchpoint: nowhere\n")
    with pytest.raises(MapError) as e:
        load_rules(p, ["welcome"])
    assert e.value.field == "moodle.rules[0].touchpoint" and e.value.line == 4


def test_bad_regex_and_two_conditions(tmp_path):
    p = write(tmp_path, "edx:\n  rules:\n    - match: {event_type: {pattern: '('}}\n      touchpoint: a\n")
    with pytest.raises(MapError, match="invalid regular expression"):
        load_rules(p)
    p = write(tmp_path, "edx:\n  rules:\n    - match: {event_type: {prefix: a, equals: b}}\n      touchpoint: a\n")
    with pytest.raises(MapError, match="exactly one"):
        load_rules(p)


def test_unknown_section_and_yaml_error(tmp_path):
    with pytest.raises(MapError) as e:
        load_rules(write(tmp_path, "timezone: UTC\nblackboard:\n  rules: []\n"))
    assert e.value.line == 2 and e.value.message == "unknown field"
    with pytest.raises(MapError, match="YAML syntax error"):
        load_rules(write(tmp_path, "xapi: [\n"))
    with pytest.raises(MapError, match="unknown time zone"):
        load_rules(write(tmp_path, "timezone: Mars/Olympus\n"))


def test_survey_rule_needs_touchpoint_and_answer(tmp_path):
    with pytest.raises(MapError, match="exactly one of touchpoint"):
        load_rules(write(tmp_path, "survey:\n  rules:\n    - {rating: q1}\n"))
    with pytest.raises(MapError, match="rating column"):
        load_rules(write(tmp_path, "survey:\n  rules:\n    - {touchpoint: a}\n"))


def test_first_rule_wins_and_missing_field_never_matches():
    rules = [
        Rule(match={"verb": Condition(prefix="v/")}, touchpoint="a"),
        Rule(match={"verb": "v/x"}, touchpoint="b"),
        Rule(match={"nope": "1"}, touchpoint="c"),
        Rule(match={}, touchpoint="catch_all", event="viewed"),
    ]
    df = pl.DataFrame({"verb": ["v/x", "w", None]})
    out = apply_rules(df, rules, "xapi")
    assert out["__tp"].to_list() == ["a", "catch_all", "catch_all"]
    assert out["__rule_event"].to_list() == [None, "viewed", "viewed"]


# -- property: the vectorised matcher agrees with a plain per-record loop ------------

values = st.sampled_from(["a", "ab", "abc", "b", "ba", "x/1", "x/12", "", None])
conditions = st.one_of(
    st.builds(lambda v: Condition(equals=v), st.sampled_from(["a", "ab", "x/1", ""])),
    st.builds(lambda v: Condition(prefix=v), st.sampled_from(["a", "x/", "b", ""])),
    st.builds(lambda v: Condition(pattern=v), st.sampled_from(["^a", "b$", r"x/\d$", "c"])),
    st.builds(lambda v: Condition(one_of=v), st.lists(st.sampled_from(["a", "b", "x/1"]), max_size=3)),
)
rule_lists = st.lists(
    st.builds(lambda m, tp: Rule(match=m, touchpoint=tp),
              st.dictionaries(st.sampled_from(["verb", "object", "activity_type"]), conditions, max_size=2),
              st.sampled_from(["t1", "t2", "t3"])),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(rule_lists, st.lists(st.fixed_dictionaries({"verb": values, "object": values, "activity_type": values}), min_size=1, max_size=20))
def test_vectorised_rules_match_reference(rules, records):
    df = pl.DataFrame(records, schema={"verb": pl.Utf8, "object": pl.Utf8, "activity_type": pl.Utf8})
    got = apply_rules(df, rules, "xapi")["__rule"].to_list()
    want = [first_matching_rule({k: v for k, v in r.items()}, rules) for r in records]
    assert got == want


def test_empty_rules_file_is_no_rules(tmp_path):
    assert load_rules(write(tmp_path, "# nothing yet\n")) == SourceRules()
