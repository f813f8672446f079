"""Monitors, their evaluated windows and the per-column results of each window.

A window is written with its results in one transaction: the window row is
upserted by (monitor, number) and its results replaced, so evaluating a
window again (more labels arrived) leaves no stale row behind. Creating and
deleting a monitor, and every batch of windows recorded, are audited.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import AlreadyExists, NotFound
from shipyard.store import _sql
from shipyard.store._schema import monitor_results, monitor_windows, monitors
from shipyard.store._store import WriteTx
from shipyard.store.runs import now_ms

_HINT = "List monitors with `shipyard monitors list`."
#: Rows per executemany and ids per IN (...) list: far below every driver's parameter limit.
_BATCH = 500
KINDS = ("input", "prediction")
TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class Monitor:
    """A monitor's definition, and how far its evaluation has got.

    ``tests``: one test name for every column, or a mapping column -> test,
    or None for automatic choice. ``thresholds``: column or test name ->
    threshold. ``windows``, ``last_window`` (number), ``last_end`` (ms,
    exclusive) and ``checked_at`` (the newest ``evaluated_at``) say what the
    next run starts from.
    """

    id: int
    name: str
    deployment: str
    reference: str
    reference_digest: str | None
    window_seconds: int | None
    window_rows: int | None
    columns: tuple[str, ...] | None
    tests: str | dict[str, str] | None
    thresholds: dict[str, float] | None
    task: str | None
    created_at: int
    created_by: str
    windows: int = 0
    last_window: int | None = None
    last_end: int | None = None
    checked_at: int | None = None

    @property
    def window(self) -> str:
        """The window as a person writes it: ``1h`` or ``5000 rows``."""
        if self.window_rows is not None:
            return f"{self.window_rows} rows"
        return format_seconds(self.window_seconds or 0)


@dataclasses.dataclass(frozen=True)
class WindowResult:
    """One column's drift in one window (``kind``: "input" or "prediction")."""

    kind: str
    column: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drift: bool | None
    status: str


@dataclasses.dataclass(frozen=True)
class MonitorWindow:
    """One evaluated window: ``start`` inclusive, ``end`` exclusive (ms).

    ``labelled`` counts the rows that had a label when ``metrics`` (live
    performance, empty without labels) were computed.
    """

    number: int
    start: int
    end: int
    rows: int
    labelled: int
    drift_share: float | None
    metrics: Mapping[str, float]
    evaluated_at: int
    results: tuple[WindowResult, ...] = ()


