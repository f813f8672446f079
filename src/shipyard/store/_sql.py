"""SQL building blocks shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    index: list[str],
    update_columns: list[str],
    where: Any = None,
) -> Any:
    """INSERT ... ON CONFLICT (index) DO UPDATE, for SQLite and PostgreSQL alike.

    ``where`` may be a callable taking (incoming, current) column collections.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(rows)
    condition: ColumnElement[bool] | None = where(stmt.excluded, table.c) if where else None
    return stmt.on_conflict_do_update(
        index_elements=index,
        set_={c: stmt.excluded[c] for c in update_columns},
        where=condition,
    )
