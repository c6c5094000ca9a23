"""Honest statistics for small counts.

* :func:`wilson` — Wilson score interval for a proportion ``x/n``.
* :func:`newcombe_diff` — Newcombe's hybrid score interval for ``p1 - p2``.
* :func:`two_by_two` — Fisher's exact test when any expected count is below 5,
  otherwise Pearson's chi-squared test (no continuity correction).
* :func:`bh_fdr` — Benjamini–Hochberg adjusted p-values (q-values).
* :func:`cohens_h` — effect size between two proportions.
* :func:`mean_ci` — mean with a Student-t interval.
* :func:`median_ci` — distribution-free (binomial order-statistic) interval for a median.
* :func:`nps` — Net Promoter Score with a normal-approximation interval.

>>> lo, hi = wilson(8, 10)
>>> round(lo, 4), round(hi, 4)
(0.4902, 0.9433)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import polars as pl

Z95 = 1.959963984540054


def scipy_stats():
    """``scipy.stats``, imported on first use (it takes most of a second to import).

    >>> round(float(scipy_stats().norm.ppf(0.975)), 2)
    1.96
    """
    from scipy import stats

    return stats


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (two-sided 95 % intervals).

    ``scipy.special.stdtrit`` is the function behind ``scipy.stats.t.ppf``; ``scipy.special``
    imports in a fraction of ``scipy.stats``' time, which keeps ``journey validate`` quick.

    >>> round(t975(9), 4), t975(9) == float(scipy_stats().t.ppf(0.975, 9))
    (2.2622, True)
    """
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.975))


