"""The prediction app ``shipyard serve`` runs: one deployment, of one registered model or of a
stored deployment (model, canary, shadow); and the :class:`Endpoint` behind it, which the main
server also uses for ``POST /api/v1/deployments/{name}/predict`` (:class:`Endpoints`).

Routes
------
- ``POST /predict``: JSON rows ``{"inputs": [{...}, ...]}`` (or ``{"inputs":
  {column: [...]}}``), JSON columns ``{"columns": [...], "data": [[...], ...]}``,
  an Arrow IPC stream (``application/vnd.apache.arrow.stream``) or a Parquet
  file (``application/x-parquet``). Answers ``{"predictions": [...],
  "probabilities": [[...]] | null, "model_version": "models:/credit/3",
  "prediction_ids": [...]}``, after the request is in the prediction log.
- ``POST /labels``: ``[{"prediction_id": ..., "label": ...}, ...]`` answers
  ``{"stored": n, "unknown": [ids]}``.
- ``GET /health`` (alive), ``GET /ready`` (200 once a model is loaded, 503
  before), ``GET /metrics`` (Prometheus text).

Every refusal is a 4xx with the JSON error body of the main server
(``{"error": {"code", "message", "hint"}}``): bad input 400 naming the
column, a body over the limit 413, a media type it cannot read 415. A 5xx
means the server's fault: 503 before the model is loaded or when the log
cannot be written, 500 for a bug.

Hot swap: for a ``models:/name@alias`` URI, or a stored deployment, a task
reads the definition and asks the store every ``poll_interval`` seconds which
version each alias names; when one moved (or the deployment was updated), the
new version is loaded and warmed up in a thread while the old lineup keeps
answering, then swapped in with one reference assignment (see :mod:`._router`).

Canary and shadow: the canary answers its share of the requests (one draw per
request); the shadow predicts on each request after the answer is logged, in a
thread fed by a bounded queue (:class:`ShadowRunner`), so it never delays or
changes a response. Every prediction is logged with its version and role.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from shipyard._version import __version__
from shipyard.errors import ConfigError, Conflict, InvalidInput, NotFound, ShipyardError
from shipyard.models import _uri
from shipyard.server import _auth, _errors, _security
from shipyard.serving import _log, _router
from shipyard.serving._metrics import Counter, MonitoringGauges, ServingMetrics
from shipyard.tracking import Client

log = logging.getLogger("shipyard.serving")

ARROW_TYPES = frozenset(
    {"application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"}
)
PARQUET_TYPES = frozenset({"application/x-parquet", "application/vnd.apache.parquet"})
JSON_TYPES = frozenset({"application/json", ""})
#: Most rows one request may carry (a small Parquet body can hold many).
MAX_ROWS = 1_000_000
#: Batches up to this many rows run on the event loop; larger ones in a thread.
INLINE_ROWS = 256
#: Bodies up to this size are read on the event loop; larger ones in a thread, with the rest.
INLINE_BYTES = 64 * 1024
#: Requests that may wait for the shadow model; more are dropped for it (and counted).
SHADOW_QUEUE = 1000
OPTIONS_VARIABLE = "SHIPYARD_SERVING_OPTIONS"
_ROWS_HINT = (
    'Send {"inputs": [{"column": value, ...}, ...]} or {"columns": [...], "data": [[...]]}.'
)


class MalformedBody(InvalidInput):
    """The body cannot be read as the media type it claims."""

    code = "malformed_body"


class TooLarge(InvalidInput):
    code = "payload_too_large"


# ------------------------------------------------------------------ one deployment


class ShadowRunner:
    """Runs the shadow off the request path.

    A request hands its parsed rows over after its own answer is made and
    logged; one thread predicts with the shadow and logs the result with role
    ``shadow``. The queue is bounded: when the shadow falls behind, further
    requests are dropped for it (counted), so it never delays or changes an
    answer; an error of the shadow is logged and counted, never seen by a client.
    """

    def __init__(self, prediction_log: _log.PredictionLog | None, capacity: int) -> None:
        self._log = prediction_log
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Requests predicted, dropped (the queue was full) and failed, for /metrics.
        self.counts = {"done": 0, "dropped": 0, "failed": 0}

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def submit(self, served: _router.Served, payload: Any, ids: list[str], now_ms: int) -> None:
        """Queue one request for the shadow, or drop it when the queue is full."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-shadow", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait((served, payload, ids, now_ms))
        except queue.Full:
            self._count("dropped")

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            served, payload, ids, now_ms = job
            try:
                started = time.perf_counter()
                prediction, inputs = _predict(served, payload)
                if self._log is not None:
                    latency_ms = (time.perf_counter() - started) * 1000
                    record = _record(
                        served, _log.SHADOW, ids, inputs, prediction, now_ms, latency_ms
                    )
                    self._log.append_sync([record])
                self._count("done")
            except Exception as exc:  # whatever the shadow does wrong stays here
                self._count("failed")
                log.warning("shadow %s failed: %s: %s", served.uri, type(exc).__name__, exc)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def wait(self) -> None:
        """Return once every queued request was predicted (or failed)."""
        self._queue.join()

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()


