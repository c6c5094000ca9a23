"""Streaming readers for workspace data files: CSV, JSON lines, JSON arrays and Parquet.

Each reader yields *raw batches*: polars frames whose data columns are text
(Parquet keeps its types), with

* ``__row`` — where the record is: the **line** it starts on for CSV (the
  header is line 1) and JSON lines, the position in a JSON array, the row of
  a Parquet file;
* ``__error`` — why the record could not be read (null when it could), and
  ``__raw`` — its raw text (truncated), for the rejected-rows table.

Memory does not grow with the file: a CSV or JSON-lines file is read in
blocks of :data:`BLOCK_BYTES`, a JSON array as a stream of objects, a Parquet
file by row group. A record that cannot be read is rejected alone — bad
quoting, a wrong number of fields, bytes that are not valid text in the
declared encoding, a NUL byte, a line over the limit — and reading goes on at
the next line.

CSV follows RFC 4180 (fields may be quoted with ``"``; a quote inside a quoted
field is doubled; quoted fields may hold separators and line breaks; a quote
inside an unquoted field is an ordinary character). Clean blocks are split
into records with vectorised byte scans (numpy) and parsed by polars; a block
with anything unusual in it is parsed record by record with Python's ``csv``
module in strict mode from the first unusual record on, which defines what
happens to bad input.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = p.write_bytes(b'a,b\\n1,x\\n2,"broken\\n3,y\\n4,z,extra\\n')
>>> df = pl.concat(list(read_batches(p)))
>>> df.select("__row", "a", "b", "__error").rows()
[(2, '1', 'x', None), (3, None, None, 'malformed quoting'), (4, '3', 'y', None), (5, None, None, 'wrong number of fields')]
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import polars as pl

from .errors import DataError
from .limits import Limits, _size, limits_from_env, open_regular
from .model import DataSettings

#: bytes read per block of a CSV or JSON-lines file
BLOCK_BYTES = 8 << 20
#: characters of a rejected record kept in ``__raw``
RAW_CHARS = 1000

# rejection reasons decided while reading
MALFORMED_JSON = "malformed JSON line"
WRONG_FIELDS = "wrong number of fields"
MALFORMED_QUOTES = "malformed quoting"
NUL_BYTE = "contains a NUL byte (not text)"


def undecodable(encoding: str) -> str:
    """The reason for a record whose bytes are not valid text in ``encoding``.

    >>> undecodable("utf-8")
    'not valid utf-8 text (declare data.encoding in journey.yml)'
    """
    return f"not valid {encoding} text (declare data.encoding in journey.yml)"


def too_long(limit: int, what: str = "line") -> str:
    """The reason for a record or field over its limit.

    >>> too_long(1 << 20)
    'line longer than 1 MiB'
    """
    return f"{what} longer than {_size(limit)}"


def read_columns(frame: pl.DataFrame) -> list[str]:
    """The data columns of a raw batch (without ``__row``, ``__error``, ``__raw``).

    >>> read_columns(pl.DataFrame({"a": [1], "__row": [1]}))
    ['a']
    """
    return [c for c in frame.columns if not c.startswith("__")]


def read_batches(path: str | Path, settings: DataSettings | None = None, limits: Limits | None = None) -> Iterator[pl.DataFrame]:
    """Raw batches of a data file (see the module docstring), by the file's suffix.

    ``.parquet`` → Parquet; ``.jsonl``/``.ndjson``/``.json`` → JSON lines, or a
    JSON array when the file starts with ``[``; anything else → CSV. A ``.gz``
    suffix is decompressed on the fly. Raises :class:`DataError` for a file that
    cannot be read at all (missing, not a regular file, empty, no rows, a
    header naming a column twice, an unreadable Parquet file or JSON array).
    """
    path = Path(path)
    settings = settings or DataSettings()
    limits = limits or limits_from_env()
    kind = "".join(path.suffixes[-2:]).lower().removesuffix(".gz")
    if kind.endswith(".parquet"):
        yield from _parquet_batches(path)
    elif kind.endswith((".jsonl", ".ndjson", ".json")):
        yield from _json_batches(path, settings, limits)
    else:
        yield from _csv_batches(path, settings, limits)


# --------------------------------------------------------------------------
# Byte streams: regular files only, gzip, encodings
# --------------------------------------------------------------------------

def _utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def _single_byte(encoding: str) -> bool:
    """True for codecs where every byte is one character and ASCII maps to itself (latin-1, cp1252, …)."""
    try:
        text = bytes(range(256)).decode(encoding, errors="replace")
    except LookupError:
        raise
    return len(text) == 256 and text[:128] == "".join(map(chr, range(128)))


class _Stream:
    """A binary stream of a regular file (gunzipped for ``.gz``) whose read errors are :class:`DataError`.

    ``encoding`` is how the bytes it gives are to be decoded: the declared
    encoding when it is UTF-8 or a single-byte code page (records are found in
    the raw bytes), otherwise the stream transcodes to UTF-8 on the fly.
    """

    def __init__(self, path: Path, encoding: str, *, limit: int | None = None):
        self.path = path
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"unknown encoding '{encoding}' (data.encoding in journey.yml)", file=path) from None
        self._fh = open_regular(path)
        self._raw: BinaryIO = self._fh
        if path.suffix.lower() == ".gz":
            import gzip

            self._raw = gzip.GzipFile(fileobj=self._fh, mode="rb")
        self._decoder = None
        self.encoding = "utf-8" if _utf8(encoding) else encoding
        if not _utf8(encoding) and not _single_byte(encoding):
            self._decoder = codecs.getincrementaldecoder(encoding)()
            self.encoding = "utf-8"
        self._declared = encoding
        self._limit = limit
        self.bytes_read = 0

    def read(self, n: int) -> bytes:
        import gzip
        import zlib

        try:
            data = self._raw.read(n)
        except (EOFError, zlib.error, gzip.BadGzipFile):
            raise DataError("not a readable gzip file (it is damaged or not gzip)", file=self.path) from None
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror or type(exc).__name__}", file=self.path) from None
        self.bytes_read += len(data)
        if self._limit is not None and self.bytes_read > self._limit:
            raise DataError(f"file is larger than the {_size(self._limit)} limit for a JSON array "
                            "(write it as JSON lines, or raise JOURNEY_MAX_JSON_ARRAY_BYTES)", file=self.path)
        if self._decoder is not None:
            try:
                data = self._decoder.decode(data, final=not data).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"cannot decode as {self._declared} ({exc.reason} near byte {self.bytes_read - len(data) + exc.start}); "
                                "declare the encoding under data.encoding in journey.yml", file=self.path) from None
        return data

    def close(self) -> None:
        self._raw.close()
        self._fh.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _truncate(text: str) -> str:
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + "…"


def _frame(rows: list[list[str | None]], columns: list[str], lines: list[int], errors: list[str | None],
           raws: list[str | None]) -> pl.DataFrame:
    """A raw batch from Python lists (the record-by-record path)."""
    data = {c: [r[i] if r is not None else None for r in rows] for i, c in enumerate(columns)}
    return pl.DataFrame(
        {**data, "__row": lines, "__error": errors, "__raw": raws},
        schema={**{c: pl.Utf8 for c in columns}, "__row": pl.Int64, "__error": pl.Utf8, "__raw": pl.Utf8},
    )


def _with_meta(df: pl.DataFrame, lines: np.ndarray) -> pl.DataFrame:
    return df.with_columns(
        pl.Series("__row", lines, dtype=pl.Int64),
        pl.lit(None, dtype=pl.Utf8).alias("__error"),
        pl.lit(None, dtype=pl.Utf8).alias("__raw"),
    )


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------

class _CsvDialect:
    """Separator, quote and encoding of one CSV file, with the limits that apply to it."""

    def __init__(self, separator: str, encoding: str, limits: Limits, declared: str):
        self.sep = separator
        self.sep_byte = ord(separator.encode(encoding)) if len(separator.encode(encoding)) == 1 else None
        self.encoding = encoding
        self.declared = declared
        self.limits = limits
        if self.sep_byte is None or self.sep in '"\r\n':
            raise DataError(f"the CSV separator {separator!r} cannot be used (data.separator in journey.yml)")

    def decode(self, raw: bytes) -> str:
        return raw.decode(self.encoding)


def _csv_batches(path: Path, settings: DataSettings, limits: Limits) -> Iterator[pl.DataFrame]:
    with _Stream(path, settings.encoding) as stream:
        dialect = _CsvDialect(settings.separator, stream.encoding, limits, settings.encoding)
        columns, data, line = _read_header(stream, dialect, path)
        yield from _CsvBody(stream, dialect, columns, path).batches(data, line)


def _read_header(stream: _Stream, d: _CsvDialect, path: Path) -> tuple[list[str], bytes, int]:
    """Column names, the bytes read past the header, and the line number of the first data line."""
    data = b""
    while True:
        chunk = stream.read(1 << 16)
        data += chunk
        if data.startswith(codecs.BOM_UTF8) and d.encoding == "utf-8":
            data = data[len(codecs.BOM_UTF8):]
        body = data.lstrip(b"\r\n\t ")
        end = _header_end(body)
        if end is not None or not chunk:
            break
        if len(data) > d.limits.line_bytes:
            raise DataError(f"the header line is longer than {_size(d.limits.line_bytes)} (raise JOURNEY_MAX_LINE_BYTES)", file=path, line=1)
    skipped = data[: len(data) - len(body)]
    if not body.strip():
        raise DataError("file is empty", file=path)
    if end is None:
        end = len(body)
    raw = body[:end]
    if b"\x00" in raw:
        raise DataError("the header holds a NUL byte: not a text file", file=path, line=skipped.count(b"\n") + 1)
    try:
        text = d.decode(raw)
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot decode the header as {d.declared} ({exc.reason}); declare the encoding under data.encoding "
                        "in journey.yml", file=path, line=skipped.count(b"\n") + 1) from None
    try:
        names = next(csv.reader(io.StringIO(text), delimiter=d.sep, strict=True))
    except (csv.Error, StopIteration) as exc:
        raise DataError(f"cannot parse the header line ({exc})", file=path, line=skipped.count(b"\n") + 1) from None
    names = [n.strip() for n in names]
    if len(set(names)) != len(names):
        raise DataError("the header names a column twice", file=path, line=skipped.count(b"\n") + 1)
    internal = [n for n in names if n.startswith("__")]
    if internal:
        raise DataError(f"column names may not start with '__' ({len(internal)} do)", file=path, line=skipped.count(b"\n") + 1)
    rest = body[end + 1:] if end < len(body) else b""
    first_line = skipped.count(b"\n") + raw.count(b"\n") + 2
    return names, rest, first_line


def _header_end(body: bytes) -> int | None:
    """Position of the newline that ends the first record (quotes respected), or None."""
    a = np.frombuffer(body, np.uint8)
    nl = np.flatnonzero(a == 10)
    if not len(nl):
        return None
    qp = np.flatnonzero(a == 0x22)
    even = np.flatnonzero((np.searchsorted(qp, nl) & 1) == 0)
    return int(nl[even[0]]) if len(even) else None


class _CsvBody:
    """The data records of one CSV file, read window by window from a buffer of blocks.

    A window of the buffer is scanned with numpy (:func:`_scan`); its plainly
    well-formed records go to polars at once. At the first unusual record the
    record-by-record path (:meth:`_slow`) takes over for a few records, then
    scanning resumes. Windows grow while they are clean and shrink at a
    problem, and record-by-record runs grow while problems are dense, so the
    work stays linear in the file whatever it holds.
    """

    def __init__(self, stream: _Stream, dialect: _CsvDialect, columns: list[str], path: Path):
        self.stream = stream
        self.d = dialect
        self.columns = columns
        self.path = path
        self.rows = 0
        self._bufs: list[bytes] = []
        self._lines: list[np.ndarray] = []
        self._pending: list[pl.DataFrame] = []

    def batches(self, data: bytes, line: int) -> Iterator[pl.DataFrame]:
        final = False
        pos = 0
        window, slow_n = _WINDOW_MIN, _SLOW_MIN
        need_more = False
        limit = self.d.limits.line_bytes
        idle, last = 0, (-1, -1)
        while True:
            # every pass consumes bytes, reads more or widens the window (at most a few times in a row): a pass
            # that does none of these many times over is a reader bug, stopped here rather than looping forever
            idle = idle + 1 if (pos, len(data)) == last else 0
            last = (pos, len(data))
            if idle > 64:
                raise DataError("internal CSV reader error: no progress", file=self.path)
            if not final and (need_more or len(data) - pos < BLOCK_BYTES):
                chunk = self.stream.read(BLOCK_BYTES)
                final = not chunk
                data = data[pos:] + chunk
                pos = 0
                need_more = False
                yield from self._flush()
            if pos >= len(data):
                break
            stop = min(len(data), pos + window)
            scan = _scan(data, pos, stop, final and stop == len(data), self.d)
            if scan.n_fast:
                self._fast(data, pos, scan, line)
                pos += scan.fast_end
                line += scan.fast_lines
            stuck = False
            if scan.problem:
                frame, used, lines_used = self._slow(data, pos, final, line, slow_n)
                if frame.height:
                    self._pending.append(frame)
                pos += used
                line += lines_used
                slow_n = min(slow_n * 2, _SLOW_MAX) if scan.n_fast < 64 else _SLOW_MIN
                window = _WINDOW_MIN
                if used:
                    continue
                # the record at pos runs past the data read so far: a wider window cannot help, more data can
                stuck = True
            elif scan.n_fast:
                window = min(window * 2, BLOCK_BYTES)
                slow_n = _SLOW_MIN
                continue
            # no complete record in the window
            if stop < len(data) and not stuck:
                window *= 2
            elif final:  # pragma: no cover - at the end of the file every pass uses bytes
                raise DataError("internal CSV reader error: no progress", file=self.path)
            elif len(data) - pos > limit:
                frame, skip, more = self._long_tail(data, pos, line)
                self._pending.append(frame)
                data, pos, line = more, 0, line + 1
                final = final or skip
            else:
                need_more = True
        yield from self._flush()
        if self.rows == 0:
            raise DataError("file has a header but no rows", file=self.path)

    def _flush(self) -> Iterator[pl.DataFrame]:
        """Parse the well-formed records gathered so far in one polars call; yield them with the others, in file order."""
        d = self.d
        frames = [f for f in self._pending if f.height]
        if self._bufs:
            buf = b"".join(self._bufs)
            if d.encoding != "utf-8":
                buf = buf.decode(d.encoding).encode("utf-8")
            lines = np.concatenate(self._lines)
            df = pl.read_csv(
                buf, has_header=False, schema={c: pl.Utf8 for c in self.columns},
                separator=d.sep, quote_char='"', raise_if_empty=False, truncate_ragged_lines=False,
            )
            if df.height != len(lines):  # pragma: no cover - the scan and polars disagree: never guess
                raise DataError("internal CSV reader mismatch", file=self.path)
            frames.insert(0, _with_meta(df, lines))
        self._bufs, self._lines, self._pending = [], [], []
        if not frames:
            return
        out = frames[0] if len(frames) == 1 else pl.concat(frames).sort("__row")
        self.rows += out.height
        yield out

    def _long_tail(self, data: bytes, pos: int, line: int) -> tuple[pl.DataFrame, bool, bytes]:
        """An incomplete record that outgrew the line limit: reject its first line and skip past it.

        Returns (frame, end of file reached, the data after that line).
        """
        limit = self.d.limits.line_bytes
        enc = self.d.encoding
        nl = data.find(b"\n", pos)
        if nl >= 0:
            reason = MALFORMED_QUOTES if nl - pos <= limit else too_long(limit)
            return _frame([None], self.columns, [line], [reason], [_truncate(data[pos:min(nl, pos + RAW_CHARS)].decode(enc, errors="replace"))]), False, data[nl + 1:]
        head = data[pos:pos + RAW_CHARS]
        while True:  # one line longer than the limit: stream past it without keeping it
            chunk = self.stream.read(BLOCK_BYTES)
            nl = chunk.find(b"\n")
            if not chunk or nl >= 0:
                break
        rest = chunk[nl + 1:] if nl >= 0 else b""
        return _frame([None], self.columns, [line], [too_long(limit)], [_truncate(head.decode(enc, errors="replace"))]), not chunk, rest

    def _fast(self, data: bytes, pos: int, scan: _Scan, line: int) -> None:
        """Gather the records the byte scan vouched for (parsed in :meth:`_flush`); wrong field counts are rejected."""
        d = self.d
        counts, starts, ends = scan.counts, scan.starts, scan.ends
        lines = line + scan.start_lines
        lengths = ends - starts
        blank = (lengths == 0) | ((lengths == 1) & (scan.a[np.maximum(ends - 1, 0)] == 0x0D))
        good = (counts == len(self.columns)) & ~blank
        wrong = ~good & ~blank
        if good.all():
            self._bufs.append(data[pos:pos + scan.fast_end])
            self._lines.append(lines)
        elif good.any():
            keep = np.repeat(good, lengths + 1)[: scan.fast_end]
            self._bufs.append(scan.a[: len(keep)][keep].tobytes())
            self._lines.append(lines[good])
        if self._bufs and not self._bufs[-1].endswith(b"\n"):
            self._bufs[-1] += b"\n"
        if wrong.any():
            idx = np.flatnonzero(wrong)
            raws = [_truncate(data[pos + starts[i]:pos + ends[i]].decode(d.encoding, errors="replace").rstrip("\r")) for i in idx]
            self._pending.append(_frame([None] * len(idx), self.columns, lines[idx].tolist(), [WRONG_FIELDS] * len(idx), raws))

    def _slow(self, data: bytes, start: int, final: bool, line: int, max_records: int) -> tuple[pl.DataFrame, int, int]:
        """Up to ``max_records`` records from ``start``, one by one: (frame, bytes used, lines used).

        Python's csv module in strict mode decides. A record that fails — bad
        quoting, undecodable bytes, a NUL byte, over the line limit, no closing
        quote before the end of the file — is rejected on its first line, and
        parsing resumes at the next line. A line without a quote is split on
        the separator directly (the same result, much faster).
        """
        d = self.d
        limit = d.limits.line_bytes
        sep, enc, ncols = d.sep, d.encoding, len(self.columns)
        rows: list[list[str] | None] = []
        out_lines: list[int] = []
        errors: list[str | None] = []
        raws: list[str | None] = []
        done = 0
        p, ln = start, line
        size = len(data)
        while done < max_records and p < size:
            nl = data.find(b"\n", p)
            if nl < 0:
                if not final:
                    break
                nl = size
            raw = data[p:nl]
            if not raw.strip(b"\r"):
                p, ln = nl + 1, ln + 1
                continue
            end, reason = nl, None
            fields: list[str] = []
            if b'"' not in raw and b"\x00" not in raw and len(raw) <= limit:
                try:
                    text = raw.decode(enc)
                except UnicodeDecodeError:
                    reason = undecodable(d.declared)
                else:
                    if text.endswith("\r"):
                        text = text[:-1]
                    if "\r" in text:
                        reason = MALFORMED_QUOTES  # a carriage return inside an unquoted field
                    else:
                        fields = text.split(sep)
            else:
                try:
                    fields, end = _parse_record(data, p, nl, final, d, limit)
                except _NeedMore:
                    break
                except _BadRecord as bad:
                    reason, end = bad.reason, nl
            out_lines.append(ln)
            if reason is not None:
                rows.append(None)
                errors.append(reason)
                raws.append(_truncate(raw.decode(enc, errors="replace").rstrip("\r")))
            elif len(fields) != ncols:
                rows.append(None)
                errors.append(WRONG_FIELDS)
                raws.append(_truncate(data[p:end].decode(enc, errors="replace").rstrip("\r")))
            else:
                rows.append(fields)
                errors.append(None)
                raws.append(None)
            ln += data.count(b"\n", p, end) + 1
            p = end + 1
            done += 1
        return _frame(rows, self.columns, out_lines, errors, raws), min(p, size) - start, ln - line


_WINDOW_MIN = 64 << 10
_SLOW_MIN = 16
_SLOW_MAX = 1 << 20


class _NeedMore(Exception):
    """The record runs past the data read so far."""


class _BadRecord(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _parse_record(data: bytes, start: int, nl: int, final: bool, d: _CsvDialect, limit: int) -> tuple[list[str], int]:
    """Parse the record at ``data[start:]`` whose first line ends at ``nl``: (fields, offset of the newline ending it).

    While a quoted field is still open at the end of the text so far, the text
    is extended to the end of the line holding the next quote (lines between
    hold no quote, so the field stays open through them). Raises _BadRecord,
    or _NeedMore when the record runs past the data read so far.
    """
    end = nl
    while True:
        if end - start > limit:
            raise _BadRecord(too_long(limit) if end == nl else MALFORMED_QUOTES)
        raw = data[start:end]
        if b"\x00" in raw:
            raise _BadRecord(NUL_BYTE)
        try:
            text = raw.decode(d.encoding)
        except UnicodeDecodeError:
            raise _BadRecord(undecodable(d.declared)) from None
        buf = io.StringIO(text + "\n")
        reader = csv.reader(buf, delimiter=d.sep, quotechar='"', doublequote=True, strict=True)
        old = csv.field_size_limit()
        csv.field_size_limit(max(limit, old))
        try:
            fields = next(reader)
        except csv.Error as exc:
            if "unexpected end of data" not in str(exc):
                raise _BadRecord(too_long(limit) if "field larger" in str(exc) else MALFORMED_QUOTES) from None
        else:
            if buf.tell() == len(text) + 1 or not buf.read().strip():
                return fields, end
            raise _BadRecord(MALFORMED_QUOTES)  # pragma: no cover - a record ends at the end of the text
        finally:
            csv.field_size_limit(old)
        # a quoted field is still open: extend to the end of the line holding the next quote
        q = data.find(b'"', end)
        if q < 0:
            if final or len(data) - start > limit:
                raise _BadRecord(MALFORMED_QUOTES if end > nl or b'"' in data[start:nl] else too_long(limit))
            raise _NeedMore
        if q - start > limit:
            raise _BadRecord(MALFORMED_QUOTES)
        nxt = data.find(b"\n", q)
        if nxt < 0:
            if not final:
                raise _NeedMore
            nxt = len(data)
        end = nxt


class _Scan:
    """What a vectorised scan of a window found (see :func:`_scan`); positions are relative to the window."""

    a: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    counts: np.ndarray
    start_lines: np.ndarray
    n_fast: int
    fast_end: int
    fast_lines: int
    problem: bool


def _scan(data: bytes, pos: int, stop: int, final: bool, d: _CsvDialect) -> _Scan:
    """Find the complete records at the start of ``data[pos:stop]`` that are plainly well-formed.

    ``final``: the file ends at ``stop``. Records end at newlines outside
    quotes (even quote parity from ``pos``, a record start). The scan stops at
    the first record with anything the fast path does not take: a quote that
    is not RFC 4180 (an opening quote not at a field start, a closing quote
    not followed by a separator or line end), a carriage return not before a
    newline, a NUL byte, undecodable bytes, or a record longer than the line
    limit; ``problem`` is then set and the record-by-record path takes over.
    """
    s = _Scan()
    a = np.frombuffer(data, np.uint8, count=stop - pos, offset=pos)
    s.a = a
    n = len(a)
    nl = np.flatnonzero(a == 10)
    has_quotes = data.find(b'"', pos, stop) >= 0
    qp = np.flatnonzero(a == 0x22) if has_quotes else np.empty(0, np.int64)
    if has_quotes:
        term_idx = np.flatnonzero((np.searchsorted(qp, nl) & 1) == 0)
    else:
        term_idx = np.arange(len(nl))
    terms = nl[term_idx]
    if final and n and (not len(nl) or nl[-1] != n - 1) and not (len(qp) & 1):
        # the last record has no newline: complete at the end of the file when its quotes are balanced
        terms = np.concatenate([terms, [n]])
        term_idx = np.concatenate([term_idx, [len(nl)]])
    starts = np.concatenate([[0], terms[:-1] + 1]) if len(terms) else np.empty(0, np.int64)
    ends = terms
    region_end = int(terms[-1]) if len(terms) else 0
    bad = n + 1  # first problem position
    if has_quotes:
        q = qp[qp < region_end]
        k = np.arange(len(q))
        prev = np.where(q > 0, a[np.maximum(q - 1, 0)], 10)
        nxt = np.where(q + 1 < n, a[np.minimum(q + 1, n - 1)], 10)
        ok_open = (prev == d.sep_byte) | (prev == 10) | (prev == 0x22)
        ok_close = (nxt == d.sep_byte) | (nxt == 10) | (nxt == 0x0D) | (nxt == 0x22)
        invalid = np.flatnonzero(np.where((k & 1) == 0, ~ok_open, ~ok_close))
        if len(invalid):
            bad = min(bad, int(q[invalid[0]]))
    if data.find(b"\r", pos, pos + region_end) >= 0:
        cr = np.flatnonzero(a[:region_end] == 0x0D)
        lone = cr[a[np.minimum(cr + 1, n - 1)] != 10]
        if len(lone):
            bad = min(bad, int(lone[0]))
    if data.find(b"\x00", pos, pos + region_end) >= 0:
        bad = min(bad, int(np.flatnonzero(a[:region_end] == 0)[0]))
    over = np.flatnonzero(ends - starts > d.limits.line_bytes)
    if len(over):
        bad = min(bad, int(starts[over[0]]))
    # records before the one holding the first problem
    n_ok = int(np.searchsorted(ends, bad)) if bad <= n else len(ends)
    if n_ok:
        try:
            data[pos:pos + int(ends[n_ok - 1])].decode(d.encoding)
        except UnicodeDecodeError as exc:
            n_ok = int(np.searchsorted(ends, exc.start))
    s.n_fast = n_ok
    s.starts, s.ends = starts[:n_ok], ends[:n_ok]
    s.fast_end = min(int(ends[n_ok - 1]) + 1, n) if n_ok else 0
    s.fast_lines = int(term_idx[n_ok - 1]) + 1 if n_ok else 0
    s.start_lines = np.concatenate([[0], term_idx[: n_ok - 1] + 1]) if n_ok else np.empty(0, np.int64)
    s.problem = n_ok < len(ends) or bad <= n or (final and s.fast_end < n)
    if n_ok:
        sp = np.flatnonzero(a[: s.fast_end] == d.sep_byte)
        if has_quotes:
            sp = sp[(np.searchsorted(qp, sp) & 1) == 0]
        s.counts = np.diff(np.concatenate([[0], np.searchsorted(sp, s.ends)])) + 1
    else:
        s.counts = np.empty(0, np.int64)
    return s


# --------------------------------------------------------------------------
# JSON lines and JSON arrays
# --------------------------------------------------------------------------

def _jsonable(v) -> str | None:
    """A JSON value as text, so one column never mixes types across lines."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v)


def _json_batches(path: Path, settings: DataSettings, limits: Limits) -> Iterator[pl.DataFrame]:
    with _Stream(path, settings.encoding) as stream:
        head = stream.read(1 << 16)
        if head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8):]
        if head.lstrip()[:1] == b"[":
            yield from _json_array(path, stream, head, limits)
            return
        yield from _JsonLines(stream, path, limits).batches(head)


