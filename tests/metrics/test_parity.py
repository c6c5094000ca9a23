"""Engine parity: every public metric, on every supported input, gives the polars answer cell for cell.

The cases are built from ``journeylib.metrics.__all__``: every public function
that takes ``events`` is a metric and runs at least once with its defaults, plus
the variants in :func:`variants` (every funnel mode with and without a window,
groupings, periods, follow-up horizons, survival origins, an explicit
``data_end``/``as_of``). A metric that cannot run with its defaults and has no
variant makes :func:`test_every_metric_has_a_parity_case` fail.

Inputs are the pairs of ``tests/engines.py`` (polars eager/lazy, pandas,
pyarrow, DuckDB, Spark, and mixed events/learners engines), on the sample and
on hypothesis-generated tables with tied timestamps, repeated events, events
of unknown learners, time zones other than UTC and missing values. Every
metric runs on every input; which variants run where is in :func:`sample_params`.

Comparison: a table, or every field of a result object (review, survival,
coverage: frames, findings, sentences, p-values, dates). Same columns, dtypes
and row order; counts, strings, booleans and datetimes exactly equal; floats within a relative 1e-9 (absolute 1e-12 near
zero). DuckDB and Spark add up floats in another order than polars (and
compute means and quantiles from those sums), which moves the last bits of a
double (relative ~1e-15 on the sample); 1e-9 is a million times that and far
below any digit a table or report shows. Inputs converted at the door (pandas,
pyarrow) run the polars code itself and give identical bits.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import engines
from journeylib import metrics as jm
from journeylib.errors import DataError

from . import reference as ref
from ._data import MAP, datasets, frames

REL_TOL, ABS_TOL = 1e-9, 1e-12


# --------------------------------------------------------------------------
# The cases: every public metric, in every mode
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Setting:
    """What a case may name in the data at hand: funnels, learner columns, a period, a window, a horizon."""

    funnel: str
    other_funnel: str
    by: str
    by2: tuple[str, ...]
    attribute: str
    period: str
    window: float
    data_end: str
    coverage_period: tuple[str, str]
    horizon: float
    origin: str
    extra: dict = dataclasses.field(default_factory=dict)


SAMPLE = Setting(funnel="course", other_funnel="full", by="persona", by2=("persona", "device"),
                 attribute="accessibility", period="2025-06", window=30, data_end="2025-07-31",
                 coverage_period=("2025-06-01", "2025-07-01"), horizon=21, origin="lesson_1")
GENERATED = Setting(funnel="abcd", other_funnel="cab", by="persona", by2=("persona", "device"),
                    attribute="device", period="2025-03", window=2, data_end="2025-03-06",
                    coverage_period=("2025-03-04", "2025-03-07"), horizon=2, origin="b",
                    extra={"min_count": 1, "window_days": 3})


def variants(s: Setting) -> list[tuple[str, dict]]:
    """``(metric, keyword arguments)`` beyond each metric's defaults."""
    by2 = list(s.by2)
    return [
        ("journeys", {"funnel": s.funnel}),
        ("journeys", {"funnel": s.funnel, "mode": "strict", "window": s.window}),
        ("journeys", {"funnel": s.other_funnel, "mode": "any_order", "data_end": s.data_end}),
        ("funnel", {"steps": s.funnel, "by": s.by}),
        ("funnel", {"steps": s.funnel, "window": s.window, "by": by2}),
        ("funnel", {"steps": s.funnel, "mode": "strict"}),
        ("funnel", {"steps": s.other_funnel, "mode": "strict", "window": s.window, "by": s.by}),
        ("funnel", {"steps": s.other_funnel, "mode": "any_order", "by": s.by}),
        ("funnel", {"steps": s.funnel, "mode": "any_order", "window": s.window, "data_end": s.data_end}),
        ("dropoff", {"by": s.by}),
        ("dropoff", {"funnel": s.funnel, "mode": "strict", "window": s.window}),
        ("stop_transitions", {"by": s.by, "funnel": s.funnel}),
        ("kpis", {"by": s.by}),
        ("kpis", {"period": s.period}),
        ("measure", {"by": by2, "period": s.period}),
        ("emotion", {"by": "device"}),
        ("emotion_vs_stopping", {"threshold": 0.0}),
        ("segment_gaps", {"attributes": [s.attribute], "funnel": s.funnel, "mode": "any_order",
                          "min_count": s.extra.get("min_count", 5)}),
        ("transitions", {"by": s.by}),
        ("paths", {"top": 10, "by": s.by}),
        ("conformance", {"funnel": s.funnel}),
        ("intervention_effects", {"window_days": s.extra.get("window_days", 60)}),
        ("coverage", {"period": s.coverage_period, "data_end": s.data_end, "min_days": 2}),
        ("outcomes", {"funnel": s.funnel, "horizon": s.horizon, "as_of": s.data_end}),
        ("outcomes", {"funnel": s.other_funnel, "mode": "strict", "window": s.window}),
        ("survival", {"by": s.by, "horizon": s.horizon}),
        ("survival", {"origin": "first_event", "period": s.period}),
        ("stop_times", {"origin": s.origin, "by": by2, "as_of": s.data_end}),
        ("kpis", {"period": s.period, "horizon": s.horizon, "by": s.by}),
        ("dropoff", {"horizon": s.horizon, "data_end": s.data_end}),
        ("segment_gaps", {"horizon": s.horizon, "min_count": s.extra.get("min_count", 5)}),
        ("emotion_vs_stopping", {"horizon": s.horizon}),
        ("intervention_effects", {"horizon": s.horizon, "window_days": s.extra.get("window_days", 60)}),
        ("review", {"period": s.period, "horizon": s.horizon, "attributes": [s.attribute],
                    "min_count": s.extra.get("min_count", 5)}),
    ]


