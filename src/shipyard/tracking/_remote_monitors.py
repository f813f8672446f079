"""Monitors and their results over a Shipyard server's REST API.

Definitions, prepared references and evaluated windows travel; the
evaluation itself runs in the calling process, which reads the prediction
log from its own disk (see :mod:`shipyard.monitoring._monitors`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.tracking._monitors import window_from_json, window_to_json

if TYPE_CHECKING:
    from shipyard.store.alerts import Alert
    from shipyard.store.monitors import Monitor, MonitorWindow

#: Windows sent per request (the server's MAX_WINDOWS_PER_REQUEST).
WINDOWS_PER_REQUEST = 200


class RemoteMonitorsMixin:
    """Monitors and their results over a Shipyard server's REST API."""

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, **options: Any) -> Any: ...
        def _q(self, *parts: object) -> str: ...
        def _items(
            self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
        ) -> list[Any]: ...
        def _upload(self, method: str, path: str, file: Path, **options: Any) -> Any: ...
        def _download(self, path: str, dest: Path, digest: str) -> None: ...

    def get_monitor(self, name: str) -> Monitor:
        return _monitor(self._call("GET", self._q("monitors", name)))

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        params = {} if deployment is None else {"deployment": deployment}
        return [_monitor(m) for m in self._items("/monitors", params)]

    def delete_monitor(self, name: str) -> Monitor:
        return _monitor(self._call("DELETE", self._q("monitors", name)))

    def monitor_windows(
        self,
        name: str,
        *,
        start: int | None = None,
        end: int | None = None,
        results: bool = False,
        limit: int | None = None,
    ) -> list[MonitorWindow]:
        params: dict[str, Any] = {"results": "true" if results else "false"}
        for key, value in (("start", start), ("end", end), ("limit", limit)):
            if value is not None:
                params[key] = value
        return [
            window_from_json(w) for w in self._items(self._q("monitors", name, "windows"), params)
        ]

    def _create_monitor(self, **fields: Any) -> Monitor:
        body = {**fields, "columns": None if fields["columns"] is None else list(fields["columns"])}
        return _monitor(self._call("POST", "/monitors", json=body))

    def _set_monitor_task(self, name: str, task: str) -> Monitor:
        return _monitor(self._call("PUT", self._q("monitors", name, "task"), json={"task": task}))

    def _record_monitor_windows(self, name: str, windows: Sequence[MonitorWindow]) -> None:
        """Sent in batches, each stored in one transaction, in order: a failure leaves the
        windows before it stored and the next run evaluates the rest."""
        path = self._q("monitors", name, "windows")
        for at in range(0, len(windows), WINDOWS_PER_REQUEST):
            batch = [window_to_json(w) for w in windows[at : at + WINDOWS_PER_REQUEST]]
            self._call("POST", path, json={"windows": batch})

    def _evaluate_monitor_alerts(self, monitor: Monitor) -> list[Alert]:
        """The server evaluates the rules (they read and lock its store)."""
        from shipyard.store.alerts import Alert

        answer = self._call("POST", self._q("monitors", monitor.name, "alerts", "evaluate"))
        return [Alert(**a) for a in answer["alerts"]]

    def _put_monitor_reference(self, data: bytes) -> str:
        with tempfile.TemporaryDirectory(prefix="shipyard-reference-") as folder:
            path = Path(folder) / "reference.bin"
            path.write_bytes(data)
            return self._upload("POST", "/monitors/_reference", path)["digest"]

    def _monitor_reference(self, monitor: Monitor) -> bytes:
        assert monitor.reference_digest is not None
        with tempfile.TemporaryDirectory(prefix="shipyard-reference-") as folder:
            path = Path(folder) / "reference.bin"
            self._download(
                self._q("monitors", monitor.name, "reference"), path, monitor.reference_digest
            )
            return path.read_bytes()


def _monitor(d: Mapping[str, Any]) -> Monitor:
    from shipyard.store.monitors import Monitor

    fields = {f.name for f in dataclasses.fields(Monitor)}
    found = {k: v for k, v in d.items() if k in fields}
    if found["columns"] is not None:
        found["columns"] = tuple(found["columns"])
    return Monitor(**found)
