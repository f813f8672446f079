"""The metadata store: one engine per URI and process, transactions, audit on write."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from shipyard.errors import StoreUnavailable
from shipyard.store import _audit, _engine


class WriteTx:
    """One write transaction. Audit events recorded here commit with the change."""

    def __init__(self, conn: Connection, actor: str, store: Store) -> None:
        self.conn = conn
        self.actor = actor
        self._store = store
        self._events: list[_audit.PendingEvent] = []

    def audit(
        self, action: str, object_type: str, object_id: str, payload: Mapping[str, Any]
    ) -> None:
        self._events.append(_audit.PendingEvent(action, object_type, object_id, payload))

    def _flush_audit(self) -> _audit.Tip | None:
        tip = _audit.append(self.conn, self.actor, self._events, self._store._audit_tip)
        self._events.clear()
        return tip


class Store:
    """A migrated metadata database reachable through read and write transactions."""

    def __init__(self, uri: str) -> None:
        self.uri = _engine.normalise_uri(uri)
        self.engine: Engine = _engine.make_engine(self.uri)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        # The audit chain's tip as this process last wrote it: a guess, checked on use.
        self._audit_tip: _audit.Tip | None = None
        # Transactions under way, so close() can wait for them before dropping the pool.
        self._in_flight = 0
        self._closed = False
        self._idle = threading.Condition()

    def upgrade(self) -> bool:
        """Migrate to the newest schema; return whether this call changed anything."""
        with self._schema_lock:
            migrated = _engine.upgrade(self.engine)
            self._schema_ready = True
            return migrated

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            self.upgrade()

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[None]:
        with self._idle:
            if self._closed:
                raise StoreUnavailable(
                    f"The metadata store {self.uri!r} was closed in this process.",
                    hint="Open it again with a new Client.",
                )
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._in_use():
            self._ensure_schema()
            with _engine.transaction(self.engine, write=False) as conn:
                yield conn

    @contextlib.contextmanager
    def write(self, actor: str) -> Iterator[WriteTx]:
        with self._in_use():
            self._ensure_schema()
            with _engine.transaction(self.engine, write=True) as conn:
                tx = WriteTx(conn, actor, self)
                yield tx
                tip = tx._flush_audit()
        # Committed: only now is the new tip a good guess for the next append.
        self._audit_tip = tip

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new transactions, wait for those under way, then close every connection.

        Closing while a transaction still holds a connection would leave that
        connection to be closed whenever the garbage collector gets to it.
        """
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)
        with _stores_lock:
            if _stores.get(self.uri) is self:
                del _stores[self.uri]
        self.engine.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(uri: str) -> Store:
    """The process-wide Store for ``uri`` (engines and pools are shared)."""
    key = _engine.normalise_uri(uri)
    with _stores_lock:
        store = _stores.get(key)
        if store is None or store.closed:
            store = _stores[key] = Store(key)
        return store