def metric_names() -> list[str]:
    """The public metrics: every function in ``jm.__all__`` that takes ``events``."""
    out = []
    for name in jm.__all__:
        obj = getattr(jm, name)
        if inspect.isfunction(obj) and "events" in inspect.signature(obj).parameters:
            out.append(name)
    return out


#: the tables and map a metric takes positionally (``learners`` only where it has the parameter)
DATA_ARGS = ("events", "learners", "jmap")


def runs_with_defaults(name: str) -> bool:
    """Whether the metric needs nothing beyond its data (events, learners, the map)."""
    params = inspect.signature(getattr(jm, name)).parameters.values()
    return all(p.default is not inspect.Parameter.empty for p in params if p.name not in DATA_ARGS)


def cases(s: Setting) -> dict[str, tuple[str, dict]]:
    """Case id → (metric, kwargs): each metric with its defaults, then the variants."""
    out = {name: (name, {}) for name in metric_names() if runs_with_defaults(name)}
    for i, (name, kwargs) in enumerate(variants(s)):
        out[f"{name}[{i}]"] = (name, kwargs)
    return out


def run(case: tuple[str, dict], events: Any, learners: Any, jmap) -> Any:
    name, kwargs = case
    fn = getattr(jm, name)
    data = {"events": events, "learners": learners, "jmap": jmap}
    args = [data[p] for p in inspect.signature(fn).parameters if p in DATA_ARGS]
    return fn(*args, **kwargs)


# --------------------------------------------------------------------------
# Comparing results
# --------------------------------------------------------------------------

def tables(result: Any) -> dict[str, Any]:
    """A metric's result as named parts: one DataFrame, or every field of a result object
    (its frames, findings, sentences, p-values, dates, …)."""
    if isinstance(result, pl.DataFrame):
        return {"table": result}
    if dataclasses.is_dataclass(result):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    raise TypeError(f"no parity comparison for a {type(result).__name__} result")


def assert_same(got: Any, want: Any, where: str) -> None:
    """Every part, column, dtype, row and cell of ``got`` equals ``want`` (floats: see the module docstring)."""
    g, w = tables(got), tables(want)
    assert list(g) == list(w), f"{where}: parts {list(g)} instead of {list(w)}"
    for key, expected in w.items():
        same_value(g[key], expected, f"{where}: {key}")


def same_value(got: Any, want: Any, where: str) -> None:
    if isinstance(want, pl.DataFrame):
        assert isinstance(got, pl.DataFrame), f"{where} is a {type(got).__name__}, not a DataFrame"
        try:
            assert_frame_equal(got, want, check_exact=False, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        except AssertionError as exc:
            raise AssertionError(f"{where} differs from polars: {exc}") from None
    elif dataclasses.is_dataclass(want):
        assert_same(got, want, where)
    elif isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL), f"{where}: {got!r} differs from polars {want!r}"
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} differs from polars {want!r}"


# --------------------------------------------------------------------------
# Which metrics are covered
# --------------------------------------------------------------------------

