"""Schema migrations: one revision chain, applied once, matching the declared schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from shipyard.store import open_store
from shipyard.store._schema import metadata
from shipyard.store.migrations import HEAD_REVISION


def test_head_revision_constant_matches_alembic_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", "shipyard.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_fresh_store_migrates_once_then_is_current(store_uri: str) -> None:
    store = open_store(store_uri)
    assert store.upgrade() is True
    assert store.upgrade() is False


def test_migrated_schema_matches_declared_tables(store_uri: str) -> None:
    store = open_store(store_uri)
    store.upgrade()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_closed_store_refuses_work_and_open_store_gives_a_fresh_one(store_uri: str) -> None:
    import pytest

    from shipyard.errors import StoreUnavailable

    store = open_store(store_uri)
    store.upgrade()
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"), store.read():
        pass
    reopened = open_store(store_uri)
    assert reopened is not store
    with reopened.read() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
