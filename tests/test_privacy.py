"""Small-cell suppression, pseudonyms and the id check, against plain-Python references."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.privacy import drop_ids, find_ids, new_key, pseudonym, pseudonymise, suppress


def reference_suppress(rows: list[dict], counts: list[str], values: list[str], min_count: int) -> list[dict]:
    out = []
    for r in rows:
        small = any(r[c] is not None and r[c] < min_count for c in counts)
        o = dict(r)
        if small:
            for c in counts + values:
                o[c] = None
        o["suppressed"] = small
        out.append(o)
    return out


rows_st = st.lists(
    st.fixed_dictionaries({
        "g": st.text(min_size=1, max_size=4),
        "n": st.one_of(st.none(), st.integers(0, 40)),
        "m": st.one_of(st.none(), st.integers(0, 40)),
        "rate": st.one_of(st.none(), st.floats(0, 1)),
    }),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(rows=rows_st, min_count=st.integers(1, 30))
def test_suppress_matches_reference(rows, min_count):
    df = pl.DataFrame(rows, schema={"g": pl.Utf8, "n": pl.Int64, "m": pl.Int64, "rate": pl.Float64})
    got = suppress(df, count=["n", "m"], values=["rate"], min_count=min_count).to_dicts()
    assert got == reference_suppress(rows, ["n", "m"], ["rate"], min_count)


@settings(max_examples=100, deadline=None)
@given(rows=rows_st, min_count=st.integers(1, 30))
def test_suppress_invariants(rows, min_count):
    df = pl.DataFrame(rows, schema={"g": pl.Utf8, "n": pl.Int64, "m": pl.Int64, "rate": pl.Float64})
    out = suppress(df, count="n", min_count=min_count)
    # no shown count is below the threshold; labels are never blanked; row count kept
    assert out.height == df.height
    assert out.filter(pl.col("n").is_not_null() & (pl.col("n") < min_count)).height == 0
    assert out["g"].to_list() == df["g"].to_list()
    # default values: every other numeric column is blanked in suppressed rows
    assert out.filter(pl.col("suppressed") & (pl.col("m").is_not_null() | pl.col("rate").is_not_null())).height == 0
    # idempotent
    assert suppress(out, count="n", min_count=min_count).equals(out)


def test_suppress_rejects_bad_arguments():
    with pytest.raises(ValueError):
        suppress(pl.DataFrame({"n": [1]}), min_count=0)
    with pytest.raises(KeyError):
        suppress(pl.DataFrame({"x": [1]}), count="n")


def test_pseudonyms_are_stable_per_key_and_hide_ids():
    ids = [f"L{i:05d}" for i in range(3000)]
    df = pl.DataFrame({"learner_id": ids + ids[:10] + [None]})
    a = pseudonymise(df, key="k1")
    b = pseudonymise(df, key="k1")
    c = pseudonymise(df, key="k2")
    assert a.equals(b)
    assert a["learner_id"].null_count() == 1
    assert a["learner_id"].drop_nulls().n_unique() == 3000          # no collisions on 3000 ids
    assert not set(ids) & set(a["learner_id"].drop_nulls().to_list())
    assert a["learner_id"].to_list()[:100] != c["learner_id"].to_list()[:100]
    # reference: the per-id function
    assert a["learner_id"].to_list()[:5] == [pseudonym(i, "k1") for i in ids[:5]]
    assert len(new_key()) == 32 and new_key() != new_key()


def test_drop_ids():
    df = pl.DataFrame({"learner_id": ["a"], "event_id": ["e"], "persona": ["p"]})
    assert drop_ids(df).columns == ["persona"]


def reference_find(text: str, ids: list[str]) -> set[str]:
    tokens, cur = set(), ""
    for ch in text + " ":
        if ch.isalnum() and ch.isascii() or ch in "_-.:@":
            cur += ch
        else:
            if cur:
                tokens.add(cur)
                tokens.add(cur.strip(".:-"))
            cur = ""
    return {i for i in ids if not i.isdigit() and i in tokens}


id_st = st.from_regex(r"[A-Z][0-9]{3,5}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(ids=st.lists(id_st, min_size=1, max_size=8, unique=True), picks=st.lists(st.integers(0, 7), max_size=4),
       filler=st.lists(st.sampled_from(["the", "learner", "<td>", "</td>", ",", " ", "42", "x"]), max_size=10))
def test_find_ids_matches_reference(ids, picks, filler):
    parts = list(filler)
    for p in picks:
        parts.append(" " + ids[p % len(ids)] + ". ")
    text = "".join(parts)
    assert find_ids(text, ids) == reference_find(text, ids)
    for p in picks:
        assert ids[p % len(ids)] in find_ids(text, ids)


def test_find_ids_skips_scripts_but_not_json_specs_and_numeric_ids():
    html = '<script>var L0001 = 1;</script><script type="application/json">{"id":"L0002"}</script><p>12345</p>'
    assert find_ids(html, ["L0001", "L0002", "12345"]) == {"L0002"}
    assert find_ids("<p>L00012</p>", ["L0001"]) == set()
