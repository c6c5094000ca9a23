"""What every ``journey`` command shares: the consoles, the exit codes and the one-line failure.

Kept apart from :mod:`journeylib.cli` so that command implementations in
other modules (``journeylib.cli_metrics``) can use them without importing the
command line itself, and light: it imports only typer and rich.

>>> EXIT_OK, EXIT_REJECTED, EXIT_FATAL
(0, 1, 2)
"""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_REJECTED, EXIT_FATAL = 0, 1, 2


def fail(message: object) -> None:
    """Print ``error: message`` on stderr and exit with :data:`EXIT_FATAL` (no traceback).

    >>> try:
    ...     fail("bad input")
    ... except typer.Exit as exc:
    ...     exc.exit_code
    2
    """
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(EXIT_FATAL)
