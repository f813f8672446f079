"""Metric points: appended in batches, with a per-run table of each key's latest point."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import Connection, Row, insert, or_, select

from shipyard.store._schema import latest_metrics, metrics
from shipyard.store._sql import upsert
from shipyard.store.entities import Metric

#: (run_pk, key, value, step, timestamp_ms)
Point = tuple[int, str, float, int, int]


_INSERT = insert(metrics)


def to_metric(row: Row) -> Metric:
    return Metric(
        key=row.key,
        value=math.nan if row.is_nan else row.value,
        step=row.step,
        timestamp=row.timestamp,
    )


def append(conn: Connection, points: Sequence[Point]) -> None:
    """Insert ``points`` and move each (run, key)'s latest point forward, in one transaction."""
    if not points:
        return
    rows = []
    latest: dict[tuple[int, str], dict] = {}
    for run_pk, key, value, step, timestamp in points:
        is_nan = value != value
        row = {
            "run_pk": run_pk,
            "key": key,
            "value": None if is_nan else value,
            "is_nan": is_nan,
            "step": step,
            "timestamp": timestamp,
        }
        rows.append(row)
        best = latest.get((run_pk, key))
        if best is None or (step, timestamp) >= (best["step"], best["timestamp"]):
            latest[(run_pk, key)] = row
    conn.execute(_INSERT, rows)
    upsert_latest = upsert(
        conn.dialect.name,
        latest_metrics,
        index=("run_pk", "key"),
        update_columns=("value", "is_nan", "step", "timestamp"),
        where=_is_newer,
    )
    conn.execute(upsert_latest, list(latest.values()))


def _is_newer(incoming, current):  # type: ignore[no-untyped-def]
    return or_(
        incoming.step > current.step,
        (incoming.step == current.step) & (incoming.timestamp >= current.timestamp),
    )


def history(conn: Connection, run_pk: int, key: str) -> list[Metric]:
    query = (
        select(
            metrics.c.key, metrics.c.value, metrics.c.is_nan, metrics.c.step, metrics.c.timestamp
        )
        .where(metrics.c.run_pk == run_pk, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
    )
    return [to_metric(row) for row in conn.execute(query)]
