"""Funnel step finding on DuckDB: one SQL query per funnel, over the events relation.

The query (see :func:`step_query`) is attached to the events relation with
``DuckDBPyRelation.query`` and stays lazy: DuckDB plans it together with the
rest of the metric (the learners join, the aggregation) and runs it as one
query. The definitions are those of :mod:`journeylib.metrics.steps`.

>>> import duckdb, datetime as dt
>>> con = duckdb.connect()
>>> ev = con.sql("SELECT 'u' AS learner_id, unnest(['a', 'b']) AS touchpoint_id, TIMESTAMPTZ '2025-01-01 00:00:00+00' AS timestamp")
>>> duckdb_steps(ev, ["a", "b"], "ordered", None, None).fetchall()[0][:2]
('u', 2)
"""

from __future__ import annotations

import datetime as dt

from .engine import LID, TP, TS

#: the name the events relation has inside the query
EV = "journey_events"


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _case(mapping: dict[str, int], column: str = TP) -> str:
    """``CASE column WHEN 'a' THEN 1 … ELSE 0 END``."""
    whens = " ".join(f"WHEN {_lit(key)} THEN {value}" for key, value in mapping.items())
    return f"(CASE {_ident(column)} {whens} ELSE 0 END)"


def _interval(wdelta: dt.timedelta) -> str:
    return f"to_microseconds({int(round(wdelta / dt.timedelta(microseconds=1)))}::BIGINT)"


def _step_events(steps: list[str]) -> str:
    """``e``: the events at the funnel's steps as ``l, s, ts`` (``s`` = the step number)."""
    step_of = {s: i for i, s in enumerate(steps, 1)}
    return (f"e AS MATERIALIZED (SELECT * FROM (SELECT {_ident(LID)} AS l, {_case(step_of)} AS s, {_ident(TS)} AS ts "
            f"FROM {EV}) WHERE s > 0)")


def _output(k: int, source: str, furthest: str = "furthest_step") -> str:
    cols = ", ".join(f"t_{i}" for i in range(1, k + 1))
    return f"SELECT l AS {_ident(LID)}, {furthest}::BIGINT AS furthest_step, {cols} FROM {source}"


def ordered_query(steps: list[str], wdelta: dt.timedelta | None) -> str:
    """The ordered chain: one CTE per stage, each joining only the previous stage's learners.

    >>> "s3 AS MATERIALIZED" in ordered_query(["a", "b", "c"], None)
    True
    """
    k = len(steps)
    w = f", min(ts) + {_interval(wdelta)} AS w" if wdelta is not None else ""
    ctes = [_step_events(steps), f"s1 AS MATERIALIZED (SELECT l, min(ts) AS t{w} FROM e WHERE s = 1 GROUP BY l)"]
    for i in range(2, k + 1):
        cond = "e.ts >= p.t" + (" AND e.ts <= p.w" if wdelta is not None else "")
        carry = ", any_value(p.w) AS w" if wdelta is not None else ""
        ctes.append(f"s{i} AS MATERIALIZED (SELECT e.l, min(e.ts) AS t{carry} FROM e JOIN s{i-1} p ON e.l = p.l AND {cond} "
                    f"WHERE e.s = {i} GROUP BY e.l)")
    # the stages are nested (a learner in stage i is in every earlier one): the furthest step is the number of stages holding them
    cols = ", ".join(f"s{i}.t AS t_{i}" for i in range(1, k + 1))
    furthest = "(" + " + ".join(f"(s{i}.t IS NOT NULL)::INT" for i in range(1, k + 1)) + ")"
    joins = " ".join(f"LEFT JOIN s{i} ON s{i}.l = s1.l" for i in range(2, k + 1))
    body = f"(SELECT s1.l, {furthest} AS furthest_step, {cols} FROM s1 {joins})"
    return "WITH " + ",\n".join(ctes) + "\n" + _output(k, body)


