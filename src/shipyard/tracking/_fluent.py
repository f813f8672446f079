"""The fluent API: ``with sy.start_run(): sy.log_metric(...)``.

The active run lives in a context variable owned by :class:`_Tracker`, so
threads and asyncio tasks each see their own. Metric points are buffered in
memory and written in batches: when the buffer reaches ``flush_size``, every
``flush_interval`` seconds from a background thread, on :func:`flush`, and
when the run ends, in the same transaction that ends it. On SIGTERM the run
unwinds through its ``with`` block, flushes, and ends KILLED.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from shipyard.config import Settings
from shipyard.errors import Conflict, InvalidInput, ShipyardError
from shipyard.store import metrics as metrics_repo
from shipyard.store.entities import Run, RunStatus
from shipyard.tracking import _validate
from shipyard.tracking._client import Client

log = logging.getLogger("shipyard.tracking")


class _MetricBuffer:
    """Points waiting to be written to one store, in logging order."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._points: list[metrics_repo.Point] = []
        self._lock = threading.Lock()
        # Serialises writers so a point is never written twice or skipped.
        self._write_lock = threading.Lock()

    def add(self, point: metrics_repo.Point) -> bool:
        """Queue a point; return True when the buffer has reached its flush size."""
        with self._lock:
            self._points.append(point)
            return len(self._points) >= self.client.settings.flush_size

    def take(self) -> list[metrics_repo.Point]:
        with self._lock:
            points, self._points = self._points, []
            return points

    def put_back(self, points: list[metrics_repo.Point]) -> None:
        with self._lock:
            self._points[:0] = points

    def flush(self, end: tuple[str, RunStatus] | None = None) -> None:
        """Write every queued point; with ``end``, end that run in the same transaction."""
        with self._write_lock:
            points = self.take()
            if not points and end is None:
                return
            try:
                if end is None:
                    self.client._append_points(points)
                else:
                    self.client._end_run(end[0], end[1], points)
            except BaseException:
                self.put_back(points)
                raise


