"""Segment gaps: does a group of learners who share an attribute value convert
less (or more) than everyone else at a touchpoint?

For every touchpoint and every value of every learner attribute, the
segment's conversion is compared with the rest's (Fisher's exact test when an
expected count is below 5, else chi-squared), the p-values of all tested
cells are corrected for the number of comparisons (Benjamini–Hochberg false
discovery rate), and each cell gets Cohen's h as effect size.

**Conversion at a touchpoint** (the same as the ``conversion`` KPI without a
funnel, or the step conversion of a named funnel):

* without ``funnel``: learners with any event at the touchpoint; converted =
  an event at any later touchpoint of the map at or after their first event
  here;
* with ``funnel``: learners who reached the step (see ``mode``); converted =
  reached the next step; the funnel's last step is not tested.

Every learner is judged by the outcome model (:mod:`~journeylib.metrics.outcomes`)
with the map's follow-up horizon: carrying on counts within ``horizon`` days
of arriving, and learners whose horizon has not elapsed and who have not
carried on yet are *undecided*: left out of both counts and reported in
``segment_undecided`` / ``rest_undecided``.

**Tested once.** Segments that hold exactly the same learners, or exactly the
complementary learners (the two values of a two-valued attribute), are one
comparison: the smaller segment is tested and the other row shows the same
p- and q-value with ``tested_as`` naming it. A ``persona`` derived by the
map's ``where`` rules from a single learner column that is also compared is
not tested separately (``tested_as`` names that column). Outcome columns
declared in the map (``outcomes:``) are never segments.

>>> import polars as pl
>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> gaps = segment_gaps(ws.events, ws.learners, ws.map)   # every attribute with at most 50 values
>>> top = gaps.filter("significant").sort("q_value", "attribute").head(3)
>>> top.select("attribute", "value", "touchpoint_id", pl.col("segment_rate", "rest_rate").round(3), "tested_as").rows()
[('persona', 'employer_sponsored', 'welcome_email', 0.605, 0.944, None),
 ('referral_channel', 'employer', 'welcome_email', 0.605, 0.944, 'persona = employer_sponsored'),
 ('persona', 'employer_sponsored', 'orientation', 0.677, 0.921, None)]
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from ..errors import DataError
from . import engine as E
from .engine import LID, TP
from .journeys import default_mode, resolve_steps
from .outcomes import OUTCOMES, continuable, outcome_frame
from .stats import bh_fdr, cohens_h, two_by_two

SEGMENT_COLUMNS = [
    "attribute", "value", "touchpoint_id", "segment_n", "segment_converted", "segment_rate",
    "rest_n", "rest_converted", "rest_rate", "difference", "effect_size", "test",
    "p_value", "q_value", "significant", "suppressed", "segment_undecided", "rest_undecided", "tested_as", "test_key",
]
MISSING = "(missing)"


def conversion_counts(ev: nw.LazyFrame, ln: nw.LazyFrame, jmap, attrs: list[str], *, funnel=None, mode=None,
                      window=None, data_end, horizon=None, arrived_before=None) -> tuple[pl.DataFrame, list[str]]:
    """Counts of (learner, touchpoint) outcomes by every attribute value and
    touchpoint: columns ``<attrs>, touchpoint_id, outcome, n``
    (``outcome`` = carried_on / stopped / undecided); and the touchpoints tested, in order.

    One grouped query in the engine; the result has at most one row per
    combination of attribute values present (small).

    >>> from journeylib import load_workspace
    >>> from journeylib.metrics import engine as E
    >>> ws = load_workspace("data/sample")
    >>> ev, ln, _ = E.prepare(ws.events, ws.learners)
    >>> end = E.resolve_data_end(ev)
    >>> counts, tested = conversion_counts(ev, ln, ws.map, ["device"], data_end=end)
    >>> counts.columns, tested[:3]
    (['device', 'touchpoint_id', 'outcome', 'n'], ['social_ad', 'newsletter', 'course_page'])
    >>> counts.filter(pl.col("touchpoint_id") == "orientation").sort("device", "outcome").head(3).rows()
    [('desktop', 'orientation', 'carried_on', 348), ('desktop', 'orientation', 'stopped', 43),
     ('desktop', 'orientation', 'undecided', 5)]
    """
    keys = [nw.col(a).cast(nw.String).fill_null(MISSING).alias(a) for a in attrs]
    steps = resolve_steps(jmap, funnel) if funnel is not None else None
    of = outcome_frame(ev, ln, jmap, as_of=data_end, funnel_steps=steps, mode=default_mode(funnel, mode),
                       window=window, horizon=horizon, learner_cols=attrs)
    if arrived_before is not None:
        of = of.filter(nw.col("arrived_at") < arrived_before)
    q = of.filter(~nw.col("outcome").is_null()).select(TP, "outcome", *keys).group_by(*attrs, TP, "outcome").agg(
        nw.len().cast(nw.Int64).alias("n"))
    tested = continuable(jmap, steps)
    return E.collect(q), tested


def segment_attributes(ln: nw.LazyFrame, jmap, attributes: str | Sequence[str] | None) -> list[str]:
    """The attributes compared: ``attributes`` (checked) or every attribute column
    (:func:`~journeylib.metrics.engine.attribute_columns`); outcome columns of the map are never segments.

    >>> segment_attributes(E.lazy(pl.DataFrame({"learner_id": ["u"], "final_result": ["Pass"], "device": ["m"]})),
    ...                    type("M", (), {"outcomes": ["final_result"]})(), None)
    ['device']
    """
    outcome_cols = set(getattr(jmap, "outcomes", []) or [])
    if attributes is None:
        return [a for a in E.attribute_columns(ln) if a not in outcome_cols]
    attrs = E.by_list(attributes)
    lcols = E.columns(ln)
    bad = [a for a in attrs if a not in lcols]
    if bad:
        raise DataError(f"unknown learner column(s) {', '.join(repr(a) for a in bad)}; learner columns: {', '.join(lcols)}")
    out = [a for a in attrs if a in outcome_cols]
    if out:
        raise DataError(f"{', '.join(repr(a) for a in out)} is declared an outcome in the map (outcomes:); "
                        "outcomes are never compared as segments")
    return attrs


def persona_source(ln: pl.DataFrame, jmap, attrs: list[str]) -> str | None:
    """The learner column ``persona`` is derived from, when the map's ``where``
    rules all use one column that is also compared (and the data agree: one
    persona per value of it); else None.

    >>> persona_source(pl.DataFrame({"persona": ["a", "b"], "edu": ["x", "y"]}), None, ["persona", "edu"]) is None
    True
    """
    if jmap is None or "persona" not in attrs or not jmap.personas or any(not p.where for p in jmap.personas):
        return None
    from ..expr import columns_of

    used = {c for p in jmap.personas for c in columns_of(p.where)}
    if len(used) != 1:
        return None
    col = used.pop()
    if col not in attrs or col not in ln.columns:
        return None
    per = ln.group_by(pl.col(col).cast(pl.Utf8)).agg(pl.col("persona").n_unique().alias("_k"))
    return col if (per["_k"] <= 1).all() else None


def _partitions(ln: pl.DataFrame, attrs: list[str]) -> dict[tuple[str, str], tuple]:
    """(attribute, value) → a key shared by segments that split the learners the same way
    (the same members, or exactly the complementary members)."""
    ln = ln.sort(LID)
    out = {}
    for a in attrs:
        col = ln[a].cast(pl.Utf8).fill_null(MISSING)
        for v in col.unique().to_list():
            m = (col == v).to_numpy()
            h1, h2 = hash(m.tobytes()), hash((~m).tobytes())
            out[(a, v)] = (min(h1, h2), max(h1, h2))
    return out


def segment_cells(ev: nw.LazyFrame, ln: nw.LazyFrame, jmap, attrs: list[str], *, funnel=None, mode=None, window=None,
                  min_count: int = 5, data_end, horizon=None, arrived_before=None) -> pl.DataFrame:
    """Every (attribute, value, touchpoint) cell with its counts, test and p-value, before any
    false-discovery correction; ``test_key`` identifies the comparison (cells
    with the same key are one test, see the module docstring) and
    ``in_family`` marks the cells whose p-value enters a correction family.

    >>> from journeylib import load_workspace
    >>> from journeylib.metrics import engine as E
    >>> ws = load_workspace("data/sample")
    >>> ev, ln, _ = E.prepare(ws.events, ws.learners)
    >>> end = E.resolve_data_end(ev)
    >>> cells = segment_cells(ev, ln, ws.map, ["device"], data_end=end)
    >>> row = cells.filter((pl.col("value") == "tablet") & (pl.col("touchpoint_id") == "orientation"))
    >>> row.select("segment_n", "segment_converted", "rest_n", "rest_converted", "test", "test_key", "in_family").row(0)
    (108, 98, 1354, 1209, 'chi2', 'segment|device=tablet|orientation', True)
    """
    counts, tested = conversion_counts(ev, ln, jmap, attrs, funnel=funnel, mode=mode, window=window,
                                       data_end=data_end, horizon=horizon, arrived_before=arrived_before)
    if not tested or counts.height == 0:
        return pl.DataFrame(schema=_CELL_SCHEMA)
    lr = E.collect(ln.select(LID, *attrs))
    parts = _partitions(lr, attrs)
    derived = persona_source(lr, jmap, attrs)
    sizes = _segment_sizes(lr, attrs)
    wide = counts.pivot(on="outcome", index=[*attrs, TP], values="n", aggregate_function="sum")
    for o in OUTCOMES:
        if o not in wide.columns:
            wide = wide.with_columns(pl.lit(0, dtype=pl.Int64).alias(o))
    wide = wide.with_columns([pl.col(o).fill_null(0).cast(pl.Int64) for o in OUTCOMES])
    tot = wide.group_by(TP).agg([pl.col(o).sum() for o in OUTCOMES])
    tot = {r[TP]: r for r in tot.iter_rows(named=True)}
    seg = pl.concat([
        wide.group_by(a, TP).agg([pl.col(o).sum() for o in OUTCOMES]).select(
            pl.lit(a).alias("attribute"), pl.col(a).alias("value"), TP, *OUTCOMES)
        for a in attrs], how="vertical_relaxed")
    # the tested representative of each partition: the smallest segment, then attribute order, then value
    apos = {a: i for i, a in enumerate(attrs)}
    rep: dict[tuple, tuple[str, str]] = {}
    for (a, v) in sorted(parts, key=lambda k: (derived is not None and k[0] == "persona", sizes.get(k, 0), apos[k[0]], k[1])):
        rep.setdefault(parts[(a, v)], (a, v))
    rows = []
    for r in seg.iter_rows(named=True):
        t = tot[r[TP]]
        sx, sn = r["carried_on"], r["carried_on"] + r["stopped"]
        rx, rn = t["carried_on"] - sx, t["carried_on"] + t["stopped"] - sn
        sr, rr = (sx / sn if sn else None), (rx / rn if rn else None)
        suppressed = sn < min_count
        test, p = (None, None) if suppressed else two_by_two(sx, sn, rx, rn)
        key = (r["attribute"], r["value"])
        ra, rv = rep[parts[key]]
        tested_as = None if (ra, rv) == key else f"{ra} = {rv}"
        if derived and r["attribute"] == "persona":
            tested_as = derived
        rows.append({"attribute": r["attribute"], "value": r["value"], TP: r[TP], "segment_n": sn, "segment_converted": sx,
                     "segment_rate": sr, "rest_n": rn, "rest_converted": rx, "rest_rate": rr,
                     "difference": (sr - rr) if sr is not None and rr is not None else None,
                     "effect_size": cohens_h(sr, rr), "test": test, "p_value": p, "suppressed": suppressed,
                     "segment_undecided": r["undecided"], "rest_undecided": t["undecided"] - r["undecided"],
                     "tested_as": tested_as, "test_key": f"segment|{ra}={rv}|{r[TP]}",
                     "in_family": p is not None and tested_as is None})
    df = pl.DataFrame(rows, schema=_CELL_SCHEMA)
    # a duplicate of a tested cell shows that cell's test (none when that cell is suppressed)
    src = df.filter(pl.col("in_family")).select("test_key", pl.col("p_value").alias("_p"), pl.col("test").alias("_t"))
    df = df.join(src, on="test_key", how="left").with_columns(
        pl.when(pl.col("tested_as").is_null()).then(pl.col("p_value")).otherwise(pl.col("_p")).alias("p_value"),
        pl.when(pl.col("tested_as").is_null()).then(pl.col("test")).otherwise(pl.col("_t")).alias("test"),
    ).drop("_p", "_t")
    if derived:
        df = df.with_columns([pl.when(pl.col("attribute") == "persona").then(None).otherwise(pl.col(c)).alias(c)
                              for c in ("p_value", "test")])
    pos = {s: i for i, s in enumerate(tested)}
    return (
        df.with_columns(
            pl.col("attribute").replace_strict(apos, default=None, return_dtype=pl.Int64).alias("_a"),
            pl.col("touchpoint_id").replace_strict(pos, default=None, return_dtype=pl.Int64).alias("_p"),
        ).filter(pl.col("_p").is_not_null())
        .sort(["_a", "value", "_p"]).drop("_a", "_p")
    )


def _segment_sizes(lr: pl.DataFrame, attrs: list[str]) -> dict[tuple[str, str], int]:
    out = {}
    for a in attrs:
        vc = lr.select(pl.col(a).cast(pl.Utf8).fill_null(MISSING)).to_series().value_counts()
        out.update({(a, v): int(n) for v, n in vc.iter_rows()})
    return out


_CELL_SCHEMA = {"attribute": pl.Utf8, "value": pl.Utf8, "touchpoint_id": pl.Utf8, "segment_n": pl.Int64,
                "segment_converted": pl.Int64, "segment_rate": pl.Float64, "rest_n": pl.Int64, "rest_converted": pl.Int64,
                "rest_rate": pl.Float64, "difference": pl.Float64, "effect_size": pl.Float64, "test": pl.Utf8,
                "p_value": pl.Float64, "suppressed": pl.Boolean, "segment_undecided": pl.Int64,
                "rest_undecided": pl.Int64, "tested_as": pl.Utf8, "test_key": pl.Utf8, "in_family": pl.Boolean}


def apply_family(cells: pl.DataFrame, q_of: dict[str, float | None], fdr: float) -> pl.DataFrame:
    """Add ``q_value`` / ``significant`` from a correction family (``test_key`` → q) and keep
    :data:`SEGMENT_COLUMNS`.

    >>> cells = pl.DataFrame({c: [None, None] for c in SEGMENT_COLUMNS if c not in ("q_value", "significant")}
    ...                      ).with_columns(test_key=pl.Series(["segment|device=m|a", "segment|device=d|a"]),
    ...                                     p_value=pl.Series([0.004, None], dtype=pl.Float64))
    >>> out = apply_family(cells, {"segment|device=m|a": 0.01}, 0.05)
    >>> out.columns == SEGMENT_COLUMNS, out.select("test_key", "q_value", "significant").rows()
    (True, [('segment|device=m|a', 0.01, True), ('segment|device=d|a', None, False)])
    """
    qs = [q_of.get(k) if p is not None else None for k, p in zip(cells["test_key"], cells["p_value"])]
    return cells.with_columns(pl.Series("q_value", qs, dtype=pl.Float64)).with_columns(
        (pl.col("q_value") < fdr).fill_null(False).alias("significant")).select(SEGMENT_COLUMNS)


def segment_gaps(
    events: Any,
    learners: Any,
    jmap,
    *,
    attributes: str | Sequence[str] | None = None,
    funnel: str | Sequence[str] | None = None,
    mode: str | None = None,
    window: float | None = None,
    min_count: int = 5,
    fdr: float = 0.05,
    data_end: Any = None,
    horizon: float | None = None,
) -> pl.DataFrame:
    """One row per (attribute, value, touchpoint) comparing the segment with everyone else.

    ``attributes`` default: every learner column except ``learner_id``,
    ``enrolled_at`` and the map's ``outcomes`` with at most 50 distinct values
    (``persona`` included). Missing values form their own segment
    ``"(missing)"``. Cells with ``segment_n < min_count`` are ``suppressed``:
    not tested, no p-value, not part of the false-discovery family.
    ``difference = segment_rate − rest_rate``; ``effect_size`` = Cohen's h;
    ``q_value`` = BH-adjusted p over the distinct comparisons;
    ``significant = q_value < fdr``. ``horizon`` (days) defaults to the map's
    ``review.horizon_days``.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> g = segment_gaps(ws.events, ws.learners, ws.map, attributes=["device"])
    >>> g.filter(pl.col("touchpoint_id") == "orientation").select(
    ...     "value", "segment_n", pl.col("segment_rate", "rest_rate", "q_value").round(3), "significant").rows()
    [('desktop', 391, 0.89, 0.895, 1.0, False), ('laptop', 625, 0.894, 0.894, 1.0, False),
     ('mobile', 338, 0.893, 0.894, 1.0, False), ('tablet', 108, 0.907, 0.893, 1.0, False)]
    """
    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, data_end)
    attrs = segment_attributes(ln, jmap, attributes)
    if not attrs:
        return pl.DataFrame(schema={k: v for k, v in _CELL_SCHEMA.items() if k in SEGMENT_COLUMNS} | {"q_value": pl.Float64, "significant": pl.Boolean}).select(SEGMENT_COLUMNS)
    h = jmap.horizon_days if horizon is None else horizon
    cells = segment_cells(ev, ln, jmap, attrs, funnel=funnel, mode=mode, window=window, min_count=min_count,
                          data_end=end, horizon=h)
    fam = cells.filter(pl.col("in_family"))
    qs = bh_fdr(fam["p_value"].to_list())
    return apply_family(cells, dict(zip(fam["test_key"].to_list(), qs)), fdr)
