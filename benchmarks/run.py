"""Benchmark harness (``make bench``): writes ``benchmarks/RESULTS.md`` from fresh measurements.

What is measured, each in fresh processes, repeated (``--repeats``, default 3)
and interleaved (every contender once, then every contender again, …) so that
a noisy moment of the shared machine does not fall on one contender only:

* **the ordered funnel by persona** at 1M and 10M events (and 30M for the
  growth), by our ``funnel`` on polars, DuckDB and Spark, against two SQL
  contenders on DuckDB — the project's same-output query and the simplest
  greedy-earliest query — and a hand-written PySpark DataFrame funnel (the
  Spark anchor); pandas at 1M and 10M for context;
* **the command line**: ``journey --help`` and ``journey validate data/sample``;
* **the workspace**: loading and validating a 1M-event CSV workspace and
  opening the report snapshot;
* **the report**: ``journey report`` on that workspace;
* with ``--huge``: the funnel on 100M events, out of core on DuckDB.

Every run records wall and CPU seconds (CPU = user + system of the process,
Spark's JVM included) and the machine's 1-minute load average while it ran;
tables show medians. The targets of issue 11 are checked in the first table
of RESULTS.md, computed from the same numbers.

    python benchmarks/run.py                          # everything (over an hour on a shared 2-core machine)
    python benchmarks/run.py --sizes 1e6 --no-spark   # quick
    python benchmarks/run.py --only cli,workspace,report  # some sections; the others are kept from results.json
    python benchmarks/run.py --rewrite                # re-render RESULTS.md from results.json

Data comes from the sample generator scaled by the number of learners and is
cached under ``benchmarks/data/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from render import render  # benchmarks/render.py: RESULTS.md from results.json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS_JSON = HERE / "results.json"
EVENTS_PER_LEARNER = 13.4  # of the sample generator at scale (seed 11)
PY = sys.executable
JOURNEY = str(Path(sys.executable).with_name("journey"))

#: contenders run at each size (pandas is context only; Spark only where it finishes in reasonable time)
CONTENDERS = {
    int(1e6): ["ours_polars", "ours_duckdb", "duckdb_sql", "duckdb_sql_simple", "ours_spark", "spark_df", "pandas"],
    int(1e7): ["ours_polars", "ours_duckdb", "duckdb_sql", "duckdb_sql_simple", "ours_spark", "spark_df", "pandas"],
    int(3e7): ["ours_polars", "duckdb_sql_simple"],
}
SECTIONS = ("funnel", "cli", "workspace", "report", "huge")


def human(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def make_data(size: int) -> Path:
    """Generate (or reuse) Parquet files with about ``size`` events."""
    import yaml

    from journeylib.sample import generate_frames

    d = DATA / f"events_{human(size)}"
    if (d / "meta.json").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    learners = max(100, int(size / EVENTS_PER_LEARNER))
    t = time.perf_counter()
    jmap, ev, lr, truth = generate_frames(learners=learners, seed=11)
    ev.write_parquet(d / "events.parquet")
    lr.write_parquet(d / "learners.parquet")
    (d / "journey.yml").write_text(yaml.safe_dump(jmap.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    meta = {"events": ev.height, "learners": lr.height, "events_mb": round(ev.estimated_size() / 2**20, 1),
            "data_end": ev["timestamp"].max().isoformat(), "steps": jmap.funnel("course"),
            "period": truth["sample_period"], "generate_s": round(time.perf_counter() - t, 1)}
    (d / "meta.json").write_text(json.dumps(meta, indent=1))
    return d


def make_workspace(size: int) -> Path:
    """A CSV workspace (as ``journey sample`` writes it) with about ``size`` events."""
    from journeylib.sample import generate

    d = DATA / f"workspace_{human(size)}"
    if not (d / "ground_truth.json").exists():
        generate(d, learners=max(100, int(size / EVENTS_PER_LEARNER)), seed=11)
    return d


# --------------------------------------------------------------------------
# Running one measurement
# --------------------------------------------------------------------------

def measure(cmd: list[str], *, timeout: int, env: dict | None = None, ok: tuple[int, ...] = (0,)) -> dict:
    """Run ``cmd`` in a fresh process: wall and CPU seconds (its children included), exit code, the last
    stdout line, and the machine's 1-minute load average sampled while it ran."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), RETENTIONEERING_NO_TRACK="1", **(env or {}))
    loads = [os.getloadavg()[0]]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    deadline = t0 + timeout
    status = ru = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            return {"error": f"timeout after {timeout} s"}
        time.sleep(0.2)
        loads.append(os.getloadavg()[0])
    wall = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    rec = {"wall_s": round(wall, 3), "proc_cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "exit": p.returncode,
           "load_max": round(max(loads), 2), "load_mean": round(statistics.fmean(loads), 2)}
    lines = out.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        rec.update(json.loads(lines[-1]))
    if p.returncode not in ok and "error" not in rec:
        rec["error"] = (err.strip().splitlines() or [f"exit {p.returncode}"])[-1][:300]
    return rec


