"""Backend handling: one code path for polars, DuckDB and Spark via narwhals.

Every metric is written once against narwhals *lazy* frames. :func:`lazy` is
the door every input passes: polars DataFrames/LazyFrames, DuckDB relations
and Spark DataFrames run natively; pandas DataFrames and pyarrow Tables are
converted to polars first (exact: same rows, values and instants), because
narwhals' pandas and pyarrow backends do not run the metric code faithfully;
anything else is refused with one line naming its type. :func:`collect` runs
the query in its own engine and returns a small polars DataFrame with
datetimes normalised to UTC and integer counts as ``Int64``, so that results
compare equal across engines.

>>> import polars as pl
>>> lf = lazy(pl.DataFrame({"a": [1, 2]}))
>>> collect(lf.select(nw.col("a").sum())).item()
3
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

import narwhals as nw
import polars as pl

from ..errors import DataError

LID, TP, TS = "learner_id", "touchpoint_id", "timestamp"
DAY_US = 86_400_000_000.0
#: learner columns that are not attributes (not used as segments)
NON_ATTRIBUTES = ("learner_id", "enrolled_at")
#: the tables every metric accepts (named in the message that refuses any other)
SUPPORTED_INPUTS = "a polars DataFrame/LazyFrame, a pandas DataFrame, a pyarrow Table, a DuckDB relation or a Spark DataFrame"


def lazy(obj: Any, *, what: str = "table") -> nw.LazyFrame:
    """A narwhals LazyFrame on the engine that runs the metrics for ``obj``.

    * polars DataFrame/LazyFrame, DuckDB relation, Spark DataFrame: natively
      (a narwhals frame counts as the table it wraps);
    * pandas DataFrame, pyarrow Table: converted to polars (see :func:`to_polars`).

    On polars, datetime columns are expressed in UTC (same instants; naive
    ones are read as UTC) and categorical columns become strings. Any other
    input raises :class:`~journeylib.errors.DataError` naming ``what`` and its type.

    >>> import pandas as pd
    >>> lf = lazy(pd.DataFrame({"a": [1]}))
    >>> type(lf).__name__, lf.implementation.is_polars()
    ('LazyFrame', True)
    >>> lazy([1, 2], what="events")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: events: unsupported table type builtins.list; pass a polars DataFrame/LazyFrame, a pandas DataFrame, a pyarrow Table, a DuckDB relation or a Spark DataFrame
    """
    f = _narwhals(obj, what)
    impl = f.implementation
    if impl.is_duckdb() or impl.is_pyspark():
        return f.lazy() if isinstance(f, nw.DataFrame) else f
    native = f.to_native()
    if not impl.is_polars():
        native = to_polars(native, what=what)
    return nw.from_native(_utc_strings(native.lazy()))


def _narwhals(obj: Any, what: str) -> nw.DataFrame | nw.LazyFrame:
    """``obj`` as a narwhals frame of a supported kind, or a one-line refusal."""
    f = obj
    if not isinstance(obj, (nw.DataFrame, nw.LazyFrame)):
        try:
            f = nw.from_native(obj)
        except TypeError:
            f = None
    if f is not None:
        impl = f.implementation
        if impl.is_polars() or impl.is_pandas() or impl.is_pyarrow() or impl.is_duckdb() or impl.is_pyspark():
            return f
        obj = f.to_native()
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise DataError(f"{what}: unsupported table type {kind}; pass {SUPPORTED_INPUTS}")


def to_polars(native: Any, *, what: str = "table") -> pl.DataFrame:
    """A pandas DataFrame or pyarrow Table as a polars DataFrame, exactly.

    Values, nulls (pandas ``NaN``/``None``/``NaT`` are missing values) and
    instants are kept; a pandas index named ``learner_id`` becomes a column.
    A column that cannot be converted (e.g. numbers and text mixed in one
    pandas column) raises :class:`~journeylib.errors.DataError` naming it.

    >>> import pandas as pd
    >>> to_polars(pd.DataFrame({"x": [1.0, None]}, index=pd.Index(["u", "v"], name="learner_id"))).rows()
    [('u', 1.0), ('v', None)]
    >>> to_polars(pd.DataFrame({"value": ["high", 2.0]}), what="events")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: events: column 'value' cannot be converted from pandas: 'float' object is not an instance of 'str'
    """
    if isinstance(native, pl.DataFrame):
        return native
    if type(native).__module__.startswith("pyarrow"):
        return pl.from_arrow(native)
    index = [n for n in native.index.names if n is not None]
    keep_index = LID in index and LID not in native.columns
    try:
        return pl.from_pandas(native, include_index=keep_index)
    except Exception as exc:  # polars and pyarrow raise many kinds; find the column and say why
        raise DataError(_conversion_problem(native, exc, what)) from None


def _conversion_problem(native: Any, exc: Exception, what: str) -> str:
    def first_line(e: Exception) -> str:
        text = str(e).strip()
        return text.splitlines()[0] if text else type(e).__name__

    for name in native.columns:
        try:
            pl.from_pandas(native[[name]])
        except Exception as col_exc:  # the first column that fails is the one to name
            return f"{what}: column {str(name)!r} cannot be converted from pandas: {first_line(col_exc)}"
    return f"{what}: cannot convert the pandas DataFrame to polars: {first_line(exc)}"


def _utc_strings(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Datetimes in UTC (naive ones read as UTC) and categoricals as strings; a no-op if already so."""
    fixes = []
    for name, dtype in lf.collect_schema().items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone != "UTC":
            col = pl.col(name)
            fixes.append(col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC"))
        elif isinstance(dtype, (pl.Categorical, pl.Enum)):
            fixes.append(pl.col(name).cast(pl.String))
    return lf.with_columns(fixes) if fixes else lf


def backend_of(obj: Any) -> str:
    """The engine that runs the metrics for ``obj``: ``"polars"``, ``"duckdb"`` or ``"spark"``
    (pandas and pyarrow tables run on polars).

    >>> import pandas as pd
    >>> backend_of(pd.DataFrame({"a": [1]}))
    'polars'
    """
    impl = lazy(obj).implementation
    if impl.is_duckdb():
        return "duckdb"
    if impl.is_pyspark():
        return "spark"
    return "polars"


def collect(lf: nw.LazyFrame | nw.DataFrame) -> pl.DataFrame:
    """Run a (lazy) query in its engine; a polars DataFrame with UTC datetimes and Int64 integers.

    >>> import polars as pl
    >>> collect(lazy(pl.DataFrame({"n": [1]})).select(nw.len())).dtypes
    [Int64]
    """
    if isinstance(lf, nw.LazyFrame):
        df = lf.collect("polars").to_native()
    else:
        df = lf.to_polars()
    fixes = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                fixes.append(pl.col(name).dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
            else:
                fixes.append(pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        elif dtype.is_integer() or isinstance(dtype, pl.Decimal):
            fixes.append(pl.col(name).cast(pl.Int64))
        elif dtype == pl.Float32:
            fixes.append(pl.col(name).cast(pl.Float64))
    return df.with_columns(fixes) if fixes else df


def _spark_session(native: Any):
    return getattr(native, "sparkSession", None) or native.sql_ctx.sparkSession


def align(frame: Any, like: nw.LazyFrame, *, what: str = "table") -> nw.LazyFrame:
    """``frame`` as a lazy frame on the same engine as ``like`` (small tables only).

    Brings a learners table next to the events: a polars, pandas or pyarrow
    learners table onto DuckDB or Spark events, a DuckDB or Spark one onto
    polars events, a DuckDB relation onto the events relation's connection.

    >>> import pandas as pd, polars as pl
    >>> align(pd.DataFrame({"a": [1]}), lazy(pl.DataFrame({"b": [2]}))).implementation.is_polars()
    True
    """
    f = lazy(frame, what=what)
    if f.implementation == like.implementation and not _other_duckdb_connection(f, like):
        return f
    df = collect(f)
    native = like.to_native()
    impl = like.implementation
    if impl.is_polars():
        return lazy(df)
    if impl.is_duckdb():
        # the relation's own connection (DuckDB joins only relations of one connection)
        return nw.from_native(_duckdb_relation(getattr(native, "_con", None) or duckdb_connection(), df))
    return nw.from_native(_spark_frame(_spark_session(native), df))


def _other_duckdb_connection(f: nw.LazyFrame, like: nw.LazyFrame) -> bool:
    if not like.implementation.is_duckdb():
        return False
    return getattr(f.to_native(), "_con", None) is not getattr(like.to_native(), "_con", None)


def _duckdb_relation(con: Any, df: pl.DataFrame) -> Any:
    return con.from_arrow(df.to_arrow())


def _spark_frame(spark: Any, df: pl.DataFrame) -> Any:
    """A Spark DataFrame with ``df``'s rows and types (the schema is given, so all-null columns keep theirs)."""
    import warnings

    from pyspark.sql.pandas.types import from_arrow_schema

    import pyarrow as pa

    arrow = df.to_arrow().schema
    arrow = pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in arrow])
    schema = from_arrow_schema(arrow)  # plain strings: older pyspark knows no large_string
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return spark.createDataFrame(df.to_pandas(), schema=schema)


def columns(lf: nw.LazyFrame) -> list[str]:
    """Column names without running the query.

    >>> import polars as pl
    >>> columns(lazy(pl.DataFrame({"a": [1], "b": [2]})))
    ['a', 'b']
    """
    return list(lf.collect_schema().names())


def max_timestamp(events: nw.LazyFrame) -> dt.datetime | None:
    """The latest event timestamp (UTC), or ``None`` for no events.

    >>> import polars as pl, datetime as dt
    >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    >>> max_timestamp(lazy(pl.DataFrame({"timestamp": [t]}))) == t
    True
    """
    v = collect(events.select(nw.col(TS).max())).item()
    return v


def resolve_data_end(events: nw.LazyFrame, data_end: Any = None) -> dt.datetime:
    """``data_end`` as a UTC datetime; default = the latest event timestamp.

    A date means the end of that day (midnight at the start of the next day).

    >>> import polars as pl
    >>> resolve_data_end(lazy(pl.DataFrame({"timestamp": [None]})), "2025-06-30")
    datetime.datetime(2025, 7, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if data_end is None:
        v = max_timestamp(events)
        if v is None:
            return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return v
    return as_utc(data_end, end_of_day=True)


def as_utc(v: Any, *, end_of_day: bool = False) -> dt.datetime:
    """A timezone-aware UTC datetime from a datetime, date or ISO string.

    >>> as_utc("2025-06-01")
    datetime.datetime(2025, 6, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if isinstance(v, str):
        try:
            v = dt.date.fromisoformat(v) if len(v.strip()) == 10 else dt.datetime.fromisoformat(v)
        except ValueError:
            raise DataError(f"not a date or time: {v!r}") from None
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day, tzinfo=dt.timezone.utc)
        if end_of_day:
            v = v + dt.timedelta(days=1)
        return v
    if not isinstance(v, dt.datetime):
        raise DataError(f"not a date or time: {v!r}")
    if v.tzinfo is None:
        return v.replace(tzinfo=dt.timezone.utc)
    return v.astimezone(dt.timezone.utc)


def by_list(by: str | Sequence[str] | None) -> list[str]:
    """``by`` as a list of column names.

    >>> by_list("persona"), by_list(None), by_list(["a", "b"])
    (['persona'], [], ['a', 'b'])
    """
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def prepare(events: Any, learners: Any, *, by: str | Sequence[str] | None = None) -> tuple[nw.LazyFrame, nw.LazyFrame, list[str]]:
    """Events and learners as lazy frames on one engine (the events' engine, see
    :func:`lazy` and :func:`align`); checks the required columns and their types,
    and that ``by`` names learner columns.

    ``learners=None`` derives one learner per events ``learner_id`` with
    persona ``"unassigned"``.

    >>> import pandas as pd, polars as pl, datetime as dt
    >>> ev = pl.DataFrame({"learner_id": ["u"], "touchpoint_id": ["a"], "timestamp": [dt.datetime(2025, 1, 1)]})
    >>> prepare(ev, pd.DataFrame({"learner_id": ["u"], "persona": ["p"]}), by="persona")[2]
    ['persona']
    >>> prepare(ev.with_columns(timestamp=pl.lit("2025-01-01")), None)
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: events column timestamp is String; it must be a date-time (timezone-aware)
    """
    ev = lazy(events, what="events")
    schema = ev.collect_schema()
    missing = [c for c in (LID, TP, TS) if c not in schema]
    if missing:
        raise DataError(f"events lack required column(s): {', '.join(missing)}")
    if schema[TS] != nw.Datetime:
        raise DataError(f"events column {TS} is {schema[TS]}; it must be a date-time (timezone-aware)")
    if schema[TP] != nw.String:
        raise DataError(f"events column {TP} is {schema[TP]}; it must hold the map's touchpoint ids as text")
    for name in ("value", "emotion"):
        if name in schema and not (schema[name].is_numeric() or schema[name] == nw.Unknown):
            raise DataError(f"events column {name} is {schema[name]}; it must be numeric (missing values allowed)")
    if learners is None:
        ln = ev.select(LID).unique().with_columns(persona=nw.lit("unassigned"))
    else:
        ln = align(learners, ev, what="learners")
    bys = by_list(by)
    lschema = ln.collect_schema()
    lcols = list(lschema.names())
    if LID not in lcols:
        raise DataError("learners lack required column learner_id")
    if lschema[LID] != schema[LID]:
        raise DataError(f"learner_id is {schema[LID]} in events but {lschema[LID]} in learners; use one type (text)")
    unknown = [c for c in bys if c not in lcols]
    if unknown:
        raise DataError(
            f"unknown learner column(s) {', '.join(repr(c) for c in unknown)}; learner columns: {', '.join(lcols)}"
        )
    return ev, ln, bys


def attribute_columns(learners: nw.LazyFrame, *, max_values: int = 50) -> list[str]:
    """Learner columns usable as segments: all but ``learner_id``/``enrolled_at``,
    non-temporal, with at most ``max_values`` distinct values.

    >>> import polars as pl
    >>> attribute_columns(lazy(pl.DataFrame({"learner_id": ["u", "v"], "device": ["m", "d"]})))
    ['device']
    """
    schema = learners.collect_schema()
    cand = [c for c, t in schema.items() if c not in NON_ATTRIBUTES and not t.is_temporal()]
    if not cand:
        return []
    counts = collect(learners.select([nw.col(c).n_unique().alias(c) for c in cand])).row(0, named=True)
    return [c for c in cand if counts[c] <= max_values]


def days(expr: nw.Expr) -> nw.Expr:
    """A duration expression in (fractional) days (polars, DuckDB; see :func:`with_days` for every engine).

    >>> import polars as pl, datetime as dt
    >>> df = pl.DataFrame({"d": [dt.timedelta(hours=12)]})
    >>> collect(lazy(df).select(days(nw.col("d"))))["d"].to_list()
    [0.5]
    """
    return expr.dt.total_microseconds() / DAY_US


def _is_spark(lf: nw.LazyFrame) -> bool:
    impl = lf.implementation
    return impl.is_pyspark() or impl.is_pyspark_connect() or impl.is_sqlframe()


def with_days(lf: nw.LazyFrame, name: str, end: str, start: str) -> nw.LazyFrame:
    """Add column ``name`` = days from datetime column ``start`` to ``end`` (float, null if either is null).

    narwhals has no duration arithmetic for Spark, so there the difference is
    taken with Spark's ``unix_micros``. On DuckDB it is the difference of
    ``epoch_us`` of each side: subtracting two ``TIMESTAMPTZ`` values goes
    through the ICU calendar, about 60 times slower, for the same microseconds.
    Every other engine uses narwhals.

    >>> import datetime as dt, polars as pl
    >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    >>> lf = lazy(pl.DataFrame({"a": [t], "b": [t + dt.timedelta(hours=36)]}))
    >>> collect(with_days(lf, "d", "b", "a"))["d"].to_list()
    [1.5]
    >>> import duckdb
    >>> rel = duckdb.sql("SELECT TIMESTAMPTZ '2025-01-01 00:00+00' AS a, TIMESTAMPTZ '2025-01-02 12:00+00' AS b")
    >>> collect(with_days(nw.from_native(rel), "d", "b", "a"))["d"].to_list()
    [1.5]
    """
    if _is_spark(lf):
        from pyspark.sql import functions as F

        native = lf.to_native()
        native = native.withColumn(name, (F.unix_micros(F.col(end)) - F.unix_micros(F.col(start))) / F.lit(DAY_US))
        return nw.from_native(native)
    if lf.implementation.is_duckdb():
        return nw.from_native(_duckdb_with_days(lf.to_native(), name, end, start))
    return lf.with_columns(days(nw.col(end) - nw.col(start)).alias(name))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _duckdb_with_days(rel, name: str, end: str, start: str):
    """``rel`` with column ``name`` = days from ``start`` to ``end`` (replaced in place if it exists)."""
    import duckdb

    d = duckdb.SQLExpression(f"(epoch_us({_quote(end)}) - epoch_us({_quote(start)})) / {DAY_US!r}::DOUBLE").alias(name)
    cols = [d if c == name else duckdb.ColumnExpression(c) for c in rel.columns]
    return rel.select(*cols) if name in rel.columns else rel.select(*cols, d)


def positions(jmap) -> dict[str, int]:
    """Touchpoint id → 1-based position in the map.

    >>> from journeylib.model import load_map
    >>> positions(load_map("data/sample/journey.yml"))["course_page"]
    3
    """
    return {t.id: i + 1 for i, t in enumerate(jmap.touchpoints)}


def lookup(col: str, mapping: dict[str, Any], default: Any, dtype=nw.Int64) -> nw.Expr:
    """Map the values of a column through a small dict inside the engine.

    >>> import polars as pl
    >>> collect(lazy(pl.DataFrame({"t": ["a", "z"]})).select(lookup("t", {"a": 1}, 0)))["t"].to_list()
    [1, 0]
    """
    if not mapping:
        return nw.lit(default, dtype=dtype)
    return nw.col(col).replace_strict(
        list(mapping.keys()), list(mapping.values()), default=nw.lit(default, dtype=dtype), return_dtype=dtype
    )


def cast_counts(df: pl.DataFrame, cols: Iterable[str]) -> pl.DataFrame:
    """Cast the given columns to Int64 (nulls become 0).

    >>> import polars as pl
    >>> cast_counts(pl.DataFrame({"n": [None, 2]}), ["n"])["n"].to_list()
    [0, 2]
    """
    return df.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in cols if c in df.columns])