def test_every_metric_has_a_parity_case():
    """A new metric in ``jm.__all__`` runs here by itself (with its defaults) or must be given a variant."""
    covered = {name for name, _ in cases(SAMPLE).values()}
    missing = [name for name in metric_names() if name not in covered]
    assert not missing, (f"no parity case for {', '.join(missing)}: it needs arguments beyond "
                         "(events, learners, jmap); add it to variants() in tests/metrics/test_parity.py")
    assert {"funnel", "journeys", "review", "segment_gaps", "intervention_effects"} <= covered
    modes = {kw.get("mode", "ordered") for name, kw in cases(SAMPLE).values() if name == "funnel"}
    assert modes == set(jm.MODES)


def test_parity_covers_every_engine_and_mixed_inputs():
    ids = {c.id for c in engines.PAIRS}
    assert {"polars", "polars_lazy", "pandas", "pyarrow", "duckdb", "spark"} <= ids
    assert {"pandas+polars", "duckdb+polars", "spark+polars", "polars+spark"} <= ids


# --------------------------------------------------------------------------
# The sample: every case on every input pair
# --------------------------------------------------------------------------

SAMPLE_CASES = cases(SAMPLE)
#: every pair but the reference itself; Spark events with polars learners run the generated tables
SAMPLE_PAIRS = [c for c in engines.PAIRS if c.id not in ("polars", "spark+polars")]


def one_case_per_metric(all_cases: dict[str, tuple[str, dict]]) -> list[str]:
    """For each metric, its case grouping by a learner column (``by``/``attributes``) if it has one,
    else its first case: what a mixed pair (learners moved to the events' engine) must get right."""
    chosen: dict[str, str] = {}
    for cid, (name, kwargs) in all_cases.items():
        if name not in chosen or ({"by", "attributes"} & set(kwargs) and not {"by", "attributes"} & set(all_cases[chosen[name]][1])):
            chosen[name] = cid
    return list(chosen.values())


#: the local engines that run the metric code themselves run every case on the sample
EVERY_CASE = ("polars_lazy", "duckdb")


def takes_learners(name: str) -> bool:
    return "learners" in inspect.signature(getattr(jm, name)).parameters


def sample_params() -> list:
    """Which cases each pair runs on the sample (hypothesis-generated tables run every case
    on pandas and pyarrow too, see :data:`GENERATED_PAIRS`):

    * polars lazy and DuckDB: every case;
    * pandas, pyarrow (converted at the door, then the polars code) and Spark: one case per
      metric, the whole metric set (each Spark query costs seconds of planning; every
      variant would add minutes to the suite);
    * mixed pairs: one case per metric that takes a learners table (the events' engine runs
      the same code as alone; only the learners table moved).
    """
    per_metric = one_case_per_metric(SAMPLE_CASES)
    out = []
    for c in SAMPLE_PAIRS:
        if c.id in EVERY_CASE:
            ids = list(SAMPLE_CASES)
        elif c.events == c.learners:
            ids = per_metric
        else:
            ids = [cid for cid in per_metric if takes_learners(SAMPLE_CASES[cid][0])]
        out.extend(pytest.param(c, cid, id=f"{cid}-{c.id}", marks=engines.marks(c)) for cid in ids)
    return out


@pytest.fixture(scope="module")
def expected(sample_ws):
    """The polars answers on the sample, per case."""
    return {cid: run(case, sample_ws.events, sample_ws.learners, sample_ws.map) for cid, case in SAMPLE_CASES.items()}


_SAMPLE_INPUTS: dict[str, tuple[Any, Any]] = {}


@pytest.fixture
def sample_inputs(constructor, sample_ws, request):
    """The sample's tables as this pair's inputs (built once per pair and process)."""
    if constructor.id not in _SAMPLE_INPUTS:
        session = request.getfixturevalue("spark") if constructor.spark else None
        _SAMPLE_INPUTS[constructor.id] = constructor(sample_ws.events, sample_ws.learners, session=session)
    return _SAMPLE_INPUTS[constructor.id]


@pytest.mark.parametrize(("constructor", "case"), sample_params(), indirect=["constructor"])
def test_sample_parity(case, constructor, sample_inputs, sample_ws, expected):
    events, learners = sample_inputs
    got = run(SAMPLE_CASES[case], events, learners, sample_ws.map)
    assert_same(got, expected[case], f"{case} on {constructor.id}")