class _JsonLines:
    def __init__(self, stream: _Stream, path: Path, limits: Limits):
        self.stream = stream
        self.path = path
        self.limits = limits
        self.rows = 0

    def batches(self, data: bytes) -> Iterator[pl.DataFrame]:
        line = 1
        final = False
        while True:
            if not final:
                chunk = self.stream.read(BLOCK_BYTES)
                final = not chunk
                data = data + chunk if data else chunk
            cut = len(data) if final else data.rfind(b"\n") + 1
            if cut == 0 and not final:
                if len(data) > self.limits.line_bytes:  # one line past the limit: skip it
                    yield self._skip_long(data, line)
                    data, line = self._rest, line + 1
                continue
            block, data = data[:cut], data[cut:]
            frame = self._block(block, line)
            line += block.count(b"\n")
            if frame.height:
                self.rows += frame.height
                yield frame
            if final:
                break
        if self.rows == 0:
            raise DataError("file is empty", file=self.path)

    def _skip_long(self, data: bytes, line: int) -> pl.DataFrame:
        head = data[:RAW_CHARS]
        while True:
            chunk = self.stream.read(BLOCK_BYTES)
            nl = chunk.find(b"\n")
            if not chunk or nl >= 0:
                self._rest = chunk[nl + 1:] if nl >= 0 else b""
                break
        self.rows += 1
        return _frame([None], [], [line], [too_long(self.limits.line_bytes)], [_truncate(head.decode("utf-8", errors="replace"))])

    def _block(self, block: bytes, line: int) -> pl.DataFrame:
        a = np.frombuffer(block, np.uint8)
        nl = np.flatnonzero(a == 10)
        starts = np.concatenate([[0], nl + 1])
        ends = np.concatenate([nl, [len(block)]])
        if ends[-1] == starts[-1]:
            starts, ends = starts[:-1], ends[:-1]
        first = a[np.minimum(starts, max(len(a) - 1, 0))] if len(a) else np.empty(0, np.uint8)
        lengths = ends - starts
        blank = (lengths == 0) | ((lengths == 1) & (first == 0x0D))
        odd = np.isin(first, [0x20, 0x09, 0x0D]) & ~blank
        over = lengths > self.limits.line_bytes
        if not odd.any() and not over.any() and b"\x00" not in block:
            fast = self._fast(block, line + np.flatnonzero(~blank))
            if fast is not None:
                return fast
        return self._slow(block, starts, ends, line)

    def _fast(self, block: bytes, lines: np.ndarray) -> pl.DataFrame | None:
        """The whole block through polars, or None when anything is unusual (then line by line)."""
        try:
            probe = pl.read_ndjson(io.BytesIO(block), infer_schema_length=None)
            if probe.height != len(lines) or any(isinstance(t, (pl.List, pl.Struct, pl.Array, pl.Object)) for t in probe.schema.values()):
                return None
            if any(c.startswith("__") for c in probe.columns):
                return None
            df = pl.read_ndjson(io.BytesIO(block), schema={c: pl.Utf8 for c in probe.columns})
        except MemoryError:
            raise
        except Exception:  # malformed lines, non-objects, odd numbers: read line by line instead
            return None
        if df.height != len(lines):
            return None
        return _with_meta(df, lines)

    def _slow(self, block: bytes, starts: np.ndarray, ends: np.ndarray, line: int) -> pl.DataFrame:
        recs: list[dict] = []
        for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            raw = block[s:e]
            if not raw.strip():
                continue
            row = line + k
            if len(raw) > self.limits.line_bytes:
                recs.append({"__row": row, "__error": too_long(self.limits.line_bytes), "__raw": _truncate(raw.decode("utf-8", "replace"))})
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                recs.append({"__row": row, "__error": undecodable("utf-8"), "__raw": _truncate(raw.decode("utf-8", "replace"))})
                continue
            try:
                rec = json.loads(text)
                if not isinstance(rec, dict) or any(str(key).startswith("__") for key in rec):
                    raise ValueError("not a JSON object")
            except (ValueError, RecursionError):
                recs.append({"__row": row, "__error": MALFORMED_JSON, "__raw": _truncate(text)})
                continue
            recs.append({"__row": row, "__error": None, "__raw": None, **{str(key): _jsonable(v) for key, v in rec.items()}})
        return _records_frame(recs)


