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

import re
from functools import lru_cache, reduce

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
    """Parse and check a rule; raise ``ValueError`` naming what is not allowed.

    The rule is also translated once (without data), so every accepted rule
    can be evaluated.

    >>> parse_where("region = 'Europe'").sql()
    "region = 'Europe'"
    >>> parse_where("lower(region) = 'europe'")
    Traceback (most recent call last):
    ...
    ValueError: rule "lower(region) = 'europe'": 'LOWER(region)' is not allowed (only comparisons, IN, BETWEEN, LIKE, IS NULL, AND, OR, NOT)

    A rule longer than ``JOURNEY_MAX_RULE_CHARS`` (2000) or nested deeper than
    ``JOURNEY_MAX_RULE_DEPTH`` (20 parentheses or NOTs) is refused before it is parsed:

    >>> parse_where("(" * 50 + "a = 1" + ")" * 50)
    Traceback (most recent call last):
    ...
    ValueError: rule nested 50 deep (parentheses and NOT); at most 20 (JOURNEY_MAX_RULE_DEPTH)
    """
    return _rule(text)[0].copy()  # a tree of the caller's own: the parsed rule is kept for the next call


def _rule(text: str) -> tuple[exp.Expression, pl.Expr]:
    """A rule checked (its size against the limits in force) and its parsed tree and translation."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty rule")
    _check_size(text)
    return _parsed(text)


@lru_cache(maxsize=1024)
def _parsed(text: str) -> tuple[exp.Expression, pl.Expr]:
    """Parse, check and translate a rule once per process (a map's rules are read again by every
    validation, version hash and persona assignment); refused rules are not kept."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        errors = getattr(exc, "errors", None)
        first = errors[0]["description"] if errors else str(exc).splitlines()[0]
        raise ValueError(f"cannot parse rule {_short(text)}: {first}") from None
    except RecursionError:
        raise ValueError(f"rule {_short(text)} is nested too deeply to parse") from None
    if tree is None:
        raise ValueError(f"cannot parse rule {_short(text)}")
    _check(tree, text)
    try:
        expr = _translate(tree)
    except ValueError as exc:
        raise ValueError(f"rule {_short(text)}: {exc}") from None
    except RecursionError:
        raise ValueError(f"rule {_short(text)} is nested too deeply") from None
    return tree, expr


def _short(text: str, n: int = 200) -> str:
    """A rule as shown in a message: quoted, cut at ``n`` characters."""
    return repr(text) if len(text) <= n else repr(text[:n]) + "…"


def _check_size(text: str) -> None:
    """Refuse a rule that is too long or too deeply nested, before the parser sees it.

    Depth counts open parentheses plus the ``NOT`` operators in force (a
    ``NOT`` lasts to the next ``AND``/``OR`` or closing parenthesis at its
    level); text inside quotes is skipped, and a chain of ``AND``/``OR`` is flat.
    """
    from .limits import limits_from_env

    limits = limits_from_env()
    if len(text) > limits.rule_chars:
        raise ValueError(f"rule is {len(text)} characters long; at most {limits.rule_chars} (JOURNEY_MAX_RULE_CHARS)")
    depth = deepest = 0
    nots: list[int] = []  # depth at which each pending NOT was opened
    quote = None
    for m in re.finditer(r"""'|"|\(|\)|\b(?:not|and|or)\b""", text, flags=re.IGNORECASE):
        tok = m.group(0)
        if quote:
            if tok == quote:
                quote = None
            continue
        if tok in ("'", '"'):
            quote = tok
        elif tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif tok.lower() in ("and", "or"):
            while nots and nots[-1] >= depth:
                nots.pop()
        else:
            nots.append(depth)
        deepest = max(deepest, depth + len(nots))
        while nots and nots[-1] > depth:
            nots.pop()
    if deepest > limits.rule_depth:
        raise ValueError(f"rule nested {deepest} deep (parentheses and NOT); at most {limits.rule_depth} (JOURNEY_MAX_RULE_DEPTH)")


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
        if isinstance(sub, exp.In) and (sub.args.get("query") is not None or sub.args.get("unnest") is not None):
            raise ValueError(f"rule {text!r}: subqueries are not allowed")
        if isinstance(sub, (exp.Like, exp.ILike)) and sub.args.get("escape") is not None:
            raise ValueError(f"rule {text!r}: LIKE ... ESCAPE is not supported")


def columns_of(text: str) -> list[str]:
    """The learner attributes a rule reads, in order of first appearance.

    >>> columns_of("device = 'mobile' OR age_band IN ('18-24') OR device IS NULL")
    ['device', 'age_band']
    """
    seen: list[str] = []
    for col in _rule(text)[0].find_all(exp.Column):
        if col.name not in seen:
            seen.append(col.name)
    return sorted(seen, key=text.find)


def _literal(node: exp.Expression):
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Neg):
        v = _literal(node.this)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ValueError(f"'{node.sql()}': only numbers can be negative")
        return -v
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        num = float(node.this)
        return int(num) if num.is_integer() and "." not in node.this and "e" not in node.this.lower() else num
    raise ValueError(f"expected a literal value, got '{node.sql()}'")


