"""Alembic migrations of the metadata store (run with ``shipyard db upgrade``)."""

#: The newest revision; a test keeps it equal to Alembic's script head, so a
#: store that is up to date is recognised without importing Alembic.
HEAD_REVISION = "0005"
