"""A current window too large to hold, summarized batch by batch against the reference.

Above :data:`TALLY_ROWS` rows, a numeric current column is not collected and
sorted (8 bytes a row, and a sort's copy); it is read in Arrow batches of
:data:`BATCH_ROWS` and *tallied* against the reference column's distinct
values ``u_0 < ... < u_{k-1}``: how many current values equal each ``u_j``,
how many fall strictly between ``u_{j-1}`` and ``u_j`` (below ``u_0`` and above
``u_{k-1}`` included) and their summed distance to the bucket's upper end.
Memory is O(k): about 24 bytes per distinct reference value, whatever the
window's size. What each test reads from a tally:

- ``ks``: both empirical CDFs are known exactly at every reference value and
  just below it, which is where the largest gap lies (between two reference
  values F_ref is flat and F_cur only rises), so the statistic is the same
  float ``scipy.stats.ks_2samp`` returns, and so is its p-value.
- ``wasserstein``: the integral of |F_ref - F_cur| per bucket is exact where
  the two CDFs do not cross inside the bucket (F_cur's integral over a bucket
  follows from its count and summed distances); where they cross, F_cur is
  taken as linear across the bucket, an error of at most half the bucket's
  width times F_cur's rise inside it.
- ``psi``, ``jensen_shannon``: counts over the reference's decile bins, exact.

A categorical current column needs no tally: its category counts are merged
batch by batch into an ordinary :class:`Column`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shipyard.monitoring._column import Column, bin_counts, from_arrow

__all__ = ["BATCH_ROWS", "SLICE", "TALLY_ROWS", "Tally", "tally_categories", "tally_numbers"]

#: Current windows with more rows than this are read in batches and tallied.
TALLY_ROWS = 2_000_000
#: Rows per batch read from the current window (a batch's working arrays: ~10 MiB).
BATCH_ROWS = 1 << 18
#: Reference values per slice when a test reads a tally (a slice's arrays: a few MiB).
SLICE = 1 << 17


@dataclass(frozen=True, eq=False)
class Tally:
    """A numeric current column, tallied against ``grid`` (see the module docstring).

    ``at[j]``: values equal to ``grid[j]``; ``between[j]``: values in
    ``(grid[j-1], grid[j])``, with ``between[0]`` below ``grid[0]`` and
    ``between[k]`` above ``grid[k-1]``; ``gap_sum[j]``: the sum of
    ``grid[j] - x`` over those values (of ``x - grid[k-1]`` for ``j = k``);
    ``bins``: counts over the reference's decile bins (``Column.edges``).
    """

    count: int  # usable values
    grid: np.ndarray
    reference_at_or_below: np.ndarray  # reference values <= grid[j]
    at: np.ndarray
    between: np.ndarray
    gap_sum: np.ndarray
    bins: np.ndarray
    mean: float
    var: float

    def at_or_below(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(lo, hi, current values <= grid[j] for j in lo..hi-1)``, :data:`SLICE` j at a time,
        so that a test's arrays over the grid stay a few MiB however fine the reference."""
        carry = 0
        for lo in range(0, len(self.grid), SLICE):
            hi = min(lo + SLICE, len(self.grid))
            below = carry + np.cumsum(self.between[lo:hi] + self.at[lo:hi])
            carry = int(below[-1])
            yield lo, hi, below


def tally_numbers(reference: Column, batches: Iterable[pa.Array]) -> Tally:
    """Tally a numeric current column, given in ``batches``, against ``reference`` (non-empty)."""
    starts = _run_starts(reference.values)  # sorted: its distinct values start where it changes
    grid = reference.values[starts]
    k = len(grid)
    reference_at_or_below = np.append(starts[1:], len(reference.values)).astype(np.int64)
    edges = reference.edges
    at = np.zeros(k, np.int64)
    between = np.zeros(k + 1, np.int64)
    gap_sum = np.zeros(k + 1, np.float64)
    bins = np.zeros(len(edges) + 2, np.int64)
    count = 0
    mean = m2 = 0.0
    for batch in batches:
        # Sorted, the batch is searched in order: 8x faster than in random order on a
        # large grid (each search starts near the last), and its bins are two searches.
        x = from_arrow("batch", batch, "numeric").values
        if not len(x):
            continue
        position = np.searchsorted(grid, x, side="left")  # grid[p-1] < x <= grid[p]
        gaps = grid[np.minimum(position, k - 1)] - x  # 0 where x is a grid value
        above = int(np.searchsorted(position, k))  # sorted: values above the grid come last
        gaps[above:] *= -1
        # Positions are sorted too: sum over their runs, O(batch) rather than O(grid).
        runs = _run_starts(position)
        bucket = position[runs]
        sizes = np.diff(np.append(runs, len(x)))
        equal = np.add.reduceat((gaps == 0).astype(np.int64), runs)
        at[bucket[bucket < k]] += equal[bucket < k]
        between[bucket] += sizes - equal
        gap_sum[bucket] += np.add.reduceat(gaps, runs)
        bins += bin_counts(x, edges)
        # Chan et al.'s pairwise update of the mean and the sum of squared deviations.
        n, batch_mean = len(x), float(x.mean())
        batch_m2 = float(np.square(x - batch_mean).sum())
        delta, total = batch_mean - mean, count + n
        mean += delta * n / total
        m2 += batch_m2 + delta * delta * count * n / total
        count = total
    return Tally(
        count=count,
        grid=grid,
        reference_at_or_below=reference_at_or_below,
        at=at,
        between=between,
        gap_sum=gap_sum,
        bins=bins,
        mean=mean,
        var=m2 / count if count else 0.0,
    )


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Where each run of equal values of the sorted (non-empty) ``ordered`` starts."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


def tally_categories(batches: Iterable[pa.Array], *, name: str, arrow_type: str) -> Column:
    """A categorical current column from its ``batches``: category counts merged batch by batch."""
    merged: dict[str, int] = {}
    rows = 0
    for batch in batches:
        rows += len(batch)
        part = from_arrow(name, batch, "categorical")
        for category, n in zip(part.categories, part.counts.tolist(), strict=True):
            merged[category] = merged.get(category, 0) + n
    categories = tuple(sorted(merged))
    counts = np.array([merged[c] for c in categories], dtype=np.int64)
    return Column(
        name,
        "categorical",
        arrow_type,
        rows,
        rows - int(counts.sum()),
        np.empty(0),
        categories,
        counts,
    )
