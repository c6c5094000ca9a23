"""The funnel contenders of the benchmark: the same ordered funnel by persona, computed several ways.

Every full contender returns a polars DataFrame with ``persona, step, learners,
stopped, in_progress, median_days_to_convert`` (sorted); the counting-only
contenders return ``persona, step, learners``. Results are checked against
ours before the timings count.

* ``ours_polars`` / ``ours_duckdb`` / ``ours_spark`` – :func:`journeylib.metrics.funnel` on polars,
  a DuckDB table, a Spark DataFrame.
* ``duckdb_sql`` – the same output hand-written as one DuckDB SQL query.
* ``duckdb_sql_simple`` – the simplest greedy-earliest query: one ``min(timestamp)`` per step over
  an inner join with the previous step's learners, then a count of the furthest step per persona
  (counts only: no stopped / in-progress split, no times to convert).
* ``spark_df`` – the same simplest funnel hand-written with PySpark DataFrames (the Spark anchor).
* ``pandas`` – a pandas implementation with vectorised step-by-step merges.
* ``pandas_apply`` – the straightforward pandas way: sort, then a Python function per learner
  (``groupby().apply``) walking the learner's events.
* ``retentioneering`` – run separately (see ``run.py``), its own funnel semantics.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

COLUMNS = ["persona", "step", "learners", "stopped", "in_progress", "median_days_to_convert"]
COUNT_COLUMNS = ["persona", "step", "learners"]


def ours(events, learners, jmap, steps, data_end):
    from journeylib import metrics as jm

    f = jm.funnel(events, learners, jmap, steps, by="persona", data_end=data_end)
    return f.select(COLUMNS).sort("persona", "step")


def duckdb_sql(con, steps: list[str], dormancy_days: float, data_end: dt.datetime) -> pl.DataFrame:
    """Greedy-earliest ordered funnel in one SQL query on tables ``ev`` and ``lr``."""
    k = len(steps)
    ctes = [f"s1 AS (SELECT learner_id, min(timestamp) AS t1 FROM ev WHERE touchpoint_id = '{steps[0]}' "
            f"AND timestamp <= $end GROUP BY learner_id)"]
    for i in range(2, k + 1):
        ctes.append(
            f"s{i} AS (SELECT p.learner_id, min(e.timestamp) AS t{i} FROM s{i-1} p JOIN ev e ON e.learner_id = p.learner_id "
            f"WHERE e.touchpoint_id = '{steps[i-1]}' AND e.timestamp >= p.t{i-1} AND e.timestamp <= $end GROUP BY p.learner_id)"
        )
    ctes.append("act AS (SELECT learner_id, max(timestamp) AS last_at FROM ev WHERE timestamp <= $end GROUP BY learner_id)")
    joins = " ".join(f"LEFT JOIN s{i} USING (learner_id)" for i in range(1, k + 1))
    furthest = " + ".join(f"(t{i} IS NOT NULL)::INT" for i in range(1, k + 1))
    ctes.append(
        f"per AS (SELECT l.learner_id, l.persona, act.last_at, {', '.join(f't{i}' for i in range(1, k + 1))}, "
        f"{furthest} AS f FROM lr l LEFT JOIN act USING (learner_id) {joins})"
    )
    ctes.append(
        "st AS (SELECT *, CASE WHEN f = 0 THEN 'not_started' WHEN f = " + str(k) + " THEN 'completed' "
        "WHEN last_at > $end - to_microseconds(CAST($dorm AS BIGINT)) THEN 'in_progress' ELSE 'stopped' END AS state FROM per)"
    )
    parts = []
    for i in range(1, k + 1):
        gap = "NULL::DOUBLE" if i == 1 else f"median(epoch_us(t{i}) - epoch_us(t{i-1})) / 86400e6"
        parts.append(
            f"SELECT persona, {i} AS step, sum((f >= {i})::INT) AS learners, "
            f"sum((f = {i} AND state = 'stopped')::INT) AS stopped, sum((f = {i} AND state = 'in_progress')::INT) AS in_progress, "
            f"{gap} AS median_days_to_convert FROM st GROUP BY persona"
        )
    sql = "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(parts) + "\nORDER BY persona, step"
    dorm_us = int(dormancy_days * 86400e6)
    return pl.from_arrow(con.execute(sql, {"end": data_end, "dorm": dorm_us}).to_arrow_table()).with_columns(
        pl.col("step", "learners", "stopped", "in_progress").cast(pl.Int64)
    ).select(COLUMNS)


def _reach_counts(furthest: pl.DataFrame, k: int) -> pl.DataFrame:
    """``persona, step, learners`` (learners whose furthest step ``f`` is at least ``step``) from counts ``n`` by ``f``."""
    grid = furthest.select("persona").unique().join(pl.DataFrame({"step": list(range(1, k + 1))}), how="cross")
    reach = (
        furthest.join(grid, on="persona").filter(pl.col("f") >= pl.col("step"))
        .group_by("persona", "step").agg(pl.col("n").sum().alias("learners"))
    )
    out = grid.join(reach, on=["persona", "step"], how="left")
    return out.select("persona", pl.col("step").cast(pl.Int64), pl.col("learners").fill_null(0).cast(pl.Int64)).sort("persona", "step")


def duckdb_sql_simple(con, steps: list[str], data_end: dt.datetime) -> pl.DataFrame:
    """The simplest greedy-earliest funnel in DuckDB SQL: per step ``min(timestamp)`` over an inner join with the
    previous step's learners; then the number of learners per persona by furthest step."""
    k = len(steps)
    ctes = [f"s1 AS (SELECT learner_id, min(timestamp) AS t FROM ev WHERE touchpoint_id = '{steps[0]}' "
            f"AND timestamp <= $end GROUP BY learner_id)"]
    for i in range(2, k + 1):
        ctes.append(f"s{i} AS (SELECT e.learner_id, min(e.timestamp) AS t FROM ev e JOIN s{i-1} p USING (learner_id) "
                    f"WHERE e.touchpoint_id = '{steps[i-1]}' AND e.timestamp >= p.t AND e.timestamp <= $end GROUP BY e.learner_id)")
    reached = " UNION ALL ".join(f"SELECT learner_id, {i} AS f FROM s{i}" for i in range(1, k + 1))
    sql = ("WITH " + ",\n".join(ctes) + f",\nfu AS (SELECT learner_id, max(f) AS f FROM ({reached}) GROUP BY learner_id)\n"
           "SELECT l.persona, coalesce(fu.f, 0) AS f, count(*) AS n FROM lr l LEFT JOIN fu USING (learner_id) GROUP BY ALL")
    furthest = pl.from_arrow(con.sql(sql, params={"end": data_end}).to_arrow_table())
    return _reach_counts(furthest.with_columns(pl.col("f", "n").cast(pl.Int64)), k)


