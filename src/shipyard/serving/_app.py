"""The prediction app ``shipyard serve`` runs: one deployment of one registered model.

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

Hot swap: for a ``models:/name@alias`` URI a task asks the store every
``poll_interval`` seconds which version the alias names; when it moved, the new
version is loaded and warmed up in a thread while the old one keeps answering,
then swapped in with one reference assignment (see :mod:`._router`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from shipyard._version import __version__
from shipyard.errors import ConfigError, Conflict, InvalidInput, ShipyardError
from shipyard.models import _uri
from shipyard.server import _auth, _errors, _security
from shipyard.serving import _log, _router
from shipyard.serving._metrics import ServingMetrics
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
OPTIONS_VARIABLE = "SHIPYARD_SERVING_OPTIONS"
_ROWS_HINT = (
    'Send {"inputs": [{"column": value, ...}, ...]} or {"columns": [...], "data": [[...]]}.'
)


class MalformedBody(InvalidInput):
    """The body cannot be read as the media type it claims."""

    code = "malformed_body"


class TooLarge(InvalidInput):
    code = "payload_too_large"


def create_serving_app(
    uri: str,
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
) -> FastAPI:
    """The app serving ``uri`` (``models:/name@alias`` or ``models:/name/N``).

    ``deployment`` names the prediction log (default: the model's name), kept
    under ``<home>/predictions/<deployment>/`` unless ``log_dir`` says where.
    ``runtime`` is ``auto``, ``native`` or ``onnx`` (see :mod:`._router`).
    ``log_predictions=False`` and ``sync=False`` exist to measure what logging
    costs; a deployment keeps both on. The model loads in the background after
    start: ``/ready`` says when.
    """
    ref = _uri.parse(uri)
    _router.check_runtime(runtime)
    client = client or Client()
    deployment = deployment or ref.name
    folder = _log.log_folder(client.settings.home, deployment)  # checks the name too
    if log_dir is not None:
        folder = Path(log_dir)
    router = _router.Router()
    prediction_log = _log.PredictionLog(folder, sync=sync) if log_predictions else None
    metrics = ServingMetrics(
        versions=router.versions,
        backlog=lambda: {
            ("records",): float(prediction_log.pending if prediction_log else 0),
            ("bytes",): float(prediction_log.backlog_bytes if prediction_log else 0),
        },
    )
    state: dict[str, Any] = {"load_error": None}

    async def load_and_watch() -> None:
        """Load the model (retrying), then follow the alias if the URI has one."""
        while router.current is None:
            try:
                served = await anyio.to_thread.run_sync(
                    lambda: _router.load(uri, runtime=runtime, client=client)
                )
            except Exception as exc:  # any failure to load: report on /ready, retry
                state["load_error"] = f"{type(exc).__name__}: {exc}"
                log.error("cannot load %s: %s", uri, state["load_error"])
                metrics.errors.inc("load")
                await asyncio.sleep(max(poll_interval, 1.0))
                continue
            router.swap(served)
            state["load_error"] = None
            metrics.swaps.inc()
            log.info("serving %s (%s) as deployment %s", served.uri, served.runtime, deployment)
        if ref.alias is None:
            return
        while True:
            await asyncio.sleep(poll_interval)
            try:
                await _follow_alias()
            except Exception as exc:  # the store unreachable, a bad new version: keep serving
                state["load_error"] = f"{type(exc).__name__}: {exc}"
                metrics.errors.inc("swap")
                log.warning("keeping %s: %s", router.versions(), state["load_error"])

    async def _follow_alias() -> None:
        version = await anyio.to_thread.run_sync(lambda: client.get_model_version(uri))
        current = router.current
        if current is not None and version.version == current.version.version:
            return
        served = await anyio.to_thread.run_sync(
            lambda: _router.load(version.uri, runtime=runtime, client=client)
        )
        previous = router.swap(served)
        state["load_error"] = None
        metrics.swaps.inc()
        log.info(
            "%s moved: now serving %s (was %s)",
            uri,
            served.uri,
            previous.uri if previous else None,
        )

    async def compact_now() -> int:
        return await anyio.to_thread.run_sync(
            lambda: _log.compact(folder, client.blobs, deployment)
        )

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
            if prediction_log is not None:
                # Requests in flight finished before the lifespan ends: flush and close.
                await anyio.to_thread.run_sync(prediction_log.close)

    app = FastAPI(
        title=f"Shipyard serving {deployment}",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.client = client
    app.state.auth = auth
    app.state.router = router
    app.state.log = prediction_log
    app.state.metrics = metrics
    app.state.deployment = deployment
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

    def refuse(exc: ShipyardError, route: str) -> JSONResponse:
        status = _errors.status_of(exc)
        if isinstance(exc, TooLarge):
            status = 413
        metrics.errors.inc(exc.code)
        metrics.requests.inc(route, str(status))
        return JSONResponse(_errors.error_body(exc.code, exc.message, exc.hint), status_code=status)

    def not_ready(route: str) -> JSONResponse:
        metrics.errors.inc("not_ready")
        metrics.requests.inc(route, "503")
        return JSONResponse(
            _errors.error_body(
                "not_ready",
                f"The model {uri} is not loaded yet.",
                state["load_error"] or "Wait until GET /ready answers 200.",
            ),
            status_code=503,
        )

    def failed(exc: Exception, route: str) -> JSONResponse:
        log.exception("%s failed", route)
        metrics.errors.inc("internal")
        metrics.requests.inc(route, "500")
        return JSONResponse(
            _errors.error_body("internal_error", f"The server failed: {type(exc).__name__}."),
            status_code=500,
        )

    @app.post("/predict", dependencies=role(_auth.Role.viewer), tags=["serving"])
    async def predict(request: Request) -> Response:
        """Predict for a batch of rows; each row gets a prediction id and is logged."""
        started = time.perf_counter()
        served = router.choose()
        if served is None:
            return not_ready("predict")
        try:
            body = await request.body()
            payload = _parse(body, request.headers.get("content-type", ""), max_rows)
            if payload is None:
                return _unsupported(request.headers.get("content-type", ""), metrics)
            answer = await _answer(served, payload)
        except ShipyardError as exc:
            return refuse(exc, "predict")
        except HTTPException as exc:  # the body cap, raised while the body is read
            if exc.status_code != 413:
                raise
            return refuse(_too_large(max_body_size), "predict")
        except Exception as exc:  # a bug: answered as JSON, never a raw traceback
            return failed(exc, "predict")
        prediction, inputs, rows = answer
        now_ms = time.time_ns() // 1_000_000
        ids = _log.new_ids(rows, now_ms)
        latency_ms = (time.perf_counter() - started) * 1000
        if prediction_log is not None:
            record = {
                "k": "p",
                "t": now_ms,
                "v": served.uri,
                "ids": ids,
                "in": inputs,
                "out": prediction.predictions,
                "proba": prediction.probabilities,
                "ms": round(latency_ms, 3),
            }
            try:
                await prediction_log.append(record)
            except ShipyardError as exc:
                return refuse(exc, "predict")
        content = _dumps(
            {
                "predictions": prediction.predictions,
                "probabilities": prediction.probabilities,
                "model_version": served.uri,
                "prediction_ids": ids,
            }
        )
        metrics.requests.inc("predict", "200")
        metrics.rows.inc(amount=rows)
        metrics.latency.observe(time.perf_counter() - started)
        return Response(content, media_type="application/json")

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
            return refuse(exc, "labels")
        except Exception as exc:  # a bug: answered as JSON
            return failed(exc, "labels")
        metrics.requests.inc("labels", "200")
        return JSONResponse({"stored": len(keep_ids), "unknown": unknown})

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/ready", dependencies=role(_auth.Role.viewer), tags=["operations"])
    async def ready() -> JSONResponse:
        """Readiness: 200 once a model version is loaded, 503 before."""
        served = router.current
        if served is None:
            return JSONResponse(
                {"ready": False, "model": uri, "error": state["load_error"]}, status_code=503
            )
        return JSONResponse(
            {
                "ready": True,
                "model": uri,
                "model_version": served.uri,
                "runtime": served.runtime,
                "deployment": deployment,
            }
        )

    @app.get("/metrics", dependencies=role(_auth.Role.viewer), tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus metrics: requests, latency, errors, model version, log backlog."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


# ------------------------------------------------------------------ requests


def _json(body: bytes) -> Any:
    if not body:
        raise MalformedBody("The request body is empty.", hint=_ROWS_HINT)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        detail = (
            str(exc).splitlines()[0][:200]
            if not isinstance(exc, RecursionError)
            else ("nested too deeply")
        )
        raise MalformedBody(f"The body is not valid JSON: {detail}.", hint=_ROWS_HINT) from exc


def _parse(body: bytes, content_type: str, max_rows: int) -> Any:
    """The request's rows: a list of records, a dict of columns, or a DataFrame (Arrow,
    Parquet); None for a media type this app does not read."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or kind.endswith("+json"):
        payload = _rows_from_json(_json(body))
    elif kind in ARROW_TYPES or kind in PARQUET_TYPES:
        payload = _table(body, parquet=kind in PARQUET_TYPES, max_rows=max_rows)
    else:
        return None
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


