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
from shipyard.monitoring._tally import Tally

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


def tallied_statistic(reference: Column, current: Tally) -> float:
    """:func:`statistic` of a tallied current column: the same float (see ``_tally``).

    The gaps are taken at each reference value and, for each bucket between
    two that holds current values, at its last current value (where F_cur has
    risen most while F_ref is flat): every other point's gap lies between these.
    """
    n1, n2 = len(reference.values), current.count
    ref_at = current.reference_at_or_below
    largest, smallest = -np.inf, np.inf
    for lo, hi, cur_at in current.at_or_below():
        ref_before = np.concatenate(([ref_at[lo - 1] if lo else 0], ref_at[lo : hi - 1]))
        occupied = current.between[lo:hi] > 0
        for gaps in (
            ref_at[lo:hi] / n1 - cur_at / n2,
            (ref_before / n1 - (cur_at - current.at[lo:hi]) / n2)[occupied],
        ):
            if len(gaps):
                largest, smallest = max(largest, gaps.max()), min(smallest, gaps.min())
    return float(max(largest, np.clip(-smallest, 0, 1)))


def p_value(d: float, n1: int, n2: int) -> tuple[float, float]:
    """(statistic, p-value) as ks_2samp reports them for a two-sided test."""
    if max(n1, n2) <= MAX_EXACT_N:
        d, exact = _exact(d, n1, n2)
        if exact is not None:
            return d, exact
    from scipy.stats import distributions

    m, n = sorted([float(n1), float(n2)], reverse=True)
    prob = distributions.kstwo.sf(d, np.round(m * n / (m + n)))
    return d, float(np.clip(prob, 0, 1))


def _exact(d: float, n1: int, n2: int) -> tuple[float, float | None]:
    """The statistic snapped to the exact grid, and the exact p-value (None if it failed,
    when scipy keeps the snapped statistic for its asymptotic p-value)."""
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # scipy moved its private helper: fall back to asymptotic
        return d, None
    g = math.gcd(n1, n2)
    success, d_exact, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
    return float(d_exact), (float(np.clip(prob, 0, 1)) if success else None)


def compute(reference: Column, current: Column) -> Result:
    return p_value(statistic(reference, current), len(reference.values), len(current.values))


def compute_tallied(reference: Column, current: Tally) -> Result:
    return p_value(tallied_statistic(reference, current), len(reference.values), current.count)


TEST = DriftTest(
    name="ks",
    kinds=frozenset({"numeric"}),
    measures="p_value",
    threshold=0.05,
    compute=compute,
    compute_tallied=compute_tallied,
    symmetric=True,
    summary="two-sample Kolmogorov-Smirnov; drift when p < 0.05",
)