def spark_df(events, learners, steps: list[str], data_end: dt.datetime) -> pl.DataFrame:
    """The simplest greedy-earliest funnel hand-written with PySpark DataFrames (the same query as
    :func:`duckdb_sql_simple`): each stage joins the next step's events to the previous stage's
    learners and keeps the earliest time at or after theirs. Each stage is checkpointed
    (``localCheckpoint``), as one does for iterative joins in Spark: without it every later stage
    and the final union recompute all earlier ones (the plan grows with the square of the steps,
    and at 1M events the driver ran out of its 6 GB)."""
    from pyspark.sql import functions as F

    ev = events.where(F.col("timestamp") <= F.lit(data_end)).select("learner_id", "touchpoint_id", "timestamp")
    cur = ev.where(F.col("touchpoint_id") == steps[0]).groupBy("learner_id").agg(F.min("timestamp").alias("t")).localCheckpoint()
    reached = [cur.select("learner_id", F.lit(1).alias("f"))]
    for i, step in enumerate(steps[1:], 2):
        cur = (ev.where(F.col("touchpoint_id") == step).join(cur, "learner_id").where(F.col("timestamp") >= F.col("t"))
               .groupBy("learner_id").agg(F.min("timestamp").alias("t"))).localCheckpoint()
        reached.append(cur.select("learner_id", F.lit(i).alias("f")))
    union = reached[0]
    for r in reached[1:]:
        union = union.unionByName(r)
    furthest = union.groupBy("learner_id").agg(F.max("f").alias("f"))
    per = learners.select("learner_id", "persona").join(furthest, "learner_id", "left")
    counts = per.fillna(0, subset=["f"]).groupBy("persona", "f").agg(F.count(F.lit(1)).alias("n"))
    rows = counts.collect()
    furthest_counts = pl.DataFrame([r.asDict() for r in rows], schema={"persona": pl.Utf8, "f": pl.Int64, "n": pl.Int64})
    return _reach_counts(furthest_counts, len(steps))


