"""Two-sample Kolmogorov-Smirnov test, equal to ``scipy.stats.ks_2samp`` (two-sided, method "auto").

The statistic is the largest gap between the two empirical CDFs, evaluated
at every value of either sample as scipy does (``searchsorted(..., "right") /
n``, then the difference): the same float expressions, so the same bits. Both
samples are sorted already, so the values are visited in slices of
:data:`CHUNK`: memory stays a few MiB whatever the sample sizes, where
scipy's concatenation and CDF arrays take 32 bytes per value. The p-value uses
scipy's own distributions and its "auto" choice: the exact distribution
when both samples have at most 10,000 values (the statistic then snaps to
h / lcm(n1, n2) as scipy's does), else ``kstwo.sf(d, round(n1*n2/(n1+n2)))``;
an exact computation that fails numerically falls back to the asymptotic one,
as scipy does (without its warning). Drift: p-value below 0.05.
"""

from __future__ import annotations

import math

import numpy as np

from shipyard.monitoring._base import DriftTest, Result
from shipyard.monitoring._column import Column

#: scipy's limit for the exact distribution under method="auto".
MAX_EXACT_N = 10_000
#: Values per slice when evaluating the CDF gaps (1 MiB of float64).
CHUNK = 1 << 17


def statistic(reference: Column, current: Column) -> float:
    ref, cur = reference.values, current.values
    n1, n2 = len(ref), len(cur)
    largest, smallest = -np.inf, np.inf
    for sample in (ref, cur):
        for start in range(0, len(sample), CHUNK):
            at = sample[start : start + CHUNK]
            gaps = np.searchsorted(ref, at, side="right") / n1 - (
                np.searchsorted(cur, at, side="right") / n2
            )
            largest = max(largest, gaps.max())
            smallest = min(smallest, gaps.min())
    return float(max(largest, np.clip(-smallest, 0, 1)))


def p_value(d: float, n1: int, n2: int) -> tuple[float, float]:
    """(statistic, p-value) as ks_2samp reports them for a two-sided test."""
    if max(n1, n2) <= MAX_EXACT_N:
        exact = _exact(d, n1, n2)
        if exact is not None:
            return exact
    from scipy.stats import distributions

    m, n = sorted([float(n1), float(n2)], reverse=True)
    prob = distributions.kstwo.sf(d, np.round(m * n / (m + n)))
    return d, float(np.clip(prob, 0, 1))


def _exact(d: float, n1: int, n2: int) -> tuple[float, float] | None:
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # scipy moved its private helper: fall back to asymptotic
        return None
    g = math.gcd(n1, n2)
    success, d_exact, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
    if not success:
        return None
    return float(d_exact), float(np.clip(prob, 0, 1))


def compute(reference: Column, current: Column) -> Result:
    return p_value(statistic(reference, current), len(reference.values), len(current.values))


TEST = DriftTest(
    name="ks",
    kinds=frozenset({"numeric"}),
    measures="p_value",
    threshold=0.05,
    compute=compute,
    symmetric=True,
    summary="two-sample Kolmogorov-Smirnov; drift when p < 0.05",
)
