"""One benchmark measurement in its own process: load the data, run one contender, report JSON.

Usage: ``python benchmarks/worker.py CONTENDER DATA_DIR OUT_PREFIX``. Prints one
JSON line with ``load_s``, ``compute_s`` (wall), ``cpu_s`` (user + system CPU
of this process and, for Spark, of its JVM), ``peak_rss_mb`` (the process's
maximum resident set size, data included; for Spark the JVM's resident set at
the end is added) and ``baseline_rss_mb`` (after the imports); writes the
result table to ``OUT_PREFIX.parquet`` so that the runner can check that the
contenders agree.

Extra tasks (not funnel contenders): ``snapshot`` (write the report snapshot
of a workspace and time opening it, as a report kernel does) and ``suite``
(every metric on the data, one after another).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
FUNNEL = "course"
SPARK = ("ours_spark", "spark_df")


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ``ru_maxrss`` survives exec on Linux, so it is not used)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Clock:
    """CPU seconds of this process plus its live children (the Spark JVM runs in one)."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()

    def cpu(self) -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        total = r.ru_utime + r.ru_stime
        for child in self.me.children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except Exception:  # noqa: BLE001 - a child that just ended
                pass
        return total

    def children_rss_mb(self) -> float:
        total = 0.0
        for child in self.me.children(recursive=True):
            try:
                total += child.memory_info().rss / 2**20
            except Exception:  # noqa: BLE001
                pass
        return total


def spark_session():
    """Local Spark on every core, set up the same way for every Spark contender."""
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[*]").appName("journeylib-bench")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("BENCH_SPARK_MEMORY", "6g"))
        .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 2)))
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    return s


def load(contender: str, data_dir: Path):
    """The inputs of a contender, in its own form (reading the files is not compute time)."""
    import polars as pl

    ev_path, lr_path = data_dir / "events.parquet", data_dir / "learners.parquet"
    if contender in ("ours_polars", "suite"):
        return pl.read_parquet(ev_path), pl.read_parquet(lr_path)
    if contender in ("ours_duckdb", "duckdb_sql", "duckdb_sql_simple"):
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {os.cpu_count()}")
        con.execute(f"CREATE TABLE ev AS SELECT * FROM read_parquet('{ev_path}')")
        con.execute(f"CREATE TABLE lr AS SELECT * FROM read_parquet('{lr_path}')")
        return con, None
    if contender in SPARK:
        spark = spark_session()
        ev = spark.read.parquet(str(ev_path)).cache()
        lr = spark.read.parquet(str(lr_path)).cache()
        ev.count(), lr.count()  # cached in memory: the scans are not compute time
        return ev, lr
    if contender in ("pandas", "pandas_apply"):
        import pandas as pd

        return (pd.read_parquet(ev_path, columns=["learner_id", "touchpoint_id", "timestamp"]),
                pd.read_parquet(lr_path, columns=["learner_id", "persona"]))
    if contender == "retentioneering":
        import pandas as pd

        ev = pd.read_parquet(ev_path, columns=["learner_id", "touchpoint_id", "timestamp"])
        return ev.rename(columns={"learner_id": "user_id", "touchpoint_id": "event"}), None
    raise SystemExit(f"unknown contender {contender}")


def compute(contender: str, data, jmap, steps, end, meta, extra: dict):
    import contenders as C

    a, b = data
    if contender in ("ours_polars", "ours_spark"):
        return C.ours(a, b, jmap, steps, end)
    if contender == "ours_duckdb":
        return C.ours(a.table("ev"), a.table("lr"), jmap, steps, end)
    if contender == "duckdb_sql":
        return C.duckdb_sql(a, steps, jmap.dormancy_days, end)
    if contender == "duckdb_sql_simple":
        return C.duckdb_sql_simple(a, steps, end)
    if contender == "spark_df":
        return C.spark_df(a, b, steps, end)
    if contender == "pandas":
        return C.pandas_funnel(a, b, steps, jmap.dormancy_days, end)
    if contender == "pandas_apply":
        return C.pandas_apply_funnel(a, b, steps, jmap.dormancy_days, end)
    if contender == "retentioneering":
        import pandas as pd
        from retentioneering.eventstream import Eventstream

        res = Eventstream(a).funnel_data(steps=steps)
        return pd.DataFrame({"step": list(range(1, len(res["steps"]) + 1)), "learners": [s["unique_paths"] for s in res["steps"]]})
    if contender == "suite":
        return suite(a, b, jmap, end, meta, extra)
    raise SystemExit(f"unknown contender {contender}")


