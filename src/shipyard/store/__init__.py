"""The only code that touches the metadata database.

Repositories (``experiments``, ``runs``, ``metrics``, ``artifacts``,
``search``) take a connection or a :class:`WriteTx` and return frozen
dataclasses from :mod:`shipyard.store.entities`.
"""

from shipyard.store._store import Store, WriteTx, open_store

__all__ = ["Store", "WriteTx", "open_store"]
