"""Persona rules: the restricted WHERE language, checked against a plain-Python reference."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.expr import all_of, columns_of, parse_where, where_to_polars

PEOPLE = pl.DataFrame(
    {
        "age_band": ["18-24", "25-34", None, "18-24", "55+"],
        "device": ["mobile", "laptop", "mobile", None, "tablet"],
        "score": ["12", "7.5", "x", None, " 30"],
        "assistive": ["yes", "no", "TRUE", None, "0"],
    }
)


def ids(rule: str) -> list[int]:
    return PEOPLE.with_row_index("i").filter(where_to_polars(rule))["i"].to_list()


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("age_band = '18-24'", [0, 3]),
        ("age_band != '18-24'", [1, 4]),
        ("age_band <> '18-24'", [1, 4]),
        ("NOT age_band = '18-24'", [1, 4]),  # missing age never matches
        ("age_band IN ('18-24', '55+')", [0, 3, 4]),
        ("age_band NOT IN ('18-24', '55+')", [1]),
        ("device LIKE 'm%'", [0, 2]),
        ("device NOT LIKE 'm%'", [1, 4]),
        ("device ILIKE 'M_BILE'", [0, 2]),
        ("device IS NULL", [3]),
        ("device IS NOT NULL", [0, 1, 2, 4]),
        ("score > 10", [0, 4]),
        ("score BETWEEN 7 AND 12", [0, 1]),
        ("score NOT BETWEEN 7 AND 12", [4]),
        ("score >= -1.5", [0, 1, 4]),
        ("assistive = TRUE", [0, 2]),
        ("assistive = false", [1, 4]),
        ("age_band = '18-24' AND device = 'mobile'", [0]),
        ("age_band = '18-24' OR device = 'mobile'", [0, 2, 3]),
        ("(age_band = '18-24' OR device = 'tablet') AND NOT device IS NULL", [0, 4]),
        ("device = age_band", []),
        ("age_band IN ('18-24', NULL)", [0, 3]),
        ("NOT age_band IN ('25-34', NULL)", []),
        ("device = NULL", []),
        ("age_band = 'it''s'", []),
    ],
)
def test_allowed_constructs(rule, expected):
    assert ids(rule) == expected


@pytest.mark.parametrize(
    "rule",
    [
        "__import__('os').system('rm -rf /')",
        "__import__('os')",
        "exec('print(1)')",
        "lower(device) = 'mobile'",
        "device = upper('mobile')",
        "CAST(score AS INT) > 3",
        "score + 1 > 3",
        "score * 2 > 3",
        "device IN (SELECT device FROM learners)",
        "device = (SELECT 1)",
        "EXISTS (SELECT 1)",
        "device = 'x'; DROP TABLE learners",
        "learners.device = 'mobile'",
        "device = ?",
        "device = :p",
        "device",
        "1 = 1",
        "'a' = 'a'",
        "TRUE",
        "device IS TRUE",
        "device ~ 'mob'",
        "device SIMILAR TO 'mob'",
        "device = $$mobile$$",
        "-device > 1",
        "score IN (1, 'a')",
        "device LIKE 3",
        "",
        "   ",
        "device = 'unterminated",
        "device = 'a' AND",
        "(device = 'a'",
    ],
)
def test_forbidden_constructs(rule):
    with pytest.raises(ValueError):
        parse_where(rule)
    with pytest.raises(ValueError):
        where_to_polars(rule)


def test_forbidden_message_names_the_part():
    with pytest.raises(ValueError, match="LOWER"):
        parse_where("lower(device) = 'mobile'")
    with pytest.raises(ValueError, match="not allowed"):
        parse_where("__import__('os')")


def test_columns_of():
    assert columns_of("device = 'a' OR age_band IN ('x') AND device IS NULL") == ["device", "age_band"]
    assert columns_of('"weird col" = 1') == ["weird col"]


def test_all_of():
    got = PEOPLE.with_row_index("i").filter(all_of(["age_band = '18-24'", "device IS NOT NULL"]))["i"].to_list()
    assert got == [0]
    assert PEOPLE.filter(all_of([])).height == PEOPLE.height


def test_rules_never_touch_python(monkeypatch):
    import builtins

    def boom(*a, **k):  # pragma: no cover - must never run
        raise AssertionError("eval called")

    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    assert ids("device = 'mobile'") == [0, 2]


# --------------------------------------------------------------------------
# Property test: random rules against a plain-Python three-valued reference
# --------------------------------------------------------------------------

TEXT_VALUES = ["x", "y", "xy", "a.b", "(z)", "X", " x", ""]
NUM_VALUES = ["1", "2.5", "10", "-3", " 4 ", "oops", "0"]


def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def to_num(v):
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


def like_match(text: str, pattern: str, fold: bool) -> bool:
    """LIKE by direct recursion over the pattern (no regular expressions)."""
    if fold:
        text, pattern = text.lower(), pattern.lower()
    memo: dict[tuple[int, int], bool] = {}

    def m(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if j == len(pattern):
            r = i == len(text)
        elif pattern[j] == "%":
            r = m(i, j + 1) or (i < len(text) and m(i + 1, j))
        elif i < len(text) and (pattern[j] == "_" or pattern[j] == text[i]):
            r = m(i + 1, j + 1)
        else:
            r = False
        memo[(i, j)] = r
        return r

    return m(0, 0)


def and3(a, b):
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or3(a, b):
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


OPS = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
       "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@st.composite
def leaf(draw):
    kind = draw(st.sampled_from(["cmp_t", "cmp_n", "in_t", "in_n", "between_n", "like", "null", "bool"]))
    if kind == "cmp_t":
        op, v = draw(st.sampled_from(list(OPS))), draw(st.sampled_from(TEXT_VALUES))
        text = f"t {op} {q(v)}"
        return text, lambda r: None if r["t"] is None else OPS[op](r["t"], v)
    if kind == "cmp_n":
        op, v = draw(st.sampled_from(list(OPS))), draw(st.sampled_from([-3, 0, 1, 2.5, 4, 10]))
        text = f"n {op} {v}"
        return text, lambda r: None if to_num(r["n"]) is None else OPS[op](to_num(r["n"]), v)
    if kind == "in_t":
        vals = draw(st.lists(st.sampled_from(TEXT_VALUES), min_size=1, max_size=3))
        neg = draw(st.booleans())
        text = f"t {'NOT IN' if neg else 'IN'} ({', '.join(q(v) for v in vals)})"
        return text, lambda r: None if r["t"] is None else ((r["t"] in vals) != neg)
    if kind == "in_n":
        vals = draw(st.lists(st.sampled_from([-3, 0, 1, 2.5, 4, 10]), min_size=1, max_size=3))
        neg = draw(st.booleans())
        text = f"n {'NOT IN' if neg else 'IN'} ({', '.join(str(v) for v in vals)})"
        return text, lambda r: None if to_num(r["n"]) is None else ((to_num(r["n"]) in vals) != neg)
    if kind == "between_n":
        lo, hi = sorted(draw(st.lists(st.sampled_from([-3, 0, 1, 2.5, 10]), min_size=2, max_size=2)))
        return f"n BETWEEN {lo} AND {hi}", lambda r: None if to_num(r["n"]) is None else lo <= to_num(r["n"]) <= hi
    if kind == "like":
        pat = draw(st.text(alphabet="xy%_.(", max_size=4))
        fold, neg = draw(st.booleans()), draw(st.booleans())
        op = ("NOT " if neg else "") + ("ILIKE" if fold else "LIKE")
        return f"t {op} {q(pat)}", lambda r: None if r["t"] is None else (like_match(r["t"], pat, fold) != neg)
    if kind == "null":
        col, neg = draw(st.sampled_from(["t", "n"])), draw(st.booleans())
        return f"{col} IS {'NOT ' if neg else ''}NULL", lambda r: (r[col] is None) != neg
    val = draw(st.booleans())
    return f"b = {'TRUE' if val else 'FALSE'}", lambda r: None if r["b"] is None else (
        (r["b"].strip().lower() in {"true", "1", "yes", "y", "t"}) == val)


def combine(children):
    return st.one_of(
        st.tuples(children, children).map(lambda ab: (f"({ab[0][0]}) AND ({ab[1][0]})",
                                                      lambda r, a=ab[0][1], b=ab[1][1]: and3(a(r), b(r)))),
        st.tuples(children, children).map(lambda ab: (f"({ab[0][0]}) OR ({ab[1][0]})",
                                                      lambda r, a=ab[0][1], b=ab[1][1]: or3(a(r), b(r)))),
        children.map(lambda c: (f"NOT ({c[0]})", lambda r, f=c[1]: None if f(r) is None else not f(r))),
    )


rules = st.recursive(leaf(), combine, max_leaves=6)
rows = st.lists(
    st.fixed_dictionaries({
        "t": st.one_of(st.none(), st.sampled_from(TEXT_VALUES)),
        "n": st.one_of(st.none(), st.sampled_from(NUM_VALUES)),
        "b": st.one_of(st.none(), st.sampled_from(["yes", "no", "TRUE", "0", "1", "f"])),
    }),
    min_size=1, max_size=25,
)


@given(rule=rules, data=rows)
@settings(max_examples=300, deadline=None)
def test_translation_matches_reference(rule, data):
    text, ref = rule
    df = pl.DataFrame(data, schema={"t": pl.Utf8, "n": pl.Utf8, "b": pl.Utf8})
    got = df.select(where_to_polars(text).alias("m"))["m"].to_list()
    want = [ref(r) is True for r in data]
    assert got == want, text


def test_typed_columns():
    df = pl.DataFrame({"age": [19, 45, None], "paid": [True, False, None], "score": [1.5, 80.0, 3.0]})
    def rows(rule):
        return df.with_row_index("i").filter(where_to_polars(rule))["i"].to_list()
    assert rows("age > 30") == [1]
    assert rows("age = '19'") == [0]
    assert rows("age BETWEEN 18 AND 24") == [0]
    assert rows("paid = TRUE") == [0]
    assert rows("paid = FALSE") == [1]
    assert rows("score >= 3") == [1, 2]
    assert rows("age IN (19, 45)") == [0, 1]
    assert rows("age IS NULL") == [2]
