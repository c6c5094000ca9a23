"""Output paths, checked before any work starts, and a lock for folders written by scheduled runs.

A command that writes somewhere checks the place first, so a typo or a
read-only folder fails in a second with one line instead of after an hour of
work: :func:`check_output_file` for a file (``--out``, ``--rejected``),
:func:`check_output_folder` for a folder (``journey report --out``,
``journey sample``). A report folder is never ``/`` or the home folder, and a
non-empty folder is written only when it holds a previous report (or with
``--force``). :func:`folder_lock` keeps two runs from writing one folder at
the same time; the lock is released by the operating system when a run dies.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> check_output_file(d / "out" / "funnel.csv", (".csv", ".parquet")).name
'funnel.csv'
>>> check_output_folder(pathlib.Path("/"), what="report folder")
Traceback (most recent call last):
...
journeylib.errors.JourneyError: /: will not write a report folder into the root folder
"""

from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .errors import JourneyError


def _writable_parent(path: Path) -> Path:
    """The nearest existing folder above ``path``; raises unless it is a writable folder."""
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink() or parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise JourneyError(f"cannot create it: {parent} is not a folder", file=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise JourneyError(f"cannot write here: no permission to write in {parent}", file=path)
    return parent


def check_output_file(path: Path, suffixes: Sequence[str], *, protect: Sequence[Path] = ()) -> Path:
    """Check an output file before the work: a known suffix, not a folder, a writable place,
    and not one of the ``protect`` files (the inputs). Returns the path.

    >>> check_output_file(Path("x.txt"), (".csv",))
    Traceback (most recent call last):
    ...
    journeylib.errors.JourneyError: x.txt: the output file must end in .csv
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise JourneyError(f"the output file must end in {', '.join(suffixes)}", file=path)
    if path.is_dir():
        raise JourneyError("is a folder; give a file name", file=path)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise JourneyError("exists and is not a regular file; will not write to it", file=path)
        if not os.access(path, os.W_OK):
            raise JourneyError("exists and cannot be written (no permission)", file=path)
        real = path.resolve()
        if any(real == Path(p).resolve() for p in protect):
            raise JourneyError("is an input of this command; will not overwrite it", file=path)
    _writable_parent(path)
    return path


#: files that do not make a folder "non-empty" (kept in version control or by the desktop)
PLACEHOLDERS = frozenset({".gitkeep", ".keep", ".gitignore", ".DS_Store"})


def _forbidden(path: Path) -> str | None:
    real = path.resolve()
    if real == Path(real.anchor):
        return "the root folder"
    try:
        home = Path.home().resolve()
    except RuntimeError:  # pragma: no cover - no home folder
        home = None
    if home is not None and real == home:
        return "the home folder"
    return None


def check_output_folder(path: Path, *, what: str = "output folder", marker: str | None = None, force: bool = False) -> Path:
    """Check a folder a command fills: never ``/`` or the home folder, not a file, writable;
    when ``marker`` is given, an existing non-empty folder (placeholders such as
    ``.gitkeep`` aside) must hold that file (a previous run's) unless ``force``. Returns the path.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "notes.txt").write_text("mine")
    >>> check_output_folder(d, what="report folder", marker=".journey-report.json")
    Traceback (most recent call last):
    ...
    journeylib.errors.JourneyError: ...: the report folder is not empty and holds no previous report (.journey-report.json); use another folder, or --force to write into it
    """
    path = Path(path)
    bad = _forbidden(path)
    if bad:
        raise JourneyError(f"will not write a {what} into {bad}", file=path)
    if path.exists() and not path.is_dir():
        raise JourneyError(f"exists and is not a folder; the {what} must be a folder", file=path)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise JourneyError(f"cannot write into the {what} (no permission)", file=path)
        if marker and not force and not (path / marker).exists() and any(p.name not in PLACEHOLDERS for p in path.iterdir()):
            raise JourneyError(f"the {what} is not empty and holds no previous report ({marker}); "
                               "use another folder, or --force to write into it", file=path)
    _writable_parent(path)
    return path


@contextmanager
def folder_lock(folder: Path, *, what: str = "journey report") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` for the duration; a second holder is refused at once.

    The lock is ``.<name>.lock`` next to the folder (``flock``): the operating
    system releases it when the process ends, however it ends, so a killed
    run never leaves a stale lock. Refused with :class:`JourneyError` naming
    the running process.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "reports"
    >>> with folder_lock(d):
    ...     with folder_lock(d):
    ...         pass
    Traceback (most recent call last):
    ...
    journeylib.errors.JourneyError: ...reports: another journey report run (pid ...) is writing to this folder; not started
    """
    import fcntl

    folder = Path(folder)
    lock = folder.parent / f".{folder.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise JourneyError(f"another {what} run{holder} is writing to this folder; not started", file=folder) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": dt.datetime.now().isoformat(timespec="seconds")}).encode())
        yield lock
    finally:
        os.close(fd)  # closing releases the lock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (pid {int(info['pid'])}, since {str(info['since'])[:19]})"
    except (ValueError, KeyError, TypeError, OSError):
        return ""