def _records_frame(recs: list[dict]) -> pl.DataFrame:
    """A raw batch from dicts (keys become text columns)."""
    if not recs:
        return pl.DataFrame(schema={"__row": pl.Int64, "__error": pl.Utf8, "__raw": pl.Utf8})
    keys: dict[str, None] = {}
    for r in recs:
        keys.update(dict.fromkeys(r))
    cols = [k for k in keys if not k.startswith("__")]
    schema = {**{c: pl.Utf8 for c in cols}, "__row": pl.Int64, "__error": pl.Utf8, "__raw": pl.Utf8}
    return pl.DataFrame({k: [r.get(k) for r in recs] for k in schema}, schema=schema)


def _json_array(path: Path, stream: _Stream, head: bytes, limits: Limits) -> Iterator[pl.DataFrame]:
    """A JSON array of objects, streamed with ijson; a non-object item is a rejected row."""
    import ijson

    stream._limit = limits.json_array_bytes

    class _Chain(io.RawIOBase):
        def __init__(self):
            self.first = head

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            data = self.first or stream.read(len(b))
            self.first = b""
            n = min(len(b), len(data))
            b[:n] = data[:n]
            if n < len(data):
                self.first = data[n:]
            return n

    recs: list[dict] = []
    pos = 0
    try:
        for item in ijson.items(io.BufferedReader(_Chain(), 1 << 16), "item", use_float=True):
            pos += 1
            if isinstance(item, dict) and not any(str(k).startswith("__") for k in item):
                recs.append({"__row": pos, "__error": None, "__raw": None, **{str(k): _jsonable(v) for k, v in item.items()}})
            else:
                recs.append({"__row": pos, "__error": MALFORMED_JSON, "__raw": _truncate(json.dumps(item, default=str))})
            if len(recs) >= 50_000:
                yield _records_frame(recs)
                recs = []
    except (DataError, MemoryError):
        raise
    except Exception as exc:  # ijson's errors for malformed JSON
        raise DataError(f"not valid JSON ({type(exc).__name__} after {pos} item(s))", file=path) from None
    if recs:
        yield _records_frame(recs)
    if pos == 0:
        raise DataError("file is empty", file=path)


