"""Model registry repository: registered models, versions, stored formats, tags, aliases.

Version numbers come from ``registered_models.last_version``, incremented under
the model row's lock inside the registering transaction: concurrent
registrations of one model get consecutive numbers with no gaps, and a failed
registration rolls its number back with everything else.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from shipyard.errors import NotFound
from shipyard.store import _sql
from shipyard.store._schema import (
    audit_events,
    dataset_versions,
    datasets,
    model_aliases,
    model_version_datasets,
    model_version_files,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
    run_inputs,
    runs,
)
from shipyard.store._store import WriteTx
from shipyard.store.entities import ModelFile, ModelVersion, RegisteredModel
from shipyard.store.runs import now_ms

_HINT = "List models with `shipyard models list`."
STATUSES = ("ready", "archived")
ALIAS_ACTIONS = ("model.alias.set", "model.alias.delete")


def model_id(conn: Connection, name: str) -> int:
    found = conn.execute(
        select(registered_models.c.id).where(registered_models.c.name == name)
    ).scalar()
    if found is None:
        raise NotFound("registered model", name, hint=_HINT)
    return found


def register_version(
    tx: WriteTx,
    name: str,
    *,
    flavor: str,
    native: ModelFile,
    environment: Mapping[str, Any],
    signature: Mapping[str, Any] | None,
    input_example: Sequence[Mapping[str, Any]] | None,
    description: str | None,
    tags: Mapping[str, str],
    run_id: str | None,
    run_pk: int | None,
) -> ModelVersion:
    """Create the model if needed and add the next version with its native file."""
    now = now_ms()
    model_pk, created = _sql.lock_or_create(
        tx, registered_models, name, {"last_version": 0, "created_at": now, "updated_at": now}
    )
    if created:
        tx.audit("model.create", "model", name, {})
    number = tx.conn.execute(
        update(registered_models)
        .where(registered_models.c.id == model_pk)
        .values(last_version=registered_models.c.last_version + 1, updated_at=now)
        .returning(registered_models.c.last_version)
    ).scalar_one()
    version_pk = tx.conn.execute(
        insert(model_versions)
        .values(
            model_id=model_pk,
            version=number,
            flavor=flavor,
            status="ready",
            description=description,
            run_id=run_id,
            signature=None if signature is None else json.dumps(signature, allow_nan=False),
            environment=json.dumps(environment),
            input_example=None if input_example is None else json.dumps(list(input_example)),
            created_at=now,
            created_by=tx.actor,
        )
        .returning(model_versions.c.id)
    ).scalar_one()
    _insert_file(tx, version_pk, native, now)
    if tags:
        tx.conn.execute(
            insert(model_version_tags),
            [{"version_id": version_pk, "key": k, "value": v} for k, v in tags.items()],
        )
    if run_pk is not None:
        dataset_ids = _datasets_read(tx.conn, run_pk)
        if dataset_ids:
            tx.conn.execute(
                insert(model_version_datasets),
                [{"version_id": version_pk, "dataset_version_id": d} for d in dataset_ids],
            )
    tx.audit(
        "model.version.create",
        "model",
        f"{name}/{number}",
        {"flavor": flavor, "digest": native.digest, "run_id": run_id},
    )
    return get_version(tx.conn, name, number)


def _datasets_read(conn: Connection, run_pk: int) -> list[int]:
    """Dataset versions read by the run or any run it is nested in (data is often
    loaded once in a parent run and models trained in its children)."""
    found: set[int] = set()
    seen: set[int] = set()
    pk: int | None = run_pk
    while pk is not None and pk not in seen:  # bounded by the depth of nesting
        seen.add(pk)
        read = select(run_inputs.c.dataset_version_id).where(run_inputs.c.run_pk == pk)
        found.update(conn.execute(read).scalars())
        child = runs.alias("child")
        pk = conn.execute(
            select(runs.c.pk)
            .join(child, child.c.parent_run_id == runs.c.run_id)
            .where(child.c.pk == pk)
        ).scalar()
    return sorted(found)


def add_file(tx: WriteTx, name: str, version: int, file: ModelFile) -> ModelVersion:
    """Store another format of an existing version (replacing an earlier one of that format)."""
    version_pk = _version_pk(tx.conn, name, version)
    tx.conn.execute(
        delete(model_version_files).where(
            model_version_files.c.version_id == version_pk,
            model_version_files.c.format == file.format,
        )
    )
    _insert_file(tx, version_pk, file, now_ms())
    tx.audit(
        "model.version.add_format",
        "model",
        f"{name}/{version}",
        {"format": file.format, "digest": file.digest},
    )
    return get_version(tx.conn, name, version)


def _insert_file(tx: WriteTx, version_pk: int, file: ModelFile, now: int) -> None:
    tx.conn.execute(
        insert(model_version_files).values(
            version_id=version_pk,
            format=file.format,
            serialization=file.serialization,
            digest=file.digest,
            size=file.size,
            meta=json.dumps(file.meta),
            created_at=now,
        )
    )


def _version_pk(conn: Connection, name: str, version: int) -> int:
    found = conn.execute(
        select(model_versions.c.id)
        .join(registered_models, registered_models.c.id == model_versions.c.model_id)
        .where(registered_models.c.name == name, model_versions.c.version == version)
    ).scalar()
    if found is None:
        model_id(conn, name)  # a missing model is reported as such
        raise NotFound(
            "model version",
            f"{name}/{version}",
            hint=f"List its versions with `shipyard models show {name}`.",
        )
    return found


# ----------------------------------------------------------------- reading


def _versions_query():  # type: ignore[no-untyped-def]
    return select(model_versions, registered_models.c.name.label("model_name")).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )


def get_version(conn: Connection, name: str, version: int) -> ModelVersion:
    rows = conn.execute(
        _versions_query().where(
            registered_models.c.name == name, model_versions.c.version == version
        )
    ).all()
    if not rows:
        _version_pk(conn, name, version)  # raises the right NotFound
    return _load_versions(conn, rows)[0]


def list_versions(conn: Connection, name: str) -> list[ModelVersion]:
    model_pk = model_id(conn, name)
    rows = conn.execute(
        _versions_query()
        .where(model_versions.c.model_id == model_pk)
        .order_by(model_versions.c.version)
    ).all()
    return _load_versions(conn, rows)


def resolve_alias(conn: Connection, name: str, alias: str) -> int:
    """The version an alias points at; ``latest`` is the newest version not archived."""
    model_pk = model_id(conn, name)
    if alias == "latest":
        query = select(model_versions.c.version).where(
            model_versions.c.model_id == model_pk, model_versions.c.status == "ready"
        )
        found = conn.execute(query.order_by(model_versions.c.version.desc()).limit(1)).scalar()
        if found is None:
            raise NotFound(
                "ready version of model", name, hint="Every version is archived, or none exists."
            )
        return found
    found = conn.execute(
        select(model_versions.c.version)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_pk, model_aliases.c.alias == alias)
    ).scalar()
    if found is None:
        known = sorted(_aliases_of(conn, [model_pk]).get(model_pk, {}))
        raise NotFound(
            "alias",
            f"{name}@{alias}",
            hint=f"Its aliases are: {', '.join(known)}." if known else f"{name} has no aliases.",
        )
    return found


def _load_versions(conn: Connection, rows: Sequence[Row]) -> list[ModelVersion]:
    """Entities for version rows, with their files, tags, aliases and datasets (4 queries)."""
    pks = [row.id for row in rows]
    files: dict[int, dict[str, ModelFile]] = defaultdict(dict)
    for f in conn.execute(
        select(model_version_files).where(model_version_files.c.version_id.in_(pks))
    ):
        files[f.version_id][f.format] = ModelFile(
            f.format, f.serialization, f.digest, f.size, json.loads(f.meta)
        )
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for t in conn.execute(
        select(model_version_tags).where(model_version_tags.c.version_id.in_(pks))
    ):
        tags[t.version_id][t.key] = t.value
    aliases: dict[int, list[str]] = defaultdict(list)
    for a in conn.execute(
        select(model_aliases.c.version_id, model_aliases.c.alias)
        .where(model_aliases.c.version_id.in_(pks))
        .order_by(model_aliases.c.alias)
    ):
        aliases[a.version_id].append(a.alias)
    read: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for d in conn.execute(
        select(model_version_datasets.c.version_id, datasets.c.name, dataset_versions.c.version)
        .join(
            dataset_versions, dataset_versions.c.id == model_version_datasets.c.dataset_version_id
        )
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(model_version_datasets.c.version_id.in_(pks))
        .order_by(datasets.c.name, dataset_versions.c.version)
    ):
        read[d.version_id].append((d.name, d.version))
    return [
        ModelVersion(
            name=row.model_name,
            version=row.version,
            flavor=row.flavor,
            status=row.status,
            description=row.description,
            run_id=row.run_id,
            signature=None if row.signature is None else json.loads(row.signature),
            environment=json.loads(row.environment),
            input_example=None if row.input_example is None else json.loads(row.input_example),
            files=files[row.id],
            aliases=tuple(aliases[row.id]),
            tags=tags[row.id],
            datasets=tuple(read[row.id]),
            created_at=row.created_at,
            created_by=row.created_by,
        )
        for row in rows
    ]


def _aliases_of(conn: Connection, model_pks: Iterable[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for a in conn.execute(
        select(model_aliases.c.model_id, model_aliases.c.alias, model_versions.c.version)
        .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
        .where(model_aliases.c.model_id.in_(list(model_pks)))
    ):
        out[a.model_id][a.alias] = a.version
    return out


def search_models(
    conn: Connection,
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    alias: str | None = None,
) -> list[RegisteredModel]:
    """Registered models whose name contains ``name``, with all ``tags``, having ``alias``."""
    query = select(registered_models).order_by(registered_models.c.name)
    if name:
        query = query.where(registered_models.c.name.contains(name, autoescape=True))
    for key, value in (tags or {}).items():
        query = query.where(
            select(registered_model_tags.c.model_id)
            .where(
                registered_model_tags.c.model_id == registered_models.c.id,
                registered_model_tags.c.key == key,
                registered_model_tags.c.value == value,
            )
            .exists()
        )
    if alias:
        query = query.where(
            select(model_aliases.c.model_id)
            .where(
                model_aliases.c.model_id == registered_models.c.id, model_aliases.c.alias == alias
            )
            .exists()
        )
    rows = conn.execute(query).all()
    pks = [row.id for row in rows]
    model_tags: dict[int, dict[str, str]] = defaultdict(dict)
    for t in conn.execute(
        select(registered_model_tags).where(registered_model_tags.c.model_id.in_(pks))
    ):
        model_tags[t.model_id][t.key] = t.value
    aliases = _aliases_of(conn, pks)
    return [
        RegisteredModel(
            name=row.name,
            description=row.description,
            tags=model_tags[row.id],
            aliases=dict(sorted(aliases[row.id].items())),
            latest_version=row.last_version or None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def get_model(conn: Connection, name: str) -> RegisteredModel:
    for found in search_models(conn, name=name):
        if found.name == name:
            return found
    raise NotFound("registered model", name, hint=_HINT)


def versions_of_run(conn: Connection, run_id: str) -> list[tuple[str, int]]:
    """The model versions a run produced, as (name, version)."""
    query = (
        select(registered_models.c.name, model_versions.c.version)
        .join(registered_models, registered_models.c.id == model_versions.c.model_id)
        .where(model_versions.c.run_id == run_id)
        .order_by(registered_models.c.name, model_versions.c.version)
    )
    return [(row.name, row.version) for row in conn.execute(query)]


def versions_trained_on(conn: Connection, dataset: str, version: int) -> list[tuple[str, int]]:
    """The model versions whose training runs had read ``dataset@version``."""
    query = (
        select(registered_models.c.name, model_versions.c.version)
        .join(registered_models, registered_models.c.id == model_versions.c.model_id)
        .join(model_version_datasets, model_version_datasets.c.version_id == model_versions.c.id)
        .join(
            dataset_versions, dataset_versions.c.id == model_version_datasets.c.dataset_version_id
        )
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == dataset, dataset_versions.c.version == version)
        .order_by(registered_models.c.name, model_versions.c.version)
    )
    return [(row.name, row.version) for row in conn.execute(query)]


def alias_history(conn: Connection, name: str) -> list[dict[str, Any]]:
    """Every alias move of a model, oldest first, from the audit trail."""
    query = (
        select(
            audit_events.c.time, audit_events.c.actor, audit_events.c.action, audit_events.c.payload
        )
        .where(
            audit_events.c.object_type == "model",
            audit_events.c.object_id == name,
            audit_events.c.action.in_(ALIAS_ACTIONS),
        )
        .order_by(audit_events.c.seq)
    )
    return [
        {"time": row.time, "actor": row.actor, "action": row.action, **json.loads(row.payload)}
        for row in conn.execute(query)
    ]


# ----------------------------------------------------------------- changes


def set_alias(tx: WriteTx, name: str, alias: str, version: int) -> int | None:
    """Point ``alias`` at ``version``; return the version it pointed at before, if any."""
    version_pk = _version_pk(tx.conn, name, version)
    model_pk = model_id(tx.conn, name)
    previous = _current_alias(tx.conn, model_pk, alias)
    if previous == version:
        return previous
    tx.conn.execute(
        _sql.upsert(
            tx.conn.dialect.name,
            model_aliases,
            index=("model_id", "alias"),
            update_columns=("version_id",),
        ),
        [{"model_id": model_pk, "alias": alias, "version_id": version_pk}],
    )
    tx.audit(
        "model.alias.set", "model", name, {"alias": alias, "previous": previous, "version": version}
    )
    return previous


def delete_alias(tx: WriteTx, name: str, alias: str) -> int:
    """Remove ``alias``; return the version it pointed at."""
    model_pk = model_id(tx.conn, name)
    previous = _current_alias(tx.conn, model_pk, alias)
    if previous is None:
        resolve_alias(tx.conn, name, alias)  # raises NotFound listing the aliases there are
    tx.conn.execute(
        delete(model_aliases).where(
            model_aliases.c.model_id == model_pk, model_aliases.c.alias == alias
        )
    )
    tx.audit(
        "model.alias.delete", "model", name, {"alias": alias, "previous": previous, "version": None}
    )
    assert previous is not None
    return previous


def _current_alias(conn: Connection, model_pk: int, alias: str) -> int | None:
    return conn.execute(
        select(model_versions.c.version)
        .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_pk, model_aliases.c.alias == alias)
        .with_for_update()
    ).scalar()


def set_status(tx: WriteTx, name: str, version: int, status: str) -> None:
    version_pk = _version_pk(tx.conn, name, version)
    tx.conn.execute(
        update(model_versions).where(model_versions.c.id == version_pk).values(status=status)
    )
    tx.audit("model.version.status", "model", f"{name}/{version}", {"status": status})


def update_model(
    tx: WriteTx, name: str, *, description: str | None, tags: Mapping[str, str]
) -> None:
    """Set the model's description (when given) and upsert its tags."""
    model_pk = model_id(tx.conn, name)
    if description is not None:
        tx.conn.execute(
            update(registered_models)
            .where(registered_models.c.id == model_pk)
            .values(description=description, updated_at=now_ms())
        )
    if tags:
        tx.conn.execute(
            _sql.upsert(
                tx.conn.dialect.name,
                registered_model_tags,
                index=("model_id", "key"),
                update_columns=("value",),
            ),
            [{"model_id": model_pk, "key": k, "value": v} for k, v in tags.items()],
        )
    tx.audit("model.update", "model", name, {"description": description, "tags": dict(tags)})
