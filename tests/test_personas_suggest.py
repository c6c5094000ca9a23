"""Persona suggestions: the sample's planted onboarding stoppers are recovered, every rule is exact and parses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from journeylib.cli import app
from journeylib.expr import parse_where, where_to_polars
from journeylib.model import Persona
from journeylib.personas import _features, leaf_rules, learner_endings, suggest_personas
from journeylib.workspace import load_workspace

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


@pytest.fixture(scope="module")
def ws():
    return load_workspace(SAMPLE)


@pytest.fixture(scope="module")
def suggestions(ws):
    return suggest_personas(ws.events, ws.learners, ws.map)


def test_recovers_the_planted_onboarding_persona(ws, suggestions):
    truth = json.loads((SAMPLE / "ground_truth.json").read_text())["onboarding_stopper"]
    planted = set(ws.learners.filter(pl.col("persona") == truth["persona"])["learner_id"])
    best = None
    for c in suggestions.candidates:
        parse_where(c.rule)  # every rule is in the map's where language
        members = set(ws.learners.filter(where_to_polars(c.rule))["learner_id"])
        jaccard = len(members & planted) / len(members | planted)
        if jaccard >= 0.9:
            best = (c, members)
    assert best is not None, [c.rule for c in suggestions.candidates]
    c, members = best
    assert c.size == len(members)
    Persona(id=c.id, name=c.name, where=c.rule)  # adoptable as is
    # how its journey differs: more of them stop in onboarding than anyone else
    e = c.endings.with_columns((pl.col("group") - pl.col("others")).alias("d")).sort("d", descending=True)
    assert e["ending"][0] == truth["stage"] and e["group"][0] > 3 * e["others"][0]
    assert "stop in onboarding" in c.summary
    # the shares against a plain per-learner loop
    ends = dict(learner_endings(ws.events, ws.learners, ws.map).select("learner_id", "ending").iter_rows())
    mine = [ends[i] for i in members if ends.get(i) is not None]
    rest = [e for i, e in ends.items() if e is not None and i not in members]
    got = dict(zip(c.endings["ending"], zip(c.endings["group"], c.endings["others"])))
    assert got["onboarding"] == pytest.approx((mine.count("onboarding") / len(mine), rest.count("onboarding") / len(rest)))
    assert c.decided == len(mine)


def test_null_attributes_are_not_suggested(ws, suggestions):
    # region, age band and device make no difference in the sample: no rule should rest on them alone
    for c in suggestions.candidates:
        cols = {col for col in ("region", "age_band", "device") if col in c.rule}
        assert not cols or "referral_channel" in c.rule or "accessibility" in c.rule, c.rule


@st.composite
def tables(draw):
    n = draw(st.integers(40, 120))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    a = rng.choice(["x", "y", "z", None], n, p=[0.4, 0.3, 0.2, 0.1])
    b = rng.choice(["it's", "b2", "b3"], n)
    num = rng.normal(30, 10, n).round(1).astype(object)
    num[rng.random(n) < 0.1] = None
    y = rng.choice(["completed", "s1", "s2"], n)
    return pl.DataFrame({"a": a.tolist(), "b b": b.tolist(), "age": [None if v is None else str(v) for v in num],
                         "y": y.tolist()}, schema={"a": pl.Utf8, "b b": pl.Utf8, "age": pl.Utf8, "y": pl.Utf8})


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.integers(1, 4))
def test_every_leaf_rule_selects_exactly_its_leaf(df, depth):
    from sklearn.tree import DecisionTreeClassifier

    X, feats, values = _features(df, ["a", "b b", "age"])
    tree = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=3, random_state=0).fit(X, df["y"].to_numpy())
    leaf_of = tree.apply(X)
    for leaf, rule in leaf_rules(tree, feats, values).items():
        expected = leaf_of == leaf
        if not rule:
            assert expected.all()
            continue
        parse_where(rule)
        got = df.select(where_to_polars(rule).alias("m"))["m"].to_numpy()
        assert (got == expected).all(), rule


def test_cli_suggest(tmp_path):
    r = CliRunner().invoke(app, ["personas", "suggest", str(SAMPLE), "--yaml", str(tmp_path / "p.yml"),
                                 "--out", str(tmp_path / "p.csv")], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "Candidate personas" in r.output and "100% overlap" in r.output
    listed = yaml.safe_load((tmp_path / "p.yml").read_text())["personas"]
    assert [Persona(**p).where for p in listed][0] == "referral_channel = 'employer'"
    assert pl.read_csv(tmp_path / "p.csv")["rule"][0] == "referral_channel = 'employer'"
    r = CliRunner().invoke(app, ["personas", "suggest", str(SAMPLE), "--attributes", "nope"])
    assert r.exit_code == 2 and "unknown learner attribute" in r.output
