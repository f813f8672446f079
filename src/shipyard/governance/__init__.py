"""Governance: the audit trail (and, later, policies and approvals).

Governance sits above :mod:`shipyard.store` and below the faces; it never
imports ``shipyard.cli`` or ``shipyard.server``.
"""

from shipyard.governance.audit import AuditReport, events, verify

__all__ = ["AuditReport", "events", "verify"]
