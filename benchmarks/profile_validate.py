"""Where the CPU time of ``journey validate data/sample`` goes, for RESULTS.md.

    python benchmarks/profile_validate.py

runs the command in this process under cProfile (imports included) and writes
``benchmarks/profiles/validate.txt``: the total CPU seconds, the share spent
importing modules, and journeylib's functions by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sys.argv = ["journey", "validate", str(HERE.parent / "data" / "sample")]
    prof = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
    c = time.process_time()
    prof.enable()
    from journeylib.cli import app

    try:
        app()
    except SystemExit:
        pass
    prof.disable()
    cpu = time.process_time() - c
    stats = pstats.Stats(prof)
    imports = max((v[3] for k, v in stats.stats.items() if k[2] == "_find_and_load"), default=0.0)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(r"journeylib", 25)
    body = "\n".join(ln for ln in buf.getvalue().splitlines() if "journeylib" in ln or "ncalls" in ln)
    text = (f"`journey validate data/sample`: {cpu:.2f} s CPU under cProfile (which slows Python code down); "
            f"importing modules {imports:.2f} s of it\n\njourneylib functions by cumulative CPU time (s):\n{body}\n")
    (HERE / "profiles").mkdir(exist_ok=True)
    (HERE / "profiles" / "validate.txt").write_text(text, encoding="utf-8")
    print(text, file=sys.stderr)


if __name__ == "__main__":
    main()
