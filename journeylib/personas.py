"""Personas from the data, as suggestions: groups of learners whose journeys differ, each with a rule.

:func:`suggest_personas` looks for groups of learners, described by their
attributes, whose journeys end differently from everyone else's. It fits a
shallow decision tree (scikit-learn's ``DecisionTreeClassifier``) that
predicts how each *decided* learner's journey ended — completed, or stopped in
which stage (learners still in progress are left out: their ending is not known
yet) — from the learner attributes. Every leaf is a group with a readable rule,
the conjunction of the splits on its path, written in the map's ``where``
language (a restricted SQL ``WHERE``, see :mod:`journeylib.expr`); the rule
selects exactly the leaf's learners. A leaf becomes a candidate when it has at
least ``min_size`` learners and its endings differ from the rest (chi-squared
test, false discovery rate over all leaves, and at least ``min_difference`` of
total variation distance). Before that, the tree is pruned: two sibling leaves
whose endings do not differ (chi-squared, Bonferroni over the tree's splits)
are merged, so a group is not cut by attributes that make no difference.

Each candidate says its size, its rule, how its journey differs (the stage
where its learners stop more often than others, the share reaching each
stage) and how far it overlaps the map's existing personas (Jaccard index), so
the analyst can adopt it (paste the YAML), rename it or discard it.

>>> from journeylib.workspace import load_workspace
>>> ws = load_workspace("data/sample")
>>> best = suggest_personas(ws.events, ws.learners, ws.map).candidates[0]
>>> best.rule
"referral_channel = 'employer'"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import polars as pl
import yaml

from .expr import parse_where, where_to_polars
from .metrics.stats import bh_fdr

COMPLETED = "completed"
NULL = None  # the missing value in an allowed set


@dataclass
class Candidate:
    """One suggested persona.

    ``rule`` (``where`` language), ``size`` (learners matching it),
    ``decided`` (of them, completed or stopped), ``endings`` (share of the
    decided ones per ending, and the same for everyone else), ``difference``
    (total variation distance between the two), ``p_value`` / ``q_value``,
    ``summary`` (one sentence), ``overlap`` (Jaccard index with each existing
    persona), ``reach`` (share of decided learners reaching each stage, group
    vs others).
    """

    id: str
    name: str
    rule: str
    size: int
    share: float
    decided: int
    endings: pl.DataFrame
    reach: pl.DataFrame
    difference: float
    p_value: float
    q_value: float = 1.0
    summary: str = ""
    overlap: dict[str, float] = field(default_factory=dict)

    @property
    def closest_persona(self) -> tuple[str, float] | None:
        """The existing persona it overlaps most, with the Jaccard index (``None`` without personas)."""
        return max(self.overlap.items(), key=lambda kv: kv[1]) if self.overlap else None

    def as_yaml(self) -> str:
        """A ``personas`` entry to paste into ``journey.yml``.

        >>> c = Candidate("employer", "Employer", "referral_channel = 'employer'", 10, 0.1, 8, pl.DataFrame(), pl.DataFrame(), 0.3, 0.01, summary="x")
        >>> print(c.as_yaml())
        - id: employer
          name: Employer
          description: 'Suggested from the data: x'
          where: referral_channel = 'employer'
        <BLANKLINE>
        """
        return yaml.safe_dump([{"id": self.id, "name": self.name, "description": f"Suggested from the data: {self.summary}",
                                "where": self.rule}], sort_keys=False, allow_unicode=True, width=1000)


@dataclass
class Suggestions:
    """The candidates (most different first) and a table of them (``frame``)."""

    candidates: list[Candidate]
    frame: pl.DataFrame
    attributes: list[str]
    learners: int
    decided: int


# --------------------------------------------------------------------------
# Features and rules
# --------------------------------------------------------------------------

@dataclass
class _Feature:
    column: str
    kind: str  # "eq" (column = value), "null" (column IS NULL), "num" (numeric column)
    value: Any = None


def _numeric(s: pl.Series) -> pl.Series | None:
    """The column as numbers when every present value is one (and there are many values), else ``None``."""
    if s.dtype.is_numeric():
        return s.cast(pl.Float64) if s.n_unique() > 10 else None
    if s.dtype != pl.Utf8:
        return None
    num = s.str.strip_chars().cast(pl.Float64, strict=False)
    if num.null_count() != s.null_count() or s.n_unique() <= 10:
        return None
    return num


def attribute_columns(learners: pl.DataFrame, jmap, attributes: Sequence[str] | None = None, *, max_values: int = 50) -> list[str]:
    """Learner columns usable in a rule: not ids, persona, dates or outcome columns; 2..``max_values``
    values (or numeric).

    >>> attribute_columns(pl.DataFrame({"learner_id": ["a", "b"], "persona": ["x", "y"], "region": ["EU", "US"]}), None)
    ['region']
    """
    if attributes is not None:
        return list(attributes)
    skip = {"learner_id", "persona", "enrolled_at", *(getattr(jmap, "outcomes", None) or [])}
    out = []
    for c in learners.columns:
        if c in skip or learners[c].dtype in (pl.Datetime, pl.Date) or isinstance(learners[c].dtype, pl.Datetime):
            continue
        n = learners[c].drop_nulls().n_unique()
        if n >= 2 and (n <= max_values or _numeric(learners[c]) is not None):
            out.append(c)
    return out


def _features(learners: pl.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[_Feature], dict[str, tuple[list, bool]]]:
    cols, feats, values = [], [], {}
    for c in columns:
        s = learners[c]
        num = _numeric(s)
        if num is not None:
            cols.append(num.fill_null(np.nan).to_numpy())
            feats.append(_Feature(c, "num"))
            values[c] = ([], num.null_count() > 0)
            continue
        text = s.cast(pl.Utf8)
        vals = sorted(text.drop_nulls().unique().to_list())
        values[c] = (vals, text.null_count() > 0)
        for v in vals:
            cols.append((text == v).fill_null(False).to_numpy().astype(float))
            feats.append(_Feature(c, "eq", v))
        if text.null_count():
            cols.append(text.is_null().to_numpy().astype(float))
            feats.append(_Feature(c, "null"))
    X = np.column_stack(cols) if cols else np.zeros((learners.height, 0))
    return X, feats, values


def _quote(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _name(c: str) -> str:
    return c if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c) else '"' + c.replace('"', '""') + '"'


class _Path:
    """The conditions on one root-to-leaf path, per column (``values``: column -> (values, has missing))."""

    def __init__(self, values: dict[str, tuple[list, bool]]):
        self.values = values
        self.allowed: dict[str, set] = {}
        self.interval: dict[str, list] = {}  # numeric: [low (exclusive), high (inclusive), null allowed]

    def copy(self) -> _Path:
        p = _Path(self.values)
        p.allowed = {k: set(v) for k, v in self.allowed.items()}
        p.interval = {k: list(v) for k, v in self.interval.items()}
        return p

    def split(self, f: _Feature, right: bool, threshold: float, missing_left: bool) -> None:
        vals, nullable = self.values[f.column]
        if f.kind == "num":
            lo, hi, null = self.interval.get(f.column, [None, None, nullable])
            if right:
                lo = threshold if lo is None else max(lo, threshold)
            else:
                hi = threshold if hi is None else min(hi, threshold)
            self.interval[f.column] = [lo, hi, null and (missing_left != right)]
            return
        allowed = self.allowed.setdefault(f.column, set(vals) | ({NULL} if nullable else set()))
        member = NULL if f.kind == "null" else f.value
        if right:
            allowed &= {member}
        else:
            allowed.discard(member)

    def rule(self) -> str:
        parts = []
        for c in self.values:
            if c in self.allowed:
                part = self._categorical(c, self.allowed[c])
            elif c in self.interval:
                part = self._numeric(c, *self.interval[c])
            else:
                continue
            if part:
                parts.append(part)
        return " AND ".join(parts)

    def _categorical(self, c: str, allowed: set) -> str:
        vals, nullable = self.values[c]
        present = [v for v in vals if v in allowed]
        has_null = NULL in allowed
        if len(present) == len(vals) and has_null == nullable:
            return ""
        name = _name(c)
        if not present:
            return f"{name} IS NULL"
        excluded = [v for v in vals if v not in allowed]
        if len(present) <= len(excluded) or not excluded:
            cond = f"{name} = {_quote(present[0])}" if len(present) == 1 else f"{name} IN ({', '.join(map(_quote, present))})"
        else:
            cond = f"{name} <> {_quote(excluded[0])}" if len(excluded) == 1 else f"{name} NOT IN ({', '.join(map(_quote, excluded))})"
        return f"({name} IS NULL OR {cond})" if has_null else cond

    def _numeric(self, c: str, lo, hi, null) -> str:
        name = _name(c)
        if lo is not None and lo == float("inf"):  # a split on missingness: no value passes, only missing ones
            return f"{name} IS NULL"
        if hi is not None and hi == float("inf"):
            hi = None
        conds = ([f"{name} > {lo!r}"] if lo is not None else []) + ([f"{name} <= {hi!r}"] if hi is not None else [])
        cond = " AND ".join(conds)
        if not cond:
            return "" if null == self.values[c][1] else f"{name} IS NOT NULL"
        if not self.values[c][1]:
            null = False
        return f"({name} IS NULL OR {cond})" if null else cond


def prune(tree, X: np.ndarray, y: np.ndarray, alpha: float) -> set[int]:
    """The groups kept after pruning a fitted tree bottom-up: two sibling leaves whose endings do not
    differ (chi-squared test, p >= ``alpha``) are merged into their parent. Returns node ids."""
    from scipy.stats import chi2_contingency

    t = tree.tree_
    classes = list(tree.classes_)
    onehot = np.zeros((len(y), len(classes)))
    onehot[np.arange(len(y)), [classes.index(v) for v in y]] = 1
    counts = np.asarray(tree.decision_path(X).T @ onehot)

    def walk(node: int) -> list[int]:
        left, right = t.children_left[node], t.children_right[node]
        if left == -1:
            return [node]
        kept = walk(left) + walk(right)
        if kept == [left, right]:
            table = counts[[left, right]]
            table = table[:, table.sum(axis=0) > 0]
            if table.shape[1] < 2 or chi2_contingency(table)[1] >= alpha:
                return [node]
        return kept

    return set(walk(0))


def leaf_rules(tree, features: list[_Feature], values: dict[str, tuple[list, bool]], nodes: set[int] | None = None) -> dict[int, str]:
    """The ``where`` rule of every leaf of a fitted scikit-learn tree (node id -> rule); with
    ``nodes``, of those nodes instead (the groups left after :func:`prune`).

    A learner falls into a leaf exactly when the rule is true for them.
    """
    t = tree.tree_
    missing_left = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=bool))
    out: dict[int, str] = {}
    stack = [(0, _Path(values))]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1 or (nodes is not None and node in nodes):
            out[node] = path.rule()
            continue
        f = features[t.feature[node]]
        for child, right in ((t.children_left[node], False), (t.children_right[node], True)):
            p = path.copy()
            p.split(f, right, float(t.threshold[node]), bool(missing_left[node]))
            stack.append((child, p))
    return out


# --------------------------------------------------------------------------
# Journeys compared
# --------------------------------------------------------------------------

def learner_endings(events: Any, learners: Any, jmap, *, data_end: Any = None) -> pl.DataFrame:
    """Per learner: ``learner_id``, ``state`` and ``ending`` (``completed`` or the stage stopped in;
    null while in progress or not started) and ``furthest_stage`` (progress along the whole map).

    >>> from journeylib.workspace import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> learner_endings(ws.events, ws.learners, ws.map).filter(pl.col("ending").is_not_null()).height > 2000
    True
    """
    from .metrics import journeys

    j = journeys(events, learners, jmap, data_end=data_end)
    return j.select(
        "learner_id", "state", "furthest_stage",
        pl.when(pl.col("state") == "completed").then(pl.lit(COMPLETED))
        .when(pl.col("state") == "stopped").then(pl.col("furthest_stage")).otherwise(None).alias("ending"),
    )


def _compare(ends: pl.DataFrame, mask: pl.Series, order: list[str]) -> tuple[pl.DataFrame, float, float]:
    from scipy.stats import chi2_contingency

    decided = ends.with_columns(mask.alias("_in")).filter(pl.col("ending").is_not_null())
    counts = decided.group_by("_in", "ending").len()
    table = np.zeros((2, len(order)))
    for g, e, n in counts.iter_rows():
        table[int(bool(g)), order.index(e)] = n
    totals = table.sum(axis=1, keepdims=True)
    shares = np.divide(table, totals, out=np.zeros_like(table), where=totals > 0)
    frame = pl.DataFrame({"ending": order, "group": shares[1], "others": shares[0], "group_n": table[1].astype(int)})
    keep = table.sum(axis=0) > 0
    p = float(chi2_contingency(table[:, keep])[1]) if keep.sum() > 1 and (totals > 0).all() else 1.0
    return frame, float(np.abs(shares[1] - shares[0]).sum() / 2), p


def _reach(ends: pl.DataFrame, mask: pl.Series, stages: list[str]) -> pl.DataFrame:
    pos = {s: i for i, s in enumerate(stages)}
    d = ends.with_columns(mask.alias("_in"), pl.col("furthest_stage").replace_strict(pos, default=-1).alias("_p")).filter(
        pl.col("ending").is_not_null())
    rows = {"stage": stages, "group": [], "others": []}
    for i in range(len(stages)):
        for key, flag in (("group", True), ("others", False)):
            sub = d.filter(pl.col("_in") == flag)
            rows[key].append(float((sub["_p"] >= i).mean()) if sub.height else None)
    return pl.DataFrame(rows)


def _summary(endings: pl.DataFrame, jmap, size: int, share: float, decided: int) -> str:
    names = {s.id: s.name for s in jmap.stages} | {COMPLETED: "completed"}
    diff = endings.with_columns((pl.col("group") - pl.col("others")).alias("d")).sort("d", descending=True)
    top = diff.row(0, named=True)
    what = "complete" if top["ending"] == COMPLETED else f"stop in {names.get(top['ending'], top['ending']).lower()}"
    s = f"{size:,} learners ({share:.0%}); of the {decided:,} whose journey has ended, {top['group']:.0%} {what} vs {top['others']:.0%} of others"
    comp = endings.filter(pl.col("ending") == COMPLETED)
    if comp.height and top["ending"] != COMPLETED:
        c = comp.row(0, named=True)
        s += f"; {c['group']:.0%} complete vs {c['others']:.0%}"
    return s + "."


def _slug(rule: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", rule.lower().replace("<>", " not ").replace("not in", "not")).strip("_")
    s = re.sub(r"_(and|in|is)_", "_", s)
    return (s or "everyone")[:48].strip("_")


def suggest_personas(
    events: Any,
    learners: pl.DataFrame,
    jmap,
    *,
    attributes: Sequence[str] | None = None,
    min_size: int = 30,
    max_depth: int = 3,
    fdr: float = 0.05,
    min_difference: float = 0.1,
    data_end: Any = None,
    random_state: int = 0,
) -> Suggestions:
    """Candidate personas: groups of learners (by attributes) whose journeys end differently.

    ``attributes`` restricts the learner columns used (default: every column
    with 2..50 values or numbers, except ids, ``persona``, dates and the map's
    outcome columns). Candidates are sorted by ``difference`` (largest first).

    >>> from journeylib.workspace import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> s = suggest_personas(ws.events, ws.learners, ws.map)
    >>> s.candidates[0].closest_persona[0]
    'employer_sponsored'
    """
    from sklearn.tree import DecisionTreeClassifier

    learners = learners if isinstance(learners, pl.DataFrame) else pl.from_dataframe(learners)
    cols = attribute_columns(learners, jmap, attributes)
    ends = learner_endings(events, learners, jmap, data_end=data_end)
    ends = learners.select("learner_id").join(ends, on="learner_id", how="left")
    lr = learners.select("learner_id", *cols, *(["persona"] if "persona" in learners.columns else []))
    decided = ends["ending"].is_not_null().to_numpy()
    order = [COMPLETED] + [s.id for s in jmap.stages]
    empty = Suggestions([], _frame([]), cols, learners.height, int(decided.sum()))
    if not cols or decided.sum() < 2 * min_size:
        return empty
    X, feats, values = _features(lr, cols)
    y = ends["ending"].to_numpy()
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_size, criterion="entropy", random_state=random_state)
    tree.fit(X[decided], y[decided])
    internal = int((tree.tree_.children_left != -1).sum())
    kept = prune(tree, X[decided], y[decided], alpha=fdr / max(internal, 1))
    rules = leaf_rules(tree, feats, values, kept)
    stages = [s.id for s in jmap.stages]
    found = []
    for leaf, rule in rules.items():
        if not rule:
            continue
        parse_where(rule)  # always a valid rule of the map's language
        mask = lr.select(where_to_polars(rule).alias("m"))["m"]
        size = int(mask.sum())
        endings, tvd, p = _compare(ends, mask, order)
        n_dec = int(endings["group_n"].sum())
        if size < min_size or n_dec < min_size:
            continue
        found.append((rule, mask, size, endings, tvd, p, n_dec))
    qs = bh_fdr([f[5] for f in found])
    out = []
    for (rule, mask, size, endings, tvd, p, n_dec), q in zip(found, qs):
        if q >= fdr or tvd < min_difference:
            continue
        share = size / learners.height
        overlap = {}
        if "persona" in lr.columns:
            for pid in jmap.persona_ids():
                other = (lr["persona"] == pid).fill_null(False)
                union = int((mask | other).sum())
                overlap[pid] = int((mask & other).sum()) / union if union else 0.0
        cid = _slug(rule)
        out.append(Candidate(cid, f"Learners with {rule}", rule, size, share, n_dec, endings.drop("group_n"),
                             _reach(ends, mask, stages), tvd, p, q, _summary(endings, jmap, size, share, n_dec), overlap))
    out.sort(key=lambda c: -c.difference)
    return Suggestions(out, _frame(out), cols, learners.height, int(decided.sum()))


def _frame(cands: list[Candidate]) -> pl.DataFrame:
    schema = {"candidate": pl.Utf8, "rule": pl.Utf8, "size": pl.Int64, "share": pl.Float64, "decided": pl.Int64,
              "difference": pl.Float64, "q_value": pl.Float64, "closest_persona": pl.Utf8, "overlap": pl.Float64,
              "summary": pl.Utf8}
    rows = [{"candidate": c.id, "rule": c.rule, "size": c.size, "share": c.share, "decided": c.decided,
             "difference": c.difference, "q_value": c.q_value,
             "closest_persona": c.closest_persona[0] if c.closest_persona else None,
             "overlap": c.closest_persona[1] if c.closest_persona else None, "summary": c.summary} for c in cands]
    return pl.DataFrame(rows, schema=schema)