class Endpoint:
    """One deployment answering in this process: the loaded versions (:class:`_router.Router`),
    the prediction log, the shadow runner and the metrics.

    ``targets`` reads what to serve (a fixed URI, or a stored deployment read
    again on every :meth:`refresh`). ``shipyard serve`` builds one endpoint; the
    main server one per deployment it is asked to predict for (:class:`Endpoints`).
    """

    def __init__(
        self,
        deployment: str,
        targets: Callable[[], _router.Targets],
        *,
        client: Client,
        runtime: str = "auto",
        prediction_log: _log.PredictionLog | None = None,
        max_rows: int = MAX_ROWS,
        max_body_size: int = _security.MAX_JSON_BODY,
        shadow_queue: int = SHADOW_QUEUE,
        seed: int | None = None,
        monitoring: MonitoringGauges | None = None,
    ) -> None:
        self.deployment = deployment
        self.client = client
        self.runtime = _router.check_runtime(runtime)
        self.log = prediction_log
        self.max_rows = max_rows
        self.max_body_size = max_body_size
        self.router = _router.Router(seed)
        self.shadow = ShadowRunner(prediction_log, shadow_queue)
        self.load_error: str | None = None
        self._read_targets = targets
        self.metrics = ServingMetrics(
            versions=self.router.versions, backlog=self._backlog, monitoring=monitoring
        )
        self._shadow_counter = Counter(
            "shipyard_serving_shadow_requests_total",
            "Requests given to the shadow model, by outcome: done, dropped (it was behind), "
            "failed (its error never reaches the client).",
            ("outcome",),
        )

    def _backlog(self) -> dict[tuple[str, ...], float]:
        return {
            ("records",): float(self.log.pending if self.log else 0),
            ("bytes",): float(self.log.backlog_bytes if self.log else 0),
        }

    def refresh(self) -> bool:
        """Read what to serve, resolve its URIs, and serve the versions they name now.

        Versions not loaded yet are loaded and warmed up here (call it in a
        thread) while the current lineup keeps answering; then the new lineup
        is swapped in whole. True when it changed.
        """
        targets = self._read_targets()
        current = self.router.lineup
        loaded: dict[str, _router.Served] = {}
        if current is not None:
            kept = (current.canary, current.shadow, current.primary)
            loaded = {s.uri: s for s in kept if s is not None}

        def served(uri: str | None) -> _router.Served | None:
            if uri is None:
                return None
            version_uri = self.client.get_model_version(uri).uri
            if version_uri not in loaded:
                loaded[version_uri] = _router.load(
                    version_uri, runtime=self.runtime, client=self.client
                )
            return loaded[version_uri]

        primary = served(targets.model)
        assert primary is not None
        lineup = _router.Lineup(
            primary, served(targets.canary), targets.canary_percent or 0.0, served(targets.shadow)
        )
        self.load_error = None
        if lineup == current:
            return False
        self.router.install(lineup)
        log.info(
            "deployment %s serves %s (%s)%s%s (was %s)",
            self.deployment,
            primary.uri,
            primary.runtime,
            f", canary {lineup.canary.uri} at {lineup.canary_percent:g}%" if lineup.canary else "",
            f", shadow {lineup.shadow.uri}" if lineup.shadow else "",
            ", ".join(current.versions()) if current else None,
        )
        return True

    # -------------------------------------------------------------- answers

    def refuse(self, exc: ShipyardError, route: str) -> JSONResponse:
        status = _errors.status_of(exc)
        if isinstance(exc, TooLarge):
            status = 413
        self.metrics.errors.inc(exc.code)
        self.metrics.requests.inc(route, str(status))
        return JSONResponse(_errors.error_body(exc.code, exc.message, exc.hint), status_code=status)

    def not_ready(self, route: str) -> JSONResponse:
        self.metrics.errors.inc("not_ready")
        self.metrics.requests.inc(route, "503")
        return JSONResponse(
            _errors.error_body(
                "not_ready",
                f"The deployment {self.deployment} has no model loaded yet.",
                self.load_error or "Wait until GET /ready answers 200.",
            ),
            status_code=503,
        )

    def failed(self, exc: Exception, route: str) -> JSONResponse:
        log.exception("%s failed", route)
        self.metrics.errors.inc("internal")
        self.metrics.requests.inc(route, "500")
        return JSONResponse(
            _errors.error_body("internal_error", f"The server failed: {type(exc).__name__}."),
            status_code=500,
        )

    async def predict(self, request: Request) -> Response:
        """Predict for a batch of rows; each row gets a prediction id and is logged."""
        started = time.perf_counter()
        served, role = self.router.choose()
        shadows = self.router.shadows()
        if served is None or role is None:
            return self.not_ready("predict")
        content_type = request.headers.get("content-type", "")
        if _media(content_type) is None:
            return _unsupported(content_type, self.metrics)
        try:
            body = await request.body()
        except HTTPException as exc:  # the body cap, raised while the body is read
            if exc.status_code != 413:
                raise
            return self.refuse(_too_large(self.max_body_size), "predict")
        # A sync about to run may wait a moment for this request (see _log, "Durability").
        ticket = None if self.log is None else self.log.expect()
        try:
            return await self._respond(served, role, shadows, body, content_type, started, ticket)
        finally:
            if ticket is not None:
                ticket.cancel()

    async def _respond(
        self,
        served: _router.Served,
        role: str,
        shadows: Sequence[_router.Served],
        body: bytes,
        content_type: str,
        started: float,
        ticket: _log.Ticket | None,
    ) -> Response:
        def answer(payload: Any = None) -> _Answer:
            if payload is None:
                payload = _parse(body, content_type, self.max_rows)
            return _answer(served, role, payload, started, logged=self.log is not None)

        try:
            if len(body) > INLINE_BYTES:
                done = await anyio.to_thread.run_sync(answer)
            else:
                payload = _parse(body, content_type, self.max_rows)
                if _count(payload) > INLINE_ROWS:
                    done = await anyio.to_thread.run_sync(lambda: answer(payload))
                else:
                    done = answer(payload)
        except ShipyardError as exc:
            return self.refuse(exc, "predict")
        except Exception as exc:  # a bug: answered as JSON, never a raw traceback
            return self.failed(exc, "predict")
        if self.log is not None:
            try:
                await self.log.append_frames([done.frame], ticket=ticket)
            except ShipyardError as exc:
                return self.refuse(exc, "predict")
        for shadow in shadows:
            self.shadow.submit(shadow, done.payload, done.ids, done.now_ms)
        self.metrics.requests.inc("predict", "200")
        self.metrics.rows.inc(amount=len(done.ids))
        self.metrics.latency.observe(time.perf_counter() - started)
        return Response(done.content, media_type="application/json")

    def render_metrics(self) -> str:
        self._shadow_counter.values = {(k,): float(v) for k, v in self.shadow.counts.items()}
        return self.metrics.render() + "\n".join(self._shadow_counter.render()) + "\n"

    def close(self) -> None:
        """Let the shadow finish what is queued, then flush and close the log."""
        self.shadow.close()
        if self.log is not None:
            self.log.close()