def format_seconds(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ------------------------------------------------------------------------ monitors


def _monitor(row: Row, progress: Mapping[str, Any] | None = None) -> Monitor:
    progress = progress or {}
    return Monitor(
        id=row.id,
        name=row.name,
        deployment=row.deployment,
        reference=row.reference,
        reference_digest=row.reference_digest,
        window_seconds=row.window_seconds,
        window_rows=row.window_rows,
        columns=None if row.columns is None else tuple(json.loads(row.columns)),
        tests=None if row.tests is None else json.loads(row.tests),
        thresholds=None if row.thresholds is None else json.loads(row.thresholds),
        task=row.task,
        created_at=row.created_at,
        created_by=row.created_by,
        windows=progress.get("windows", 0),
        last_window=progress.get("last_window"),
        last_end=progress.get("last_end"),
        checked_at=progress.get("checked_at"),
    )


def _progress(conn: Connection, monitor_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per monitor: how many windows, the newest window's number and end, the newest evaluation."""
    if not monitor_ids:
        return {}
    w = monitor_windows.c
    counts = conn.execute(
        select(w.monitor_id, func.count(), func.max(w.number), func.max(w.evaluated_at))
        .where(w.monitor_id.in_(monitor_ids))
        .group_by(w.monitor_id)
    ).all()
    out = {
        row[0]: {"windows": row[1], "last_window": row[2], "checked_at": row[3]} for row in counts
    }
    last = [(m, p["last_window"]) for m, p in out.items()]
    for monitor_id, number in last:
        out[monitor_id]["last_end"] = conn.execute(
            select(w.end).where(w.monitor_id == monitor_id, w.number == number)
        ).scalar()
    return out


def create(
    tx: WriteTx,
    *,
    name: str,
    deployment: str,
    reference: str,
    reference_digest: str,
    window_seconds: int | None,
    window_rows: int | None,
    columns: Sequence[str] | None,
    tests: str | Mapping[str, str] | None,
    thresholds: Mapping[str, float] | None,
    task: str | None,
) -> Monitor:
    try:
        with tx.conn.begin_nested():
            tx.conn.execute(
                insert(monitors).values(
                    name=name,
                    deployment=deployment,
                    reference=reference,
                    reference_digest=reference_digest,
                    window_seconds=window_seconds,
                    window_rows=window_rows,
                    columns=None if columns is None else json.dumps(list(columns)),
                    tests=None if tests is None else json.dumps(tests, sort_keys=True),
                    thresholds=None
                    if thresholds is None
                    else json.dumps(dict(thresholds), sort_keys=True),
                    task=task,
                    created_at=now_ms(),
                    created_by=tx.actor,
                )
            )
    except sa_exc.IntegrityError as exc:
        raise AlreadyExists(
            "monitor",
            name,
            hint="Give it another name (--name), or delete the old one with "
            f"`shipyard monitors delete {name}`.",
        ) from exc
    tx.audit(
        "monitor.create",
        "monitor",
        name,
        {
            "deployment": deployment,
            "reference": reference,
            "reference_digest": reference_digest,
            "window_seconds": window_seconds,
            "window_rows": window_rows,
        },
    )
    return get(tx.conn, name)


def get(conn: Connection, name: str) -> Monitor:
    row = conn.execute(select(monitors).where(monitors.c.name == name)).first()
    if row is None:
        raise NotFound("monitor", name, hint=_HINT)
    return _monitor(row, _progress(conn, [row.id]).get(row.id))


def list_all(conn: Connection, deployment: str | None = None) -> list[Monitor]:
    query = select(monitors).order_by(monitors.c.name)
    if deployment is not None:
        query = query.where(monitors.c.deployment == deployment)
    rows = conn.execute(query).all()
    progress = _progress(conn, [row.id for row in rows])
    return [_monitor(row, progress.get(row.id)) for row in rows]


def set_task(tx: WriteTx, name: str, task: str) -> Monitor:
    """Record whether the monitored model classifies or regresses (learnt from its labels)."""
    found = get(tx.conn, name)
    tx.conn.execute(update(monitors).where(monitors.c.id == found.id).values(task=task))
    tx.audit("monitor.task", "monitor", name, {"task": task})
    return get(tx.conn, name)


def delete_monitor(tx: WriteTx, name: str) -> Monitor:
    """Delete a monitor with its windows, results, alert rules and alerts."""
    from shipyard.store import alerts as alerts_repo

    found = get(tx.conn, name)
    rules = alerts_repo.delete_rules_of_monitor(tx, found.id)
    window_ids = select(monitor_windows.c.id).where(monitor_windows.c.monitor_id == found.id)
    tx.conn.execute(delete(monitor_results).where(monitor_results.c.window_id.in_(window_ids)))
    tx.conn.execute(delete(monitor_windows).where(monitor_windows.c.monitor_id == found.id))
    tx.conn.execute(delete(monitors).where(monitors.c.id == found.id))
    tx.audit(
        "monitor.delete",
        "monitor",
        name,
        {"deployment": found.deployment, "windows": found.windows, "alert_rules": rules},
    )
    return found


# ------------------------------------------------------------------------- windows


def record_windows(tx: WriteTx, name: str, windows: Sequence[MonitorWindow]) -> int:
    """Store ``windows`` (new or evaluated again) with their results; the monitor's id."""
    found = get(tx.conn, name)
    if not windows:
        return found.id
    rows = [
        {
            "monitor_id": found.id,
            "number": w.number,
            "start": w.start,
            "end": w.end,
            "rows": w.rows,
            "labelled": w.labelled,
            "drift_share": w.drift_share,
            "metrics": json.dumps(dict(w.metrics), sort_keys=True, allow_nan=False)
            if w.metrics
            else None,
            "evaluated_at": w.evaluated_at,
        }
        for w in windows
    ]
    statement = _sql.upsert(
        tx.conn.dialect.name,
        monitor_windows,
        index=("monitor_id", "number"),
        update_columns=(
            "start",
            "end",
            "rows",
            "labelled",
            "drift_share",
            "metrics",
            "evaluated_at",
        ),
    )
    ids: dict[int, int] = {}
    for batch in _batches(rows):
        tx.conn.execute(statement, batch)
        numbers = [r["number"] for r in batch]
        stored = tx.conn.execute(
            select(monitor_windows.c.number, monitor_windows.c.id).where(
                monitor_windows.c.monitor_id == found.id, monitor_windows.c.number.in_(numbers)
            )
        )
        ids.update((number, window_id) for number, window_id in stored)
    for batch in _batches(list(ids.values())):
        tx.conn.execute(delete(monitor_results).where(monitor_results.c.window_id.in_(batch)))
    results = [
        {"window_id": ids[w.number], **dataclasses.asdict(r)} for w in windows for r in w.results
    ]
    for batch in _batches(results):
        tx.conn.execute(insert(monitor_results), batch)
    numbers = sorted(ids)
    tx.audit(
        "monitor.windows",
        "monitor",
        name,
        {"count": len(numbers), "first": numbers[0], "last": numbers[-1]},
    )
    return found.id


def _batches(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for at in range(0, len(items), _BATCH):
        yield items[at : at + _BATCH]


def list_windows(
    conn: Connection,
    name: str,
    *,
    start: int | None = None,
    end: int | None = None,
    results: bool = False,
    limit: int | None = None,
) -> list[MonitorWindow]:
    """Windows overlapping ``[start, end)`` (ms), oldest first; the newest ``limit`` when given."""
    found = get(conn, name)
    w = monitor_windows.c
    query = select(monitor_windows).where(w.monitor_id == found.id)
    if start is not None:
        query = query.where(w.end > start)
    if end is not None:
        query = query.where(w.start < end)
    if limit is not None:
        query = query.order_by(w.number.desc()).limit(limit)
    rows = sorted(conn.execute(query).all(), key=lambda row: row.number)
    found_results: dict[int, list[WindowResult]] = defaultdict(list)
    if results:
        for batch in _batches([row.id for row in rows]):
            query_results = (
                select(monitor_results)
                .where(monitor_results.c.window_id.in_(batch))
                .order_by(
                    monitor_results.c.window_id, monitor_results.c.kind, monitor_results.c.column
                )
            )
            for r in conn.execute(query_results):
                found_results[r.window_id].append(
                    WindowResult(
                        r.kind,
                        r.column,
                        r.test,
                        r.statistic,
                        r.p_value,
                        r.threshold,
                        r.drift,
                        r.status,
                    )
                )
    return [
        MonitorWindow(
            number=row.number,
            start=row.start,
            end=row.end,
            rows=row.rows,
            labelled=row.labelled,
            drift_share=row.drift_share,
            metrics={} if row.metrics is None else json.loads(row.metrics),
            evaluated_at=row.evaluated_at,
            results=tuple(found_results[row.id]),
        )
        for row in rows
    ]
