"""One column's values in the form every drift test reads: sorted numbers or category counts.

A :class:`Column` is built from an Arrow array once. Numeric columns keep
their finite values as a sorted float64 array (null, NaN and +-inf are
counted in ``nulls`` and left out); categorical columns keep each category
with its count. The reference and the current window use the same class, so
a test is a function of two columns.

Kinds
-----
numeric      integers, floats, decimals (through a float64 cast)
categorical  strings (also views and dictionaries of them) and booleans
             ("true" / "false")
None         anything else (dates, timestamps, binary, nested): not tested
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["QUANTILE_BINS", "WORKERS", "Column", "column_kind", "from_arrow", "parallel_map"]

Kind = Literal["numeric", "categorical"]

#: Columns read and compared at once, each in a thread (numpy and Arrow release the
#: GIL while they sort and convert); memory holds about this many current columns.
WORKERS = max(1, min(4, os.cpu_count() or 1))

#: Numeric binned tests (PSI, Jensen-Shannon) cut at the reference's deciles.
QUANTILE_BINS = 10


def column_kind(arrow_type: pa.DataType) -> Kind | None:
    t = pa.types
    if t.is_dictionary(arrow_type):
        return column_kind(arrow_type.value_type)
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "numeric"
    if (
        t.is_boolean(arrow_type)
        or t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or t.is_string_view(arrow_type)
    ):
        return "categorical"
    return None


@dataclass(frozen=True, eq=False)
class Column:
    """The usable values of one column; see the module docstring."""

    name: str
    kind: Kind
    type: str  # the Arrow type, as text
    rows: int  # rows of the table the column came from
    nulls: int  # rows without a usable value: null, and for numbers NaN or +-inf
    values: np.ndarray  # numeric: finite float64, sorted; categorical: empty
    categories: tuple[str, ...] = ()  # categorical: sorted
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def count(self) -> int:
        """How many usable values there are."""
        return len(self.values) if self.kind == "numeric" else int(self.counts.sum())

    @cached_property
    def constant(self) -> bool:
        """At most one distinct usable value."""
        if self.kind == "numeric":
            return len(self.values) == 0 or bool(self.values[0] == self.values[-1])
        return int(np.count_nonzero(self.counts)) <= 1

    @cached_property
    def std(self) -> float:
        """Population standard deviation (ddof=0) of the values; 0.0 when there are none."""
        return float(np.std(self.values)) if len(self.values) else 0.0

    @cached_property
    def edges(self) -> np.ndarray:
        """Distinct cut points: min, the interior deciles, max (see :func:`bin_counts`)."""
        qs = np.linspace(0.0, 1.0, QUANTILE_BINS + 1)
        return np.unique(_quantiles(self.values, qs)) if len(self.values) else np.empty(0)

    @cached_property
    def binned(self) -> np.ndarray:
        """This column's counts over its own :attr:`edges`."""
        return bin_counts(self.values, self.edges)

    def category_counts(self, categories: tuple[str, ...]) -> np.ndarray:
        """Counts of ``categories`` (sorted) in this column, 0 for those it lacks."""
        if categories == self.categories:
            return self.counts
        mine = np.asarray(self.categories, dtype=object)
        wanted = np.asarray(categories, dtype=object)
        out = np.zeros(len(categories), dtype=np.int64)
        if len(mine) and len(wanted):
            at = np.searchsorted(mine, wanted)
            at_clipped = np.minimum(at, len(mine) - 1)
            found = (at < len(mine)) & (mine[at_clipped] == wanted)
            out[found] = self.counts[at_clipped[found]]
        return out


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts over the bins ``(-inf, e0), [e0, e0], (e0, e1], ..., (e_last, inf)``.

    With ``edges`` = the reference's min, deciles and max, a value below the
    reference's range, at its minimum, or above its maximum has a bin of its
    own, and a constant reference still separates "equal", "below" and "above".
    """
    n = len(sorted_values)
    if len(edges) == 0:
        return np.array([n], dtype=np.int64)
    cuts = np.concatenate(
        (
            [0, np.searchsorted(sorted_values, edges[0], side="left")],
            np.searchsorted(sorted_values, edges, side="right"),
            [n],
        )
    )
    return np.diff(cuts).astype(np.int64)


def _quantiles(sorted_values: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) method, on values already sorted."""
    position = qs * (len(sorted_values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(sorted_values) - 1)
    fraction = position - low
    lo, hi = sorted_values[low], sorted_values[high]
    with np.errstate(invalid="ignore", over="ignore"):
        out = lo + fraction * (hi - lo)
    return np.where(fraction == 0, lo, np.clip(out, lo, hi))


def from_arrow(name: str, values: pa.ChunkedArray | pa.Array, kind: Kind) -> Column:
    """The :class:`Column` of ``values`` read as ``kind`` (the caller checked it applies)."""
    rows = len(values)
    arrow_type = values.type
    if pa.types.is_dictionary(arrow_type):
        values = pc.cast(values, arrow_type.value_type)
    if kind == "numeric":
        numbers = pc.cast(values, pa.float64()) if values.type != pa.float64() else values
        array = _to_float_numpy(numbers)
        finite = np.isfinite(array)
        usable = array[finite] if not finite.all() else array
        ordered = np.sort(usable)  # a fresh array: Arrow's buffers are read-only
        return Column(name, kind, str(arrow_type), rows, rows - len(ordered), ordered)
    if pa.types.is_boolean(values.type) or pa.types.is_string_view(values.type):
        values = pc.cast(values, pa.large_string())
    present = values.drop_null()
    counted = pc.value_counts(present)
    if isinstance(counted, pa.ChunkedArray):
        counted = counted.combine_chunks()
    categories = np.asarray(counted.field("values").to_pylist(), dtype=object)
    counts = counted.field("counts").to_numpy().astype(np.int64)
    order = np.argsort(categories, kind="stable") if len(categories) else np.empty(0, np.int64)
    return Column(
        name,
        kind,
        str(arrow_type),
        rows,
        rows - int(counts.sum()),
        np.empty(0),
        tuple(str(c) for c in categories[order]),
        counts[order],
    )


def _to_float_numpy(numbers: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """float64 numpy values of float64 Arrow values, nulls as NaN; no copy for one chunk
    without nulls.

    Read from the data buffers directly: Arrow's ``to_numpy`` imports pandas
    (tens of MiB and a second of start-up) even where no pandas type is involved.
    """
    chunks = numbers.chunks if isinstance(numbers, pa.ChunkedArray) else [numbers]
    parts = []
    for chunk in chunks:
        if chunk.null_count:
            chunk = pc.fill_null(chunk, math.nan)
        data = chunk.buffers()[1]
        parts.append(
            np.frombuffer(data, np.float64, count=len(chunk), offset=chunk.offset * 8)
            if data is not None
            else np.empty(0)
        )
    if not parts:
        return np.empty(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


_T = TypeVar("_T")
_R = TypeVar("_R")


def parallel_map(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """``[function(x) for x in items]`` on up to :data:`WORKERS` threads, in order."""
    items = list(items)
    if WORKERS == 1 or len(items) < 2:
        return [function(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(function, items))
