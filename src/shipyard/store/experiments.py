"""Experiments repository."""

from __future__ import annotations

import time

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy import exc as sa_exc

from shipyard.errors import AlreadyExists, NotFound
from shipyard.store._schema import experiments
from shipyard.store._store import WriteTx
from shipyard.store.entities import Experiment


def _entity(row: Row) -> Experiment:
    return Experiment(
        experiment_id=str(row.id),
        name=row.name,
        description=row.description,
        created_at=row.created_at,
    )


def create(tx: WriteTx, name: str, description: str | None = None) -> Experiment:
    now = int(time.time() * 1000)
    try:
        with tx.conn.begin_nested():
            new_id = tx.conn.execute(
                insert(experiments)
                .values(name=name, description=description, created_at=now)
                .returning(experiments.c.id)
            ).scalar_one()
    except sa_exc.IntegrityError as exc:
        raise AlreadyExists(
            "experiment", name, hint="Pick another name, or use get_experiment() to reuse it."
        ) from exc
    tx.audit(
        "experiment.create", "experiment", str(new_id), {"name": name, "description": description}
    )
    return Experiment(str(new_id), name, description, now)


def get(conn: Connection, name_or_id: str) -> Experiment:
    """Look up by name; a string of digits that names no experiment is tried as an id."""
    row = conn.execute(select(experiments).where(experiments.c.name == name_or_id)).first()
    if row is None and name_or_id.isdigit():
        row = conn.execute(select(experiments).where(experiments.c.id == int(name_or_id))).first()
    if row is None:
        raise NotFound("experiment", name_or_id, hint="List them with `shipyard experiments list`.")
    return _entity(row)


def find(conn: Connection, name: str) -> Experiment | None:
    row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
    return None if row is None else _entity(row)


def list_all(conn: Connection) -> list[Experiment]:
    rows = conn.execute(select(experiments).order_by(experiments.c.id)).all()
    return [_entity(row) for row in rows]
