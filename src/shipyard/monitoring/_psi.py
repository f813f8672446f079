"""Population Stability Index on shared bins (see ``_binned``).

PSI = sum over bins of (cur - ref) * ln(cur / ref), on the bins' shares. A
share of 0 (an empty bin, an unseen category) is raised to EPSILON = 1e-4
first, as Evidently does, so the index stays finite. Drift: PSI >= 0.1 (the
usual reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift).
"""

from __future__ import annotations

import numpy as np

from shipyard.monitoring._base import MIN_DISTANCE_VALUES, DriftTest, Result
from shipyard.monitoring._binned import proportions
from shipyard.monitoring._column import Column
from shipyard.monitoring._tally import Tally

EPSILON = 1e-4


def compute(reference: Column, current: Column | Tally) -> Result:
    ref, cur = proportions(reference, current)
    ref, cur = np.maximum(ref, EPSILON), np.maximum(cur, EPSILON)
    return max(float(np.sum((cur - ref) * np.log(cur / ref))), 0.0), None


TEST = DriftTest(
    name="psi",
    kinds=frozenset({"numeric", "categorical"}),
    measures="distance",
    threshold=0.1,
    compute=compute,
    compute_tallied=compute,
    min_values=MIN_DISTANCE_VALUES,
    summary="population stability index on reference deciles / categories; drift when >= 0.1",
)
