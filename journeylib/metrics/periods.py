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