@dataclasses.dataclass(frozen=True)
class _Answer:
    """One request answered, not yet logged: the response's bytes, the log frame (empty without
    a log), and what the shadow needs."""

    content: bytes
    frame: bytes
    payload: Any
    ids: list[str]
    now_ms: int


def _answer(
    served: _router.Served, role: str, payload: Any, started: float, *, logged: bool
) -> _Answer:
    """Predict for ``payload``, give the rows ids, encode the log record and the response."""
    prediction, inputs = _predict(served, payload)
    now_ms = time.time_ns() // 1_000_000
    ids = _log.new_ids(len(prediction.predictions), now_ms)
    frame = b""
    if logged:
        latency_ms = (time.perf_counter() - started) * 1000
        record = _record(served, role, ids, inputs, prediction, now_ms, latency_ms)
        frame = _log.encode(record)
    content = _dumps(
        {
            "predictions": prediction.predictions,
            "probabilities": prediction.probabilities,
            "model_version": served.uri,
            "prediction_ids": ids,
        }
    )
    return _Answer(content, frame, payload, ids, now_ms)


def _record(
    served: _router.Served,
    role: str,
    ids: list[str],
    inputs: dict[str, Any],
    prediction: _router.Prediction,
    now_ms: int,
    latency_ms: float,
) -> dict[str, Any]:
    """A prediction record of the log (see :mod:`._log`)."""
    return {
        "k": "p",
        "t": now_ms,
        "v": served.uri,
        "r": role,
        "ids": ids,
        "in": inputs,
        "out": prediction.predictions,
        "proba": prediction.probabilities,
        "ms": round(latency_ms, 3),
    }


