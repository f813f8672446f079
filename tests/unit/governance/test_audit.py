"""The audit chain: a clean chain verifies; every kind of tampering is named at its seq."""

from __future__ import annotations

import json
import multiprocessing

import pytest
import sqlalchemy as sa

from shipyard.errors import AlreadyExists, InvalidInput
from shipyard.governance import AuditReport, events, verify
from shipyard.store import Store, experiments, open_store
from shipyard.store._audit import GENESIS_HASH, event_hash, payload_digest
from shipyard.store._schema import audit_events, audit_head


def _store_with(store_uri: str, n: int) -> Store:
    store = open_store(store_uri)
    for i in range(1, n + 1):
        with store.write("alice") as tx:
            experiments.create(tx, f"e{i}")
    return store


def _execute(store: Store, *statements: sa.Executable) -> None:
    """Tamper with the tables directly, as someone with database access could."""
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def _row(store: Store, seq: int) -> dict:
    with store.engine.connect() as conn:
        return dict(
            conn.execute(sa.select(audit_events).where(audit_events.c.seq == seq)).one()._mapping
        )


def _set(seq: int, **values: object) -> sa.Executable:
    return sa.update(audit_events).where(audit_events.c.seq == seq).values(**values)


def _assert_broken(report: AuditReport, seq: int, *words: str) -> None:
    assert not report.ok
    assert report.first_bad_seq == seq, report
    assert report.checked == seq - 1
    assert report.reason is not None
    assert report.reason.startswith(f"event {seq}:"), report.reason
    for word in words:
        assert word in report.reason, report.reason


# ------------------------------------------------------------------------ clean chains


def test_an_empty_store_verifies(store_uri: str) -> None:
    report = verify(open_store(store_uri))
    assert report == AuditReport(ok=True, checked=0, first_bad_seq=None, reason=None)
    assert str(report) == "audit chain OK: 0 events"


def test_a_clean_chain_verifies(store_uri: str) -> None:
    store = _store_with(store_uri, 10)
    report = verify(store)
    assert report.ok
    assert report.checked == 10
    assert report.first_bad_seq is None
    assert report.reason is None
    assert str(report) == "audit chain OK: 10 events"


def test_the_chain_links_from_genesis_to_the_head(store_uri: str) -> None:
    store = _store_with(store_uri, 3)
    listed = events(store)
    assert [e.seq for e in listed] == [1, 2, 3]
    assert listed[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in listed[1:]] == [e.hash for e in listed[:-1]]
    with store.engine.connect() as conn:
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one()
    assert (head.seq, head.hash) == (3, listed[-1].hash)


def test_verify_streams_in_batches_across_boundaries(store_uri: str) -> None:
    store = _store_with(store_uri, 10)
    assert verify(store, batch_size=3) == AuditReport(True, 10)
    _execute(store, sa.delete(audit_events).where(audit_events.c.seq == 7))
    _assert_broken(verify(store, batch_size=3), 7, "missing")


def test_events_records_who_did_what_to_which_object(store_uri: str) -> None:
    store = _store_with(store_uri, 2)
    first, second = events(store)
    assert (first.actor, first.action, first.object_type) == (
        "alice",
        "experiment.create",
        "experiment",
    )
    assert json.loads(first.payload) == {"name": "e1", "description": None}
    assert first.object_id != second.object_id


def test_events_filters_by_object_and_limits(store_uri: str) -> None:
    store = _store_with(store_uri, 5)
    third = events(store)[2]
    assert events(store, "experiment", third.object_id) == [third]
    assert len(events(store, "experiment")) == 5
    assert events(store, "run") == []
    assert events(store, "experiment", "no-such-id") == []
    assert [e.seq for e in events(store, limit=2)] == [1, 2]
    assert [e.seq for e in events(store, limit=2, newest=True)] == [4, 5]
    assert [e.seq for e in events(store, limit=50)] == [1, 2, 3, 4, 5]
    assert events(store, limit=0) == []


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
def test_events_rejects_a_bad_limit(store_uri: str, limit: object) -> None:
    store = open_store(store_uri)
    with pytest.raises(InvalidInput, match="limit must be a whole number"):
        events(store, limit=limit)  # type: ignore[arg-type]


