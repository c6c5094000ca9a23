"""Limits that keep every command's memory and time bounded, whatever the input.

A workspace is a folder anyone with write access can drop files into, and
scheduled runs read it unattended. So input is read defensively:

* only **regular files** are read (:func:`open_regular`): a device such as
  ``/dev/zero``, a FIFO or a socket is refused with one line, before a byte is
  read;
* data files named by ``journey.yml`` (and found in the folder) must resolve
  **inside the workspace** (:func:`confine`), unless the operator lists other
  folders in ``JOURNEY_DATA_ROOTS``;
* each file kind has a **size limit** (:class:`Limits`), checked before or
  while reading, each with one clear message.

Every limit has a default and can be changed with an environment variable,
so an operator can adjust them for one host without editing a workspace
(which is exactly what an attacker could edit). The table is in
``docs/data-contracts.md``.

>>> Limits().map_bytes
1048576
>>> limits_from_env({"JOURNEY_MAX_MAP_BYTES": "2000"}).map_bytes
2000
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import BinaryIO, Mapping

from .errors import DataError, JourneyError

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Limits:
    """Sizes and ranges past which input is refused (a file) or rejected (a row).

    ``map_bytes`` largest ``journey.yml`` / ``sources.yml``; ``yaml_nodes``
    most YAML nodes after expanding aliases; ``line_bytes`` longest record of
    a CSV or JSON-lines file (a longer one is rejected); ``field_bytes`` largest
    field (a row with a larger one is rejected); ``json_array_bytes`` largest
    JSON-array file (JSON lines has no limit: it is read line by line);
    ``rule_chars`` / ``rule_depth`` longest persona rule and deepest nesting of
    parentheses and ``NOT``; ``stdin_bytes`` most bytes saved from standard
    input for ``journey ingest -``; ``timestamp_min`` / ``timestamp_max`` the
    plausible range of event and enrolment times (a time outside is rejected).

    >>> Limits().timestamp_max.year
    2100
    """

    map_bytes: int = 1 << 20
    yaml_nodes: int = 100_000
    line_bytes: int = 1 << 20
    field_bytes: int = 128 << 10
    json_array_bytes: int = 256 << 20
    rule_chars: int = 2000
    rule_depth: int = 20
    stdin_bytes: int = 4 << 30
    timestamp_min: dt.datetime = dt.datetime(1990, 1, 1, tzinfo=UTC)
    timestamp_max: dt.datetime = dt.datetime(2100, 1, 1, tzinfo=UTC)


#: environment variable → Limits field
ENV_NAMES: dict[str, str] = {
    "JOURNEY_MAX_MAP_BYTES": "map_bytes",
    "JOURNEY_MAX_YAML_NODES": "yaml_nodes",
    "JOURNEY_MAX_LINE_BYTES": "line_bytes",
    "JOURNEY_MAX_FIELD_BYTES": "field_bytes",
    "JOURNEY_MAX_JSON_ARRAY_BYTES": "json_array_bytes",
    "JOURNEY_MAX_RULE_CHARS": "rule_chars",
    "JOURNEY_MAX_RULE_DEPTH": "rule_depth",
    "JOURNEY_MAX_STDIN_BYTES": "stdin_bytes",
}
TIMESTAMP_RANGE_ENV = "JOURNEY_TIMESTAMP_RANGE"
DATA_ROOTS_ENV = "JOURNEY_DATA_ROOTS"


def limits_from_env(env: Mapping[str, str] | None = None) -> Limits:
    """The limits in force: the defaults, changed by ``JOURNEY_MAX_*`` variables.

    ``JOURNEY_TIMESTAMP_RANGE`` is ``FIRST..LAST`` (dates, UTC; LAST excluded).
    A malformed value raises :class:`~journeylib.errors.JourneyError` naming
    the variable.

    >>> limits_from_env({"JOURNEY_TIMESTAMP_RANGE": "2000-01-01..2030-01-01"}).timestamp_min.year
    2000
    >>> limits_from_env({"JOURNEY_MAX_LINE_BYTES": "lots"})
    Traceback (most recent call last):
    ...
    journeylib.errors.JourneyError: JOURNEY_MAX_LINE_BYTES must be a whole number above 0, got 'lots'
    """
    env = os.environ if env is None else env
    changes: dict = {}
    for var, name in ENV_NAMES.items():
        raw = env.get(var)
        if raw is None or not raw.strip():
            continue
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            value = 0
        if value <= 0:
            raise JourneyError(f"{var} must be a whole number above 0, got {raw!r}")
        changes[name] = value
    rng = env.get(TIMESTAMP_RANGE_ENV)
    if rng and rng.strip():
        try:
            first, last = (dt.date.fromisoformat(x.strip()) for x in rng.split(".."))
            if first >= last:
                raise ValueError
        except ValueError:
            raise JourneyError(f"{TIMESTAMP_RANGE_ENV} must be FIRST..LAST (dates, FIRST before LAST), got {rng!r}") from None
        changes["timestamp_min"] = dt.datetime.combine(first, dt.time(), UTC)
        changes["timestamp_max"] = dt.datetime.combine(last, dt.time(), UTC)
    return replace(Limits(), **changes) if changes else Limits()


def limit_names() -> list[str]:
    """Field names of :class:`Limits`, in order (for documentation and tests).

    >>> limit_names()[:2]
    ['map_bytes', 'yaml_nodes']
    """
    return [f.name for f in fields(Limits)]


# --------------------------------------------------------------------------
# Regular files only
# --------------------------------------------------------------------------

def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | Path, *, error=DataError) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (symlinks followed).

    The file is opened without blocking and checked on the open descriptor, so
    a FIFO cannot stall the call and nothing can be swapped in between the
    check and the read. A missing file, a folder, a device, a FIFO or a socket
    raises ``error`` (default :class:`DataError`) naming the file.

    >>> open_regular("/dev/zero")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: /dev/zero: not a regular file (a character device); only regular files are read
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error("file not found", file=path) from None
    except IsADirectoryError:
        raise error("is a folder, not a file", file=path) from None
    except OSError as exc:
        try:  # a socket cannot even be opened: say what it is
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise error(f"not a regular file ({_kind(mode)}); only regular files are read", file=path) from None
        raise error(f"cannot read: {exc.strerror}", file=path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            raise error(f"not a regular file ({kind}); only regular files are read", file=path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def require_regular(path: str | Path, *, error=DataError) -> Path:
    """Check that ``path`` is a readable regular file (see :func:`open_regular`); returns it.

    >>> require_regular("pyproject.toml").name
    'pyproject.toml'
    """
    open_regular(path, error=error).close()
    return Path(path)


def read_limited(path: str | Path, max_bytes: int, *, what: str, env: str, error=DataError) -> bytes:
    """The bytes of a regular file, refused with one line when larger than ``max_bytes``.

    Reads at most ``max_bytes + 1`` bytes, so a huge file costs no more than the limit.

    >>> read_limited("pyproject.toml", 10, what="test file", env="X")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: pyproject.toml: file is larger than the 10-byte limit for a test file (raise it with X)
    """
    with open_regular(path, error=error) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"file is larger than the {_size(max_bytes)} limit for a {what} (raise it with {env})", file=path)
    return data


def spool_text(src: BinaryIO, dest: str | Path, max_bytes: int, *, what: str = "standard input") -> int:
    """Copy a text stream to ``dest`` in 1 MiB chunks; returns the bytes copied.

    The stream is refused (and ``dest`` removed) at the first NUL byte — every
    source format read from a stream is text, so ``/dev/zero`` or a binary
    file piped in ends at once — or past ``max_bytes`` (``JOURNEY_MAX_STDIN_BYTES``),
    so an endless stream cannot fill the disk.

    >>> import io, tempfile, os
    >>> dest = os.path.join(tempfile.mkdtemp(), "in.jsonl")
    >>> spool_text(io.BytesIO(b'{"a": 1}\\n'), dest, 100)
    9
    >>> spool_text(io.BytesIO(b"\\0" * 10), dest, 100)
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: standard input: holds a NUL byte at byte 1: not text; nothing was saved
    >>> os.path.exists(dest)
    False
    """
    dest = Path(dest)
    n = 0
    try:
        with dest.open("wb") as fh:
            while chunk := src.read(1 << 20):
                nul = chunk.find(b"\x00")
                if nul >= 0:
                    raise DataError(f"holds a NUL byte at byte {n + nul + 1}: not text; nothing was saved", file=what)
                n += len(chunk)
                if n > max_bytes:
                    raise DataError(f"is larger than the {_size(max_bytes)} limit (raise it with JOURNEY_MAX_STDIN_BYTES); "
                                    "nothing was saved", file=what)
                fh.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return n


def _size(n: int) -> str:
    for unit, step in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= step and n % step == 0:
            return f"{n // step} {unit}"
    return f"{n}-byte"


# --------------------------------------------------------------------------
# Paths stay inside the workspace
# --------------------------------------------------------------------------

def data_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    """Folders outside workspaces that data files may come from (``JOURNEY_DATA_ROOTS``, ``:``-separated).

    >>> data_roots({"JOURNEY_DATA_ROOTS": "/srv/lake:/mnt/exports"})
    [PosixPath('/srv/lake'), PosixPath('/mnt/exports')]
    """
    env = os.environ if env is None else env
    raw = env.get(DATA_ROOTS_ENV, "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def confine(workspace: str | Path, path: str | Path, *, what: str = "data file") -> Path:
    """``path`` (relative to ``workspace``) if it resolves inside the workspace or an allowed root.

    Symlinks are resolved first, so a link to ``/dev/zero`` or ``/etc`` is
    outside. Raises :class:`DataError` otherwise, naming the path as written
    (never anything read from it).

    >>> confine("data/sample", "events.csv").name
    'events.csv'
    >>> confine("data/sample", "../../etc/passwd")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: data/sample/../../etc/passwd: data file is outside the workspace folder; list its folder in JOURNEY_DATA_ROOTS to allow it
    """
    workspace = Path(workspace)
    candidate = workspace / path
    real = candidate.resolve()
    inside = [workspace.resolve(), *data_roots()]
    if not any(real == root or real.is_relative_to(root) for root in inside):
        raise DataError(f"{what} is outside the workspace folder; list its folder in {DATA_ROOTS_ENV} to allow it", file=candidate)
    return candidate
