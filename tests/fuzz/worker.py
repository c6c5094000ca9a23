"""Runs ``journey`` commands for the fuzz tests, one request per line, inside a memory limit.

Started once per test process with ``RLIMIT_AS`` set before anything is
imported, so an input that makes memory run away ends in a ``MemoryError``
(exit code 3, which the tests reject) instead of taking the machine down.
Request: ``{"argv": [...], "env": {...}}``; answer: exit code, stdout,
stderr, any exception that escaped, the resident memory before the request
and its peak during the request (reset before each request, so one request's
peak is not carried into the next).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for row in f:
            if row.startswith(field + ":"):
                return int(row.split()[1]) / 1024
    raise LookupError(field)


def reset_peak_rss() -> float:
    """Resets the peak resident memory to the current one (Linux), so each request's peak is its own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The peak resident memory since the last :func:`reset_peak_rss`."""
    return _status_mb("VmHWM")


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from typer.testing import CliRunner

    from journeylib.cli import app

    runner = CliRunner()
    for line in sys.stdin:
        req = json.loads(line)
        rss_before = reset_peak_rss()
        saved = {k: os.environ.get(k) for k in req.get("env", {})}
        os.environ.update(req.get("env", {}))
        try:
            res = runner.invoke(app, req["argv"])
            escaped = res.exception if res.exception is not None and not isinstance(res.exception, SystemExit) else None
            out = {"code": res.exit_code, "stdout": res.stdout, "stderr": res.stderr,
                   "exception": "".join(traceback.format_exception(escaped)) if escaped else None}
        except BaseException:  # noqa: BLE001 - reported to the test, which fails
            out = {"code": -1, "stdout": "", "stderr": "", "exception": traceback.format_exc()}
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        out["peak_rss_mb"], out["rss_before_mb"] = peak_rss_mb(), rss_before
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