def median_of(runs: list[dict]) -> dict:
    """The median of every number over the runs without an error (``n`` = how many)."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1].get("error", "failed") if runs else "not run", "n": 0}
    keys = [k for k, v in ok[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    med = {k: round(statistics.median(r[k] for r in ok if k in r), 3) for k in keys}
    med["n"] = len(ok)
    if "timings" in ok[0]:
        med["timings"] = {k: round(statistics.median(r["timings"][k] for r in ok), 3) for k in ok[0]["timings"]}
    return med


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------

def agree(data_dir: Path, contender: str) -> str:
    """Compare a contender's table with ours_polars on the columns both have."""
    import polars as pl
    from polars.testing import assert_frame_equal

    ref_path, other_path = data_dir / "result_ours_polars.parquet", data_dir / f"result_{contender}.parquet"
    if not (ref_path.exists() and other_path.exists()):
        return "n/a"
    ref, other = pl.read_parquet(ref_path), pl.read_parquet(other_path)
    if contender == "retentioneering":
        tot = ref.group_by("step").agg(pl.col("learners").sum()).sort("step")["learners"].to_list()
        return "same counts" if tot == other.sort("step")["learners"].to_list() else "counts differ"
    cols = [c for c in ref.columns if c in other.columns]
    try:
        assert_frame_equal(ref.select(cols), other.select(cols), check_exact=False, rel_tol=1e-9, abs_tol=1e-9, check_dtypes=False)
    except AssertionError as exc:
        return "DIFFERENT: " + str(exc).splitlines()[0][:120]
    return "identical" if len(cols) == len(ref.columns) else "same counts"


#: runs above 1M events wait for a quiet machine: at most this 1-minute load average and at least this much free memory
QUIET_LOAD, FREE_GB = 2.5, 14.0


def quiet_enough(size: int, wait_s: int) -> str | None:
    """``None`` when a run of ``size`` events may start, else why not.

    Waits up to ``wait_s`` for a quiet machine (1-minute load below ``QUIET_LOAD``); a machine that stays
    loaded is measured anyway (the load is recorded with every run, and CPU times are the headline), but one
    without ``FREE_GB`` of free memory is not (the run would swap or be killed)."""
    if size <= 1e6:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        load = os.getloadavg()[0]
        free = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemAvailable")).split()[1]) / 2**20
        if load < QUIET_LOAD and free >= FREE_GB:
            return None
        if time.monotonic() > deadline:
            if free >= FREE_GB:
                print(f"   machine still loaded (1-minute load {load:.1f}): measuring anyway, load recorded", flush=True)
                return None
            return f"too little free memory ({free:.0f} GB; runs above 1M events need {FREE_GB:g} GB)"
        time.sleep(15)


