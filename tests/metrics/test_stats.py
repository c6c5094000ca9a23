"""Statistics against independent implementations (scipy) and published values."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from journeylib.metrics import stats as S

from . import reference as ref


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 500), data=st.data())
def test_wilson_matches_scipy(n, data):
    x = data.draw(st.integers(0, n))
    ci = sst.binomtest(x, n).proportion_ci(method="wilson")
    lo, hi = S.wilson(x, n)
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)
    assert lo <= x / n <= hi
    df = pl.DataFrame({"x": [x], "n": [n]}).select(S.wilson_exprs("x", "n", "r"))
    assert df["r_low"][0] == pytest.approx(ci.low, abs=1e-9) and df["r_high"][0] == pytest.approx(ci.high, abs=1e-9)


def test_wilson_empty():
    assert S.wilson(0, 0) == (None, None)
    df = pl.DataFrame({"x": [0], "n": [0]}).select(S.wilson_exprs("x", "n", "r"))
    assert df.row(0) == (None, None, None)


def test_newcombe_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II example (56/70 vs 48/80): 0.0524 to 0.3339
    lo, hi = S.newcombe_diff(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)


@settings(max_examples=150, deadline=None)
@given(n1=st.integers(1, 80), n2=st.integers(1, 80), data=st.data())
def test_two_by_two_matches_reference(n1, n2, data):
    x1, x2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    test, p = S.two_by_two(x1, n1, x2, n2)
    rtest, rp = ref.two_by_two(x1, n1, x2, n2)
    assert test == rtest and p == pytest.approx(rp, rel=1e-9, abs=1e-12)
    assert 0 <= p <= 1


@settings(max_examples=150, deadline=None)
@given(ps=st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=40))
def test_bh_matches_step_up_loop(ps):
    got = S.bh_fdr(ps)
    want = ref.bh(ps)
    for g, w, p in zip(got, want, ps):
        if p is None:
            assert g is None
        else:
            assert g == pytest.approx(w, abs=1e-12) and g >= p - 1e-12


def test_cohens_h():
    assert S.cohens_h(0.5, 0.5) == 0
    assert S.cohens_h(1.0, 0.0) == pytest.approx(math.pi)
    assert S.cohens_h(None, 0.2) is None


def test_mean_ci_matches_scipy():
    xs = [1.0, 2.0, 4.0, 7.0, 11.0]
    m, lo, hi = ref.t_mean(xs)
    got = S.mean_ci(len(xs), sum(xs) / 5, sst.tstd(xs))
    assert got[0] == pytest.approx(lo) and got[1] == pytest.approx(hi)
    assert S.mean_ci(1, 1.0, 0.0) == (None, None)


def test_median_ci_covers_the_median():
    med, lo, hi = S.median_ci(list(range(1, 101)))
    assert med == 50.5 and lo < 50.5 < hi
    assert S.median_ci([])[0] is None


def test_nps():
    v, lo, hi, n = S.nps([10, 9, 8, 3])
    assert (v, n) == (25.0, 4) and lo < 25 < hi
    assert S.nps([])[0] is None
