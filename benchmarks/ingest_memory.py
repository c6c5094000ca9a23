"""Peak memory of ``journey ingest`` on xAPI statements: 100k vs 1M statements.

Generates N synthetic xAPI statements (JSON lines, written incrementally),
ingests them into a fresh workspace store in a child process, samples that
process's resident set size with psutil every 20 ms, and reports the peak
(also the kernel's ``ru_maxrss`` of the child). Flat memory = the peak does not
grow with the file.

    python benchmarks/ingest_memory.py                  # 100k and 1M statements
    python benchmarks/ingest_memory.py --sizes 20000    # quick run
    python benchmarks/ingest_memory.py --format array   # one JSON array, streamed with ijson

Writes a Markdown table to stdout and, with ``--out``, to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

MAP = """name: Ingest benchmark
stages:
  - {id: start, name: Start}
  - {id: learn, name: Learn}
touchpoints:
  - {id: welcome, name: Welcome, stage: start, target_emotion: {label: curious}}
  - {id: lesson_1, name: Lesson 1, stage: learn, target_emotion: {label: confident}}
  - {id: lesson_2, name: Lesson 2, stage: learn, target_emotion: {label: confident}}
  - {id: quiz, name: Quiz, stage: learn, target_emotion: {label: confident}}
"""
RULES = """xapi:
  rules:
    - {match: {object: {prefix: "https://lms.example.org/c/1/welcome"}}, touchpoint: welcome}
    - {match: {object: {pattern: "/lesson/1$"}}, touchpoint: lesson_1}
    - {match: {object: {pattern: "/lesson/2$"}}, touchpoint: lesson_2}
    - {match: {activity_type: http://adlnet.gov/expapi/activities/assessment}, touchpoint: quiz}
"""
OBJECTS = ["https://lms.example.org/c/1/welcome", "https://lms.example.org/c/1/lesson/1",
           "https://lms.example.org/c/1/lesson/2", "https://lms.example.org/c/1/quiz", "https://lms.example.org/c/1/forum"]


def generate(path: Path, n: int, seed: int = 1, fmt: str = "lines") -> None:
    """Write ``n`` statements as JSON lines or one JSON array (about 1 % unmapped forum views)."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        if fmt == "array":
            f.write("[\n")
        for i in range(n):
            obj = OBJECTS[min(rnd.randrange(101) // 25, 4)]
            s = {
                "id": f"{i:08x}-0000-4000-8000-{rnd.getrandbits(48):012x}",
                "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org", "name": str(rnd.randrange(n // 20 + 1))}},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/" + ("answered" if obj.endswith("quiz") else "experienced"),
                         "display": {"en-US": "experienced"}},
                "object": {"objectType": "Activity", "id": obj,
                           "definition": {"type": "http://adlnet.gov/expapi/activities/" + ("assessment" if obj.endswith("quiz") else "lesson")}},
                "timestamp": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.000Z",
                "stored": "2025-12-31T00:00:00.000Z",
                "context": {"registration": "6f1d6b5e-1c3a-4d52-9a57-6a1f0e4a3c21",
                            "contextActivities": {"parent": [{"id": "https://lms.example.org/c/1"}]}},
                "version": "1.0.3",
            }
            if obj.endswith("quiz"):
                s["result"] = {"score": {"scaled": round(rnd.random(), 3)}, "success": rnd.random() > 0.3}
            if fmt == "array":
                f.write(("," if i else "") + json.dumps(s, indent=1) + "\n")
            else:
                f.write(json.dumps(s) + "\n")
        if fmt == "array":
            f.write("]\n")


CHILD = r"""
import sys, time
from pathlib import Path
from journeylib.model import load_map
from journeylib.store import ingest_files
ws, src = Path(sys.argv[1]), Path(sys.argv[2])
t = time.perf_counter()
(rep,) = ingest_files([src], ws, load_map(ws / "journey.yml"), source_type="xapi")
print(rep.read, rep.accepted, rep.rejected, round(time.perf_counter() - t, 2), flush=True)
"""


def measure(n: int, tmp: Path, fmt: str = "lines") -> dict:
    ws = tmp / f"ws_{fmt}_{n}"
    ws.mkdir()
    (ws / "journey.yml").write_text(MAP)
    (ws / "sources.yml").write_text(RULES)
    src = tmp / (f"statements_{n}.jsonl" if fmt == "lines" else f"statements_{n}.json")
    generate(src, n, fmt=fmt)
    size_mb = src.stat().st_size / 1e6
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ws), str(src)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    out = proc.stdout.read().strip().splitlines()[-1].split()
    if proc.returncode != 0:
        raise SystemExit(f"ingest of {n} statements failed (exit {proc.returncode})")
    read, accepted, rejected, secs = int(out[0]), int(out[1]), int(out[2]), float(out[3])
    maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    src.unlink()
    return {"n": n, "format": fmt, "file_mb": size_mb, "read": read, "accepted": accepted, "rejected": rejected, "seconds": secs,
            "peak_rss_mb": peak / 1e6, "ru_maxrss_mb": maxrss_kb / 1e3, "store_mb": (ws / "store.duckdb").stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--format", choices=["lines", "array"], default="lines", help="JSON lines, or one (pretty-printed) JSON array")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingest_bench_") as tmp:
        for n in sorted(args.sizes):
            rows.append(measure(n, Path(tmp), args.format))
            print(rows[-1], file=sys.stderr, flush=True)
    lines = [
        f"Machine: {platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}; "
        f"{'JSON lines' if args.format == 'lines' else 'one JSON array'}; batch size 20,000 statements, one transaction per file.",
        "",
        "| statements | file (MB) | read | accepted | rejected | seconds | statements/s | peak RSS (MB, psutil) | store (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['file_mb']:.0f} | {r['read']:,} | {r['accepted']:,} | {r['rejected']:,} | {r['seconds']:.1f} | "
                     f"{r['read'] / r['seconds']:,.0f} | {r['peak_rss_mb']:.0f} | {r['store_mb']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
