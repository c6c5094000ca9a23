"""Benchmark harness (``make bench``): our ordered funnel against hand-written
DuckDB SQL, pandas and retentioneering, at 1M and 10M events; and the whole
metrics suite at the largest size. Writes ``benchmarks/RESULTS.md``.

Each measurement runs in a fresh subprocess (``worker.py``) so that peak
memory (max RSS) is per contender. Data comes from the sample generator
(:func:`journeylib.sample.generate_frames`), scaled by the number of
learners, and is cached as Parquet under ``benchmarks/data/`` (git-ignored).

    python benchmarks/run.py                       # 1M and 10M events
    python benchmarks/run.py --sizes 1e6           # quicker
    python benchmarks/run.py --huge                # also 100M events (needs ~64 GB RAM)
    python benchmarks/run.py --retentioneering-python /path/to/venv/bin/python
    python benchmarks/run.py --rewrite             # re-render RESULTS.md from results.json

retentioneering is not a project dependency (it pins its own stack); install it
in a separate virtual environment and pass that Python (or set
``RETENTIONEERING_PYTHON``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
EVENTS_PER_LEARNER = 13.4  # of the sample generator at scale (seed 11)
CONTENDERS = ["ours_polars", "ours_duckdb", "duckdb_sql", "pandas", "pandas_apply"]
#: the per-learner Python loop is only run up to this many events (it grows to many minutes beyond)
APPLY_MAX = int(1e6)


def human(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def make_data(size: int) -> Path:
    """Generate (or reuse) a workspace with about ``size`` events."""
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


def run_one(contender: str, data_dir: Path, python: str, timeout: int) -> dict:
    prefix = data_dir / f"result_{contender}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), RETENTIONEERING_NO_TRACK="1")
    try:
        p = subprocess.run([python, str(HERE / "worker.py"), contender, str(data_dir), str(prefix)],
                           capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"contender": contender, "error": f"timeout after {timeout} s"}
    if p.returncode != 0:
        return {"contender": contender, "error": (p.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def agree(data_dir: Path, contender: str) -> str:
    """Compare a contender's table with ours_polars (same columns; retentioneering: totals per step)."""
    ref = pl.read_parquet(data_dir / "result_ours_polars.parquet")
    other_path = data_dir / f"result_{contender}.parquet"
    if not other_path.exists():
        return "n/a"
    other = pl.read_parquet(other_path)
    if contender == "retentioneering":
        tot = ref.group_by("step").agg(pl.col("learners").sum()).sort("step")["learners"].to_list()
        got = other.sort("step")["learners"].to_list()
        if tot == got:
            return "same counts"
        diff = max(abs(a - b) for a, b in zip(tot, got))
        return f"counts differ (max {diff} learners; ties at equal timestamps are not in order there)"
    from polars.testing import assert_frame_equal

    try:
        assert_frame_equal(ref, other, check_exact=False, rel_tol=1e-9, abs_tol=1e-9, check_dtypes=False)
        return "identical"
    except AssertionError as exc:
        return "DIFFERENT: " + str(exc).splitlines()[0][:120]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration):
        pass
    import duckdb
    import narwhals
    import pandas

    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"polars {pl.__version__}, narwhals {narwhals.__version__}, duckdb {duckdb.__version__}, pandas {pandas.__version__}; "
            f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1e6,1e7", help="comma-separated event counts (default 1e6,1e7)")
    ap.add_argument("--huge", action="store_true", help="also 1e8 events")
    ap.add_argument("--retentioneering-python", default=os.environ.get("RETENTIONEERING_PYTHON"),
                    help="a Python with retentioneering installed (kept out of the project environment)")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--no-suite", action="store_true")
    ap.add_argument("--suite-only", action="store_true", help="re-measure only the metrics suite; keep the other results")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")] + ([int(1e8)] if args.huge else [])
    header = machine()
    results = []
    if args.suite_only:
        old = json.loads((HERE / "results.json").read_text())
        results, sizes = old["results"], sorted({r["size"] for r in old["results"]})
    for size in ([] if args.suite_only else sizes):
        d = make_data(size)
        meta = json.loads((d / "meta.json").read_text())
        print(f"== {human(size)}: {meta['events']} events, {meta['learners']} learners, {meta['events_mb']} MB in memory", flush=True)
        names = CONTENDERS + (["retentioneering"] if args.retentioneering_python else [])
        for c in names:
            if c == "pandas_apply" and size > APPLY_MAX:
                results.append({"contender": c, "size": size, "events": meta["events"], "events_mb": meta["events_mb"],
                                "error": f"not run above {human(APPLY_MAX)} events (time budget)"})
                continue
            py = args.retentioneering_python if c == "retentioneering" else sys.executable
            r = run_one(c, d, py, args.timeout)
            r.update(size=size, events=meta["events"], events_mb=meta["events_mb"])
            r["agrees"] = agree(d, c) if "error" not in r and c != "ours_polars" else ("—" if "error" not in r else "")
            print("  ", json.dumps(r), flush=True)
            results.append(r)
    suite = None
    if not args.no_suite:
        d = make_data(sizes[-1] if sizes[-1] <= 1e7 else int(1e7))
        suite = run_one("suite", d, sys.executable, args.timeout)
        suite["events"] = json.loads((d / "meta.json").read_text())["events"]
        print("  suite", json.dumps(suite), flush=True)
    (HERE / "results.json").write_text(json.dumps({"machine": header, "results": results, "suite": suite}, indent=1))
    Path(args.out).write_text(report(header, results, suite, args), encoding="utf-8")
    print(f"wrote {args.out}")