def suite(ev, lr, jmap, end, meta, extra: dict):
    import polars as pl

    from journeylib import metrics as jm

    calls = {
        "journeys": lambda: jm.journeys(ev, lr, jmap, data_end=end),
        "funnel (course, by persona)": lambda: jm.funnel(ev, lr, jmap, FUNNEL, by="persona", data_end=end),
        "funnel strict": lambda: jm.funnel(ev, lr, jmap, FUNNEL, mode="strict", data_end=end),
        "funnel any_order": lambda: jm.funnel(ev, lr, jmap, FUNNEL, mode="any_order", data_end=end),
        "dropoff (by persona)": lambda: jm.dropoff(ev, lr, jmap, by="persona", data_end=end),
        "kpis": lambda: jm.kpis(ev, lr, jmap, data_end=end),
        "emotion (by persona)": lambda: jm.emotion(ev, lr, jmap, by="persona", data_end=end),
        "segment_gaps": lambda: jm.segment_gaps(ev, lr, jmap, data_end=end),
        "transitions": lambda: jm.transitions(ev, lr, jmap, data_end=end),
        "conformance": lambda: jm.conformance(ev, lr, jmap, data_end=end),
        "review (one month)": lambda: jm.review(ev, lr, jmap, period=meta["period"], data_end=end),
    }
    timings = {}
    for name, call in calls.items():
        s = time.perf_counter()
        call()
        timings[name] = round(time.perf_counter() - s, 3)
    extra["timings"] = timings
    return pl.DataFrame({"metric": list(timings), "seconds": list(timings.values())})


def snapshot_task(data_dir: Path) -> dict:
    """Write the report snapshot of the CSV workspace ``data_dir`` once, then time opening it in this process."""
    import tempfile

    from journeylib.context import open_snapshot, report_context, write_snapshot
    from journeylib.workspace import load_workspace

    snap = Path(tempfile.mkdtemp(prefix="journey-snapshot-"))
    write_snapshot(load_workspace(data_dir), snap)
    clock = Clock()
    t, c = time.perf_counter(), clock.cpu()
    ws = open_snapshot(snap)
    open_s, open_cpu = time.perf_counter() - t, clock.cpu() - c
    t = time.perf_counter()
    report_context(data_dir, snapshot=snap)
    context_s = time.perf_counter() - t
    return {"open_s": round(open_s, 3), "open_cpu_s": round(open_cpu, 3), "context_s": round(context_s, 3), "events": ws.events.height}


def main() -> None:
    contender, data_dir, out_prefix = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if contender == "snapshot":
        print(json.dumps({"contender": contender, **snapshot_task(data_dir), "peak_rss_mb": round(peak_rss_mb(), 1)}))
        return
    meta = json.loads((data_dir / "meta.json").read_text())
    extra: dict = {}
    # imports first: import time is not compute time, and the baseline memory is measured after them
    if contender == "retentioneering":
        os.environ.setdefault("RETENTIONEERING_NO_TRACK", "1")
        import pandas  # noqa: F401
        from retentioneering.eventstream import Eventstream  # noqa: F401
    else:
        import duckdb  # noqa: F401
        import polars  # noqa: F401

        import contenders  # noqa: F401
        from journeylib import metrics  # noqa: F401
        from journeylib.metrics import funnel, steps  # noqa: F401
        if contender.startswith("pandas"):
            import pandas  # noqa: F401
    clock = Clock()
    extra["baseline_rss_mb"] = round(peak_rss_mb(), 1)
    from journeylib.model import load_map

    jmap = load_map(data_dir / "journey.yml")
    steps = jmap.funnel(FUNNEL)
    end = dt.datetime.fromisoformat(meta["data_end"])
    t0 = time.perf_counter()
    data = load(contender, data_dir)
    load_s = time.perf_counter() - t0
    extra["rss_after_read_mb"] = round(rss_mb(), 1)
    t1, c1 = time.perf_counter(), clock.cpu()
    out = compute(contender, data, jmap, steps, end, meta, extra)
    wall, cpu = time.perf_counter() - t1, clock.cpu() - c1
    peak = peak_rss_mb() + (clock.children_rss_mb() if contender in SPARK else 0.0)
    if hasattr(out, "write_parquet"):
        out.write_parquet(f"{out_prefix}.parquet")
    else:
        out.to_parquet(f"{out_prefix}.parquet")
    print(json.dumps({"contender": contender, "load_s": round(load_s, 3), "compute_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "peak_rss_mb": round(peak, 1), "rows": len(out), **extra}))


if __name__ == "__main__":
    main()
