"""Deployments over a Shipyard server's REST API."""

from __future__ import annotations


class RemoteDeploymentsMixin:
    """Deployments over a Shipyard server's REST API."""