def funnel_section(sizes: list[int], repeats: int, spark: bool, timeout: int, retentioneering: str | None,
                   wait_s: int, chosen: set[str] | None = None) -> list[dict]:
    rows = []
    for size in sizes:
        names = [c for c in CONTENDERS.get(size, ["ours_polars", "duckdb_sql_simple"]) if spark or c not in ("ours_spark", "spark_df")]
        names = [c for c in names if chosen is None or c in chosen]
        busy = quiet_enough(size, wait_s)
        if busy:
            print(f"== funnel {human(size)}: skipped, {busy}", flush=True)
            rows += [{"size": size, "contender": c, "events_mb": "—", "error": busy, "n": 0, "agrees": ""} for c in names]
            continue
        d = make_data(size)
        meta = json.loads((d / "meta.json").read_text())
        if retentioneering and size <= 1e7:
            names.append("retentioneering")
        print(f"== funnel {human(size)}: {meta['events']:,} events, {meta['learners']:,} learners, {meta['events_mb']} MB in memory", flush=True)
        runs: dict[str, list[dict]] = {c: [] for c in names}
        for rep in range(repeats):
            for c in names:
                py = retentioneering if c == "retentioneering" else PY
                r = measure([py, str(HERE / "worker.py"), c, str(d), str(d / f"result_{c}")], timeout=timeout)
                runs[c].append(r)
                print(f"   {rep + 1}/{repeats} {c}: {json.dumps(r)}", flush=True)
        for c in names:
            med = median_of(runs[c])
            rows.append({"size": size, "contender": c, "events": meta["events"], "events_mb": meta["events_mb"],
                         "agrees": "—" if c == "ours_polars" else agree(d, c), **med, "runs": runs[c]})
    return rows


def cli_section(repeats: int) -> dict:
    print("== command line", flush=True)
    out = {}
    for name, cmd in {"help": [JOURNEY, "--help"], "validate_sample": [JOURNEY, "validate", "data/sample"]}.items():
        runs = [measure(cmd, timeout=120, ok=(0, 1)) for _ in range(max(5, repeats))]
        out[name] = {**median_of(runs), "runs": runs}
        print(f"   {name}: {out[name]['wall_s']} s", flush=True)
    return out


def workspace_section(repeats: int, timeout: int) -> dict:
    ws = make_workspace(int(1e6))
    events = sum(1 for _ in open(ws / "events.csv", encoding="utf-8")) - 1
    print(f"== workspace: {events:,} events in {ws}", flush=True)
    out: dict = {"events": events}
    load = [measure([PY, "-c", "import json, time; from journeylib.workspace import load_workspace; "
                     "t, c = time.perf_counter(), time.process_time(); ws = load_workspace(%r); "
                     "print(json.dumps({'load_s': round(time.perf_counter() - t, 3), "
                     "'load_cpu_s': round(time.process_time() - c, 3), 'events': ws.events.height}))" % str(ws)],
                    timeout=timeout) for _ in range(repeats)]
    out["load"] = {**median_of(load), "runs": load}
    snap = [measure([PY, str(HERE / "worker.py"), "snapshot", str(ws), "-"], timeout=timeout) for _ in range(repeats)]
    out["snapshot"] = {**median_of(snap), "runs": snap}
    print(f"   load {out['load'].get('load_s')} s, snapshot open {out['snapshot'].get('open_s')} s", flush=True)
    return out


def report_section(repeats: int, timeout: int) -> dict:
    """``journey report`` (every notebook, HTML) on the 1M-event CSV workspace, in fresh processes."""
    ws = make_workspace(int(1e6))
    print(f"== journey report on {ws}", flush=True)
    def run(*extra: str) -> dict:
        return measure([JOURNEY, "report", str(ws), "--out", str(DATA / "report_1M"), *extra], timeout=max(timeout, 1800))

    # the default (notebooks side by side, one kernel per core) and one notebook at a time, interleaved
    report, serial = [], []
    for _ in range(repeats):
        report.append(run())
        serial.append(run("--jobs", "1"))
    out = {**median_of(report), "runs": report, "serial": {**median_of(serial), "runs": serial}}
    print(f"   report {out.get('wall_s')} s, one notebook at a time {out['serial'].get('wall_s')} s", flush=True)
    return out


def huge_section(timeout: int, wait_s: int) -> dict:
    """The funnel on 100M events, out of core: our funnel on a DuckDB relation over the Parquet files."""
    print("== 100M events", flush=True)
    busy = quiet_enough(int(1e8), wait_s)
    if busy:
        return {"error": busy}
    d = make_huge()
    r = measure([PY, str(HERE / "huge.py"), str(d)], timeout=max(timeout, 7200))
    print(f"   {json.dumps(r)}", flush=True)
    return r


