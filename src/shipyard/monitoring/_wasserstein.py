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


def spread(reference: Column, current: Column) -> float:
    if reference.std > 0:
        return reference.std
    n1, n2 = len(reference.values), len(current.values)
    c = float(reference.values[0])
    mean_2, var_2 = float(current.values.mean()), float(current.values.var())
    pooled = (n2 * var_2 + n1 * n2 / (n1 + n2) * (c - mean_2) ** 2) / (n1 + n2)
    return math.sqrt(max(pooled, 0.0))


def compute(reference: Column, current: Column) -> Result:
    d = distance(reference, current)
    scale = spread(reference, current)
    return (d / scale if scale > 0 else 0.0), None


TEST = DriftTest(
    name="wasserstein",
    kinds=frozenset({"numeric"}),
    measures="distance",
    threshold=0.1,
    compute=compute,
    min_values=MIN_DISTANCE_VALUES,
    summary="Wasserstein-1 distance / reference std; drift when >= 0.1",
)
