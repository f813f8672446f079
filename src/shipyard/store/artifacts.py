"""Artifacts repository: a run's files by logical path, each pointing at a blob."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from shipyard.errors import NotFound
from shipyard.store._schema import artifacts
from shipyard.store._sql import upsert
from shipyard.store._store import WriteTx
from shipyard.store.entities import Artifact
from shipyard.store.runs import now_ms


def record(tx: WriteTx, run_id: str, run_pk: int, files: Sequence[Artifact]) -> None:
    """Record (or replace) artifacts of a run; one audit event lists them all."""
    if not files:
        return
    now = now_ms()
    rows = [
        {"run_pk": run_pk, "path": f.path, "digest": f.digest, "size": f.size, "created_at": now}
        for f in files
    ]
    stmt = upsert(
        tx.conn.dialect.name,
        artifacts,
        index=("run_pk", "path"),
        update_columns=("digest", "size", "created_at"),
    )
    tx.conn.execute(stmt, rows)
    tx.audit("run.log_artifacts", "run", run_id, {"files": {f.path: f.digest for f in files}})


def list_(conn: Connection, run_pk: int, prefix: str = "") -> list[Artifact]:
    query = select(artifacts.c.path, artifacts.c.digest, artifacts.c.size).where(
        artifacts.c.run_pk == run_pk
    )
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            (artifacts.c.path == prefix) | artifacts.c.path.like(f"{escaped}/%", escape="\\")
        )
    return [Artifact(*row) for row in conn.execute(query.order_by(artifacts.c.path))]


def get(conn: Connection, run_id: str, run_pk: int, path: str) -> Artifact:
    row = conn.execute(
        select(artifacts.c.path, artifacts.c.digest, artifacts.c.size).where(
            artifacts.c.run_pk == run_pk, artifacts.c.path == path
        )
    ).first()
    if row is None:
        raise NotFound("artifact", f"{run_id}/{path}")
    return Artifact(*row)
