"""Monitors and their per-window results (see shipyard.monitoring).

The monitoring functions (``create_monitor``, ``run_monitor``,
``monitor_results``) prepare references and compute drift and performance
themselves, next to the prediction log they read; these methods only store
and read what they produced, so a :class:`~shipyard.tracking._remote.RemoteClient`
can offer the same over REST.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import NotFound

if TYPE_CHECKING:
    from shipyard.blobs import BlobStore
    from shipyard.store import Store
    from shipyard.store.alerts import Alert
    from shipyard.store.monitors import Monitor, MonitorWindow


class MonitorsMixin:
    """Monitors and their per-window results (see shipyard.monitoring)."""

    if TYPE_CHECKING:
        store: Store
        blobs: BlobStore
        actor: str

    def get_monitor(self, name: str) -> Monitor:
        """A monitor's definition and how far its evaluation has got."""
        from shipyard.store import monitors as monitors_repo

        with self.store.read() as conn:
            return monitors_repo.get(conn, name)

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor by name, or those of ``deployment``."""
        from shipyard.store import monitors as monitors_repo

        with self.store.read() as conn:
            return monitors_repo.list_all(conn, deployment)

    def delete_monitor(self, name: str) -> Monitor:
        """Delete a monitor with its windows, results, alert rules and alerts; return it."""
        from shipyard.store import monitors as monitors_repo

        with self.store.write(self.actor) as tx:
            return monitors_repo.delete_monitor(tx, name)

    def monitor_windows(
        self,
        name: str,
        *,
        start: int | None = None,
        end: int | None = None,
        results: bool = False,
        limit: int | None = None,
    ) -> list[MonitorWindow]:
        """Evaluated windows overlapping ``[start, end)`` (ms), oldest first; with their
        per-column results when ``results``; only the newest ``limit`` when given."""
        from shipyard.store import monitors as monitors_repo

        with self.store.read() as conn:
            return monitors_repo.list_windows(
                conn, name, start=start, end=end, results=results, limit=limit
            )

    # What shipyard.monitoring calls; checked there.

    def _create_monitor(self, **fields: Any) -> Monitor:
        from shipyard.store import monitors as monitors_repo

        digest = fields["reference_digest"]
        if not self.blobs.exists(digest):
            raise NotFound(
                "prepared reference blob",
                digest,
                hint="Store the reference's bytes first (create_monitor does).",
            )
        with self.store.write(self.actor) as tx:
            return monitors_repo.create(tx, **fields)

    def _set_monitor_task(self, name: str, task: str) -> Monitor:
        from shipyard.store import monitors as monitors_repo

        with self.store.write(self.actor) as tx:
            return monitors_repo.set_task(tx, name, task)

    def _record_monitor_windows(self, name: str, windows: Sequence[MonitorWindow]) -> None:
        """Store evaluated windows and their results in one transaction."""
        from shipyard.store import monitors as monitors_repo

        with self.store.write(self.actor) as tx:
            monitors_repo.record_windows(tx, name, windows)

    def _evaluate_monitor_alerts(self, monitor: Monitor) -> list[Alert]:
        """Evaluate the monitor's alert rules over its stored windows; the alerts opened or
        closed (:func:`shipyard.monitoring._alerts.evaluate_rules`)."""
        from shipyard.monitoring import _alerts

        return _alerts.evaluate_rules(self, monitor.id)  # type: ignore[arg-type]

    def _put_monitor_reference(self, data: bytes) -> str:
        """Store a prepared reference's bytes; their digest."""
        return self.blobs.put(data).digest

    def _monitor_reference(self, monitor: Monitor) -> bytes:
        """The monitor's prepared reference bytes, verified against its digest."""
        assert monitor.reference_digest is not None  # run_monitor checks
        return self.blobs.get(monitor.reference_digest)


def window_from_json(d: Mapping[str, Any]) -> MonitorWindow:
    """A window as :func:`window_to_json` wrote it (the REST API's body)."""
    from shipyard.store.monitors import MonitorWindow, WindowResult

    return MonitorWindow(
        **{k: v for k, v in d.items() if k != "results"},
        results=tuple(WindowResult(**r) for r in d["results"]),
    )


def window_to_json(window: MonitorWindow) -> dict[str, Any]:
    return {**dataclasses.asdict(window), "metrics": dict(window.metrics)}
