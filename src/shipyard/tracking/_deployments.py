"""Deployments (see shipyard.serving): what a serving process answers for, kept in the store."""

from __future__ import annotations


class DeploymentsMixin:
    """Deployments (see shipyard.serving): what a serving process answers for, kept in the store."""