class Endpoints:
    """The deployments the main server predicts for (``POST /api/v1/deployments/{name}/predict``).

    Each is loaded in this process on its first request and kept. A request
    that finds its definition read more than ``poll_interval`` seconds ago starts
    a refresh in a thread (an alias moved, the deployment was updated or
    deleted) and is answered by what is loaded: only a deployment's first
    request waits for a model to load. The same refresh compacts the log every
    ``compact_interval`` seconds.
    """

    def __init__(
        self, client: Client, *, poll_interval: float = 1.0, compact_interval: float = 60.0
    ) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.compact_interval = compact_interval
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()
        self._opening: dict[str, threading.Lock] = {}

    async def get(self, name: str) -> Endpoint:
        """The endpoint of deployment ``name``, loaded (NotFound when there is no such one)."""
        kept = self._kept.get(name)
        if kept is None:
            return await anyio.to_thread.run_sync(lambda: self._open(name))
        if time.monotonic() - kept.checked_at >= self.poll_interval and not kept.busy:
            kept.busy = True
            threading.Thread(
                target=self._refresh, args=(name, kept), name=f"shipyard-{name}", daemon=True
            ).start()
        return kept.endpoint

    def _open(self, name: str) -> Endpoint:
        with self._lock:
            opening = self._opening.setdefault(name, threading.Lock())
        with opening:  # one load per deployment, however many first requests come at once
            kept = self._kept.get(name)
            if kept is not None:
                return kept.endpoint
            client = self.client
            folder = _log.log_folder(client.settings.home, name)
            endpoint = Endpoint(
                name,
                lambda: _router.Targets.of(client.get_deployment(name)),
                client=client,
                prediction_log=_log.PredictionLog(folder),
            )
            try:
                endpoint.refresh()
            except BaseException:
                endpoint.close()
                raise
            now = time.monotonic()
            self._kept[name] = _Kept(endpoint, checked_at=now, compacted_at=now)
            return endpoint

    def _refresh(self, name: str, kept: _Kept) -> None:
        endpoint = kept.endpoint
        try:
            endpoint.refresh()
        except NotFound as exc:
            if exc.kind == "deployment":  # deleted: the next request reads the store again
                with self._lock:
                    if self._kept.get(name) is kept:
                        del self._kept[name]
                endpoint.close()
                return
            endpoint.load_error = str(exc)
        except Exception as exc:  # the store unreachable, a bad new version: keep serving
            endpoint.load_error = f"{type(exc).__name__}: {exc}"
            log.warning("deployment %s keeps %s: %s", name, endpoint.router.versions(), exc)
        finally:
            kept.checked_at = time.monotonic()
            kept.busy = False
        if (
            endpoint.log is not None
            and kept.checked_at - kept.compacted_at >= self.compact_interval
        ):
            kept.compacted_at = kept.checked_at
            try:
                _log.compact_in_child(endpoint.log.folder, self.client, name)
            except Exception as exc:  # the segments wait for the next round
                log.warning("prediction log compaction of %s failed: %s", name, exc)

    def close(self) -> None:
        """Close every endpoint (their logs flushed); for the server's shutdown."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for item in kept:
            item.endpoint.close()


@dataclasses.dataclass
class _Kept:
    endpoint: Endpoint
    checked_at: float
    compacted_at: float
    busy: bool = False


def endpoints_of(app: FastAPI) -> Endpoints:
    """The main server's :class:`Endpoints`, made on first use."""
    found = getattr(app.state, "endpoints", None)
    if found is None:
        found = app.state.endpoints = Endpoints(app.state.client)
    return found


