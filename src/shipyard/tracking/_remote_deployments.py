"""Deployments over a Shipyard server's REST API (``/api/v1/deployments``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.store.deployments import Deployment
from shipyard.tracking._deployments import KEEP, Unchanged, changes, creation, deployment_name

if TYPE_CHECKING:
    from collections.abc import Mapping


class RemoteDeploymentsMixin:
    """Deployments over a Shipyard server's REST API."""

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, *, json: Any = None) -> Any: ...
        def _items(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...
        def _q(self, *parts: object) -> str: ...

    def create_deployment(
        self,
        name: str,
        model: str,
        *,
        canary: str | None = None,
        canary_percent: float | None = None,
        shadow: str | None = None,
        description: str | None = None,
    ) -> Deployment:
        body = creation(name, model, canary, canary_percent, shadow, description)
        return Deployment(**self._call("POST", "/deployments", json=_body(body)))

    def get_deployment(self, name: str) -> Deployment:
        return Deployment(**self._call("GET", self._q("deployments", deployment_name(name))))

    def list_deployments(self) -> list[Deployment]:
        return [Deployment(**item) for item in self._items("/deployments")]

    def update_deployment(
        self,
        name: str,
        *,
        model: str | Unchanged = KEEP,
        canary: str | Unchanged | None = KEEP,
        canary_percent: float | Unchanged | None = KEEP,
        shadow: str | Unchanged | None = KEEP,
        description: str | Unchanged | None = KEEP,
    ) -> Deployment:
        path = self._q("deployments", deployment_name(name))
        found = changes(model, canary, canary_percent, shadow, description)
        return Deployment(**self._call("PATCH", path, json=_body(found)))

    def delete_deployment(self, name: str) -> Deployment:
        path = self._q("deployments", deployment_name(name))
        return Deployment(**self._call("DELETE", path))


def _body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The request body: the REST API names the URIs without the ``_uri`` suffix."""
    return {key.removesuffix("_uri"): value for key, value in fields.items()}
