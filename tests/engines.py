"""Every input the metrics accept, as test constructors (the narwhals ``constructor`` pattern).

A :class:`Constructor` turns a pair of polars tables (events, learners) into
the tables a user would pass: both on one engine, or mixed (pandas events with
polars learners, a DuckDB relation with polars learners, …). The ``constructor``
fixture in ``tests/conftest.py`` runs a test once per input pair in
:data:`PAIRS`; a test narrows the set with
``@pytest.mark.parametrize("constructor", params(...), indirect=True)``.

Engines: ``polars`` (eager), ``polars_lazy``, ``pandas``, ``pyarrow``,
``duckdb``, ``duckdb_other`` (a relation on another DuckDB connection than the
events') and ``spark`` (the shared local session of the ``spark`` fixture).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
import pytest

from journeylib.metrics.engine import to_engine

#: engines that run the metric code themselves; the others are converted to polars at the door
NATIVE = ("polars", "polars_lazy", "duckdb", "duckdb_other", "spark")
ENGINES = ("polars", "polars_lazy", "pandas", "pyarrow", "duckdb", "duckdb_other", "spark")


@dataclass(frozen=True)
class Constructor:
    """Events on ``events``, learners on ``learners`` (engine names of :data:`ENGINES`)."""

    events: str
    learners: str

    @property
    def id(self) -> str:
        return self.events if self.events == self.learners else f"{self.events}+{self.learners}"

    @property
    def spark(self) -> bool:
        return "spark" in (self.events, self.learners)

    def __call__(self, events: pl.DataFrame, learners: pl.DataFrame, *, session: Any = None) -> tuple[Any, Any]:
        """The two tables as this pair's inputs (``session``: the SparkSession, for Spark pairs)."""
        con = duckdb.connect()
        return make(self.events, events, con=con, session=session), make(self.learners, learners, con=con, session=session)


def make(engine: str, df: pl.DataFrame, *, con: Any = None, session: Any = None) -> Any:
    """``df`` as a native table of ``engine``.

    >>> type(make("pandas", pl.DataFrame({"a": [1]}))).__name__
    'DataFrame'
    """
    if engine == "polars":
        return df
    if engine == "polars_lazy":
        return df.lazy()
    if engine == "pandas":
        return df.to_pandas()
    if engine == "pyarrow":
        return df.to_arrow()
    if engine == "duckdb":
        return to_engine(df, "duckdb", session=con if con is not None else duckdb.connect())
    if engine == "duckdb_other":
        return to_engine(df, "duckdb", session=duckdb.connect())
    if engine == "spark":
        if session is None:
            raise ValueError("a Spark input needs the spark fixture's session")
        return to_engine(df, "spark", session=session).cache()
    raise ValueError(f"unknown engine {engine!r}")


#: every input pair: each engine alone, then mixed events/learners engines: each way of bringing the
#: learners to the events' engine once (converted at the door, moved onto DuckDB or Spark, collected
#: from DuckDB or Spark, moved between DuckDB connections)
PAIRS = [Constructor(e, e) for e in ENGINES if e != "duckdb_other"] + [
    Constructor("pandas", "polars"),
    Constructor("polars", "pandas"),
    Constructor("pyarrow", "polars_lazy"),
    Constructor("duckdb", "polars"),
    Constructor("duckdb", "duckdb_other"),
    Constructor("polars", "duckdb"),
    Constructor("spark", "polars"),
    Constructor("polars", "spark"),
]


def marks(c: Constructor) -> list:
    """Spark pairs are marked ``spark``/``slow`` and grouped on one xdist worker (one Spark session)."""
    return [pytest.mark.spark, pytest.mark.slow, pytest.mark.xdist_group("spark")] if c.spark else []


def params(pairs: list[Constructor] | None = None) -> list:
    """``pytest.param`` per pair, ids like ``pandas+polars``, with its :func:`marks`."""
    return [pytest.param(c, id=c.id, marks=marks(c)) for c in (PAIRS if pairs is None else pairs)]


def pairs(*ids: str) -> list[Constructor]:
    """The pairs with these ids (``"pandas"``, ``"spark+polars"``, …), in :data:`PAIRS` order."""
    known = {c.id: c for c in PAIRS}
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValueError(f"unknown input pair(s): {', '.join(missing)}")
    return [known[i] for i in ids]
