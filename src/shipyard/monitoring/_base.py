"""What a drift test is: a named function of a reference column and a current column.

A test module defines one :class:`DriftTest` named ``TEST`` and is registered
by name in :mod:`shipyard.monitoring._registry`. Every registered test passes
the contract suite in ``tests/unit/monitoring/test_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.monitoring._column import Column
from shipyard.monitoring._tally import Tally

__all__ = ["MIN_DISTANCE_VALUES", "DriftTest", "Result"]

#: A distance from fewer values than this (on either side) says more about the
#: sample than about drift: the column gets status "too_few_rows". Statistical
#: tests (KS, chi-square) take their sample sizes into account and need one value.
MIN_DISTANCE_VALUES = 30

#: (statistic, p-value or None)
Result = tuple[float, float | None]


@dataclass(frozen=True)
class DriftTest:
    """A drift test.

    ``measures``: "p_value" (drift when the p-value is below ``threshold``) or
    "distance" (drift when the statistic is at or above ``threshold``).
    ``compute`` gets two columns of a kind in ``kinds``, each with at least
    ``min_values`` usable values, and returns a finite, non-negative statistic.
    ``symmetric``: swapping the samples never changes the result (true of KS
    and chi-square; binned and normed tests take their bins or scale from
    the reference, though on categories PSI and Jensen-Shannon are symmetric too).
    """

    name: str
    kinds: frozenset[str]
    measures: str
    threshold: float
    compute: Callable[[Column, Column], Result]
    summary: str
    min_values: int = 1
    symmetric: bool = False
    #: The test on a numeric current column tallied against the reference (see
    #: ``_tally``); None: huge windows are read whole for this test.
    compute_tallied: Callable[[Column, Tally], Result] | None = None

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.measures == "p_value":
            return p_value is not None and p_value < threshold
        return statistic >= threshold
