"""Reporting periods: parse a period name into ``[start, end)`` UTC bounds.

>>> period_bounds("2025-06")
(datetime.datetime(2025, 6, 1, 0, 0, tzinfo=datetime.timezone.utc), datetime.datetime(2025, 7, 1, 0, 0, tzinfo=datetime.timezone.utc))
>>> [d.date().isoformat() for d in previous_period(*period_bounds("2025-Q2"))]
['2025-01-01', '2025-04-01']
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ..errors import DataError
from .engine import as_utc

UTC = dt.timezone.utc
PERIOD_HELP = "YYYY-MM, YYYY-Qn, YYYY-Wnn (ISO week), YYYY, START..END (dates, END inclusive), or month/quarter/week"


def _d(y: int, m: int, d: int = 1) -> dt.datetime:
    return dt.datetime(y, m, d, tzinfo=UTC)


def _add_months(t: dt.datetime, months: int) -> dt.datetime:
    m0 = t.year * 12 + (t.month - 1) + months
    return _d(m0 // 12, m0 % 12 + 1, 1)


def period_bounds(period: str, *, data_end: Any = None) -> tuple[dt.datetime, dt.datetime]:
    """``(start, end)`` of a period as UTC datetimes; ``end`` is exclusive.

    * ``"2025-06"`` – the month; ``"2025-Q2"`` – the quarter; ``"2025-W23"`` – the
      ISO week (Monday..Sunday); ``"2025"`` – the year;
    * ``"2025-06-01..2025-06-30"`` – from the first date to the end of the last
      date (both inclusive);
    * ``"month"``, ``"quarter"``, ``"week"`` – the last *complete* one before
      ``data_end`` (required for these).

    Raises :class:`~journeylib.errors.DataError` for anything else.

    >>> [d.date().isoformat() for d in period_bounds("2025-W23")]
    ['2025-06-02', '2025-06-09']
    >>> [d.date().isoformat() for d in period_bounds("month", data_end="2025-06-15T10:00:00+00:00")]
    ['2025-05-01', '2025-06-01']
    """
    p = str(period).strip()
    try:
        if p in ("month", "quarter", "week"):
            if data_end is None:
                raise DataError(f"period '{p}' needs data_end (the last complete {p} before it)")
            end = as_utc(data_end)
            if p == "month":
                hi = _d(end.year, end.month)
                return _add_months(hi, -1), hi
            if p == "quarter":
                hi = _d(end.year, 3 * ((end.month - 1) // 3) + 1)
                return _add_months(hi, -3), hi
            day = dt.datetime(end.year, end.month, end.day, tzinfo=UTC)
            hi = day - dt.timedelta(days=day.weekday())
            return hi - dt.timedelta(days=7), hi
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})", p):
            y, mo = int(m[1]), int(m[2])
            start = _d(y, mo)
            return start, _add_months(start, 1)
        if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", p):
            start = _d(int(m[1]), 3 * (int(m[2]) - 1) + 1)
            return start, _add_months(start, 3)
        if m := re.fullmatch(r"(\d{4})-[Ww](\d{1,2})", p):
            d = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
            start = _d(d.year, d.month, d.day)
            return start, start + dt.timedelta(days=7)
        if m := re.fullmatch(r"(\d{4})", p):
            return _d(int(m[1]), 1), _d(int(m[1]) + 1, 1)
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", p):
            a, b = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if b < a:
                raise DataError(f"period '{p}' ends before it starts")
            return _d(a.year, a.month, a.day), _d(b.year, b.month, b.day) + dt.timedelta(days=1)
    except ValueError as exc:
        raise DataError(f"invalid period '{p}': {exc}") from None
    raise DataError(f"invalid period '{p}'; use {PERIOD_HELP}")


def previous_period(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The period of the same kind just before ``[start, end)``.

    Whole calendar months (and quarters, years) step back by the same number
    of months; anything else steps back by the same duration.

    >>> [d.date().isoformat() for d in previous_period(*period_bounds("2025-03"))]
    ['2025-02-01', '2025-03-01']
    >>> [d.date().isoformat() for d in previous_period(*period_bounds("2025-W23"))]
    ['2025-05-26', '2025-06-02']
    """
    start, end = as_utc(start), as_utc(end)
    whole = lambda t: t.day == 1 and t.hour == t.minute == t.second == t.microsecond == 0  # noqa: E731
    if whole(start) and whole(end):
        months = (end.year - start.year) * 12 + (end.month - start.month)
        if months > 0:
            return _add_months(start, -months), start
    return start - (end - start), start


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def period_label(start: dt.datetime, end: dt.datetime) -> str:
    """A period in words: ``September 2025``, ``2025 Q3``, ``week 23 of 2025``, ``2025`` or a date range.

    >>> period_label(*period_bounds("2025-09")), period_label(*period_bounds("2025-Q3"))
    ('September 2025', '2025 Q3')
    >>> period_label(*period_bounds("2025-W23")), period_label(*period_bounds("2025-06-03..2025-06-05"))
    ('week 23 of 2025', '3–5 June 2025')
    """
    start, end = as_utc(start), as_utc(end)
    whole = start.day == 1 and start.hour == start.minute == start.second == 0 and end.day == 1
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if whole and months == 1:
        return f"{_MONTHS[start.month - 1]} {start.year}"
    if whole and months == 3 and start.month % 3 == 1:
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    if whole and months == 12 and start.month == 1:
        return str(start.year)
    if end - start == dt.timedelta(days=7) and start.weekday() == 0:
        y, w, _ = start.date().isocalendar()
        return f"week {w} of {y}"
    last = (end - dt.timedelta(microseconds=1)).date()
    a = start.date()
    if a.year == last.year and a.month == last.month:
        return f"{a.day}–{last.day} {_MONTHS[a.month - 1]} {a.year}" if a != last else f"{a.day} {_MONTHS[a.month - 1]} {a.year}"
    return f"{a.day} {_MONTHS[a.month - 1]} {a.year} – {last.day} {_MONTHS[last.month - 1]} {last.year}"


def default_period(arrivals: Any, *, data_end: Any, horizon_days: float, kind: str = "month") -> str | None:
    """The last complete ``kind`` (month, quarter, week) before ``data_end`` that holds
    arrivals and whose follow-up horizon has elapsed (``end + horizon <= data_end``),
    as a period name; None when there is none.

    ``arrivals`` is a sequence of arrival (or event) times, or a polars Series.

    >>> import datetime as dt
    >>> t = lambda m, d: dt.datetime(2025, m, d, tzinfo=UTC)
    >>> default_period([t(5, 3), t(8, 20)], data_end=t(10, 5), horizon_days=30)
    '2025-08'
    >>> default_period([t(5, 3), t(8, 20)], data_end=t(9, 15), horizon_days=30)
    '2025-05'
    """
    times = sorted(as_utc(t) for t in (arrivals.to_list() if hasattr(arrivals, "to_list") else arrivals) if t is not None)
    if not times:
        return None
    end = as_utc(data_end)
    lo, hi = period_bounds(kind, data_end=end)
    h = dt.timedelta(days=float(horizon_days))
    import bisect

    while hi > times[0]:
        i = bisect.bisect_left(times, lo)
        if hi + h <= end and i < len(times) and times[i] < hi:
            return _name(kind, lo)
        lo, hi = previous_period(lo, hi)
    return None


def _name(kind: str, start: dt.datetime) -> str:
    if kind == "month":
        return f"{start.year}-{start.month:02d}"
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    y, w, _ = start.date().isocalendar()
    return f"{y}-W{w:02d}"
