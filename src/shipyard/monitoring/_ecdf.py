"""Both samples' empirical CDFs on their merged values: shared by KS and Wasserstein."""

from __future__ import annotations

import numpy as np

from shipyard.monitoring._column import Column


def merged(reference: Column, current: Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The merged sorted values and, at each, how many reference and current values are <= it.

    Both inputs are sorted, so a stable argsort of their concatenation is a
    single O(n) merge (timsort finds the two runs). Within a run of equal
    values the counts are exact only at the run's last position; callers read
    them there (KS) or weight them by the gap to the next value, zero inside a
    run (Wasserstein).
    """
    n1 = len(reference.values)
    both = np.concatenate((reference.values, current.values))
    order = np.argsort(both, kind="stable")
    values = both[order]
    below_1 = np.cumsum(order < n1)
    below_2 = np.arange(1, len(both) + 1) - below_1
    return values, below_1, below_2
