"""Shared bins for the binned tests (PSI, Jensen-Shannon): proportions of both columns.

Numeric columns are cut at the reference's distinct min, deciles and max
(``(-inf, min)``, ``[min, min]``, ``(min, q10]``, ..., ``(q90, max]``, ``(max, inf)``),
so values outside the reference's range fall in bins of their own.
Categorical columns use every category seen in either column: a category
only the current window has is a bin whose reference share is 0.
"""

from __future__ import annotations

import numpy as np

from shipyard.monitoring._column import Column, bin_counts
from shipyard.monitoring._tally import Tally


def proportions(reference: Column, current: Column | Tally) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(current, Tally):  # tallied over the reference's bins already
        ref_counts, cur_counts = reference.binned, current.bins
    elif reference.kind == "numeric":
        ref_counts = reference.binned
        cur_counts = bin_counts(current.values, reference.edges)
    else:
        categories = tuple(sorted(set(reference.categories) | set(current.categories)))
        ref_counts = reference.category_counts(categories)
        cur_counts = current.category_counts(categories)
    return ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1)
