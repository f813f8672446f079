"""Alert rules and alerts over a Shipyard server's REST API."""

from __future__ import annotations


class RemoteAlertsMixin:
    """Alert rules and alerts over a Shipyard server's REST API."""
