"""Wasserstein-1 distance divided by the reference's standard deviation.

The distance is exact: the integral of |F_ref - F_cur| over the merged sorted
values (what ``scipy.stats.wasserstein_distance`` computes), or, when the two
sizes share a small common multiple (equal sizes above all), the mean gap
between the samples' sorted values paired on that common grid: the same
number by the quantile form of W1, without a merge. It is divided by
the reference's population standard deviation (ddof=0, as Evidently's
"normed Wasserstein" does), so 0.1 means "the mass moved a tenth of a
standard deviation on average". A constant reference has no spread: the
divisor is then the standard deviation of both samples pooled, which is zero
only when both are the same constant (distance 0). Drift: distance >= 0.1.
"""

from __future__ import annotations

import math

import numpy as np

from shipyard.monitoring._base import MIN_DISTANCE_VALUES, DriftTest, Result
from shipyard.monitoring._column import Column
from shipyard.monitoring._ecdf import merged
from shipyard.monitoring._tally import Tally

#: Pair sorted values directly (no merge) while the common grid has at most this
#: many points per value of both samples.
_PAIRING_LIMIT = 4


def distance(reference: Column, current: Column) -> float:
    """The plain (un-normed) Wasserstein-1 distance."""
    n1, n2 = len(reference.values), len(current.values)
    grid = math.lcm(n1, n2)
    if grid <= _PAIRING_LIMIT * (n1 + n2):
        # W1 is also the integral of |Q_ref(u) - Q_cur(u)| over u in (0, 1): on the
        # grid of lcm(n1, n2) steps both quantile functions are sorted values
        # repeated, so equal sizes (the common case) cost one pass and no merge.
        r = reference.values if grid == n1 else np.repeat(reference.values, grid // n1)
        c = current.values if grid == n2 else np.repeat(current.values, grid // n2)
        return float(np.abs(r - c).sum() / grid)
    values, below_1, below_2 = merged(reference, current)
    gaps = np.abs(below_1[:-1] / n1 - below_2[:-1] / n2)
    return float(np.dot(gaps, np.diff(values)))


def tallied_distance(current: Tally) -> float:
    """:func:`distance` of a tallied current column (exact but where the CDFs cross in a bucket)."""
    n1, n2 = current.reference_at_or_below[-1], current.count
    k = len(current.grid)
    # Below the reference's minimum F_ref is 0, above its maximum 1: exact tails.
    total = float((current.gap_sum[0] + current.gap_sum[-1]) / n2)
    for lo, hi, cur_at in current.at_or_below():
        top = min(hi, k - 1)  # the bucket [grid[j], grid[j+1]) for j in lo..top-1
        if top <= lo:
            continue
        ref_cdf = current.reference_at_or_below[lo:top] / n1
        start = cur_at[: top - lo] / n2  # F_cur at grid[j]
        end = (cur_at[: top - lo] + current.between[lo + 1 : top + 1]) / n2  # just below grid[j+1]
        width = current.grid[lo + 1 : top + 1] - current.grid[lo:top]
        cur_area = start * width + current.gap_sum[lo + 1 : top + 1] / n2  # the integral of F_cur
        crossing = (start < ref_cdf) & (ref_cdf < end)
        rise = np.where(crossing, end - start, 1.0)
        linear = width * ((ref_cdf - start) ** 2 + (end - ref_cdf) ** 2) / (2 * rise)
        total += float(np.where(crossing, linear, np.abs(cur_area - ref_cdf * width)).sum())
    return total


def spread(reference: Column, current: Column | Tally) -> float:
    if reference.std > 0:
        return reference.std
    n1 = len(reference.values)
    c = float(reference.values[0])
    if isinstance(current, Tally):
        n2, mean_2, var_2 = current.count, current.mean, current.var
    else:
        values = current.values
        n2, mean_2, var_2 = len(values), float(values.mean()), float(values.var())
    pooled = (n2 * var_2 + n1 * n2 / (n1 + n2) * (c - mean_2) ** 2) / (n1 + n2)
    return math.sqrt(max(pooled, 0.0))


def compute(reference: Column, current: Column) -> Result:
    return _normed(distance(reference, current), spread(reference, current))


def compute_tallied(reference: Column, current: Tally) -> Result:
    return _normed(tallied_distance(current), spread(reference, current))


def _normed(d: float, scale: float) -> Result:
    return (d / scale if scale > 0 else 0.0), None


TEST = DriftTest(
    name="wasserstein",
    kinds=frozenset({"numeric"}),
    measures="distance",
    threshold=0.1,
    compute=compute,
    compute_tallied=compute_tallied,
    min_values=MIN_DISTANCE_VALUES,
    summary="Wasserstein-1 distance / reference std; drift when >= 0.1",
)