def wilson(x: float, n: float, conf: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval for ``x`` successes in ``n`` trials; ``(None, None)`` if ``n == 0``.

    ``centre ± half`` with ``centre = (p + z²/2n) / (1 + z²/n)`` and
    ``half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)``.

    >>> wilson(0, 0)
    (None, None)
    >>> [round(v, 3) for v in wilson(0, 5)]
    [0.0, 0.434]
    """
    if not n:
        return (None, None)
    z = scipy_stats().norm.ppf(0.5 + conf / 2) if conf != 0.95 else Z95
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if x <= 0 else max(0.0, centre - half)
    hi = 1.0 if x >= n else min(1.0, centre + half)
    return (lo, hi)


def wilson_exprs(x: str | pl.Expr, n: str | pl.Expr, name: str) -> list[pl.Expr]:
    """Polars expressions for ``name = x/n``, ``name_low`` and ``name_high`` (Wilson 95 %).

    Null when ``n`` is 0.

    >>> df = pl.DataFrame({"x": [8], "n": [10]})
    >>> df.select(wilson_exprs("x", "n", "r")).row(0)[0]
    0.8
    """
    x = pl.col(x) if isinstance(x, str) else x
    n = pl.col(n) if isinstance(n, str) else n
    xf, nf = x.cast(pl.Float64), n.cast(pl.Float64)
    z2 = Z95 * Z95
    p = xf / nf
    denom = 1 + z2 / nf
    centre = (p + z2 / (2 * nf)) / denom
    half = Z95 * ((p * (1 - p) / nf + z2 / (4 * nf * nf)).sqrt()) / denom
    ok = nf > 0
    return [
        pl.when(ok).then(p).otherwise(None).alias(name),
        pl.when(ok & (xf <= 0)).then(0.0).when(ok).then((centre - half).clip(0.0, 1.0)).otherwise(None).alias(f"{name}_low"),
        pl.when(ok & (xf >= nf)).then(1.0).when(ok).then((centre + half).clip(0.0, 1.0)).otherwise(None).alias(f"{name}_high"),
    ]


def newcombe_diff(x1: int, n1: int, x2: int, n2: int) -> tuple[float | None, float | None]:
    """Newcombe (1998, method 10) 95 % interval for ``x1/n1 - x2/n2`` from Wilson limits.

    >>> [round(v, 3) for v in newcombe_diff(56, 70, 48, 80)]
    [0.052, 0.334]
    """
    if not n1 or not n2:
        return (None, None)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1)
    l2, u2 = wilson(x2, n2)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, lo), min(1.0, hi))


def two_by_two(x1: int, n1: int, x2: int, n2: int) -> tuple[str, float | None]:
    """Test ``x1/n1`` against ``x2/n2``: ``("fisher"|"chi2", p_value)`` (two-sided).

    Fisher's exact test when any expected cell count is below 5, else Pearson's
    chi-squared without continuity correction. ``p_value`` is ``None`` when a
    group is empty; 1.0 when both rows are all-success or all-failure.

    >>> test, p = two_by_two(1, 10, 40, 50)
    >>> test, round(p, 6)
    ('fisher', 5.1e-05)
    """
    if n1 <= 0 or n2 <= 0:
        return ("fisher", None)
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=float)
    col = table.sum(axis=0)
    if col.min() == 0:
        return ("fisher", 1.0)
    expected = np.outer(table.sum(axis=1), col) / table.sum()
    if expected.min() < 5:
        return ("fisher", float(scipy_stats().fisher_exact(table.astype(int), alternative="two-sided").pvalue))
    res = scipy_stats().chi2_contingency(table, correction=False)
    return ("chi2", float(res.pvalue))


def bh_fdr(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg q-values; ``None`` entries are not part of the family and stay ``None``.

    ``q_(i) = min_{j >= i} (m / j) p_(j)`` over the ``m`` non-missing p-values sorted ascending.

    >>> [round(q, 3) for q in bh_fdr([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    idx = [i for i, p in enumerate(p_values) if p is not None and p == p]
    out: list[float | None] = [None] * len(p_values)
    if not idx:
        return out
    q = scipy_stats().false_discovery_control(np.array([p_values[i] for i in idx], dtype=float), method="bh")
    for i, v in zip(idx, q):
        out[i] = float(v)
    return out


def cohens_h(p1: float | None, p2: float | None) -> float | None:
    """Cohen's h = 2·asin(√p1) − 2·asin(√p2) (0.2 small, 0.5 medium, 0.8 large).

    >>> round(cohens_h(0.5, 0.2), 3)
    0.644
    """
    if p1 is None or p2 is None:
        return None
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def mean_ci(n: int, mean: float | None, sd: float | None) -> tuple[float | None, float | None]:
    """Student-t 95 % interval for a mean from ``n``, ``mean`` and sample ``sd``; ``None`` if ``n < 2``.

    >>> [round(v, 3) for v in mean_ci(10, 1.0, 1.0)]
    [0.285, 1.715]
    """
    if n is None or n < 2 or mean is None or sd is None or sd != sd:
        return (None, None)
    half = t975(n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def median_ci(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """``(median, low, high)``: distribution-free 95 % interval from order statistics.

    The interval is ``[x_(j), x_(k)]`` with ``j, k`` the binomial(n, ½)
    quantiles; it covers the median with probability ≥ 95 %. Needs ``n >= 6``
    for a finite interval (otherwise low/high are ``None``).

    >>> median_ci([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    (5.5, 2.0, 9.0)
    """
    xs = sorted(v for v in values if v is not None and v == v)
    n = len(xs)
    if n == 0:
        return (None, None, None)
    med = float(np.median(xs))
    j = int(scipy_stats().binom.ppf(0.025, n, 0.5))  # number of values below the lower limit
    k = n - j
    if j < 1 or n < 6:
        return (med, None, None)
    return (med, float(xs[j - 1]), float(xs[k]))


def nps(values: Sequence[float]) -> tuple[float | None, float | None, float | None, int]:
    """``(nps, low, high, n)`` for ratings on 0..10: % promoters (9-10) − % detractors (0-6).

    Interval: normal approximation with ``var = (P + D − (P − D)²)/n``.

    >>> nps([10, 9, 8, 3])[0]
    25.0
    """
    xs = [v for v in values if v is not None and 0 <= v <= 10]
    n = len(xs)
    if n == 0:
        return (None, None, None, 0)
    P = sum(v >= 9 for v in xs) / n
    D = sum(v <= 6 for v in xs) / n
    score = P - D
    var = (P + D - score * score) / n
    half = Z95 * math.sqrt(max(var, 0.0))
    return (100 * score, 100 * max(-1.0, score - half), 100 * min(1.0, score + half), n)
