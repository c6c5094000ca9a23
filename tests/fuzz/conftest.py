"""The fuzz harness: a memory-limited worker process and the checks every input must pass.

Profiles: a short one runs in ``make test``; ``JOURNEY_FUZZ=long`` (or
``make fuzz``) runs many more examples per generator. For every input:

* no traceback and no exception escapes;
* the exit code is a documented one: 0, 1 or 2 (3 would be a bug);
* a one-line message on stderr for exit code 2;
* the counts reconcile (``read = accepted + rejected``);
* memory stays bounded: the worker runs under ``RLIMIT_AS`` and its peak
  resident memory during each request stays below :data:`PEAK_RSS_MB`
  (measured from ``/proc/self/status`` after resetting the peak, not with
  ``ru_maxrss``, which on Linux carries the forking test process's size
  into the child).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

LONG = os.environ.get("JOURNEY_FUZZ", "").lower() in ("long", "1", "yes")
#: examples per generator
EXAMPLES = 1000 if LONG else 25
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
#: the worker's address-space limit (polars and DuckDB reserve a lot of address space they never touch)
ADDRESS_SPACE = 3 << 30
PEAK_RSS_MB = 1024
#: small limits, so that small inputs reach them
LIMITS_ENV = {"JOURNEY_MAX_FIELD_BYTES": "2048", "JOURNEY_MAX_LINE_BYTES": "8192", "JOURNEY_MAX_YAML_NODES": "5000",
              "JOURNEY_MAX_MAP_BYTES": "65536", "JOURNEY_MAX_JSON_ARRAY_BYTES": "200000"}


class Worker:
    def __init__(self, log_dir: Path):
        env = {**os.environ, "JOURNEY_LOG_DIR": str(log_dir), "NO_COLOR": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("worker.py")), str(ADDRESS_SPACE)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=Path(__file__).resolve().parents[2])

    def run(self, argv: list[str], env: dict | None = None) -> dict:
        self.proc.stdin.write(json.dumps({"argv": [str(a) for a in argv], "env": {**LIMITS_ENV, **(env or {})}}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fuzz worker died (out of memory or a crash)"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("fuzz-logs"))
    yield w
    w.close()


RECONCILE = re.compile(r"(\d+) rows read = (\d+) accepted \+ (\d+) rejected")
INGESTED = re.compile(r"\): (\d+) read = (\d+) accepted \+ (\d+) rejected")


def check(res: dict, what: str = "") -> dict:
    """The checks every fuzzed input must pass (see the module docstring)."""
    out = res["stdout"] + res["stderr"]
    context = f"{what}\nexit {res['code']}\n{out[-3000:]}\n{res.get('exception') or ''}"
    assert res["exception"] is None, context
    assert "Traceback" not in out, context
    assert res["code"] in (0, 1, 2), context
    assert res["peak_rss_mb"] < PEAK_RSS_MB, context
    if res["code"] == 2:
        lines = [ln for ln in res["stderr"].splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), context
    for m in RECONCILE.finditer(res["stdout"]):
        read, acc, rej = map(int, m.groups())
        assert read == acc + rej, context
        assert (rej > 0) == (res["code"] == 1), context
    for m in INGESTED.finditer(res["stdout"]):
        read, acc, rej = map(int, m.groups())
        assert read == acc + rej, context
    return res
