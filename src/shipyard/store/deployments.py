"""Deployments repository: what a serving process answers for, kept in the store.

A deployment outlives its processes: ``shipyard serve --deployment NAME`` (and
the main server's ``/deployments/{name}/predict``) read it, and pick up a
change of it while they run. The URIs come here parsed and normalised
(``models:/NAME/N`` or ``models:/NAME@ALIAS``) and checked to resolve in the
same transaction; this module checks what only the whole definition shows: a
canary share needs a canary, and a canary or shadow must differ from the main
model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import exc as sa_exc
from sqlalchemy import update as sql_update

from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store._schema import deployments
from shipyard.store._store import WriteTx
from shipyard.store.runs import now_ms

_HINT = "List deployments with `shipyard deployments list`."
#: What ``update`` may change.
FIELDS = ("model_uri", "canary_uri", "canary_percent", "shadow_uri", "description")


@dataclasses.dataclass(frozen=True)
class Deployment:
    """A named endpoint: the model it serves, an optional canary taking ``canary_percent``
    of the requests, and an optional shadow that predicts on every request unseen."""

    name: str
    model_uri: str
    canary_uri: str | None
    canary_percent: float | None
    shadow_uri: str | None
    description: str | None
    created_at: int  # ms since the epoch
    created_by: str
    updated_at: int


def check_percent(percent: Any) -> float:
    """A canary share: a number strictly between 0 and 100."""
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int | float)
        or not math.isfinite(percent)
        or not 0 < percent < 100
    ):
        raise InvalidInput(
            f"canary_percent is the share of requests the canary answers, a number greater "
            f"than 0 and less than 100; got {percent!r}.",
            hint="Pass e.g. canary_percent=10; to send it everything, make it the model instead.",
        )
    return float(percent)


def check_definition(
    model_uri: str, canary_uri: str | None, canary_percent: float | None, shadow_uri: str | None
) -> None:
    """What only the whole definition shows: the share goes with a canary, and a canary or
    shadow that is the main model would compare it with itself."""
    if canary_uri is None and canary_percent is not None:
        raise InvalidInput(
            f"canary_percent={canary_percent:g} needs a canary model to send that share to.",
            hint="Give the canary as well (--canary models:/NAME@challenger), or leave the "
            "share out.",
        )
    if canary_uri is not None and canary_percent is None:
        raise InvalidInput(
            f"The canary {canary_uri} needs canary_percent, the share of requests it answers.",
            hint="Pass e.g. canary_percent=10 (--canary-percent 10).",
        )
    for role, uri in (("canary", canary_uri), ("shadow", shadow_uri)):
        if uri == model_uri:
            raise InvalidInput(
                f"The {role} is {uri}, the deployment's own model.",
                hint=f"Name another version or alias as the {role}, e.g. models:/NAME@challenger.",
            )


def _deployment(row: Row) -> Deployment:
    return Deployment(
        name=row.name,
        model_uri=row.model_uri,
        canary_uri=row.canary_uri,
        canary_percent=row.canary_percent,
        shadow_uri=row.shadow_uri,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def _payload(found: Deployment) -> dict[str, Any]:
    return {field: getattr(found, field) for field in FIELDS}


def create(
    tx: WriteTx,
    name: str,
    *,
    model_uri: str,
    canary_uri: str | None,
    canary_percent: float | None,
    shadow_uri: str | None,
    description: str | None,
) -> Deployment:
    check_definition(model_uri, canary_uri, canary_percent, shadow_uri)
    now = now_ms()
    values = {
        "name": name,
        "model_uri": model_uri,
        "canary_uri": canary_uri,
        "canary_percent": canary_percent,
        "shadow_uri": shadow_uri,
        "description": description,
        "created_at": now,
        "created_by": tx.actor,
        "updated_at": now,
    }
    try:
        with tx.conn.begin_nested():
            tx.conn.execute(insert(deployments).values(**values))
    except sa_exc.IntegrityError as exc:
        raise AlreadyExists(
            "deployment",
            name,
            hint=f"Change it with `shipyard deployments update {name} ...`, or pick another name.",
        ) from exc
    created = Deployment(**values)
    tx.audit("deployment.create", "deployment", name, _payload(created))
    return created


def _row(conn: Connection, name: str, *, lock: bool = False) -> Row:
    query = select(deployments).where(deployments.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("deployment", name, hint=_HINT)
    return row


def get(conn: Connection, name: str) -> Deployment:
    return _deployment(_row(conn, name))


def list_all(conn: Connection) -> list[Deployment]:
    return [
        _deployment(row) for row in conn.execute(select(deployments).order_by(deployments.c.name))
    ]


def update(tx: WriteTx, name: str, changes: Mapping[str, Any]) -> Deployment:
    """Apply ``changes`` (a subset of :data:`FIELDS`; None removes an optional one).

    Removing the canary removes its share with it. The merged definition is
    checked as a whole; an update that changes nothing writes nothing.
    """
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"A deployment has no field(s) {unknown}; it has {list(FIELDS)}.")
    current = _deployment(_row(tx.conn, name, lock=True))
    merged = _payload(current) | dict(changes)
    if "canary_uri" in changes and changes["canary_uri"] is None:
        merged["canary_percent"] = None
    check_definition(
        merged["model_uri"], merged["canary_uri"], merged["canary_percent"], merged["shadow_uri"]
    )
    changed = {k: v for k, v in merged.items() if getattr(current, k) != v}
    if not changed:
        return current
    now = now_ms()
    tx.conn.execute(
        sql_update(deployments).where(deployments.c.name == name).values(**changed, updated_at=now)
    )
    tx.audit(
        "deployment.update",
        "deployment",
        name,
        {"changed": changed, "previous": {k: getattr(current, k) for k in changed}},
    )
    return dataclasses.replace(current, **changed, updated_at=now)


def delete(tx: WriteTx, name: str) -> Deployment:
    """Remove the definition; its prediction log stays where it is."""
    current = _deployment(_row(tx.conn, name, lock=True))
    tx.conn.execute(sql_delete(deployments).where(deployments.c.name == name))
    tx.audit("deployment.delete", "deployment", name, _payload(current))
    return current
