"""The few metrics ``/metrics`` shows, in Prometheus' text exposition format (version 0.0.4).

``prometheus_client`` is not a dependency: a counter, a gauge and a histogram
are a few lines each. Values are updated on the event loop's thread only, so
they need no lock. With several workers each process counts its own requests
(Prometheus scrapes whichever worker answers; run one worker per scrape
target, or sum over instances).

:class:`MonitoringGauges` adds what the deployment's monitors last found
(drift share, per-column drift, live metrics, open alerts). Those come from
the metadata store, read in a background thread at most once every
``max_age`` seconds, when a scrape finds them older: a scrape never waits for
the database, and shows the values of the last successful read (the first
scrape after a start shows none yet).
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.store.alerts import MonitorStatus
    from shipyard.tracking import Client

log = logging.getLogger("shipyard.serving")

#: Seconds the monitoring gauges may be old before a scrape asks for a new read.
MONITORING_MAX_AGE = 15.0

#: Latency bucket upper bounds, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help, labels
        self.values: dict[tuple[str, ...], float] = {}
        if not labels:
            self.values[()] = 0.0

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Gauge:
    """A value read when scraped (``read``), or set (``values``)."""

    def __init__(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...] = (),
        read: Callable[[], dict[tuple[str, ...], float]] | None = None,
    ) -> None:
        self.name, self.help, self.label_names, self.read = name, help, labels, read
        self.values: dict[tuple[str, ...], float] = {}

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        values = self.read() if self.read is not None else self.values
        for key, value in sorted(values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help, buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        running = 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {running}'
        yield f"{self.name}_sum {_number(self.total)}"
        yield f"{self.name}_count {running}"


class MonitoringGauges:
    """What the monitors of one deployment last found, read from the store now and then."""

    def __init__(
        self, client: Client, deployment: str, *, max_age: float = MONITORING_MAX_AGE
    ) -> None:
        self.client, self.deployment, self.max_age = client, deployment, max_age
        self._statuses: list[MonitorStatus] = []
        self._tried_at: float | None = None  # time.monotonic() of the last read, even a failed one
        self._read_wall: float | None = None  # time.time() of the last successful read
        self._reading: threading.Thread | None = None
        self._lock = threading.Lock()
        labels = ("deployment", "monitor")
        self.gauges = (
            Gauge(
                "shipyard_monitor_drift_share",
                "Share of tested columns that drifted in the monitor's latest window.",
                labels,
                read=lambda: {
                    (self.deployment, s.monitor): s.drift_share
                    for s in self.statuses()
                    if s.drift_share is not None
                },
            ),
            Gauge(
                "shipyard_monitor_column_drift",
                "1 if the column drifted in the monitor's latest window, 0 if it was tested "
                "and did not (kind: input or prediction).",
                (*labels, "kind", "column"),
                read=lambda: {
                    (self.deployment, s.monitor, kind, column): float(drifted)
                    for s in self.statuses()
                    for (kind, column), drifted in s.column_drift.items()
                },
            ),
            Gauge(
                "shipyard_monitor_metric",
                "Live performance (roc_auc, accuracy, mae, ...) in the monitor's latest "
                "window with labels.",
                (*labels, "metric"),
                read=lambda: {
                    (self.deployment, s.monitor, name): value
                    for s in self.statuses()
                    for name, value in s.metrics.items()
                },
            ),
            Gauge(
                "shipyard_monitor_open_alerts",
                "Alerts of the monitor's rules that are open.",
                labels,
                read=lambda: {
                    (self.deployment, s.monitor): float(s.open_alerts) for s in self.statuses()
                },
            ),
            Gauge(
                "shipyard_monitor_read_timestamp_seconds",
                "When the monitoring gauges were last read from the store (Unix time).",
                ("deployment",),
                read=lambda: (
                    {} if self._read_wall is None else {(self.deployment,): self._read_wall}
                ),
            ),
        )

    def statuses(self) -> list[MonitorStatus]:
        """The last read's statuses; starts a new read in the background when they are old."""
        with self._lock:
            now = time.monotonic()
            fresh = self._tried_at is not None and now - self._tried_at < self.max_age
            if not fresh and self._reading is None:
                self._tried_at = now
                self._reading = threading.Thread(
                    target=self._read, name=f"monitoring-gauges-{self.deployment}", daemon=True
                )
                self._reading.start()
        return self._statuses

    def _read(self) -> None:
        from shipyard.store import alerts as alerts_repo

        try:
            with self.client.store.read() as conn:
                found = alerts_repo.monitor_statuses(conn, self.deployment)
        except Exception as exc:  # the store unreachable: keep showing the last values
            log.warning("monitoring gauges of %s not read: %s", self.deployment, exc)
            found = None
        with self._lock:
            if found is not None:
                self._statuses, self._read_wall = found, time.time()
            self._reading = None

    def render(self) -> Iterable[str]:
        for gauge in self.gauges:
            yield from gauge.render()


class ServingMetrics:
    """Requests, latency, errors by kind, the version served and the log backlog; with
    ``monitoring``, what the deployment's monitors last found."""

    def __init__(
        self,
        versions: Callable[[], list[str]],
        backlog: Callable[[], dict[tuple[str, ...], float]],
        monitoring: MonitoringGauges | None = None,
    ) -> None:
        self.monitoring = monitoring
        self.requests = Counter(
            "shipyard_serving_requests_total",
            "Requests answered, by route and status code.",
            ("route", "status"),
        )
        self.rows = Counter("shipyard_serving_predictions_total", "Rows predicted.")
        self.errors = Counter(
            "shipyard_serving_errors_total", "Requests refused or failed, by error code.", ("code",)
        )
        self.latency = Histogram(
            "shipyard_serving_request_duration_seconds",
            "Time from a /predict request's arrival to its response, logging included.",
        )
        self.swaps = Counter("shipyard_serving_model_swaps_total", "Model versions swapped in.")
        self.version = Gauge(
            "shipyard_serving_model_version_info",
            "1 for each model version this process serves.",
            ("model_version",),
            read=lambda: {(uri,): 1.0 for uri in versions()},
        )
        self.backlog = Gauge(
            "shipyard_serving_log_backlog",
            "Prediction log records waiting for their sync, and bytes not yet compacted.",
            ("what",),
            read=backlog,
        )

    def render(self) -> str:
        parts = (
            self.requests,
            self.rows,
            self.errors,
            self.latency,
            self.swaps,
            self.version,
            self.backlog,
            *(() if self.monitoring is None else (self.monitoring,)),
        )
        return "\n".join(line for part in parts for line in part.render()) + "\n"