def make_huge() -> Path:
    d = DATA / "events_100M"
    if not (d / "meta.json").exists():
        subprocess.run([PY, str(HERE / "huge.py"), "--generate", str(d)], check=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return d


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

def machine() -> str:
    import duckdb
    import narwhals
    import polars as pl

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
    try:
        import pyspark

        spark = f", pyspark {pyspark.__version__}"
    except ImportError:
        spark = ""
    return (f"{cpu}, {os.cpu_count()} cores, {kb / 2**20:.1f} GiB RAM; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, polars {pl.__version__}, narwhals {narwhals.__version__}, "
            f"duckdb {duckdb.__version__}{spark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e6,1e7,3e7", help="comma-separated event counts of the funnel section")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (medians are shown)")
    ap.add_argument("--only", default=",".join(SECTIONS[:4]), help=f"sections to measure: {', '.join(SECTIONS)}")
    ap.add_argument("--huge", action="store_true", help="also the 100M-event section (needs ~15 GB free memory)")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--contenders", default=None, help="re-measure only these funnel contenders (comma-separated); keep the rest")
    ap.add_argument("--retentioneering-python", default=os.environ.get("RETENTIONEERING_PYTHON"),
                    help="a Python with retentioneering installed (kept out of the project environment)")
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--wait", type=int, default=300, help="seconds to wait for a quiet machine before a run above 1M events")
    ap.add_argument("--rewrite", action="store_true", help="only re-render RESULTS.md from results.json")
    args = ap.parse_args()
    old = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    if args.rewrite:
        (HERE / "RESULTS.md").write_text(render(old), encoding="utf-8")
        return
    only = set(args.only.split(",")) | ({"huge"} if args.huge else set())
    res = dict(old)
    res["machine"] = machine()
    res["rendered"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["repeats"] = args.repeats
    measured: set = set()  # (size, contender) funnel rows and sections measured by this run

    def save() -> None:
        """After every section, so that an interrupted run keeps what it measured. The file is read again
        first and only what this run measured replaces its old values (another run may have saved meanwhile)."""
        cur = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
        for key in ("machine", "rendered", "repeats", *(m for m in measured if isinstance(m, str))):
            cur[key] = res[key]
        mine = {(r["size"], r["contender"]): r for r in res.get("funnel", []) if (r["size"], r["contender"]) in measured}
        rows = [r for r in cur.get("funnel", []) if (r["size"], r["contender"]) not in mine] + list(mine.values())
        cur["funnel"] = sorted(rows, key=lambda r: (r["size"], order.get(r["contender"], 99)))
        RESULTS_JSON.write_text(json.dumps(cur, indent=1))
        (HERE / "RESULTS.md").write_text(render(cur), encoding="utf-8")

    order = {c: i for i, c in enumerate(dict.fromkeys(c for cs in CONTENDERS.values() for c in cs))}

    if "funnel" in only:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
        chosen = set(args.contenders.split(",")) if args.contenders else None
        for size in sizes:  # re-measured (size, contender) rows replace their old ones; the others are kept
            rows = funnel_section([size], args.repeats, not args.no_spark, args.timeout, args.retentioneering_python,
                                  args.wait, chosen)
            done = {(r["size"], r["contender"]) for r in rows}
            measured.update(done)
            rows = [r for r in res.get("funnel", []) if (r["size"], r["contender"]) not in done] + rows
            res["funnel"] = sorted(rows, key=lambda r: (r["size"], order.get(r["contender"], 99)))
            save()
    if "cli" in only:
        res["cli"] = cli_section(args.repeats)
        measured.add("cli")
        save()
    if "workspace" in only:
        res["workspace"] = {**res.get("workspace", {}), **workspace_section(args.repeats, args.timeout)}
        measured.add("workspace")
        save()
    if "report" in only:
        cur = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
        res["workspace"] = {**cur.get("workspace", {}), "report": report_section(args.repeats, args.timeout)}
        measured.add("workspace")
        save()
    if "huge" in only:
        res["huge"] = huge_section(args.timeout, args.wait)
        measured.add("huge")
        save()
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