def firsts_query(steps: list[str], wdelta: dt.timedelta | None, *, leading: bool) -> str:
    """any_order (``leading``) and map: each learner's first time at each step, as one grouped query.

    >>> "FILTER (WHERE s = 2)" in firsts_query(["a", "b"], None, leading=True)
    True
    """
    k = len(steps)
    ctes = [_step_events(steps), "f AS (SELECT l, s, min(ts) AS t FROM e GROUP BY l, s)"]
    src = "f"
    if wdelta is not None:
        ctes.append(f"fw AS (SELECT l, s, t FROM f QUALIFY t <= min(t) OVER (PARTITION BY l) + {_interval(wdelta)})")
        src = "fw"
    pivot = ", ".join(f"min(t) FILTER (WHERE s = {i}) AS r_{i}" for i in range(1, k + 1))
    ctes.append(f"p AS (SELECT l, max(s) AS m, {pivot} FROM {src} GROUP BY l)")
    if leading:  # steps 1..n all reached; times beyond the furthest step are null
        n = "(CASE " + " ".join(f"WHEN r_{i} IS NULL THEN {i - 1}" for i in range(1, k + 1)) + f" ELSE {k} END)"
        ctes.append(f"q AS (SELECT *, {n} AS furthest_step FROM p)")
        cols = ", ".join(f"CASE WHEN furthest_step >= {i} THEN r_{i} END AS t_{i}" for i in range(1, k + 1))
        body = f"(SELECT l, furthest_step, {cols} FROM q WHERE furthest_step >= 1)"
    else:
        cols = ", ".join(f"r_{i} AS t_{i}" for i in range(1, k + 1))
        body = f"(SELECT l, m AS furthest_step, {cols} FROM p)"
    return "WITH " + ",\n".join(ctes) + "\n" + _output(k, body)


def strict_query(steps: list[str], wdelta: dt.timedelta | None, positions: dict[str, int]) -> str:
    """Runs of consecutive visits at steps 1, 2, …; per learner the longest run, the earliest on ties.

    >>> "lag(tp)" in strict_query(["a", "b"], None, {"a": 1, "b": 2})
    True
    """
    k = len(steps)
    step_of = {s: i for i, s in enumerate(steps, 1)}
    ctes = [
        f"e0 AS (SELECT {_ident(LID)} AS l, {_ident(TP)} AS tp, {_ident(TS)} AS ts, {_case(positions)} AS pos, "
        f"{_case(step_of)} AS s FROM {EV})",
        "st AS (SELECT l, min(ts) AS start FROM e0 WHERE s = 1 GROUP BY l)",
    ]
    window = f" WHERE e0.ts >= st.start AND e0.ts <= st.start + {_interval(wdelta)}" if wdelta is not None else ""
    order = "PARTITION BY l ORDER BY ts, pos, tp"
    ctes += [
        f"e1 AS (SELECT e0.* FROM e0 JOIN st USING (l){window})",
        f"v AS (SELECT l, s, ts, tp, lag(tp) OVER ({order}) AS ptp, row_number() OVER ({order}) AS rn FROM e1)",
        "vis AS (SELECT l, s, ts, row_number() OVER (PARTITION BY l ORDER BY rn) AS seq FROM v "
        "WHERE ptp IS NULL OR ptp <> tp)",
        # a run starting at visit d+1 holds the visits with seq - s = d; it reaches n when steps 1..n are all there
        "r AS (SELECT l, seq - s AS d, s, ts FROM vis WHERE s > 0 QUALIFY s = row_number() OVER (PARTITION BY l, seq - s ORDER BY s))",
        "runs AS (SELECT l, d, count(*) AS n, " + ", ".join(f"min(ts) FILTER (WHERE s = {i}) AS t_{i}" for i in range(1, k + 1))
        + " FROM r GROUP BY l, d QUALIFY row_number() OVER (PARTITION BY l ORDER BY n DESC, d) = 1)",
    ]
    return "WITH " + ",\n".join(ctes) + "\n" + _output(k, "runs", furthest="n")


def step_query(steps: list[str], mode: str, wdelta: dt.timedelta | None, positions: dict[str, int] | None) -> str:
    """The SQL text for ``mode`` over a relation named :data:`EV`.

    >>> step_query(["a"], "map", None, None).startswith("WITH e AS MATERIALIZED")
    True
    """
    if mode == "ordered":
        return ordered_query(steps, wdelta)
    if mode == "strict":
        return strict_query(steps, wdelta, positions or {})
    return firsts_query(steps, wdelta, leading=(mode == "any_order"))


def duckdb_steps(events, steps: list[str], mode: str, wdelta: dt.timedelta | None, positions: dict[str, int] | None):
    """A lazy DuckDB relation ``learner_id, furthest_step, t_1..t_k`` (events already cut at ``data_end``)."""
    return events.query(EV, step_query(list(steps), mode, wdelta, positions))