def test_events_rejects_an_object_id_without_a_type(store_uri: str) -> None:
    with pytest.raises(InvalidInput, match="without object_type"):
        events(open_store(store_uri), object_id="1")


# ------------------------------------------------------------------------- tampering


def test_an_edited_payload_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 6)
    _execute(store, _set(4, payload='{"description":null,"name":"renamed"}'))
    _assert_broken(verify(store), 4, "payload does not match its digest")


def test_an_edited_payload_with_a_fresh_digest_breaks_the_hash(store_uri: str) -> None:
    store = _store_with(store_uri, 6)
    body = '{"description":null,"name":"renamed"}'
    _execute(store, _set(4, payload=body, payload_digest=payload_digest(body)))
    _assert_broken(verify(store), 4, "hash does not match its contents")


def test_an_edited_actor_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 6)
    _execute(store, _set(5, actor="mallory"))
    _assert_broken(verify(store), 5, "hash does not match its contents (edited?)")


def test_an_edited_hash_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 6)
    _execute(store, _set(2, hash="f" * 64))
    _assert_broken(verify(store), 2, "hash does not match its contents")


def test_an_event_rewritten_with_a_valid_hash_breaks_the_next_link(store_uri: str) -> None:
    store = _store_with(store_uri, 6)
    row = _row(store, 3)
    row["actor"] = "mallory"
    fields = {k: v for k, v in row.items() if k not in ("hash", "payload")}
    _execute(store, _set(3, actor="mallory", hash=event_hash(**fields)))
    _assert_broken(verify(store), 4, "prev_hash", "event 3's hash")


def test_a_deleted_middle_event_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 8)
    _execute(store, sa.delete(audit_events).where(audit_events.c.seq == 4))
    report = verify(store)
    _assert_broken(report, 4, "missing", "jumps from 3 to 5", "deleted?")


def test_several_deleted_events_name_the_first(store_uri: str) -> None:
    store = _store_with(store_uri, 8)
    _execute(store, sa.delete(audit_events).where(audit_events.c.seq.in_([3, 4, 5])))
    _assert_broken(verify(store), 3, "events 3..5 deleted?")


def test_a_deleted_first_event_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 3)
    _execute(store, sa.delete(audit_events).where(audit_events.c.seq == 1))
    _assert_broken(verify(store), 1, "missing")


def test_swapped_events_are_named_at_the_first(store_uri: str) -> None:
    store = _store_with(store_uri, 6)
    third, fourth = _row(store, 3), _row(store, 4)
    content = [c.name for c in audit_events.columns if c.name not in ("seq", "event_id")]
    _execute(
        store,
        _set(3, event_id="swap", **{c: fourth[c] for c in content}),
        _set(4, event_id=third["event_id"], **{c: third[c] for c in content}),
        _set(3, event_id=fourth["event_id"]),
    )
    _assert_broken(verify(store), 3, "prev_hash", "reordered")


def test_swapped_contents_with_kept_links_are_named(store_uri: str) -> None:
    """Swap what happened but leave each row's chain fields in place."""
    store = _store_with(store_uri, 6)
    third, fourth = _row(store, 3), _row(store, 4)
    content = ["object_id", "payload", "payload_digest"]
    _execute(
        store,
        _set(3, **{c: fourth[c] for c in content}),
        _set(4, **{c: third[c] for c in content}),
    )
    _assert_broken(verify(store), 3, "hash does not match its contents")


def test_a_truncated_tail_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 10)
    _execute(store, sa.delete(audit_events).where(audit_events.c.seq >= 8))
    report = verify(store)
    _assert_broken(report, 8, "missing", "ends at 10", "ends at 7", "events 8..10", "truncated")
    assert report.checked == 7


def test_a_chain_truncated_to_nothing_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 2)
    _execute(store, sa.delete(audit_events))
    _assert_broken(verify(store), 1, "truncated")


def test_an_edited_head_hash_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 5)
    _execute(store, sa.update(audit_head).values(hash="a" * 64))
    _assert_broken(verify(store), 5, "audit head", "head edited")


def test_a_head_moved_back_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 5)
    _execute(store, sa.update(audit_head).values(seq=3))
    _assert_broken(verify(store), 3, "audit head points here")


