"""Monitors, their per-window results, alert rules and alerts (see shipyard.monitoring)."""

from __future__ import annotations


class MonitorsMixin:
    """Monitors, their per-window results, alert rules and alerts (see shipyard.monitoring)."""