# ------------------------------------------------------------------ the app


def create_serving_app(
    uri: str | None,
    *,
    deployment: str | None = None,
    client: Client | None = None,
    runtime: str = "auto",
    log_predictions: bool = True,
    sync: bool = True,
    log_dir: str | os.PathLike[str] | None = None,
    auth: bool = False,
    allowed_hosts: Sequence[str] = _security.LOOPBACK_HOSTS,
    max_body_size: int = _security.MAX_JSON_BODY,
    max_rows: int = MAX_ROWS,
    poll_interval: float = 1.0,
    compact_interval: float = 60.0,
    shadow_queue: int = SHADOW_QUEUE,
    seed: int | None = None,
) -> FastAPI:
    """The app serving ``uri`` (``models:/name@alias`` or ``models:/name/N``), or, with
    ``uri=None``, the stored deployment ``deployment`` (model, canary, shadow), read again
    every ``poll_interval`` seconds so an update is served without a restart.

    ``deployment`` names the prediction log (default: the model's name), kept
    under ``<home>/predictions/<deployment>/`` unless ``log_dir`` says where.
    ``runtime`` is ``auto``, ``native`` or ``onnx`` (see :mod:`._router`).
    ``log_predictions=False`` and ``sync=False`` exist to measure what logging
    costs; a deployment keeps both on. ``shadow_queue`` bounds the requests
    waiting for the shadow; ``seed`` makes the canary draws repeatable. The
    model loads in the background after start: ``/ready`` says when.
    """
    _router.check_runtime(runtime)
    client = client or Client()
    targets: Callable[[], _router.Targets]
    if uri is None:
        if deployment is None:
            raise InvalidInput(
                "Serving needs a model URI or the name of a stored deployment; got neither.",
                hint="Pass models:/NAME@ALIAS, or deployment='NAME' (see `shipyard deployments list`).",
            )
        name = deployment
        stored = deployment

        def targets() -> _router.Targets:
            return _router.Targets.of(client.get_deployment(stored))

        follows = True
        shown = f"deployment {name}"
    else:
        fixed = _router.Targets(str(_uri.parse(uri)))
        name = deployment or _uri.parse(uri).name

        def targets() -> _router.Targets:
            return fixed

        follows = fixed.follows_aliases
        shown = fixed.model
    folder = _log.log_folder(client.settings.home, name)  # checks the name too
    if log_dir is not None:
        folder = Path(log_dir)
    endpoint = Endpoint(
        name,
        targets,
        client=client,
        runtime=runtime,
        prediction_log=_log.PredictionLog(folder, sync=sync) if log_predictions else None,
        max_rows=max_rows,
        max_body_size=max_body_size,
        shadow_queue=shadow_queue,
        seed=seed,
        monitoring=MonitoringGauges(client, name),
    )
    metrics = endpoint.metrics
    prediction_log = endpoint.log

    async def refresh() -> None:
        if await anyio.to_thread.run_sync(endpoint.refresh):
            metrics.swaps.inc()
            await anyio.to_thread.run_sync(_settle_heap)

    async def load_and_watch() -> None:
        """Load the model (retrying), then follow aliases and the stored definition."""
        while not endpoint.router.ready:
            try:
                await refresh()
            except Exception as exc:  # any failure to load: report on /ready, retry
                endpoint.load_error = f"{type(exc).__name__}: {exc}"
                log.error("cannot load %s: %s", shown, endpoint.load_error)
                metrics.errors.inc("load")
                await asyncio.sleep(max(poll_interval, 1.0))
        if not follows:
            return
        while True:
            await asyncio.sleep(poll_interval)
            try:
                await refresh()
            except Exception as exc:  # the store unreachable, a bad new version: keep serving
                endpoint.load_error = f"{type(exc).__name__}: {exc}"
                metrics.errors.inc("swap")
                log.warning("keeping %s: %s", endpoint.router.versions(), endpoint.load_error)

    async def compact_now() -> int:
        return await anyio.to_thread.run_sync(lambda: _log.compact_in_child(folder, client, name))

    async def compact_periodically() -> None:
        while True:
            await asyncio.sleep(compact_interval)
            try:
                await compact_now()
            except Exception as exc:  # keep serving; the segments wait for the next round
                metrics.errors.inc("compaction")
                log.warning("prediction log compaction failed: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(load_and_watch())]
        if prediction_log is not None:
            tasks.append(asyncio.create_task(compact_periodically()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # Requests in flight finished before the lifespan ends: flush and close.
            await anyio.to_thread.run_sync(endpoint.close)

    app = FastAPI(
        title=f"Shipyard serving {name}",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.client = client
    app.state.auth = auth
    app.state.endpoint = endpoint
    app.state.deployment = name
    app.state.compact = compact_now
    _errors.install(app)
    _security.install(app, auth=auth, allowed_hosts=allowed_hosts, max_body_size=max_body_size)

    def role(required: _auth.Role) -> list[Any]:
        """The route's role, declared only with auth on (no dependency cost otherwise)."""
        if not auth:
            return []

        async def dependency(request: Request) -> None:
            await anyio.to_thread.run_sync(lambda: _auth._authenticate(request, required))

        dependency.required_role = required  # type: ignore[attr-defined]
        return [Depends(dependency)]

    @app.post("/predict", dependencies=role(_auth.Role.viewer), tags=["serving"])
    async def predict(request: Request) -> Response:
        """Predict for a batch of rows; each row gets a prediction id and is logged."""
        return await endpoint.predict(request)

    @app.post("/labels", dependencies=role(_auth.Role.editor), tags=["serving"])
    async def labels(request: Request) -> Response:
        """Store ground truth for earlier predictions; unknown ids are reported back."""
        try:
            if prediction_log is None:
                raise Conflict(
                    "This server runs without a prediction log, so labels cannot be matched.",
                    hint="Serve with prediction logging on.",
                )
            try:
                body = await request.body()
            except HTTPException as exc:
                if exc.status_code != 413:
                    raise
                raise _too_large(max_body_size) from None
            ids, values = _log.check_labels(_json(body))
            keep_ids, keep_values, unknown = await anyio.to_thread.run_sync(
                lambda: _log.store_labels(prediction_log, client.blobs, ids, values)
            )
            if keep_ids:
                await prediction_log.append(_log.label_record(keep_ids, keep_values))
        except ShipyardError as exc:
            return endpoint.refuse(exc, "labels")
        except Exception as exc:  # a bug: answered as JSON
            return endpoint.failed(exc, "labels")
        metrics.requests.inc("labels", "200")
        return JSONResponse({"stored": len(keep_ids), "unknown": unknown})

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/ready", dependencies=role(_auth.Role.viewer), tags=["operations"])
    async def ready() -> JSONResponse:
        """Readiness: 200 once a model version is loaded, 503 before."""
        lineup = endpoint.router.lineup
        if lineup is None:
            return JSONResponse(
                {"ready": False, "model": shown, "error": endpoint.load_error}, status_code=503
            )
        return JSONResponse(
            {
                "ready": True,
                "model": shown,
                "model_version": lineup.primary.uri,
                "runtime": lineup.primary.runtime,
                "deployment": name,
                "canary": lineup.canary.uri if lineup.canary else None,
                "canary_percent": lineup.canary_percent if lineup.canary else None,
                "shadow": lineup.shadow.uri if lineup.shadow else None,
            }
        )

    @app.get("/metrics", dependencies=role(_auth.Role.viewer), tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus metrics: requests, latency, errors, model versions, log backlog, shadow."""
        return Response(
            endpoint.render_metrics(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app


def _settle_heap() -> None:
    """Collect once, then freeze what is left (the libraries, the loaded models) out of the
    cyclic collector's sight.

    A large batch makes tens of thousands of lists; each few hundred start a
    collection, and the full ones walked every object the imports and the
    models made: 20 to 30 ms of a 10,000-row batch, 3 to 6 ms once frozen.
    What the previous lineup left is unfrozen and collected first.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# ------------------------------------------------------------------ requests


def _json(body: bytes) -> Any:
    if not body:
        raise MalformedBody("The request body is empty.", hint=_ROWS_HINT)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # Python's reader: its message, and NaN, Infinity, huge integers, UTF-16 read
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        detail = (
            str(exc).splitlines()[0][:200]
            if not isinstance(exc, RecursionError)
            else ("nested too deeply")
        )
        raise MalformedBody(f"The body is not valid JSON: {detail}.", hint=_ROWS_HINT) from exc


def _media(content_type: str) -> str | None:
    """``json``, ``arrow`` or ``parquet``: how a body of ``content_type`` is read; None when
    this app cannot read it."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or kind.endswith("+json"):
        return "json"
    if kind in ARROW_TYPES:
        return "arrow"
    if kind in PARQUET_TYPES:
        return "parquet"
    return None


def _parse(body: bytes, content_type: str, max_rows: int) -> Any:
    """The request's rows: a list of records, a dict of columns, a :class:`_router.Table`
    (JSON columns and rows), or a pyarrow Table (Arrow, Parquet)."""
    media = _media(content_type)
    if media == "json":
        payload = _rows_from_json(_json(body))
    else:
        payload = _table(body, parquet=media == "parquet", max_rows=max_rows)
    rows = _count(payload)
    if rows == 0:
        raise InvalidInput("The batch has no rows.", hint="Send at least one row.")
    if rows > max_rows:
        raise TooLarge(
            f"The batch has {rows:,} rows; this server takes at most {max_rows:,} per request.",
            hint="Split it into smaller requests.",
        )
    return payload


def _rows_from_json(data: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput(
            f"The body must be a JSON object; got {type(data).__name__ if data is not None else 'null'}.",
            hint=_ROWS_HINT,
        )
    if "inputs" in data:
        extra = sorted(set(data) - {"inputs"})
        if extra:
            raise InvalidInput(f"Unexpected key(s) {extra} next to 'inputs'.", hint=_ROWS_HINT)
        inputs = data["inputs"]
        if not isinstance(inputs, list | dict):
            raise InvalidInput(
                f"'inputs' must be a list of rows or a dict of columns; got {type(inputs).__name__}.",
                hint=_ROWS_HINT,
            )
        return inputs
    if "columns" in data or "data" in data:
        extra = sorted(set(data) - {"columns", "data"})
        if extra or "columns" not in data or "data" not in data:
            raise InvalidInput(
                "A column-oriented body has exactly the keys 'columns' and 'data'"
                + (f"; it also has {extra}." if extra else "."),
                hint=_ROWS_HINT,
            )
        return _records(data["columns"], data["data"])
    raise InvalidInput(
        f"The body needs 'inputs', or 'columns' and 'data'; it has {sorted(data)[:10]}.",
        hint=_ROWS_HINT,
    )


def _records(columns: Any, data: Any) -> _router.Table:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("'columns' must be a list of column names (strings).", hint=_ROWS_HINT)
    if len(set(columns)) != len(columns):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        raise InvalidInput(
            f"'columns' names {twice} more than once.", hint="Name each column once."
        )
    if not isinstance(data, list):
        raise InvalidInput("'data' must be a list of rows (lists of values).", hint=_ROWS_HINT)
    width = len(columns)
    if not all(type(row) is list and len(row) == width for row in data):
        for number, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                raise InvalidInput(
                    f"Row {number} of 'data' must be a list of {width} values, one per column; "
                    f"got {row!r:.100}.",
                    hint=_ROWS_HINT,
                )
    return _router.Table(columns, data)


def _table(body: bytes, *, parquet: bool, max_rows: int) -> Any:
    import pyarrow as pa

    if not body:
        raise MalformedBody("The request body is empty.")
    try:
        if parquet:
            import pyarrow.parquet as pq

            source = pq.ParquetFile(pa.BufferReader(body))
            if source.metadata.num_rows > max_rows:
                raise TooLarge(
                    f"The Parquet file has {source.metadata.num_rows:,} rows; this server takes "
                    f"at most {max_rows:,} per request.",
                    hint="Split it into smaller requests.",
                )
            table = source.read()
        else:
            table = pa.ipc.open_stream(pa.BufferReader(body)).read_all()
        return table
    except ShipyardError:
        raise
    except Exception as exc:  # pyarrow raises many kinds on bytes that are not its format
        what = "Parquet file" if parquet else "Arrow IPC stream"
        raise MalformedBody(
            f"The body is not a readable {what}: {type(exc).__name__}: {str(exc)[:200]}",
            hint="Write it with pyarrow (pq.write_table / pa.ipc.new_stream).",
        ) from exc


def _count(payload: Any) -> int:
    if isinstance(payload, list):
        return len(payload)
    if isinstance(payload, dict):
        lengths = [len(v) for v in payload.values() if isinstance(v, list)]
        return max(lengths, default=0) if lengths or not payload else 1
    return len(payload)


def _predict(served: _router.Served, payload: Any) -> tuple[_router.Prediction, dict[str, Any]]:
    """Check, predict; return the prediction and the inputs to log."""
    columns = served.fast_columns(payload)
    if columns is not None:
        return served.predict(served.frame_from_columns(columns)), columns
    if isinstance(payload, _router.Table):
        payload = payload.records()
    elif not isinstance(payload, list | dict):
        payload = _pandas(payload)
    frame, model_input = served.validate(payload)
    return served.predict(model_input), _frame_columns(frame)


def _pandas(table: Any) -> Any:
    """An Arrow table of a request as a DataFrame, for :meth:`Signature.validate`."""
    try:
        return table.to_pandas()
    except Exception as exc:  # pyarrow raises many kinds on types pandas cannot hold
        raise MalformedBody(
            f"The body's table cannot be read: {type(exc).__name__}: {str(exc)[:200]}",
            hint="Send columns of plain types (numbers, strings, booleans, timestamps).",
        ) from exc


def _frame_columns(frame: Any) -> dict[str, list[Any]]:
    """A checked frame's columns as JSON-able lists (nulls as None, times as ISO text)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    out: dict[str, list[Any]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            out[name] = [None if v is None else v.isoformat() for v in column.to_pylist()]
        else:
            out[name] = column.to_pylist()
    return out


def _dumps(body: Mapping[str, Any]) -> bytes:
    """Compact JSON; NaN or infinity in an output is null, as JSON has no such numbers."""
    try:
        return orjson.dumps(body, default=_log.json_default, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # an integer beyond 64 bits: Python's writer takes it
        return json.dumps(_no_nan(body), separators=(",", ":"), default=_log.json_default).encode()


def _no_nan(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    return value


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"The request body is over {limit:,} bytes, this server's limit.",
        hint="Split the batch into smaller requests.",
    )


def _unsupported(content_type: str, metrics: ServingMetrics) -> JSONResponse:
    metrics.errors.inc("unsupported_media_type")
    metrics.requests.inc("predict", "415")
    return JSONResponse(
        _errors.error_body(
            "unsupported_media_type",
            f"This server cannot read a body of type {content_type!r}.",
            "Send application/json, application/vnd.apache.arrow.stream or application/x-parquet.",
        ),
        status_code=415,
    )


# ------------------------------------------------------------------ workers


def app_from_environment(environ: Mapping[str, str] | None = None) -> FastAPI:
    """The app ``shipyard serve`` runs in each uvicorn worker (``--factory``), from
    ``SHIPYARD_SERVING_OPTIONS`` (JSON written by the command)."""
    environ = os.environ if environ is None else environ
    try:
        options = json.loads(environ.get(OPTIONS_VARIABLE) or "")
        if not isinstance(options, dict) or not isinstance(
            options.get("uri") or options.get("deployment"), str
        ):
            raise ValueError("not an object with 'uri' or 'deployment'")
        return create_serving_app(
            options.get("uri"),
            deployment=options.get("deployment"),
            runtime=str(options.get("runtime", "auto")),
            auth=bool(options.get("auth", True)),
            allowed_hosts=list(options.get("allowed_hosts", _security.LOOPBACK_HOSTS)),
            max_body_size=int(options.get("max_body_size", _security.MAX_JSON_BODY)),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{OPTIONS_VARIABLE} is not a JSON object of serving options: {exc}.",
            hint="Start the server with `shipyard serve`.",
        ) from exc