def test_every_pair_runs_every_metric():
    """Every pair runs every metric (mixed pairs: every metric that takes learners); polars lazy
    and DuckDB run every case."""
    ran: dict[str, set] = {}
    for p in sample_params():
        c, cid = p.values
        ran.setdefault(c.id, set()).add(cid)
    assert set(ran) == {c.id for c in SAMPLE_PAIRS}
    assert {"pandas", "pyarrow", "spark", "polars_lazy", "duckdb"} <= set(ran)
    for c in SAMPLE_PAIRS:
        metrics = {SAMPLE_CASES[cid][0] for cid in ran[c.id]}
        if c.events == c.learners:
            assert metrics == set(metric_names()), c.id
        else:
            assert metrics == {m for m in metric_names() if takes_learners(m)}, c.id
    for eid in EVERY_CASE:
        assert ran[eid] == set(SAMPLE_CASES), eid


def test_readme_example_on_pandas_gives_the_polars_figures(sample_ws):
    """The example of the bug report: pandas tables (and pandas events with polars learners) give
    the polars table exactly, and its career-changer counts are those of the per-learner reference."""
    ev, ln, jmap = sample_ws.events, sample_ws.learners, sample_ws.map
    want = jm.funnel(ev, ln, jmap, "course", by="persona")
    for events, learners in ((ev.to_pandas(), ln.to_pandas()), (ev.to_pandas(), ln)):
        got = jm.funnel(events, learners, jmap, "course", by="persona")
        assert_frame_equal(got, want, check_exact=True)
    career = ln.filter(pl.col("persona") == "career_changer")
    rows = ev.filter(pl.col("learner_id").is_in(career["learner_id"].implode())).to_dicts()
    pos = {t: i + 1 for i, t in enumerate(jmap.touchpoint_ids)}
    reference = ref.funnel(rows, career.to_dicts(), jmap.funnels["course"], "ordered", None, ev["timestamp"].max(),
                           jmap.dormancy_days, pos)
    counts = got.filter(pl.col("persona") == "career_changer").select("step", "learners", "stopped", "in_progress")
    assert counts.rows() == [(r["step"], r["learners"], r["stopped"], r["in_progress"]) for r in reference]


# --------------------------------------------------------------------------
# Generated tables: ties, repeats, unknown learners, time zones, missing values
# --------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham"]


@st.composite
def generated(draw, max_learners: int = 6, max_events: int = 28):
    """(events, learners) polars tables in one time zone, with ties, repeats and nulls."""
    rows, learners = draw(datasets(max_learners=max_learners, max_events=max_events, days=8))
    for r in rows:
        if draw(st.integers(0, 7)) == 0:
            r["event"] = None
        if draw(st.integers(0, 7)) == 0:
            r["event_id"] = None
    if rows and draw(st.booleans()):  # events of a learner missing from the learners table
        rows.append({**rows[0], "learner_id": "stranger", "event_id": "e-stranger"})
    for ln in learners:
        if draw(st.integers(0, 5)) == 0:
            ln["persona"] = None
    ev, ln = frames(rows, learners)
    zone = draw(st.sampled_from(ZONES))
    return ev.with_columns(pl.col("timestamp").dt.convert_time_zone(zone)), ln


