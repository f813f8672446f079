"""Alert rules on monitors, and the alerts they open (see shipyard.monitoring)."""

from __future__ import annotations


class AlertsMixin:
    """Alert rules on monitors, and the alerts they open (see shipyard.monitoring)."""
