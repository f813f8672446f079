"""``shipyard server``: the platform over HTTP, one FastAPI app.

The app is a thin face over :class:`shipyard.Client`: routes parse and check
input with pydantic, call the client acting for the authenticated user, and
turn :mod:`shipyard.errors` into JSON error bodies. FastAPI is imported only
here, never by ``import shipyard``.
"""

from shipyard.server._app import create_app

__all__ = ["create_app"]
