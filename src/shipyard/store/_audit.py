"""The audit chain: each event's hash covers its fields and the previous hash.

Appends happen inside the transaction of the change they record, after the
chain's head row is locked, so concurrent writers queue instead of forking the
chain; the head row also anchors the tip, so a truncated tail is detected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from shipyard.store._schema import audit_events, audit_head
from shipyard.store.entities import AuditEvent

GENESIS_HASH = "0" * 64

_LOCK_HEAD = (
    select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
)
_INSERT_EVENTS = audit_events.insert()
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


@dataclasses.dataclass(frozen=True)
class PendingEvent:
    action: str
    object_type: str
    object_id: str
    payload: Mapping[str, Any]


def canonical_json(payload: Mapping[str, Any]) -> str:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def payload_digest(payload_json: str) -> str:
    return "sha256:" + hashlib.sha256(payload_json.encode()).hexdigest()


def event_hash(
    *,
    seq: int,
    event_id: str,
    time: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    payload_digest: str,
    prev_hash: str,
) -> str:
    fields = [seq, event_id, time, actor, action, object_type, object_id, payload_digest, prev_hash]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def append(conn: Connection, actor: str, events: list[PendingEvent]) -> None:
    """Chain ``events`` after the current head, in the caller's transaction."""
    if not events:
        return
    head = conn.execute(_LOCK_HEAD).one()
    seq, prev_hash = head.seq, head.hash
    now = int(time.time() * 1000)
    rows = []
    for pending in events:
        seq += 1
        body = canonical_json(pending.payload)
        row = {
            "seq": seq,
            "event_id": uuid.uuid4().hex,
            "time": now,
            "actor": actor,
            "action": pending.action,
            "object_type": pending.object_type,
            "object_id": pending.object_id,
            "payload_digest": payload_digest(body),
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = event_hash(**row)
        row["payload"] = body
        rows.append(row)
    conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev_hash})


def head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).one()
    return row.seq, row.hash


def iter_events(
    conn: Connection,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    batch_size: int = 5000,
) -> Iterator[AuditEvent]:
    """Events in chain order, fetched in batches (keyset pagination on ``seq``)."""
    after = 0
    while True:
        query = select(audit_events).where(audit_events.c.seq > after)
        if object_type is not None:
            query = query.where(audit_events.c.object_type == object_type)
        if object_id is not None:
            query = query.where(audit_events.c.object_id == object_id)
        rows = conn.execute(query.order_by(audit_events.c.seq).limit(batch_size)).all()
        for row in rows:
            yield AuditEvent(**row._asdict())
        if len(rows) < batch_size:
            return
        after = rows[-1].seq