def _records(columns: Any, data: Any) -> list[dict[str, Any]]:
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
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInput(
                f"Row {number} of 'data' must be a list of {width} values, one per column; "
                f"got {row!r:.100}.",
                hint=_ROWS_HINT,
            )
    return [dict(zip(columns, row, strict=True)) for row in data]


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
        return table.to_pandas()
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


async def _answer(
    served: _router.Served, payload: Any
) -> tuple[_router.Prediction, dict[str, Any], int]:
    """Check, predict; return the prediction, the inputs to log, and the row count."""
    columns = served.fast_columns(payload)
    if columns is not None:
        rows = len(payload)

        def run() -> tuple[_router.Prediction, dict[str, Any]]:
            return served.predict(served.frame_from_columns(columns)), columns
    else:

        def run() -> tuple[_router.Prediction, dict[str, Any]]:
            frame, model_input = served.validate(payload)
            return served.predict(model_input), _frame_columns(frame)

        rows = _count(payload)
    if rows <= INLINE_ROWS:
        prediction, inputs = run()
    else:
        prediction, inputs = await anyio.to_thread.run_sync(run)
    return prediction, inputs, len(prediction.predictions)


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
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # NaN or infinity in an output: JSON has no such numbers, so null
        return json.dumps(_no_nan(body), separators=(",", ":")).encode()


def _no_nan(value: Any) -> Any:
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
        if not isinstance(options, dict) or not isinstance(options.get("uri"), str):
            raise ValueError("not an object with 'uri'")
        return create_serving_app(
            options["uri"],
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
