"""Chi-square test of homogeneity between the reference's and the window's category counts.

The two columns form a 2 x k table over every category seen in either (a
category seen in neither is left out), and the statistic is Pearson's
chi-square against the pooled shares, with k - 1 degrees of freedom and no
continuity correction (``scipy.stats.chi2_contingency(table, correction=False)``
for k > 2 gives the same). An unseen category (in the window, not the
reference) is one more column of the table, with an expected count from the
pooled share, so it is counted as evidence of drift rather than dividing by
zero. One category in both: statistic 0, p-value 1. Drift: p-value below 0.05.
"""

from __future__ import annotations

import numpy as np

from shipyard.monitoring._base import DriftTest, Result
from shipyard.monitoring._column import Column


def compute(reference: Column, current: Column) -> Result:
    from scipy.stats import chi2

    categories = tuple(sorted(set(reference.categories) | set(current.categories)))
    observed = np.vstack(
        [reference.category_counts(categories), current.category_counts(categories)]
    ).astype(np.float64)
    observed = observed[:, observed.sum(axis=0) > 0]
    if observed.shape[1] < 2:
        return 0.0, 1.0
    totals = observed.sum(axis=1, keepdims=True)
    expected = totals * observed.sum(axis=0, keepdims=True) / totals.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, observed.shape[1] - 1))


TEST = DriftTest(
    name="chi_square",
    kinds=frozenset({"categorical"}),
    measures="p_value",
    threshold=0.05,
    compute=compute,
    symmetric=True,
    summary="chi-square test of homogeneity over categories; drift when p < 0.05",
)
