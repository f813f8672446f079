"""Engines, transactions and migrations for SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing later
with a deadlock. PostgreSQL goes through psycopg 3 with a pre-pinged pool.
Migrations run once per store, serialised across processes: a file lock beside
a SQLite file, an advisory lock on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from shipyard.errors import ConfigError, StoreUnavailable
from shipyard.store.migrations import HEAD_REVISION

_SQLITE_BUSY_TIMEOUT_S = 60.0
_WRITE = "shipyard_write"


def normalise_uri(uri: str) -> str:
    """Accept the spellings people use and pick the drivers Shipyard supports."""
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    if uri.startswith(("sqlite://", "postgresql+psycopg://")):
        return uri
    raise ConfigError(
        f"Unsupported metadata store URI {uri!r}.",
        hint="Use sqlite:///path/to/shipyard.db or postgresql+psycopg://user@host:5432/db.",
    )


def make_engine(uri: str) -> Engine:
    url = make_url(normalise_uri(uri))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            try:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"Cannot create the folder of the SQLite store {url.database!r}: {exc.strerror}.",
                    hint="Point SHIPYARD_URI (or SHIPYARD_HOME) at a writable folder.",
                ) from exc
        engine = create_engine(
            url,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    # A forked child must not reuse its parent's sockets or file handles.
    engine_ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _dispose_in_child(engine_ref))
    return engine


def _dispose_in_child(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


def _sqlite_on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" event emit BEGIN, not the driver's own guesswork.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # NORMAL under WAL survives a killed process; only a power cut can lose the last commits.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


@contextlib.contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection inside one transaction, committed on success, rolled back on error."""
    try:
        with engine.connect() as conn:
            if write:
                conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn
    except sa_exc.OperationalError as exc:
        raise StoreUnavailable(
            f"The metadata store at {_redact(engine)} failed: {exc.orig}.",
            hint="Check that the database is reachable and its file or server is writable.",
        ) from exc


def _redact(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# ---------------------------------------------------------------------------- migrations

_migrate_lock = threading.Lock()


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except sa_exc.DatabaseError:
        return None


def is_up_to_date(engine: Engine) -> bool:
    with transaction(engine, write=False) as conn:
        return current_revision(conn) == HEAD_REVISION


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest revision; return whether this call migrated.

    Safe when many processes call it at once: exactly one migrates, the others
    wait for it and find the schema current.
    """
    if is_up_to_date(engine):
        return False
    with _migrate_lock, _cross_process_lock(engine) as conn:
        if current_revision(conn) == HEAD_REVISION:
            return False
        _run_alembic(conn)
        return True


@contextlib.contextmanager
def _cross_process_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "sqlite":
        from filelock import FileLock

        database = engine.url.database
        if not database or database == ":memory:":
            with engine.connect() as conn:
                yield conn
            return
        with FileLock(f"{database}.migrate.lock", timeout=300), engine.connect() as conn:
            yield conn
        return
    with engine.connect() as conn:
        key = conn.execute(
            text("SELECT hashtext('shipyard-migrate:' || current_database() || current_schema())")
        ).scalar()
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "shipyard.store:migrations")
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    conn.commit()
