"""Runs ``journey`` commands for the fuzz tests, one request per line, inside a memory limit.

Started once per test process with ``RLIMIT_AS`` set before anything is
imported, so an input that makes memory run away ends in a ``MemoryError``
(exit code 3, which the tests reject) instead of taking the machine down.
Request: ``{"argv": [...], "env": {...}}``; answer: exit code, stdout,
stderr, any exception that escaped, and the process's peak resident memory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from typer.testing import CliRunner

    from journeylib.cli import app

    runner = CliRunner()
    for line in sys.stdin:
        req = json.loads(line)
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
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
