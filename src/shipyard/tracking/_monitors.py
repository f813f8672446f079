"""Monitors and their per-window results (see shipyard.monitoring)."""

from __future__ import annotations


class MonitorsMixin:
    """Monitors and their per-window results (see shipyard.monitoring)."""