# --------------------------------------------------------------------------
# Moving a table onto another engine
# --------------------------------------------------------------------------

#: the engines :func:`to_engine` can move a table onto
ENGINES = ("polars", "duckdb", "spark")
#: environment variable naming the Spark master used when no session is given
SPARK_MASTER_ENV = "JOURNEY_SPARK_MASTER"
_DUCKDB_CONNECTION = None


def duckdb_connection():
    """The in-memory DuckDB connection :func:`to_engine` uses when none is given
    (one per process, so that tables moved separately can be joined).

    >>> duckdb_connection() is duckdb_connection()
    True
    """
    global _DUCKDB_CONNECTION
    if _DUCKDB_CONNECTION is None:
        import duckdb

        _DUCKDB_CONNECTION = duckdb.connect()
    return _DUCKDB_CONNECTION


def spark_session(master: str | None = None):
    """The active Spark session, or a new local one.

    ``master`` default: the environment variable ``JOURNEY_SPARK_MASTER``, else
    ``"local[*]"`` (every core of this machine). The session's time zone is
    UTC, so timestamps keep their instant. ``getOrCreate`` returns an
    existing session unchanged (its master included).

    >>> spark_session().conf.get("spark.sql.session.timeZone")   # doctest: +SKIP
    'UTC'
    """
    import os

    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = master or os.environ.get(SPARK_MASTER_ENV) or "local[*]"
    session = (
        SparkSession.builder.master(master).appName("journeylib")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def to_engine(frame: Any, engine: str = "polars", *, session: Any = None) -> Any:
    """``frame`` (polars, or any frame :func:`lazy` accepts) as a native table of ``engine``.

    * ``"polars"`` — a polars ``DataFrame`` (a polars frame is returned as is);
    * ``"duckdb"`` — a DuckDB relation on ``session`` (a ``duckdb``
      connection; default :func:`duckdb_connection`, shared by every call so
      events and learners can be joined);
    * ``"spark"`` — a Spark ``DataFrame`` on ``session`` (a ``SparkSession``;
      default :func:`spark_session`: the active session or a local one whose
      master is ``$JOURNEY_SPARK_MASTER`` or ``local[*]``).

    The rows, columns and types are kept (datetimes keep their instant).
    Every ``journeylib.metrics`` function accepts the result and returns the
    same polars tables as for the polars input.

    >>> import polars as pl
    >>> rel = to_engine(pl.DataFrame({"a": [1, 2]}), "duckdb")
    >>> backend_of(rel), collect(lazy(rel))["a"].to_list()
    ('duckdb', [1, 2])
    >>> to_engine(pl.DataFrame({"a": [1]}), "pandas")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: unknown engine 'pandas'; choose one of polars, duckdb, spark
    """
    name = (engine or "polars").strip().lower()
    if name not in ENGINES:
        raise DataError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if isinstance(frame, (pl.DataFrame, pl.LazyFrame)):
        df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    else:
        df = collect(lazy(frame))
    if name == "polars":
        return df
    if name == "duckdb":
        return _duckdb_relation(session if session is not None else duckdb_connection(), df)
    return _spark_frame(session if session is not None else spark_session(), df)
