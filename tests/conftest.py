"""Shared fixtures: a clean environment, and a fresh metadata store per test.

``store_uri`` runs a test on SQLite and on PostgreSQL. PostgreSQL is looked for
at ``SHIPYARD_TEST_PG_URI`` (default: the local server, database ``test``);
when it cannot be reached its tests are skipped with the reason, except under
``CI=true``, where a missing PostgreSQL is a failure. ``--backend`` picks one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

DEFAULT_PG_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=(*BACKENDS, "all"),
        default="all",
        help="Metadata store(s) to run the store-backed tests on (default: all).",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_uri" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        backends = BACKENDS if chosen == "all" else (chosen,)
        metafunc.parametrize("backend", backends, indirect=False)


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("SHIPYARD_") and name != "SHIPYARD_TEST_PG_URI":
            monkeypatch.delenv(name)
    # No test may read or write the user's own config or working directory store.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))


@pytest.fixture
def fs_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Records every os.fsync (with the path of its descriptor) and os.replace, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _pg_admin_uri() -> str:
    return os.environ.get("SHIPYARD_TEST_PG_URI", DEFAULT_PG_URI)


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(_pg_admin_uri(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any failure to connect means "not reachable"
        reason = f"PostgreSQL not reachable at {_pg_admin_uri()}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL is required)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_uri(pg_engine: sa.Engine) -> Iterator[str]:
    """A PostgreSQL URI whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield f"{_pg_admin_uri()}?options=-csearch_path%3D{schema}"
    from shipyard.store import _store

    for store in [v for k, v in _store._stores.items() if schema in k]:
        store.close()
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store_uri(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty metadata store URI on each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    return request.getfixturevalue("pg_uri")
