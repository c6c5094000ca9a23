"""A restricted ``WHERE`` expression language for persona rules and filters.

Persona rules in ``journey.yml`` are user text, so they are never evaluated as
Python. They are parsed as a SQL ``WHERE`` clause with sqlglot and only a small
whitelist of node types is accepted: ``AND``/``OR``/``NOT``, comparisons
(``= != <> < <= > >=``), ``IN (...)``, ``BETWEEN``, ``LIKE``/``ILIKE``,
``IS [NOT] NULL``, column names, and string, number and boolean literals.
Anything else (function calls, subqueries, arithmetic) is rejected. The parsed
rule is translated to a polars expression.

>>> import polars as pl
>>> df = pl.DataFrame({"age": ["18-24", "35-55"], "device": ["mobile", "desktop"]})
>>> df.filter(where_to_polars("age = '18-24' AND device IN ('mobile', 'tablet')")).height
1
>>> columns_of("age = '18-24' OR NOT device LIKE 'desk%'")
['age', 'device']
"""

from __future__ import annotations

from functools import reduce

import polars as pl
import sqlglot
from sqlglot import exp

_COMPARE = {
    exp.EQ: "eq",
    exp.NEQ: "ne",
    exp.LT: "lt",
    exp.LTE: "le",
    exp.GT: "gt",
    exp.GTE: "ge",
}


def parse_where(text: str) -> exp.Expression:
    """Parse and check a rule; raise ``ValueError`` naming what is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty rule")
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ValueError(f"cannot parse rule {text!r}: {first}") from None
    _check(tree, text)
    return tree


def _check(node: exp.Expression, text: str) -> None:
    allowed = (
        exp.And, exp.Or, exp.Not, exp.Paren, exp.In, exp.Between, exp.Like, exp.ILike, exp.Is,
        exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Neg, *_COMPARE,
    )
    for sub in node.walk():
        if not isinstance(sub, allowed):
            raise ValueError(f"rule {text!r}: '{sub.sql()}' is not allowed (only comparisons, IN, BETWEEN, LIKE, IS NULL, AND, OR, NOT)")
        if isinstance(sub, exp.Column) and sub.table:
            raise ValueError(f"rule {text!r}: use plain column names, not '{sub.sql()}'")
        if isinstance(sub, exp.In) and sub.args.get("query") is not None:
            raise ValueError(f"rule {text!r}: subqueries are not allowed")


def columns_of(text: str) -> list[str]:
    """The learner attributes a rule reads, in order of appearance."""
    seen: list[str] = []
    for col in parse_where(text).find_all(exp.Column):
        if col.name not in seen:
            seen.append(col.name)
    return sorted(seen, key=text.find)


def _literal(node: exp.Expression):
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Neg):
        return -_literal(node.this)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        num = float(node.this)
        return int(num) if num.is_integer() else num
    raise ValueError(f"expected a literal value, got '{node.sql()}'")


def _side(node: exp.Expression, like):
    """Translate a value side; a column is cast to match the literal it meets."""
    if isinstance(node, exp.Column):
        col = pl.col(node.name)
        if isinstance(like, bool):
            return col.cast(pl.Utf8).str.to_lowercase().is_in(["true", "1", "yes", "y", "t"])
        if isinstance(like, (int, float)):
            return col.cast(pl.Float64, strict=False)
        return col.cast(pl.Utf8)
    return pl.lit(_literal(node))


def _translate(node: exp.Expression) -> pl.Expr:
    if isinstance(node, exp.Paren):
        return _translate(node.this)
    if isinstance(node, exp.And):
        return _translate(node.this) & _translate(node.expression)
    if isinstance(node, exp.Or):
        return _translate(node.this) | _translate(node.expression)
    if isinstance(node, exp.Not):
        return ~_translate(node.this)
    if isinstance(node, exp.Is):
        inner = node.this
        name = inner.name if isinstance(inner, exp.Column) else None
        if name is None or not isinstance(node.expression, exp.Null):
            raise ValueError(f"'{node.sql()}': only 'column IS [NOT] NULL' is allowed")
        return pl.col(name).is_null()
    for cls, op in _COMPARE.items():
        if isinstance(node, cls):
            left, right = node.this, node.expression
            lit = _literal(right) if not isinstance(right, exp.Column) else (
                _literal(left) if not isinstance(left, exp.Column) else "")
            a, b = _side(left, lit), _side(right, lit)
            return getattr(a, f"__{op}__")(b).fill_null(False)
    if isinstance(node, exp.In):
        values = [_literal(v) for v in node.expressions]
        probe = next((v for v in values if v is not None), "")
        return _side(node.this, probe).is_in(values).fill_null(False)
    if isinstance(node, exp.Between):
        low, high = _literal(node.args["low"]), _literal(node.args["high"])
        col = _side(node.this, low)
        return col.is_between(low, high).fill_null(False)
    if isinstance(node, (exp.Like, exp.ILike)):
        pattern = _literal(node.expression)
        if not isinstance(pattern, str):
            raise ValueError(f"'{node.sql()}': LIKE needs a string pattern")
        regex = "^" + "".join(
            ".*" if ch == "%" else "." if ch == "_" else _re_escape(ch) for ch in pattern
        ) + "$"
        if isinstance(node, exp.ILike):
            regex = "(?i)" + regex
        return pl.col(node.this.name).cast(pl.Utf8).str.contains(regex).fill_null(False)
    raise ValueError(f"'{node.sql()}' is not allowed")


def _re_escape(ch: str) -> str:
    import re

    return re.escape(ch)


def where_to_polars(text: str) -> pl.Expr:
    """Translate a rule to a boolean polars expression (missing values never match)."""
    return _translate(parse_where(text))


def all_of(rules: list[str]) -> pl.Expr:
    """A conjunction of several rules (``True`` when empty)."""
    if not rules:
        return pl.lit(True)
    return reduce(lambda a, b: a & b, (where_to_polars(r) for r in rules))