def test_a_head_moved_back_consistently_leaves_events_beyond_it(store_uri: str) -> None:
    store = _store_with(store_uri, 5)
    _execute(store, sa.update(audit_head).values(seq=3, hash=_row(store, 3)["hash"]))
    _assert_broken(verify(store), 4, "beyond the audit head")


def test_a_head_moved_forward_is_a_truncation(store_uri: str) -> None:
    store = _store_with(store_uri, 5)
    _execute(store, sa.update(audit_head).values(seq=9))
    _assert_broken(verify(store), 6, "events 6..9 are gone")


def test_an_edited_genesis_head_is_named(store_uri: str) -> None:
    store = open_store(store_uri)
    store.upgrade()
    _execute(store, sa.update(audit_head).values(hash="b" * 64))
    _assert_broken(verify(store), 1, "not the genesis hash")


def test_a_deleted_head_row_is_named(store_uri: str) -> None:
    store = _store_with(store_uri, 2)
    _execute(store, sa.delete(audit_head))
    report = verify(store)
    assert not report.ok
    assert report.first_bad_seq == 1
    assert "audit_head row is missing" in (report.reason or "")


def test_the_first_problem_wins(store_uri: str) -> None:
    store = _store_with(store_uri, 8)
    _execute(
        store,
        _set(6, actor="mallory"),
        _set(3, payload="{}"),
        sa.delete(audit_events).where(audit_events.c.seq == 8),
    )
    _assert_broken(verify(store), 3, "payload")


# ------------------------------------------------------------------ same transaction


def test_a_failed_change_leaves_no_event(store_uri: str) -> None:
    store = _store_with(store_uri, 1)
    with pytest.raises(AlreadyExists), store.write("bob") as tx:
        experiments.create(tx, "e1")
    assert [e.actor for e in events(store)] == ["alice"]
    assert verify(store) == AuditReport(True, 1)


def test_a_change_rolled_back_later_in_its_transaction_leaves_no_event(store_uri: str) -> None:
    store = _store_with(store_uri, 1)

    def create_then_fail() -> None:
        with store.write("bob") as tx:
            experiments.create(tx, "e2")
            raise RuntimeError("the caller failed after the change")

    with pytest.raises(RuntimeError, match="caller failed"):
        create_then_fail()
    with store.read() as conn:
        assert experiments.find(conn, "e2") is None
    assert len(events(store)) == 1
    assert verify(store).ok


# --------------------------------------------------------------------- concurrency

PROCESSES = 8
PER_PROCESS = 25


def _create_many(uri: str, worker: int, barrier, results) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    store = open_store(uri)
    barrier.wait(120)  # everyone starts writing at once
    for i in range(PER_PROCESS):
        try:
            with store.write(f"worker-{worker}") as tx:
                experiments.create(tx, f"w{worker}-e{i}")
        except Exception as exc:  # counted and reported by the parent
            errors.append(f"{type(exc).__name__}: {exc}")
    store.close()
    results.put((worker, errors))


def test_concurrent_writers_queue_on_one_chain(store_uri: str) -> None:
    store = open_store(store_uri)
    store.upgrade()  # so the workers race on appends, not on migrating
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES + 1), ctx.Queue()
    workers = [
        ctx.Process(target=_create_many, args=(store_uri, n, barrier, results))
        for n in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    try:
        barrier.wait(120)
        # Verifying while others append must never mistake their appends for tampering.
        while_writing = []
        while any(p.is_alive() for p in workers) and len(while_writing) < 200:
            while_writing.append(verify(store))
        outcomes = dict(results.get(timeout=240) for _ in workers)
    finally:
        for process in workers:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in workers] == [0] * PROCESSES

    assert {w: errs for w, errs in outcomes.items() if errs} == {}
    assert [r for r in while_writing if not r.ok] == []
    listed = events(store)
    assert [e.seq for e in listed] == list(range(1, PROCESSES * PER_PROCESS + 1))
    assert len({e.prev_hash for e in listed}) == len(listed)  # no two events share a parent
    assert {e.actor for e in listed} == {f"worker-{n}" for n in range(PROCESSES)}
    assert verify(store) == AuditReport(True, PROCESSES * PER_PROCESS)
