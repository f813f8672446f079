"""SQL building blocks shared by the repositories."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from shipyard.store._store import WriteTx


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


def lock_or_create(
    tx: WriteTx, table: Table, name: str, values: Mapping[str, Any]
) -> tuple[int, bool]:
    """The id of ``table``'s row named ``name``, locked for this transaction; whether it is new.

    The row lock serialises version numbering per name on PostgreSQL (SQLite's
    write transactions are serial already). Two writers creating the same name
    at once both succeed: the loser of the insert waits for the winner's lock.
    """
    query = select(table.c.id).where(table.c.name == name).with_for_update()
    found = tx.conn.execute(query).scalar()
    if found is not None:
        return found, False
    try:
        with tx.conn.begin_nested():
            new_id = tx.conn.execute(
                insert(table).values(name=name, **values).returning(table.c.id)
            ).scalar_one()
    except sa_exc.IntegrityError:
        return tx.conn.execute(query).scalar_one(), False
    return new_id, True
