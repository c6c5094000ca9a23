"""Period parsing and the previous period."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeylib.errors import DataError
from journeylib.metrics import period_bounds, previous_period

U = dt.timezone.utc


def d(*a):
    return dt.datetime(*a, tzinfo=U)


@pytest.mark.parametrize("period, start, end", [
    ("2025-06", d(2025, 6, 1), d(2025, 7, 1)),
    ("2025-12", d(2025, 12, 1), d(2026, 1, 1)),
    ("2025-Q2", d(2025, 4, 1), d(2025, 7, 1)),
    ("2025-q4", d(2025, 10, 1), d(2026, 1, 1)),
    ("2025-W23", d(2025, 6, 2), d(2025, 6, 9)),
    ("2025", d(2025, 1, 1), d(2026, 1, 1)),
    ("2025-06-01..2025-06-30", d(2025, 6, 1), d(2025, 7, 1)),
])
def test_period_bounds(period, start, end):
    assert period_bounds(period) == (start, end)


def test_relative_periods_are_last_complete():
    end = "2025-06-15T10:00:00+00:00"
    assert period_bounds("month", data_end=end) == (d(2025, 5, 1), d(2025, 6, 1))
    assert period_bounds("quarter", data_end=end) == (d(2025, 1, 1), d(2025, 4, 1))
    assert period_bounds("week", data_end=end) == (d(2025, 6, 2), d(2025, 6, 9))


@pytest.mark.parametrize("bad", ["2025-13", "June", "2025-Q5", "2025-06-30..2025-06-01", "month", ""])
def test_bad_periods(bad):
    with pytest.raises(DataError):
        period_bounds(bad)


def test_previous_period():
    assert previous_period(*period_bounds("2025-03")) == (d(2025, 2, 1), d(2025, 3, 1))
    assert previous_period(*period_bounds("2025-Q1")) == (d(2024, 10, 1), d(2025, 1, 1))
    assert previous_period(*period_bounds("2025-W01")) == (d(2024, 12, 23), d(2024, 12, 30))


@given(y=st.integers(2000, 2100), m=st.integers(1, 12))
def test_months_tile(y, m):
    s, e = period_bounds(f"{y}-{m:02d}")
    ps, pe = previous_period(s, e)
    assert pe == s and ps < s and (ps.day, e.day) == (1, 1)
    assert (e - s).days in (28, 29, 30, 31)
