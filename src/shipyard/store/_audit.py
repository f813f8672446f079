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
_MOVE_HEAD_FROM = (
    update(audit_head)
    .where(
        audit_head.c.id == 1,
        audit_head.c.seq == bindparam("old_seq"),
        audit_head.c.hash == bindparam("old_hash"),
    )
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
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


Tip = tuple[int, str]  # (seq, hash) of the chain's last event


def append(
    conn: Connection, actor: str, events: list[PendingEvent], guess: Tip | None
) -> Tip | None:
    """Chain ``events`` after the current head, in the caller's transaction; return the new tip.

    ``guess`` is the tip this process saw last. Moving the head only if it is
    still there saves a read in the common case of one busy writer; when
    another writer moved it, the head is read under a lock and the events are
    chained after it. Either way no two transactions chain after one event.
    """
    if not events:
        return guess
    now = int(time.time() * 1000)
    if guess is not None:
        rows, tip = _chain(guess, actor, events, now)
        moved = conn.execute(
            _MOVE_HEAD_FROM,
            {"new_seq": tip[0], "new_hash": tip[1], "old_seq": guess[0], "old_hash": guess[1]},
        )
        if moved.rowcount == 1:
            conn.execute(_INSERT_EVENTS, rows)
            return tip
    head = conn.execute(_LOCK_HEAD).one()
    rows, tip = _chain((head.seq, head.hash), actor, events, now)
    conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_MOVE_HEAD, {"new_seq": tip[0], "new_hash": tip[1]})
    return tip


def _chain(
    after: Tip, actor: str, events: list[PendingEvent], now: int
) -> tuple[list[dict[str, Any]], Tip]:
    seq, prev_hash = after
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
    return rows, (seq, prev_hash)


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
