"""Errors that stop a command with one clear message.

Every fatal problem with user input is raised as a :class:`JourneyError`. It
names the file, and where known the line and the field, so the command line can
print one line and exit non-zero without a traceback.

>>> str(JourneyError("bad value", file="journey.yml", line=3, field="stages[0].id"))
'journey.yml:3: stages[0].id: bad value'
"""

from __future__ import annotations

from pathlib import Path


class JourneyError(Exception):
    """A fatal, user-facing problem with input: file, line and field named.

    ``exit_code`` is what the command line exits with (2: bad input or usage).
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class MapError(JourneyError):
    """The journey map (``journey.yml``) is invalid.

    ``problems`` (set by :func:`journeylib.model.load_map`) lists every problem found.

    >>> str(MapError("unknown stage 'x'", file="journey.yml", line=12, field="touchpoints[2].stage"))
    "journey.yml:12: touchpoints[2].stage: unknown stage 'x'"
    """

    def __init__(self, message: str, **where) -> None:
        super().__init__(message, **where)
        self.problems: list[str] = [str(self)]


class DataError(JourneyError):
    """A data file cannot be read at all (missing, empty, undecodable, missing column).

    >>> str(DataError("file is empty", file="events.csv"))
    'events.csv: file is empty'
    """