class ActiveRun:
    """A run started with :func:`start_run`; use it as a context manager."""

    def __init__(
        self, tracker: _Tracker, client: Client, buffer: _MetricBuffer, run_id: str
    ) -> None:
        self._tracker = tracker
        self.client = client
        self._buffer = buffer
        self.run_id = run_id
        self.experiment_id = client._experiment_of(run_id)
        self._run_pk = client._run_pk(run_id)
        self._ended = False
        self._token: contextvars.Token[tuple[ActiveRun, ...]] | None = None

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id}>"

    @property
    def info(self) -> Run:
        """The run as stored now (params, latest metrics, tags, status)."""
        self._buffer.flush()
        return self.client.get_run(self.run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(self._tracker.status_for(exc))

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush buffered points and end the run (idempotent)."""
        if self._ended:
            return
        self._buffer.flush(end=(self.run_id, RunStatus(status)))
        self._ended = True
        self._tracker._forget(self)


class _Tracker:
    """Owns the fluent state of one process: active runs, buffers, the keeper thread."""

    def __init__(self) -> None:
        self._active: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
            "shipyard_active_runs", default=()
        )
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str], tuple[Client, _MetricBuffer]] = {}
        self._open: dict[str, ActiveRun] = {}
        self._keeper: threading.Thread | None = None
        self._wake = threading.Event()
        self._terminating: int | None = None
        self._previous_sigterm: Any = None
        self._atexit_registered = False

    # --------------------------------------------------------------- run lifecycle

    def start_run(
        self,
        experiment: str | None,
        name: str | None,
        tags: Mapping[str, Any] | None,
        nested: bool,
    ) -> ActiveRun:
        stack = self._active.get()
        if stack and not nested:
            raise Conflict(
                f"Run {stack[-1].run_id} is active already.",
                hint="End it first, or pass nested=True to start a child run inside it.",
            )
        client, buffer = self._client_for(Settings.load())
        parent = stack[-1] if stack else None
        run_id = client._start_run(
            experiment,
            name,
            tags,
            parent.run_id if parent else None,
            heartbeat=True,
            # A child run without an experiment of its own stays in its parent's.
            experiment_id=parent.experiment_id if parent and experiment is None else None,
        ).run_id
        run = ActiveRun(self, client, buffer, run_id)
        with self._lock:
            self._open[run_id] = run
        self._active.set((*stack, run))
        self._ensure_background()
        return run

    def _client_for(self, settings: Settings) -> tuple[Client, _MetricBuffer]:
        key = (settings.uri, settings.artifacts)
        with self._lock:
            entry = self._clients.get(key)
            if entry is not None and entry[0].settings == settings:
                return entry
            if entry is not None:
                entry[1].flush()  # settings changed: write what the old buffer holds first
            client = Client(settings=settings)
            entry = self._clients[key] = (client, _MetricBuffer(client))
            return entry

    def _forget(self, run: ActiveRun) -> None:
        with self._lock:
            self._open.pop(run.run_id, None)
        stack = self._active.get()
        if run in stack:
            self._active.set(tuple(r for r in stack if r is not run))

    def active(self) -> ActiveRun | None:
        stack = self._active.get()
        return stack[-1] if stack else None

    def require_active(self) -> ActiveRun:
        run = self.active()
        if run is None:
            raise ShipyardError(
                "No active run.",
                hint="Start one first: `with shipyard.start_run(experiment='...'):`.",
            )
        return run

    def status_for(self, exc: BaseException | None) -> RunStatus:
        if exc is None:
            return RunStatus.FINISHED
        if isinstance(exc, KeyboardInterrupt) or self._terminating is not None:
            return RunStatus.KILLED
        if isinstance(exc, SystemExit) and exc.code in (None, 0):
            return RunStatus.FINISHED
        return RunStatus.FAILED

    # ---------------------------------------------------------------------- logging

    def log_metric(self, key: str, value: Any, step: int, timestamp: int | None) -> None:
        run = self.require_active()
        if timestamp is None:
            timestamp = time.time_ns() // 1_000_000
        point = _validate.point(run._run_pk, key, value, step, timestamp)
        if run._buffer.add(point):
            run._buffer.flush()

    def flush(self) -> None:
        with self._lock:
            buffers = [buffer for _client, buffer in self._clients.values()]
        for buffer in buffers:
            buffer.flush()

    # ------------------------------------------------- background flush and heartbeat

    def _ensure_background(self) -> None:
        with self._lock:
            if not self._atexit_registered:
                atexit.register(self._at_exit)
                self._atexit_registered = True
            self._install_signal_handler()
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(
                    target=_keep, args=(weakref.ref(self),), name="shipyard-keeper", daemon=True
                )
                self._keeper.start()

    def _tick(self, now: float, last_done: dict[object, float]) -> float:
        """One keeper round: flush buffers and heartbeat runs that are due.

        ``last_done`` maps a buffer or a run id to when it was last served;
        returns the seconds until the next thing falls due.
        """
        with self._lock:
            for key, (client, _buffer) in list(self._clients.items()):
                if client.closed:  # closed by its owner: nothing left to do for it
                    del self._clients[key]
            entries = list(self._clients.values())
            open_runs = [r for r in self._open.values() if not r.client.closed]
        next_due = 1.0
        for client, buffer in entries:
            flush_every = client.settings.flush_interval
            beat_every = client.settings.heartbeat_interval
            flushed = last_done.setdefault(buffer, now)
            if now - flushed >= flush_every:
                try:
                    buffer.flush()
                    last_done[buffer] = flushed = now
                except ShipyardError as exc:
                    log.warning("Flushing buffered metrics failed, will retry: %s", exc)
            next_due = min(next_due, flushed + flush_every - now)
            runs = [r.run_id for r in open_runs if r.client is client]
            due = [r for r in runs if now - last_done.get(r, 0.0) >= beat_every]
            if due:
                try:
                    client._heartbeat(due)
                    last_done.update(dict.fromkeys(due, now))
                except ShipyardError as exc:
                    log.warning("Heartbeat failed, will retry: %s", exc)
            for run_id in runs:
                next_due = min(next_due, last_done.get(run_id, now) + beat_every - now)
        alive = {buffer for _client, buffer in entries} | {r.run_id for r in open_runs}
        for gone in [key for key in last_done if key not in alive]:
            del last_done[gone]
        return max(next_due, 0.01)

    # ------------------------------------------------------------ exits and signals

    def _install_signal_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if current is self._on_sigterm or current not in (signal.SIG_DFL, None):
            return  # leave the application's own handler in charge
        self._previous_sigterm = current
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, _frame: Any) -> None:
        if not self._open:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._terminating = signum
        # Unwinds every `with start_run()` block (ending runs KILLED), then atexit.
        raise SystemExit(128 + signum)

    def _at_exit(self) -> None:
        status = RunStatus.KILLED if self._terminating is not None else RunStatus.FINISHED
        with self._lock:
            open_runs = list(self._open.values())
        for run in reversed(open_runs):
            try:
                run.end(status)
            except ShipyardError as exc:
                log.error("Could not end run %s at exit: %s", run.run_id, exc)
        try:
            self.flush()
        except ShipyardError as exc:
            log.error("Could not flush buffered metrics at exit: %s", exc)

    def _after_fork_in_child(self) -> None:
        # The child has no keeper thread and must not write the parent's points.
        self._lock = threading.RLock()
        self._keeper = None
        self._open = {}
        self._clients = {}
        self._active = contextvars.ContextVar("shipyard_active_runs", default=())


def _keep(tracker_ref: weakref.ref[_Tracker]) -> None:
    last_done: dict[object, float] = {}
    while True:
        tracker = tracker_ref()
        if tracker is None:
            return
        timeout = tracker._tick(time.monotonic(), last_done)
        wake = tracker._wake
        del tracker
        wake.wait(timeout)


_tracker = _Tracker()
os.register_at_fork(after_in_child=_tracker._after_fork_in_child)


# ------------------------------------------------------------------------ public API


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
) -> ActiveRun:
    """Start a run and make it the active one.

    Use as a context manager: the run ends FINISHED when the block completes,
    FAILED when it raises, KILLED on SIGTERM or Ctrl-C. A run whose process
    dies without ending shows FAILED once its heartbeat expires.
    """
    return _tracker.start_run(experiment, name, tags, nested)


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread or task, or None."""
    return _tracker.active()


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (for runs started without a ``with`` block)."""
    _tracker.require_active().end(status)


def log_param(key: str, value: Any) -> None:
    log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    """Record params of the active run now; a changed value raises Conflict."""
    run = _tracker.require_active()
    run.client.log_batch(run.run_id, params=params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Buffer one metric point of the active run (written within ``flush_interval``)."""
    _tracker.log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    if not isinstance(metrics, Mapping):
        raise InvalidInput(
            f"log_metrics takes a mapping of key to value; got {type(metrics).__name__}."
        )
    for key, value in metrics.items():
        _tracker.log_metric(key, value, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    run = _tracker.require_active()
    run.client.log_batch(run.run_id, tags=tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> None:
    """Store a file or folder as an artifact of the active run."""
    run = _tracker.require_active()
    run.client.log_artifact(run.run_id, path, name)


def flush() -> None:
    """Write every buffered metric point now; once it returns they are stored."""
    _tracker.flush()