# --------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------

def _parquet_batches(path: Path, batch_rows: int = 500_000) -> Iterator[pl.DataFrame]:
    """A Parquet file by record batches; columns keep their types."""
    import pyarrow.parquet as pq

    fh = open_regular(path)
    try:
        try:
            pf = pq.ParquetFile(fh)
        except MemoryError:
            raise
        except Exception as exc:
            raise DataError(f"cannot read Parquet ({type(exc).__name__})", file=path) from None
        pos = 0
        try:
            for batch in pf.iter_batches(batch_size=batch_rows):
                df = pl.from_arrow(batch)
                if any(c.startswith("__") for c in df.columns):
                    raise DataError("column names may not start with '__'", file=path)
                n = df.height
                yield df.with_columns(
                    pl.int_range(pos + 1, pos + n + 1, dtype=pl.Int64).alias("__row"),
                    pl.lit(None, dtype=pl.Utf8).alias("__error"),
                    pl.lit(None, dtype=pl.Utf8).alias("__raw"),
                )
                pos += n
        except (DataError, MemoryError):
            raise
        except Exception as exc:
            raise DataError(f"cannot read Parquet ({type(exc).__name__})", file=path) from None
        if pos == 0:
            raise DataError("file has a header but no rows", file=path)
    finally:
        fh.close()
