"""Monitors, results, alert rules and alerts over a Shipyard server's REST API."""

from __future__ import annotations


class RemoteMonitorsMixin:
    """Monitors, results, alert rules and alerts over a Shipyard server's REST API."""
