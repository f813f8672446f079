"""The REST API's routers, one module per domain; ``create_app`` mounts them under /api/v1.

Every route declares the least role it needs (``principal: Viewer``, ``Editor``
or ``Admin``, see ``_common``) and calls the Client acting for the caller.
"""

from shipyard.server._routes import (
    alerts,
    datasets,
    deployments,
    governance,
    models,
    monitors,
    tracking,
    users,
)

ROUTERS = [
    tracking.router,
    datasets.router,
    models.router,
    governance.router,
    deployments.router,
    monitors.router,
    alerts.router,
    users.router,
]

__all__ = ["ROUTERS"]
