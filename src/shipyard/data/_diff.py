"""Differences between two versions of a dataset.

Schema changes come from the stored schemas; per-column distribution change
is computed exactly from the stored Parquet, one column at a time (memory is
bounded by one column, not the dataset): the two-sample Kolmogorov-Smirnov
statistic for numbers, the Population Stability Index over the union of
categories for text and booleans. Where the contract declares a key, rows are
matched by key and counted as added, removed or changed (by a 64-bit hash of
their common columns).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from shipyard.data._contract import Contract
from shipyard.store import datasets as datasets_repo
from shipyard.store.entities import DatasetVersion

if TYPE_CHECKING:
    from shipyard.tracking import Client

#: PSI conventions: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large; KS uses 0.1.
PSI_DRIFT = 0.25
KS_DRIFT = 0.1
_EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class ColumnChange:
    column: str
    test: str  # "ks" or "psi"
    statistic: float | None
    drift: bool
    note: str = ""


@dataclasses.dataclass(frozen=True)
class DatasetDiff:
    name: str
    old: int
    new: int
    rows_old: int
    rows_new: int
    added_columns: list[str]
    removed_columns: list[str]
    #: column -> (old type, new type)
    retyped_columns: dict[str, tuple[str, str]]
    columns: list[ColumnChange]
    key: list[str] | None
    rows_added: int | None
    rows_removed: int | None
    rows_changed: int | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def diff(client: Client, name: str, old: int, new: int) -> DatasetDiff:
    with client.store.read() as conn:
        a = datasets_repo.get_version(conn, name, old)
        b = datasets_repo.get_version(conn, name, new)
        contract_doc = datasets_repo.latest_contract(conn, datasets_repo.dataset_id(conn, name))
    types_a = {c["name"]: c["type"] for c in a.schema}
    types_b = {c["name"]: c["type"] for c in b.schema}
    common = [c for c in types_a if c in types_b]
    table_a = _open(client, a)
    table_b = _open(client, b)
    changes = [_column_change(c, table_a, table_b) for c in common if types_a[c] == types_b[c]]
    key = _key(contract_doc, common)
    added = removed = changed = None
    if key:
        added, removed, changed = _row_changes(
            table_a, table_b, key, [c for c in common if types_a[c] == types_b[c]]
        )
    return DatasetDiff(
        name=name,
        old=old,
        new=new,
        rows_old=a.rows,
        rows_new=b.rows,
        added_columns=[c for c in types_b if c not in types_a],
        removed_columns=[c for c in types_a if c not in types_b],
        retyped_columns={c: (types_a[c], types_b[c]) for c in common if types_a[c] != types_b[c]},
        columns=changes,
        key=key,
        rows_added=added,
        rows_removed=removed,
        rows_changed=changed,
    )


def _open(client: Client, version: DatasetVersion):  # type: ignore[no-untyped-def]
    """The version's Parquet, read once and verified against its digest."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(pa.BufferReader(client.blobs.get(version.digest)))


def _key(contract_doc: tuple[int, str] | None, common: list[str]) -> list[str] | None:
    if contract_doc is None:
        return None
    contract = Contract.from_yaml(contract_doc[1])
    key = list(contract.key or ())
    return key if key and all(k in common for k in key) else None


def _column(parquet, column: str) -> pa.ChunkedArray:  # type: ignore[no-untyped-def]
    return parquet.read(columns=[column]).column(0)


def _column_change(column: str, a, b) -> ColumnChange:  # type: ignore[no-untyped-def]
    old, new = _column(a, column), _column(b, column)
    kind = old.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        x, y = _finite(old), _finite(new)
        if len(x) == 0 or len(y) == 0:
            return ColumnChange(column, "ks", None, False, "no finite values on one side")
        statistic = ks_statistic(x, y)
        return ColumnChange(column, "ks", statistic, statistic > KS_DRIFT)
    if pa.types.is_string(kind) or pa.types.is_boolean(kind) or pa.types.is_dictionary(kind):
        statistic = psi(_counts(old), _counts(new))
        return ColumnChange(column, "psi", statistic, statistic > PSI_DRIFT)
    return ColumnChange(column, "none", None, False, f"no distribution test for type {kind}")


def _finite(values: pa.ChunkedArray) -> np.ndarray:
    array = values.cast(pa.float64()).drop_null().to_numpy()
    return array[np.isfinite(array)]


def ks_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    x, y = np.sort(x), np.sort(y)
    grid = np.concatenate([x, y])
    gap = np.searchsorted(x, grid, side="right") / len(x) - np.searchsorted(
        y, grid, side="right"
    ) / len(y)
    return float(np.max(np.abs(gap)))


def _counts(values: pa.ChunkedArray) -> dict[Any, int]:
    import pyarrow.compute as pc

    counted = pc.value_counts(values.combine_chunks())
    return {
        v.as_py(): c.as_py()
        for v, c in zip(counted.field("values"), counted.field("counts"), strict=True)
    }


def psi(old: dict[Any, int], new: dict[Any, int]) -> float:
    """Population Stability Index over the union of categories (nulls are a category)."""
    categories = list(old.keys() | new.keys())
    p = np.array([old.get(c, 0) for c in categories], dtype=float)
    q = np.array([new.get(c, 0) for c in categories], dtype=float)
    p = np.maximum(p / max(p.sum(), 1), _EPSILON)
    q = np.maximum(q / max(q.sum(), 1), _EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _row_hashes(parquet, key: list[str], columns: list[str]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(key hash, row hash) per row, sorted by key hash; batch by batch."""
    try:
        import pandas as pd
    except ImportError as exc:
        from shipyard.errors import InvalidInput

        raise InvalidInput(
            "Comparing rows by key needs pandas.", hint="pip install 'shipyard[pandas]'"
        ) from exc
    keys, rows = [], []
    for batch in parquet.iter_batches(columns=columns, batch_size=262_144):
        frame = batch.to_pandas()
        keys.append(pd.util.hash_pandas_object(frame[key], index=False).to_numpy())
        rows.append(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    key_hashes = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    row_hashes = np.concatenate(rows) if rows else np.empty(0, np.uint64)
    order = np.argsort(key_hashes, kind="stable")
    return key_hashes[order], row_hashes[order]


def _row_changes(a, b, key: list[str], columns: list[str]) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    keys_a, rows_a = _row_hashes(a, key, columns)
    keys_b, rows_b = _row_hashes(b, key, columns)
    _, index_a, index_b = np.intersect1d(keys_a, keys_b, assume_unique=False, return_indices=True)
    added = len(np.setdiff1d(keys_b, keys_a))
    removed = len(np.setdiff1d(keys_a, keys_b))
    changed = int(np.count_nonzero(rows_a[index_a] != rows_b[index_b]))
    return added, removed, changed
