"""Datasets repository: datasets, their versions, contracts, source fingerprints, run inputs."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select

from shipyard.errors import NotFound
from shipyard.store import _sql
from shipyard.store._schema import (
    dataset_contracts,
    dataset_sources,
    dataset_versions,
    datasets,
    run_inputs,
    runs,
)
from shipyard.store._sql import upsert
from shipyard.store._store import WriteTx
from shipyard.store.entities import Dataset, DatasetVersion
from shipyard.store.runs import now_ms

_HINT = "List datasets with `shipyard data list`."


def dataset_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()


def lock_or_create(tx: WriteTx, name: str, description: str | None) -> int:
    """The dataset's id, its row locked for this transaction (created if missing)."""
    dataset_pk, created = _sql.lock_or_create(
        tx, datasets, name, {"description": description, "created_at": now_ms()}
    )
    if created:
        tx.audit("dataset.create", "dataset", name, {"description": description})
    return dataset_pk


def version_by_digest(conn: Connection, dataset_pk: int, digest: str) -> DatasetVersion | None:
    row = conn.execute(
        _versions_query().where(
            dataset_versions.c.dataset_id == dataset_pk, dataset_versions.c.digest == digest
        )
    ).first()
    return None if row is None else _version(row)


def insert_version(
    tx: WriteTx,
    dataset_pk: int,
    *,
    name: str,
    digest: str,
    rows: int,
    size: int,
    schema: list[dict[str, Any]],
    profile: dict[str, Any],
    validation: dict[str, Any] | None,
    contract_version: int | None,
    status: str,
    source: str | None,
    run_id: str | None,
) -> DatasetVersion:
    number = (
        tx.conn.execute(
            select(func.max(dataset_versions.c.version)).where(
                dataset_versions.c.dataset_id == dataset_pk
            )
        ).scalar()
        or 0
    ) + 1
    tx.conn.execute(
        insert(dataset_versions).values(
            dataset_id=dataset_pk,
            version=number,
            digest=digest,
            rows=rows,
            bytes=size,
            schema=json.dumps(schema),
            profile=json.dumps(profile, allow_nan=False),
            validation=None if validation is None else json.dumps(validation, allow_nan=False),
            contract_version=contract_version,
            status=status,
            source=source,
            created_at=now_ms(),
            created_by=tx.actor,
            run_id=run_id,
        )
    )
    tx.audit(
        "dataset.register",
        "dataset",
        f"{name}@{number}",
        {"digest": digest, "rows": rows, "status": status, "source": source, "run_id": run_id},
    )
    found = version_by_digest(tx.conn, dataset_pk, digest)
    assert found is not None
    return found


def _versions_query():  # type: ignore[no-untyped-def]
    return select(dataset_versions, datasets.c.name.label("dataset_name")).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _version(row: Row) -> DatasetVersion:
    return DatasetVersion(
        name=row.dataset_name,
        version=row.version,
        digest=row.digest,
        rows=row.rows,
        bytes=row.bytes,
        schema=json.loads(row.schema),
        profile=json.loads(row.profile),
        validation=None if row.validation is None else json.loads(row.validation),
        contract_version=row.contract_version,
        status=row.status,
        source=row.source,
        created_at=row.created_at,
        created_by=row.created_by,
        run_id=row.run_id,
    )


def get_version(conn: Connection, name: str, version: int | None = None) -> DatasetVersion:
    """A version by number, or the newest one when ``version`` is None."""
    query = _versions_query().where(datasets.c.name == name)
    if version is None:
        query = query.order_by(dataset_versions.c.version.desc()).limit(1)
    else:
        query = query.where(dataset_versions.c.version == version)
    row = conn.execute(query).first()
    if row is None:
        if dataset_id(conn, name) is None:
            raise NotFound("dataset", name, hint=_HINT)
        raise NotFound(
            "dataset version", f"{name}@{version}", hint=f"See `shipyard data show {name}`."
        )
    return _version(row)


def version_pk(conn: Connection, name: str, version: int) -> int:
    pk = conn.execute(
        select(dataset_versions.c.id)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name, dataset_versions.c.version == version)
    ).scalar()
    if pk is None:
        raise NotFound("dataset version", f"{name}@{version}", hint=_HINT)
    return pk


def list_versions(conn: Connection, name: str) -> list[DatasetVersion]:
    if dataset_id(conn, name) is None:
        raise NotFound("dataset", name, hint=_HINT)
    rows = conn.execute(
        _versions_query().where(datasets.c.name == name).order_by(dataset_versions.c.version)
    ).all()
    return [_version(row) for row in rows]