GENERATED_CASES = cases(GENERATED)
#: local inputs for the generated tables: each engine once (mixed pairs take the same paths and run on
#: the sample; DuckDB's cost per query is high)
GENERATED_PAIRS = engines.pairs("polars_lazy", "pandas", "pyarrow", "duckdb")
GENERATED_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: on Spark: the cases doing time arithmetic (windows: the one place Spark runs its own
#: expression, ``unix_micros``) and the ones averaging values with missing entries
SPARK_GENERATED_CASES = [cid for cid, (name, kw) in GENERATED_CASES.items() if "window" in kw] + ["kpis", "emotion"]


def check_generated(pairs, events: pl.DataFrame, learners: pl.DataFrame, session=None, case_ids=None) -> None:
    """Every case (or those named) on every pair equals polars on the same tables, and the time zone changes nothing."""
    inputs = {c.id: c(events, learners, session=session) for c in pairs}
    utc = events.with_columns(pl.col("timestamp").dt.convert_time_zone("UTC"))
    for cid in case_ids or GENERATED_CASES:
        case = GENERATED_CASES[cid]
        want = run(case, events, learners, MAP)
        assert_same(run(case, utc, learners, MAP), want, f"{cid}: UTC vs {events['timestamp'].dtype}")
        for pid, (ev, ln) in inputs.items():
            assert_same(run(case, ev, ln, MAP), want, f"{cid} on {pid}")


@pytest.mark.slow
def test_generated_parity_local_engines():
    """Polars lazy, pandas, pyarrow and DuckDB on generated tables, every case."""

    @settings(GENERATED_SETTINGS, max_examples=3)
    @given(data=generated(max_learners=10, max_events=50))
    def check(data):
        check_generated(GENERATED_PAIRS, *data)

    check()


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_generated_parity_spark(spark):
    """Spark events with polars learners (moved onto Spark): one larger table, as Spark's cost is per query."""

    @settings(GENERATED_SETTINGS, max_examples=1)
    @given(data=generated(max_learners=16, max_events=100))
    def check(data):
        check_generated(engines.pairs("spark+polars"), *data, session=spark, case_ids=SPARK_GENERATED_CASES)

    check()


# --------------------------------------------------------------------------
# The door: conversions and refusals
# --------------------------------------------------------------------------

def test_pandas_learners_indexed_by_learner_id(sample_ws):
    ev, ln = sample_ws.events, sample_ws.learners
    want = jm.funnel(ev, ln, sample_ws.map, "enrolment", by="persona")
    got = jm.funnel(ev.to_pandas(), ln.to_pandas().set_index("learner_id"), sample_ws.map, "enrolment", by="persona")
    assert_frame_equal(got, want, check_exact=True)


def test_categoricals_and_missing_values_convert_exactly(sample_ws):
    ev, ln = sample_ws.events, sample_ws.learners
    want = jm.emotion(ev, ln, sample_ws.map, by="device")
    pev = ev.to_pandas().astype({"touchpoint_id": "category", "learner_id": "category"})
    pln = ln.to_pandas().astype({"device": "category"})
    assert pev["emotion"].isna().any()
    assert_frame_equal(jm.emotion(pev, pln, sample_ws.map, by="device"), want, check_exact=True)
    dict_arrow = ev.with_columns(pl.col("touchpoint_id").cast(pl.Categorical)).to_arrow()
    assert_frame_equal(jm.emotion(dict_arrow, ln, sample_ws.map, by="device"), want, check_exact=True)


UNSUPPORTED = {
    "list-of-dicts": lambda ws: [{"learner_id": "u"}],
    "dict": lambda ws: {"learner_id": ["u"]},
    "none": lambda ws: None,
    "path": lambda ws: "events.csv",
    "polars-series": lambda ws: ws.events["learner_id"],
    "pandas-series": lambda ws: ws.events.to_pandas()["learner_id"],
    "numpy-array": lambda ws: np.zeros((2, 3)),
    "pyarrow-record-batch": lambda ws: ws.events.head(2).to_arrow().to_batches()[0],
}


@pytest.mark.parametrize("kind", list(UNSUPPORTED))
def test_unsupported_events_are_refused_in_one_line(kind, sample_ws):
    bad = UNSUPPORTED[kind](sample_ws)
    with pytest.raises(DataError) as info:
        jm.funnel(bad, sample_ws.learners, sample_ws.map, "course")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"events: unsupported table type {type(bad).__module__}.{type(bad).__qualname__}; pass ")
    assert "pandas DataFrame" in msg and "DuckDB relation" in msg and "Spark DataFrame" in msg


def test_unsupported_learners_are_named(sample_ws):
    with pytest.raises(DataError, match=r"^learners: unsupported table type builtins\.dict;"):
        jm.journeys(sample_ws.events, {"learner_id": ["u"]}, sample_ws.map)


def test_wrong_column_types_are_refused_in_one_line(sample_ws):
    ev, ln = sample_ws.events, sample_ws.learners
    with pytest.raises(DataError, match=r"^events column timestamp is String; it must be a date-time"):
        jm.funnel(ev.with_columns(pl.col("timestamp").cast(pl.String)).to_pandas(), ln, sample_ws.map, "course")
    with pytest.raises(DataError, match=r"^learner_id is String in events but Int64 in learners"):
        jm.funnel(ev, pl.DataFrame({"learner_id": [1, 2]}), sample_ws.map, "course")
    with pytest.raises(DataError, match=r"^events column value is String; it must be numeric"):
        jm.kpis(ev.with_columns(pl.col("value").cast(pl.String)), ln, sample_ws.map)
    mixed = ev.head(3).to_pandas().astype({"value": object})
    mixed["value"] = ["high", 2.0, None]
    with pytest.raises(DataError, match=r"^events: column 'value' cannot be converted from pandas: "):
        jm.funnel(mixed, ln, sample_ws.map, "course")