def _pandas_summary(df, k: int, dormancy_days: float, data_end) -> pl.DataFrame:
    """Both pandas contenders end alike: from one row per learner (persona, furthest
    step ``f``, ``last_at``, step times ``t1..tk``) to the funnel table by persona."""
    import pandas as pd

    recent = df["last_at"] > (pd.Timestamp(data_end) - pd.Timedelta(days=dormancy_days))
    df["state"] = "stopped"
    df.loc[recent, "state"] = "in_progress"
    df.loc[df["f"] == k, "state"] = "completed"
    df.loc[df["f"] == 0, "state"] = "not_started"
    rows = []
    for persona, g in df.groupby("persona"):
        for i in range(1, k + 1):
            gap = None
            if i > 1:
                d = (pd.to_datetime(g[f"t{i}"]) - pd.to_datetime(g[f"t{i-1}"])).dropna().dt.total_seconds() / 86400
                gap = float(d.median()) if len(d) else None
            rows.append({"persona": persona, "step": i, "learners": int((g["f"] >= i).sum()),
                         "stopped": int(((g["f"] == i) & (g["state"] == "stopped")).sum()),
                         "in_progress": int(((g["f"] == i) & (g["state"] == "in_progress")).sum()),
                         "median_days_to_convert": gap})
    return pl.DataFrame(rows, schema={"persona": pl.Utf8, "step": pl.Int64, "learners": pl.Int64, "stopped": pl.Int64,
                                      "in_progress": pl.Int64, "median_days_to_convert": pl.Float64}).sort("persona", "step")


def pandas_funnel(events, learners, steps: list[str], dormancy_days: float, data_end) -> pl.DataFrame:
    """A straightforward pandas implementation: one merge per step, then groupby."""
    import pandas as pd

    ev = events[events["timestamp"] <= data_end]
    cur = ev[ev["touchpoint_id"] == steps[0]].groupby("learner_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": "t1"})
    per = cur
    for i in range(2, len(steps) + 1):
        e = ev[ev["touchpoint_id"] == steps[i - 1]][["learner_id", "timestamp"]]
        m = cur.merge(e, on="learner_id")
        m = m[m["timestamp"] >= m[f"t{i-1}"]]
        cur = m.groupby("learner_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": f"t{i}"})
        per = per.merge(cur, on="learner_id", how="left")
    last = ev.groupby("learner_id", as_index=False)["timestamp"].max().rename(columns={"timestamp": "last_at"})
    df = learners[["learner_id", "persona"]].merge(last, on="learner_id", how="left").merge(per, on="learner_id", how="left")
    k = len(steps)
    tcols = [f"t{i}" for i in range(1, k + 1)]
    df["f"] = df[tcols].notna().sum(axis=1)
    return _pandas_summary(df, k, dormancy_days, data_end)


def pandas_apply_funnel(events, learners, steps: list[str], dormancy_days: float, data_end) -> pl.DataFrame:
    """The straightforward pandas way: one Python function per learner over their sorted events."""
    import pandas as pd

    ev = events[events["timestamp"] <= data_end].copy()
    k = len(steps)
    ev["_pos"] = ev["touchpoint_id"].map({s: i for i, s in enumerate(steps)}).fillna(k)  # equal times: funnel order
    ev = ev.sort_values(["learner_id", "timestamp", "_pos"])

    def walk(g):
        times = []
        i = 0
        for tp, ts in zip(g["touchpoint_id"].to_numpy(), g["timestamp"]):
            if i < k and tp == steps[i]:
                times.append(ts)
                i += 1
        return pd.Series({"f": len(times), "last_at": g["timestamp"].iloc[-1],
                          **{f"t{j + 1}": (times[j] if j < len(times) else pd.NaT) for j in range(k)}})

    per = ev.groupby("learner_id").apply(walk, include_groups=False).reset_index()
    df = learners[["learner_id", "persona"]].merge(per, on="learner_id", how="left")
    df["f"] = df["f"].fillna(0).astype(int)
    return _pandas_summary(df, k, dormancy_days, data_end)