def list_datasets(conn: Connection) -> list[Dataset]:
    latest = (
        select(dataset_versions.c.dataset_id, func.max(dataset_versions.c.version).label("latest"))
        .group_by(dataset_versions.c.dataset_id)
        .subquery()
    )
    query = (
        select(datasets, latest.c.latest)
        .outerjoin(latest, latest.c.dataset_id == datasets.c.id)
        .order_by(datasets.c.name)
    )
    return [
        Dataset(row.name, row.description, row.created_at, row.latest)
        for row in conn.execute(query)
    ]


# ------------------------------------------------------------------------ contracts


def latest_contract(conn: Connection, dataset_pk: int | None) -> tuple[int, str] | None:
    if dataset_pk is None:
        return None
    row = conn.execute(
        select(dataset_contracts.c.version, dataset_contracts.c.document)
        .where(dataset_contracts.c.dataset_id == dataset_pk)
        .order_by(dataset_contracts.c.version.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.version, row.document)


def add_contract(tx: WriteTx, dataset_pk: int, name: str, document: str) -> int:
    current = latest_contract(tx.conn, dataset_pk)
    if current is not None and current[1] == document:
        return current[0]
    number = (current[0] if current else 0) + 1
    tx.conn.execute(
        insert(dataset_contracts).values(
            dataset_id=dataset_pk,
            version=number,
            document=document,
            created_at=now_ms(),
            created_by=tx.actor,
        )
    )
    tx.audit(
        "dataset.contract", "dataset", name, {"contract_version": number, "document": document}
    )
    return number


# --------------------------------------------------------------------- source cache


def version_for_source(
    conn: Connection, dataset_pk: int | None, path: str, fingerprint: str
) -> DatasetVersion | None:
    if dataset_pk is None:
        return None
    row = conn.execute(
        _versions_query()
        .join(dataset_sources, dataset_sources.c.version_id == dataset_versions.c.id)
        .where(
            dataset_sources.c.dataset_id == dataset_pk,
            dataset_sources.c.path == path,
            dataset_sources.c.fingerprint == fingerprint,
        )
    ).first()
    return None if row is None else _version(row)


def remember_source(
    tx: WriteTx, dataset_pk: int, path: str, fingerprint: str, version: int
) -> None:
    version_id = tx.conn.execute(
        select(dataset_versions.c.id).where(
            dataset_versions.c.dataset_id == dataset_pk, dataset_versions.c.version == version
        )
    ).scalar_one()
    stmt = upsert(
        tx.conn.dialect.name,
        dataset_sources,
        index=("dataset_id", "path"),
        update_columns=("fingerprint", "version_id"),
    )
    tx.conn.execute(
        stmt,
        [
            {
                "dataset_id": dataset_pk,
                "path": path,
                "fingerprint": fingerprint,
                "version_id": version_id,
            }
        ],
    )


# ------------------------------------------------------------------------- lineage


def record_input(tx: WriteTx, run_id: str, run_pk: int, name: str, version: int) -> None:
    """Record that a run read a dataset version (once per pair)."""
    version_id = version_pk(tx.conn, name, version)
    exists = tx.conn.execute(
        select(run_inputs.c.run_pk).where(
            run_inputs.c.run_pk == run_pk, run_inputs.c.dataset_version_id == version_id
        )
    ).first()
    if exists is None:
        tx.conn.execute(insert(run_inputs).values(run_pk=run_pk, dataset_version_id=version_id))
        tx.audit("run.input", "run", run_id, {"dataset": f"{name}@{version}"})


def readers(conn: Connection, name: str, version: int) -> list[str]:
    """Run ids of the runs that read a dataset version."""
    version_id = version_pk(conn, name, version)
    query = (
        select(runs.c.run_id)
        .join(run_inputs, run_inputs.c.run_pk == runs.c.pk)
        .where(run_inputs.c.dataset_version_id == version_id)
        .order_by(runs.c.start_time)
    )
    return list(conn.execute(query).scalars())


def inputs_of(conn: Connection, run_pk: int) -> list[tuple[str, int]]:
    """(dataset name, version) pairs a run read."""
    query = (
        select(datasets.c.name, dataset_versions.c.version)
        .join(dataset_versions, dataset_versions.c.dataset_id == datasets.c.id)
        .join(run_inputs, run_inputs.c.dataset_version_id == dataset_versions.c.id)
        .where(run_inputs.c.run_pk == run_pk)
        .order_by(datasets.c.name, dataset_versions.c.version)
    )
    return [(row.name, row.version) for row in conn.execute(query)]


def outputs_of(conn: Connection, run_id: str) -> list[tuple[str, int]]:
    """(dataset name, version) pairs a run registered."""
    query = (
        select(datasets.c.name, dataset_versions.c.version)
        .join(dataset_versions, dataset_versions.c.dataset_id == datasets.c.id)
        .where(dataset_versions.c.run_id == run_id)
        .order_by(datasets.c.name, dataset_versions.c.version)
    )
    return [(row.name, row.version) for row in conn.execute(query)]