def rewrite() -> None:
    """Re-render RESULTS.md from results.json (e.g. after editing analysis.md)."""
    data = json.loads((HERE / "results.json").read_text())
    (HERE / "RESULTS.md").write_text(report(data["machine"], data["results"], data["suite"], None), encoding="utf-8")


def _get(results, size, c, key):
    for r in results:
        if r["size"] == size and r["contender"] == c and key in r:
            return r[key]
    return None


def report(header, results, suite, args) -> str:
    sizes = sorted({r["size"] for r in results})
    lines = [
        "# Benchmark results",
        "",
        f"Rendered {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from `python benchmarks/run.py` "
        f"(sizes {', '.join(human(s) for s in sizes)}).",
        "",
        f"**Machine:** {header}.",
        "",
        "**Task:** the ordered funnel `course` (13 steps) of the sample map, by persona, with stopped / in-progress "
        "counts and the median days to convert per step, on data from the sample generator scaled up "
        "(~13.4 events per learner). Every contender runs in its own process; *compute* excludes reading the "
        "Parquet files, *peak RSS* is the process's maximum resident memory (data included). Results of every "
        "contender are checked against ours before the timings count.",
        "",
        "| events | contender | compute s (wall) | compute CPU s | load s | peak RSS MB | RSS after imports MB | events in memory MB | result |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {human(r['size'])} | {r['contender']} | — | — | — | — | — | {r['events_mb']} | not run: {r['error']} |")
        else:
            lines.append(f"| {human(r['size'])} | {r['contender']} | {r['compute_s']:.2f} | {r.get('cpu_s', 0):.2f} | {r['load_s']:.2f} | "
                         f"{r['peak_rss_mb']:.0f} | {r.get('baseline_rss_mb', 0):.0f} | {r['events_mb']} | {r['agrees']} |")
    if not any(r["contender"] == "retentioneering" for r in results):
        lines += ["", "retentioneering was not measured in this run: it is not a project dependency; install "
                  "`retentioneering` in a separate virtual environment and pass `--retentioneering-python` "
                  "(or set `RETENTIONEERING_PYTHON`)."]
    lines += ["", "## Against the targets", "", "Ratios of wall-clock compute time (CPU-time ratios in brackets).", "",
              "| events | ours ÷ DuckDB SQL (target ≤ 1.5) | pandas merges ÷ ours | pandas per-learner ÷ ours (target ≥ 10) | peak RSS ÷ events size (target < 3) | (peak − after imports) ÷ events size |",
              "|---:|---:|---:|---:|---:|---:|"]
    for s in sizes:
        o = _get(results, s, "ours_polars", "compute_s")
        q = _get(results, s, "duckdb_sql", "compute_s")
        p = _get(results, s, "pandas", "compute_s")
        pa = _get(results, s, "pandas_apply", "compute_s")
        oc, qc, pc, pac = (_get(results, s, c, "cpu_s") for c in ("ours_polars", "duckdb_sql", "pandas", "pandas_apply"))
        m = _get(results, s, "ours_polars", "peak_rss_mb")
        base = _get(results, s, "ours_polars", "baseline_rss_mb")
        mb = next((r["events_mb"] for r in results if r["size"] == s), None)
        f = lambda a, b: f"{a / b:.2f}" if a and b else "—"  # noqa: E731
        lines.append(f"| {human(s)} | {f(o, q)} ({f(oc, qc)}) | {f(p, o)} ({f(pc, oc)}) | {f(pa, o)} ({f(pac, oc)}) | {f(m, mb)} | "
                     f"{f(m - base if m and base else None, mb)} |")
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        lines += ["", f"**Growth** from {human(a)} to {human(b)} events (×{b / a:g} data; linear = ×{b / a:g}):", ""]
        for c in CONTENDERS + ["retentioneering"]:
            x, y = _get(results, a, c, "compute_s"), _get(results, b, c, "compute_s")
            xc, yc = _get(results, a, c, "cpu_s"), _get(results, b, c, "cpu_s")
            if x and y:
                lines.append(f"- {c}: ×{y / x:.1f} wall" + (f", ×{yc / xc:.1f} CPU" if xc and yc else ""))
    if suite and "timings" in suite:
        lines += ["", f"## The whole metrics suite on {suite['events']:,} events (polars)", "",
                  "| metric | seconds |", "|---|---:|"]
        for k, v in suite["timings"].items():
            lines.append(f"| {k} | {v:.2f} |")
        lines += [f"| **total** | **{sum(suite['timings'].values()):.2f}** |", "",
                  f"Peak RSS of the suite process: {suite['peak_rss_mb']:.0f} MB."]
    elif suite:
        lines += ["", f"Metrics suite: failed ({suite.get('error')})."]
    analysis = HERE / "analysis.md"
    if analysis.exists():
        lines += ["", analysis.read_text(encoding="utf-8").strip()]
    ingest = HERE / "INGEST.md"  # written by benchmarks/ingest_memory.py
    if ingest.exists():
        lines += ["", "#" + ingest.read_text(encoding="utf-8").strip().replace("\n## ", "\n### ")]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--rewrite"]:
        rewrite()
    else:
        main()
