"""What the command line prints, and the exit codes a scheduler can trust.

========  ==================================================================
code      meaning
========  ==================================================================
0         done, every row accepted
1         done, but rows were rejected (they are listed with their reasons)
2         bad input or usage: one line on stderr names the file, line and field
3         internal error: one line says so and where the full traceback was
          written (a log file under :func:`log_dir`); a bug, not your data
130       interrupted (Ctrl-C)
========  ==================================================================

Commands share the consoles and :func:`fail` from here, and
:class:`JourneyGroup` (the ``journey`` command group) turns any
:class:`~journeylib.errors.JourneyError` into exit code 2 and any other
exception into exit code 3, so no command ever ends in a bare traceback.

>>> EXIT_INTERNAL
3
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from .errors import JourneyError

EXIT_OK, EXIT_REJECTED, EXIT_FATAL, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
LOG_DIR_ENV = "JOURNEY_LOG_DIR"

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(problem: JourneyError | str) -> NoReturn:
    """Print one line naming the problem on stderr and exit with the error's code (2 for bad input).

    >>> try:
    ...     fail("no such metric")
    ... except typer.Exit as exc:
    ...     exc.exit_code
    2
    """
    code = getattr(problem, "exit_code", EXIT_FATAL)
    label = "internal error" if code == EXIT_INTERNAL else "error"
    err_console.print(f"[bold red]{label}:[/] {escape(str(problem))}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def log_dir() -> Path:
    """Where internal-error logs go: ``$JOURNEY_LOG_DIR``, else ``$XDG_STATE_HOME/journeylib``
    (default ``~/.local/state/journeylib``).

    >>> log_dir().name in ("journeylib", os.environ.get("JOURNEY_LOG_DIR", "journeylib").rstrip("/").split("/")[-1])
    True
    """
    if os.environ.get(LOG_DIR_ENV):
        return Path(os.environ[LOG_DIR_ENV]).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "journeylib"


def write_crash_log(exc: BaseException, argv: list[str] | None = None) -> Path:
    """Write the traceback of ``exc`` (with the command line and versions) to a new log file; returns its path.

    Falls back to the system's temporary folder when :func:`log_dir` cannot be written.
    """
    now = dt.datetime.now()
    name = f"journey-error-{now:%Y%m%d-%H%M%S}-{os.getpid()}.log"
    text = "".join([
        f"journey {' '.join(argv if argv is not None else sys.argv[1:])}\n",
        f"at {now.isoformat(timespec='seconds')}, Python {platform.python_version()} on {platform.platform()}\n",
        f"journeylib {_version()}\n\n",
        *traceback.format_exception(type(exc), exc, exc.__traceback__),
    ])
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return Path("(no log written: no writable folder)")  # pragma: no cover


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("journeylib")
    except Exception:  # pragma: no cover - not installed as a package
        return "(source)"


def internal_error(exc: BaseException) -> NoReturn:
    """Report an unexpected exception in one line (type only: its message may quote data) and exit 3."""
    path = write_crash_log(exc)
    kind = "ran out of memory" if isinstance(exc, MemoryError) else f"{type(exc).__name__}"
    err_console.print(
        f"[bold red]internal error[/] ({kind}): this is a bug in journeylib, not a problem with the input; "
        f"the full traceback is in {escape(str(path))}", markup=True, soft_wrap=True,
    )
    raise typer.Exit(EXIT_INTERNAL)


def _command_line_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions the command-line framework handles itself (exit, abort, usage errors): let them through.

    typer vendors click in recent versions and uses click itself in older
    ones; both kinds are listed.
    """
    import importlib

    kinds: list[type[BaseException]] = [typer.Exit, typer.Abort]
    if hasattr(typer, "TyperException"):
        kinds.append(typer.TyperException)
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        kinds += [getattr(mod, name) for name in ("Exit", "Abort", "ClickException") if hasattr(mod, name)]
    return tuple(kinds)


class JourneyGroup(TyperGroup):
    """The ``journey`` command group: bad input exits 2 with one line, anything unexpected exits 3 with a log.

    Applied to every command however it is invoked (console script,
    ``python -m journeylib``, or a test runner).
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _command_line_exceptions():
            raise
        except JourneyError as exc:
            fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - the whole point: no bare traceback
            internal_error(exc)