_TRUTHY = ["true", "1", "yes", "y", "t"]


def _side(node: exp.Expression, like):
    """Translate a value side; a column is cast to match the literal it meets."""
    if isinstance(node, exp.Column):
        col = pl.col(node.name)
        if isinstance(like, bool):
            return col.cast(pl.Utf8).str.strip_chars().str.to_lowercase().is_in(_TRUTHY)
        if isinstance(like, (int, float)):
            return col.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
        return col.cast(pl.Utf8)
    return pl.lit(_literal(node))


def _dtype_of(probe) -> pl.DataType:
    if isinstance(probe, bool):
        return pl.Boolean
    if isinstance(probe, (int, float)):
        return pl.Float64
    return pl.Utf8


def _translate(node: exp.Expression) -> pl.Expr:
    """SQL three-valued logic: a comparison with a missing value is null (unknown)."""
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
        if not isinstance(inner, exp.Column) or not isinstance(node.expression, exp.Null):
            raise ValueError(f"'{node.sql()}': only 'column IS [NOT] NULL' is allowed")
        out = pl.col(inner.name).is_null()
        return ~out if node.args.get("negate") else out
    for cls, op in _COMPARE.items():
        if isinstance(node, cls):
            left, right = node.this, node.expression
            if not isinstance(left, exp.Column) and not isinstance(right, exp.Column):
                raise ValueError(f"'{node.sql()}': a comparison needs a column")
            if isinstance(right, exp.Column) and isinstance(left, exp.Column):
                lit = ""
            else:
                lit = _literal(left if isinstance(right, exp.Column) else right)
            a, b = _side(left, lit), _side(right, lit)
            return getattr(a, f"__{op}__")(b)
    if isinstance(node, exp.In):
        if not isinstance(node.this, exp.Column):
            raise ValueError(f"'{node.sql()}': IN needs a column on the left")
        values = [_literal(v) for v in node.expressions]
        known = [v for v in values if v is not None]
        probe = known[0] if known else ""
        kinds = {type(v) if not isinstance(v, bool) else bool for v in known}
        if len(kinds - {int, float}) > 1 or (kinds & {int, float} and kinds - {int, float}):
            raise ValueError(f"'{node.sql()}': IN values must all be text, all numbers or all booleans")
        if isinstance(probe, (int, float)) and not isinstance(probe, bool):
            known = [float(v) for v in known]  # the column is read as a number
        hit = _side(node.this, probe).is_in(pl.Series(known, dtype=_dtype_of(probe)).implode())
        if len(known) < len(values):  # x IN (..., NULL) is true or unknown, never false
            hit = pl.when(hit).then(True).otherwise(None)
        return ~hit if node.args.get("negate") else hit
    if isinstance(node, exp.Between):
        if not isinstance(node.this, exp.Column):
            raise ValueError(f"'{node.sql()}': BETWEEN needs a column on the left")
        low, high = _literal(node.args["low"]), _literal(node.args["high"])
        col = _side(node.this, low)
        out = col.is_between(pl.lit(low), pl.lit(high))
        return ~out if node.args.get("negate") else out
    if isinstance(node, (exp.Like, exp.ILike)):
        if not isinstance(node.this, exp.Column):
            raise ValueError(f"'{node.sql()}': LIKE needs a column on the left")
        pattern = _literal(node.expression)
        if not isinstance(pattern, str):
            raise ValueError(f"'{node.sql()}': LIKE needs a string pattern")
        regex = "^" + "".join(
            ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern
        ) + "$"
        if isinstance(node, exp.ILike):
            regex = "(?is)" + regex
        else:
            regex = "(?s)" + regex
        out = pl.col(node.this.name).cast(pl.Utf8).str.contains(regex)
        return ~out if node.args.get("negate") else out
    if isinstance(node, (exp.Column, exp.Literal, exp.Boolean, exp.Null)):
        raise ValueError(f"'{node.sql()}' is a value, not a condition; compare it, e.g. {node.sql()} = 'yes'")
    raise ValueError(f"'{node.sql()}' is not allowed")


def where_to_polars(text: str) -> pl.Expr:
    """Translate a rule to a boolean polars expression.

    Evaluation follows SQL: a comparison with a missing value is unknown, and
    a row matches only when the whole rule is true (so ``NOT device =
    'mobile'`` does not match learners whose device is missing).

    >>> df = pl.DataFrame({"device": ["mobile", None, "laptop"]})
    >>> df.filter(where_to_polars("NOT device = 'mobile'"))["device"].to_list()
    ['laptop']
    """
    return _rule(text)[1].fill_null(False)


def all_of(rules: list[str]) -> pl.Expr:
    """A conjunction of several rules (``True`` when empty).

    >>> pl.DataFrame({"a": [1, 2, 3]}).filter(all_of(["a > 1", "a < 3"]))["a"].to_list()
    [2]
    """
    if not rules:
        return pl.lit(True)
    return reduce(lambda a, b: a & b, (where_to_polars(r) for r in rules))
