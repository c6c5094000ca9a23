"""``benchmarks/RESULTS.md`` from ``benchmarks/results.json``: every figure comes from the measurements.

The prose in ``benchmarks/analysis.md`` (what the numbers mean, profiles of
missed targets) and the ingest benchmark's ``INGEST.md`` are appended as they are.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TEN, ONE, THIRTY = int(1e7), int(1e6), int(3e7)


def human(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def _get(res: dict, size: int, contender: str, key: str):
    for r in res.get("funnel", []):
        if r["size"] == size and r["contender"] == contender:
            return r.get(key)
    return None


def _ratio(a, b):
    return a / b if a and b else None


def _num(v, fmt=".2f", unit=""):
    return "—" if v is None else f"{v:{fmt}}{unit}"


def status(value, target: float, *, higher_is_worse: bool = True) -> str:
    """``met`` or ``missed by N %``; ``not measured`` without a value."""
    if value is None:
        return "not measured"
    if value <= target:
        return "**met**"
    return f"**missed** by {100 * (value / target - 1):.0f} %"


def _load(res: dict, size: int, *contenders: str) -> str:
    vals = [r.get("load_mean") for r in res.get("funnel", []) if r["size"] == size and r["contender"] in contenders]
    vals = [v for v in vals if v is not None]
    return f"{sum(vals) / len(vals):.1f}" if vals else "—"


def targets(res: dict) -> list[str]:
    ws, cli, huge = res.get("workspace", {}), res.get("cli", {}), res.get("huge", {})
    rows = []

    def row(measure, target, value, shown, load, tgt):
        rows.append(f"| {measure} | {target} | {shown} | {load} | {status(value, tgt)} |")

    def timed(measure, target_text, rec, wall_key, cpu_key, tgt, fmt=".2f"):
        """A target in seconds: judged on wall time, with the CPU time beside it (on a loaded machine the
        wall time waits for the other jobs; the CPU time is what the command itself costs)."""
        rec = rec or {}
        wall = rec.get(wall_key) if "error" not in rec else None
        cpu = rec.get(cpu_key) if "error" not in rec else None
        shown = "—" if wall is None else f"{wall:{fmt}} s wall ({cpu:{fmt}} s CPU)" if cpu is not None else f"{wall:{fmt}} s wall"
        verdict = status(wall, tgt)
        if wall is not None and wall > tgt and cpu is not None:
            verdict += f" in wall time; CPU time {'within' if cpu <= tgt else 'over'} the target"
        rows.append(f"| {measure} | {target_text} | {shown} | {_num(rec.get('load_mean'), '.1f')} | {verdict} |")

    timed(f"`journey report` on {ws.get('events', 0):,} events, 4 notebooks (fresh process)", "≤ 30 s",
          ws.get("report"), "wall_s", "proc_cpu_s", 30, ".1f")
    timed("workspace load + validation, 1M-event CSV (`load_workspace`, in process)", "≤ 3 s",
          ws.get("load"), "load_s", "load_cpu_s", 3)
    timed("`journey --help` (fresh process)", "≤ 0.5 s", cli.get("help"), "wall_s", "proc_cpu_s", 0.5)
    timed("`journey validate data/sample` (fresh process)", "≤ 1.0 s", cli.get("validate_sample"), "wall_s", "proc_cpu_s", 1.0)
    for size in (TEN,):
        r = _ratio(_get(res, size, "ours_polars", "cpu_s"), _get(res, size, "duckdb_sql_simple", "cpu_s"))
        row(f"ordered funnel by persona, polars, CPU ÷ simplest DuckDB SQL ({human(size)})", "≤ 0.8×", r, _num(r, ".2f", "×"),
            _load(res, size, "ours_polars", "duckdb_sql_simple"), 0.8)
        r = _ratio(_get(res, size, "ours_duckdb", "cpu_s"), _get(res, size, "duckdb_sql_simple", "cpu_s"))
        row(f"same on the DuckDB engine ({human(size)})", "≤ 1.2×", r, _num(r, ".2f", "×"), _load(res, size, "ours_duckdb", "duckdb_sql_simple"), 1.2)
        r = _ratio(_get(res, size, "ours_spark", "cpu_s"), _get(res, size, "spark_df", "cpu_s"))
        row(f"same on Spark local, CPU ÷ hand-written PySpark funnel ({human(size)})", "≤ 1.5×", r, _num(r, ".2f", "×"),
            _load(res, size, "ours_spark", "spark_df"), 1.5)
    peak, mb = _get(res, TEN, "ours_polars", "peak_rss_mb"), _get(res, TEN, "ours_polars", "events_mb")
    after_read = _ratio(_get(res, TEN, "ours_polars", "rss_after_read_mb"), mb)
    r = _ratio(peak, mb)
    shown = _num(r, ".2f", "×") + (f" (after reading the data, before the funnel: {after_read:.2f}×)" if after_read else "")
    row("peak RSS ÷ events in memory (10M, polars)", "≤ 2.5×", r, shown, _load(res, TEN, "ours_polars"), 2.5)
    g = _ratio(_get(res, THIRTY, "ours_polars", "cpu_s"), _get(res, ONE, "ours_polars", "cpu_s"))
    row("CPU growth of our polars funnel, 1M → 30M events", "≤ ×33", g, _num(g, ".1f", "") if g is None else f"×{g:.1f}",
        _load(res, THIRTY, "ours_polars"), 33)
    if huge and "error" not in huge:
        rows.append(f"| funnel on {huge.get('events', 0):,} events (DuckDB engine, out of core) | recorded | "
                    f"{huge.get('compute_s', 0):.0f} s wall, {huge.get('cpu_s', 0):.0f} s CPU, peak RSS {huge.get('peak_rss_mb', 0) / 1024:.1f} GB | "
                    f"{_num(huge.get('load_mean'), '.1f')} | recorded |")
    else:
        rows.append(f"| funnel on 100M events | recorded | {huge.get('error', 'not run')} | — | not measured |")
    return ["| measure | target | measured (median) | load avg | status |", "|---|---|---:|---:|---|", *rows]


def funnel_table(res: dict) -> list[str]:
    lines = ["| events | contender | compute wall s | compute CPU s | read s | peak RSS MB | RSS after imports MB | RSS after read MB | events in memory MB | load avg | runs | result |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res.get("funnel", []):
        if "error" in r or "compute_s" not in r:
            lines.append(f"| {human(r['size'])} | {r['contender']} | — | — | — | — | — | — | {r['events_mb']} | — | 0 | "
                         f"not measured: {r.get('error', 'failed')} |")
            continue
        lines.append(f"| {human(r['size'])} | {r['contender']} | {r['compute_s']:.2f} | {r['cpu_s']:.2f} | {r.get('load_s', 0):.2f} | "
                     f"{r['peak_rss_mb']:.0f} | {r.get('baseline_rss_mb', 0):.0f} | {_num(r.get('rss_after_read_mb'), '.0f')} | {r['events_mb']} | {r.get('load_mean', 0):.1f} | {r['n']} | {r['agrees']} |")
    return lines


def ratio_table(res: dict) -> list[str]:
    sizes = sorted({r["size"] for r in res.get("funnel", [])})
    pairs = [("ours_polars", "duckdb_sql_simple"), ("ours_polars", "duckdb_sql"), ("ours_duckdb", "duckdb_sql_simple"),
             ("ours_duckdb", "duckdb_sql"), ("ours_spark", "spark_df"), ("pandas", "ours_polars")]
    lines = ["| events | " + " | ".join(f"{a} ÷ {b}" for a, b in pairs) + " |", "|---:|" + "---:|" * len(pairs)]
    for s in sizes:
        cells = []
        for a, b in pairs:
            c = _ratio(_get(res, s, a, "cpu_s"), _get(res, s, b, "cpu_s"))
            w = _ratio(_get(res, s, a, "compute_s"), _get(res, s, b, "compute_s"))
            cells.append("—" if c is None else f"{c:.2f} ({w:.2f})")
        lines.append(f"| {human(s)} | " + " | ".join(cells) + " |")
    return lines


def growth(res: dict) -> list[str]:
    sizes = sorted({r["size"] for r in res.get("funnel", [])})
    out = []
    for c in ("ours_polars", "ours_duckdb", "duckdb_sql", "duckdb_sql_simple", "ours_spark", "spark_df"):
        pts = [(s, _get(res, s, c, "cpu_s")) for s in sizes if _get(res, s, c, "cpu_s")]
        if len(pts) >= 2:
            (a, x), (b, y) = pts[0], pts[-1]
            out.append(f"- {c}: ×{y / x:.1f} CPU for ×{b / a:g} events ({human(a)} → {human(b)})")
    return out


def workspace_table(res: dict) -> list[str]:
    ws, cli = res.get("workspace", {}), res.get("cli", {})
    lines = ["| what | wall s | CPU s (process and children) | load avg | runs |", "|---|---:|---:|---:|---:|"]

    def add(label, rec, wall_key="wall_s", cpu_key="proc_cpu_s"):
        if rec and "error" not in rec:
            cpu = _num(rec.get(cpu_key), ".2f")
            lines.append(f"| {label} | {rec.get(wall_key, 0):.2f} | {cpu} | {rec.get('load_mean', 0):.1f} | {rec.get('n', 0)} |")
        elif rec:
            lines.append(f"| {label} | — | — | — | failed: {rec.get('error')} |")

    add("`journey --help`", cli.get("help"))
    add("`journey validate data/sample`", cli.get("validate_sample"))
    add(f"load + validate the {ws.get('events', 0):,}-event CSV workspace (fresh process, imports included)", ws.get("load"))
    add("  of which `load_workspace` itself (CPU of the process only)", ws.get("load"), "load_s", "load_cpu_s")
    add("`journey report` on that workspace (4 notebooks, HTML; two kernels side by side, the default here)", ws.get("report"))
    add("… the same with `--jobs 1` (one notebook at a time), interleaved with the row above", (ws.get("report") or {}).get("serial"))
    snap = ws.get("snapshot", {})
    if snap and "error" not in snap:
        lines.append(f"| a report kernel opening the snapshot ({snap.get('events', 0):,} events) | {snap.get('open_s', 0):.2f} | "
                     f"{snap.get('open_cpu_s', 0):.2f} | {snap.get('load_mean', 0):.1f} | {snap.get('n', 0)} |")
        lines.append(f"| … and building its whole report context | {snap.get('context_s', 0):.2f} | — | {snap.get('load_mean', 0):.1f} | {snap.get('n', 0)} |")
    return lines


def render(res: dict) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Rendered {res.get('rendered', '?')} from `benchmarks/results.json`, which `make bench` (`python benchmarks/run.py`) "
        "writes; every figure below comes from it. A run may re-measure some sections or contenders only (`--only`, "
        "`--contenders`); the others keep their last measurement. Each figure is the median of fresh processes (*runs*), "
        "the contenders interleaved; *load avg* is the machine's 1-minute load average while those runs ran (the machine "
        "has 2 cores and is shared, so compare CPU seconds, not wall seconds).",
        "",
        f"**Machine:** {res.get('machine', '?')}.",
        "",
        "## Targets (issue 11)",
        "",
        *targets(res),
        "",
        "## The ordered funnel by persona",
        "",
        "The funnel `course` (13 steps) of the sample map, by persona, on data from the sample generator scaled up "
        "(~13.4 events per learner). Full contenders produce learners, stopped / in-progress counts and the median days to "
        "convert per step; `duckdb_sql_simple` and `spark_df` only count learners per step. *compute* excludes reading the "
        "Parquet files (*read*); CPU is user + system time of the process and, for Spark, of its JVM; *peak RSS* is the "
        "process's maximum resident memory, data included (Spark: the driver's JVM at the end added). Every result is "
        "checked against `ours_polars` before its time counts.",
        "",
        *funnel_table(res),
        "",
        "CPU-time ratios (wall-time ratios in brackets):",
        "",
        *ratio_table(res),
        "",
        "Growth:",
        "",
        *growth(res),
        "",
        "## The command line and the workspace",
        "",
        *workspace_table(res),
    ]
    for extra in ("analysis.md", "LOADER.md", "INGEST.md"):
        p = HERE / extra
        if p.exists():
            text = p.read_text(encoding="utf-8").strip()
            lines += ["", text if extra == "analysis.md" else "#" + text.replace("\n## ", "\n### ")]
    lines.append("")
    return "\n".join(lines)
