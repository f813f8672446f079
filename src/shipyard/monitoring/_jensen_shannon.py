"""Jensen-Shannon distance (base 2, so in [0, 1]) on shared bins (see ``_binned``).

The square root of the Jensen-Shannon divergence between the bins' shares
(``scipy.spatial.distance.jensenshannon(p, q, base=2)``); empty bins need no
epsilon (0 * log 0 = 0). Drift: distance >= 0.1.
"""

from __future__ import annotations

import math

import numpy as np

from shipyard.monitoring._base import MIN_DISTANCE_VALUES, DriftTest, Result
from shipyard.monitoring._binned import proportions
from shipyard.monitoring._column import Column
from shipyard.monitoring._tally import Tally


def _kl_to_mid(p: np.ndarray, m: np.ndarray) -> float:
    present = p > 0
    return float(np.sum(p[present] * np.log2(p[present] / m[present])))


def compute(reference: Column, current: Column | Tally) -> Result:
    p, q = proportions(reference, current)
    m = (p + q) / 2
    divergence = (_kl_to_mid(p, m) + _kl_to_mid(q, m)) / 2
    return math.sqrt(min(max(divergence, 0.0), 1.0)), None


TEST = DriftTest(
    name="jensen_shannon",
    kinds=frozenset({"numeric", "categorical"}),
    measures="distance",
    threshold=0.1,
    compute=compute,
    compute_tallied=compute,
    min_values=MIN_DISTANCE_VALUES,
    summary="Jensen-Shannon distance (base 2) on shared bins; drift when >= 0.1",
)
