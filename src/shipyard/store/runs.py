"""Runs repository: the run row, its params and tags, heartbeats and loading."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, Row, and_, bindparam, case, insert, literal, select, update

from shipyard.errors import Conflict, NotFound
from shipyard.store import metrics as metrics_repo
from shipyard.store._schema import latest_metrics, params, runs, tags
from shipyard.store._sql import upsert
from shipyard.store._store import WriteTx
from shipyard.store.entities import Metric, Run, RunStatus

_INSERT_RUN = insert(runs).returning(runs.c.pk)
_INSERT_TAGS = insert(tags)
_INSERT_PARAMS = insert(params)
_END_RUNNING = (
    update(runs)
    .where(runs.c.run_id == bindparam("id"), runs.c.status == RunStatus.RUNNING.value)
    .values(status=bindparam("new_status"), end_time=bindparam("end"))
    .returning(runs.c.pk)
)


def now_ms() -> int:
    return int(time.time() * 1000)


def effective_status(stale_before: int):  # type: ignore[no-untyped-def]
    """SQL for the status a reader sees: a RUNNING run whose heartbeat stopped is FAILED."""
    return case(
        (
            and_(
                runs.c.status == RunStatus.RUNNING.value,
                runs.c.heartbeat_at.is_not(None),
                runs.c.heartbeat_at < stale_before,
            ),
            literal(RunStatus.FAILED.value),
        ),
        else_=runs.c.status,
    )


def create(
    tx: WriteTx,
    *,
    run_id: str,
    experiment_id: str,
    name: str,
    parent_run_id: str | None,
    tags_: Mapping[str, str],
    heartbeat: bool,
    start_time: int,
) -> int:
    now = start_time
    pk = tx.conn.execute(
        _INSERT_RUN,
        {
            "run_id": run_id,
            "experiment_id": int(experiment_id),
            "name": name,
            "status": RunStatus.RUNNING.value,
            "start_time": now,
            "heartbeat_at": now if heartbeat else None,
            "parent_run_id": parent_run_id,
            "created_by": tx.actor,
        },
    ).scalar_one()
    if tags_:
        tx.conn.execute(
            _INSERT_TAGS, [{"run_pk": pk, "key": k, "value": v} for k, v in tags_.items()]
        )
    tx.audit(
        "run.create",
        "run",
        run_id,
        {
            "experiment_id": experiment_id,
            "name": name,
            "parent_run_id": parent_run_id,
            "tags": dict(tags_),
        },
    )
    return pk


def pk_of(conn: Connection, run_id: str) -> int:
    pk = conn.execute(select(runs.c.pk).where(runs.c.run_id == run_id)).scalar()
    if pk is None:
        raise NotFound("run", run_id, hint="List runs with `shipyard runs list`.")
    return pk


def end(tx: WriteTx, run_id: str, status: RunStatus) -> None:
    """Move a RUNNING run to ``status``; ending it again with the same status is a no-op."""
    ended = tx.conn.execute(
        _END_RUNNING, {"id": run_id, "new_status": status.value, "end": now_ms()}
    ).first()
    if ended is None:
        current = tx.conn.execute(select(runs.c.status).where(runs.c.run_id == run_id)).scalar()
        if current is None:
            raise NotFound("run", run_id)
        if current != status.value:
            raise Conflict(
                f"Run {run_id} ended already as {current}; cannot end it again as {status.value}."
            )
        return
    tx.audit("run.end", "run", run_id, {"status": status.value})


def heartbeat(conn: Connection, run_pks: Iterable[int]) -> None:
    pks = list(run_pks)
    if pks:
        conn.execute(
            update(runs)
            .where(runs.c.pk.in_(pks), runs.c.status == RunStatus.RUNNING.value)
            .values(heartbeat_at=now_ms())
        )


def log_params(tx: WriteTx, run_id: str, run_pk: int, values: Mapping[str, str]) -> None:
    """Add params; an existing key with another value is a Conflict naming both."""
    if not values:
        return
    existing = dict(
        tx.conn.execute(
            select(params.c.key, params.c.value).where(
                params.c.run_pk == run_pk, params.c.key.in_(list(values))
            )
        ).all()
    )
    for key, value in values.items():
        if key in existing and existing[key] != value:
            raise Conflict(
                f"Param {key!r} of run {run_id} is {existing[key]!r} already; "
                f"it cannot become {value!r}.",
                hint="Params are immutable: log the new value under another key or in a new run.",
            )
    new = {k: v for k, v in values.items() if k not in existing}
    if new:
        tx.conn.execute(
            _INSERT_PARAMS, [{"run_pk": run_pk, "key": k, "value": v} for k, v in new.items()]
        )
        tx.audit("run.log_params", "run", run_id, new)


def set_tags(tx: WriteTx, run_id: str, run_pk: int, values: Mapping[str, str]) -> None:
    if not values:
        return
    rows = [{"run_pk": run_pk, "key": k, "value": v} for k, v in values.items()]
    stmt = upsert(tx.conn.dialect.name, tags, index=("run_pk", "key"), update_columns=("value",))
    tx.conn.execute(stmt, rows)
    tx.audit("run.set_tags", "run", run_id, dict(values))


def load(conn: Connection, pks: Sequence[int], *, stale_before: int) -> list[Run]:
    """Whole runs for ``pks``, in that order: four queries whatever the count."""
    if not pks:
        return []
    status = effective_status(stale_before).label("effective_status")
    rows = {
        row.pk: row for row in conn.execute(select(runs, status).where(runs.c.pk.in_(pks))).all()
    }
    params_by = _key_values(conn, params, pks)
    tags_by = _key_values(conn, tags, pks)
    metrics_by: dict[int, dict[str, Metric]] = defaultdict(dict)
    for row in conn.execute(select(latest_metrics).where(latest_metrics.c.run_pk.in_(pks))):
        metrics_by[row.run_pk][row.key] = metrics_repo.to_metric(row)
    return [
        _entity(rows[pk], params_by[pk], tags_by[pk], metrics_by[pk]) for pk in pks if pk in rows
    ]


def _key_values(conn: Connection, table, pks: Sequence[int]) -> dict[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    out: dict[int, dict[str, str]] = defaultdict(dict)
    query = select(table.c.run_pk, table.c.key, table.c.value).where(table.c.run_pk.in_(pks))
    for run_pk, key, value in conn.execute(query):
        out[run_pk][key] = value
    return out


def _entity(
    row: Row, params_: dict[str, str], tags_: dict[str, str], metrics_: dict[str, Metric]
) -> Run:
    return Run(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        status=RunStatus(row.effective_status),
        start_time=row.start_time,
        end_time=row.end_time,
        parent_run_id=row.parent_run_id,
        created_by=row.created_by,
        params=params_,
        tags=tags_,
        metrics=metrics_,
    )
