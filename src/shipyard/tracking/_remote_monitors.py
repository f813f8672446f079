"""Monitors and their results over a Shipyard server's REST API."""

from __future__ import annotations


class RemoteMonitorsMixin:
    """Monitors and their results over a Shipyard server's REST API."""
