"""Check and read the hash-chained audit trail.

:func:`verify` walks the chain in ``seq`` order, a batch at a time, and
recomputes everything a stored event promises:

1. ``seq`` runs 1, 2, 3, ... with no gap (a gap is a deleted event);
2. each ``prev_hash`` is the previous event's ``hash`` (the first one's is
   the genesis hash, 64 zeros), so events cannot be reordered or inserted;
3. ``payload_digest`` is the digest of the stored payload;
4. ``hash`` is the hash of the event's fields, so no field was edited;
5. the last event is the one the ``audit_head`` row points at (seq and hash),
   so a truncated tail, or events added behind the store's back, show.

It stops at the first event that breaks a promise and names it in the
:class:`AuditReport`. A hash chain without a secret detects accidents and
clumsy edits; someone who rewrites every later event *and* the head row is
not detected. Copy the head hash somewhere else to anchor it for real.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools

from sqlalchemy.exc import NoResultFound

from shipyard.errors import InvalidInput
from shipyard.store import Store, _audit
from shipyard.store.entities import AuditEvent

__all__ = ["AuditReport", "events", "verify"]

BATCH_SIZE = 5000


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """The outcome of :func:`verify`.

    ``checked`` counts the events that passed every check; on failure, those
    before ``first_bad_seq``. ``reason`` says what is wrong there.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.checked} events"
        return f"audit chain BROKEN at event {self.first_bad_seq}: {self.reason}"


class _Broken(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason


def verify(store: Store, *, batch_size: int = BATCH_SIZE) -> AuditReport:
    """Recompute the audit chain of ``store``; report the first event that fails."""
    checked = 0
    with store.read() as conn:
        # The head is read first: every event up to it had committed when it was
        # read, so later appends by other writers cannot pass for a truncation.
        head_before = _read_head(conn)
        if head_before is None:
            return AuditReport(False, 0, 1, _HEAD_MISSING)
        prev_seq, prev_hash = 0, _audit.GENESIS_HASH
        try:
            for event in _audit.iter_events(conn, batch_size=batch_size):
                _check_event(event, prev_seq, prev_hash)
                if event.seq == head_before[0] and event.hash != head_before[1]:
                    raise _Broken(
                        event.seq,
                        f"event {event.seq}: the audit head points here with hash "
                        f"{_short(head_before[1])}, but the event's hash is "
                        f"{_short(event.hash)} (head edited, or events rewritten?)",
                    )
                prev_seq, prev_hash = event.seq, event.hash
                checked += 1
            _check_tip(prev_seq, prev_hash, head_before, _read_head(conn))
        except _Broken as broken:
            return AuditReport(False, min(checked, broken.seq - 1), broken.seq, broken.reason)
    return AuditReport(True, checked)


def events(
    store: Store,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int | None = None,
    *,
    newest: bool = False,
) -> list[AuditEvent]:
    """Audit events in chain order, optionally only those about one object.

    ``limit`` keeps the first ``limit`` events, or the last ones with
    ``newest=True`` (still oldest first). The table is read in batches.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInput(
            f"limit must be a whole number >= 0 or None. Got {limit!r} instead.",
            hint="Pass limit=50, for example.",
        )
    if object_id is not None and object_type is None:
        raise InvalidInput(
            f"object_id {object_id!r} was given without object_type.",
            hint="Name the type too, e.g. object_type='experiment', object_id='1'.",
        )
    if limit == 0:
        return []
    with store.read() as conn:
        stream = _audit.iter_events(
            conn,
            object_type=object_type,
            object_id=object_id,
            batch_size=min(limit, BATCH_SIZE) if limit and not newest else BATCH_SIZE,
        )
        if limit is None:
            return list(stream)
        if newest:
            return list(collections.deque(stream, maxlen=limit))
        return list(itertools.islice(stream, limit))


# ----------------------------------------------------------------------------- checks

_HEAD_MISSING = (
    "the audit_head row is missing (deleted?), so the chain's tip cannot be checked; "
    "restore the database from a backup"
)


def _read_head(conn) -> tuple[int, str] | None:  # type: ignore[no-untyped-def]
    try:
        return _audit.head(conn)
    except NoResultFound:
        return None


def _check_event(event: AuditEvent, prev_seq: int, prev_hash: str) -> None:
    seq = event.seq
    expected = prev_seq + 1
    if seq != expected:
        missing = f"event {expected}" if seq == expected + 1 else f"events {expected}..{seq - 1}"
        raise _Broken(
            expected,
            f"event {expected}: missing, the chain jumps from {prev_seq} to {seq} "
            f"({missing} deleted?)",
        )
    if event.prev_hash != prev_hash:
        previous = f"event {prev_seq}'s hash" if prev_seq else "the genesis hash"
        raise _Broken(
            seq,
            f"event {seq}: its prev_hash {_short(event.prev_hash)} is not {previous} "
            f"{_short(prev_hash)} (events reordered, inserted or replaced?)",
        )
    if _audit.payload_digest(event.payload) != event.payload_digest:
        raise _Broken(seq, f"event {seq}: payload does not match its digest (edited?)")
    recomputed = _audit.event_hash(
        seq=event.seq,
        event_id=event.event_id,
        time=event.time,
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        payload_digest=event.payload_digest,
        prev_hash=event.prev_hash,
    )
    if recomputed != event.hash:
        raise _Broken(seq, f"event {seq}: hash does not match its contents (edited?)")


def _check_tip(
    last_seq: int,
    last_hash: str,
    head_before: tuple[int, str],
    head_after: tuple[int, str] | None,
) -> None:
    """Compare the last event read with the head row, read before and after the walk.

    Events up to ``head_before`` had committed before the walk began, so fewer
    of them is a truncated tail. Other writers may append during the walk, so
    ``head_after`` may lie beyond the last event read; it may not lie before it.
    """
    if last_seq < head_before[0]:
        first_missing = last_seq + 1
        span = (
            f"event {first_missing} is"
            if first_missing == head_before[0]
            else f"events {first_missing}..{head_before[0]} are"
        )
        raise _Broken(
            first_missing,
            f"event {first_missing}: missing, the audit head says the chain ends at "
            f"{head_before[0]} but it ends at {last_seq} ({span} gone: truncated tail?)",
        )
    if head_after is None:
        raise _Broken(last_seq + 1, _HEAD_MISSING)
    head_seq, head_hash = head_after
    if last_seq > head_seq:
        raise _Broken(
            head_seq + 1,
            f"event {head_seq + 1}: lies beyond the audit head (seq {head_seq}); "
            f"it was added outside Shipyard, or the head was edited",
        )
    if last_seq == head_seq and last_hash != head_hash:
        if last_seq == 0:
            raise _Broken(
                1,
                f"event 1: the chain is empty but the audit head's hash is "
                f"{_short(head_hash)}, not the genesis hash (events deleted, or head edited?)",
            )
        raise _Broken(
            last_seq,
            f"event {last_seq}: the audit head points here with hash {_short(head_hash)}, "
            f"but the event's hash is {_short(last_hash)} (head edited, or events rewritten?)",
        )


def _short(digest: str) -> str:
    return digest[:12] + "…" if len(digest) > 12 else digest
