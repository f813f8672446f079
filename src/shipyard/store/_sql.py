"""SQL building blocks shared by the repositories."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


@functools.cache
def upsert(
    dialect_name: str,
    table: Table,
    *,
    index: tuple[str, ...],
    update_columns: tuple[str, ...],
    where: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """INSERT ... ON CONFLICT (index) DO UPDATE for SQLite and PostgreSQL.

    Built once per shape and executed with a list of rows (executemany), so
    SQLAlchemy compiles it once. ``where(incoming, current)`` gives an optional
    condition on the update.
    """
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(index),
        set_={c: stmt.excluded[c] for c in update_columns},
        where=where(stmt.excluded, table.c) if where else None,
    )
