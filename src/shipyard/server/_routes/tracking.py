"""Experiments, runs, params, metrics, tags, run search and artifacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard.errors import InvalidInput, NotFound
from shipyard.server import _schemas as s
from shipyard.server._auth import Principal
from shipyard.server._routes._common import (
    ERROR_RESPONSES,
    UPLOAD_BODY,
    Editor,
    MaxResults,
    PageToken,
    Upload,
    Viewer,
    download_responses,
    page,
    page_offset,
    stream_blob,
)
from shipyard.store.entities import Metric
from shipyard.tracking._client import _now_ms, _status

router = APIRouter(tags=["tracking"], responses=ERROR_RESPONSES)

RunId = Annotated[str, Path(max_length=64, description="The run's id.")]
ArtifactPath = Annotated[
    str, Path(max_length=1024, description="The artifact's path, e.g. plots/roc.png.")
]


# ---------------------------------------------------------------------- experiments


@router.get("/experiments", response_model=s.Page[s.Experiment])
def list_experiments(
    request: Request,
    principal: Viewer,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> dict[str, object]:
    """Experiments, oldest first."""
    return page(principal.client(request).list_experiments(), max_results, page_token)


@router.post("/experiments", response_model=s.Experiment, status_code=status.HTTP_201_CREATED)
def create_experiment(body: s.ExperimentCreate, request: Request, principal: Editor) -> object:
    return principal.client(request).create_experiment(body.name, body.description)


@router.get("/experiments/{experiment}", response_model=s.Experiment)
def get_experiment(
    experiment: Annotated[
        str, Path(max_length=256, description="A name or an id.", examples=["credit"])
    ],
    request: Request,
    principal: Viewer,
) -> object:
    return principal.client(request).get_experiment(experiment)


# ----------------------------------------------------------------------------- runs


@router.post("/runs", response_model=s.Run, status_code=status.HTTP_201_CREATED)
def create_run(body: s.RunCreate, request: Request, principal: Editor) -> object:
    """Start a RUNNING run; the experiment is created if it is missing.

    With ``heartbeat``, the run expects ``POST /runs/{id}/heartbeat`` and shows
    FAILED once they stop for longer than the server's heartbeat timeout.
    """
    return principal.client(request)._start_run(
        body.experiment, body.name, body.tags, body.parent_run_id, heartbeat=body.heartbeat
    )


@router.get("/runs", response_model=s.Page[s.Run])
def list_runs(
    request: Request,
    principal: Viewer,
    experiment: Annotated[list[str] | None, Query(max_length=100)] = None,
    filter: Annotated[str | None, Query(max_length=s.MAX_FILTER_LENGTH)] = None,
    order_by: Annotated[list[str] | None, Query(max_length=20)] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Runs matching ``filter``, newest first unless ``order_by`` says otherwise."""
    return _search(request, principal, experiment, filter, order_by, max_results, page_token)


@router.post("/runs/search", response_model=s.Page[s.Run])
def search_runs(body: s.RunSearch, request: Request, principal: Viewer) -> object:
    """The same as ``GET /runs``, with the query in a JSON body."""
    return _search(
        request,
        principal,
        body.experiments,
        body.filter,
        body.order_by,
        body.max_results,
        body.page_token,
    )


def _search(
    request: Request,
    principal: Principal,
    experiments: list[str] | None,
    filter_: str | None,
    order_by: list[str] | None,
    max_results: int,
    page_token: str | None,
) -> dict[str, object]:
    found = principal.client(request).search_runs(
        experiments, filter_, order_by, max_results, page_token
    )
    return {"items": found.runs, "next_page_token": found.next_page_token}


@router.get("/runs/{run_id}", response_model=s.Run)
def get_run(run_id: RunId, request: Request, principal: Viewer) -> object:
    return principal.client(request).get_run(run_id)


@router.post("/runs/{run_id}/end", response_model=s.Run)
def end_run(run_id: RunId, body: s.RunEnd, request: Request, principal: Editor) -> object:
    """End a run as FINISHED (default), FAILED or KILLED, writing ``metrics`` in the same
    transaction (a client's last buffered points)."""
    client = principal.client(request)
    points = client._points(client._run_pk(run_id), _metrics(body.metrics))
    client._end_run(run_id, _status(body.status), points)
    return client.get_run(run_id)


@router.post("/runs/{run_id}/heartbeat", response_model=s.Heartbeat)
def heartbeat(run_id: RunId, request: Request, principal: Editor) -> object:
    """The run's process is alive (runs started with ``heartbeat``: see ``POST /runs``)."""
    principal.client(request)._heartbeat([run_id])
    return s.Heartbeat(run_id=run_id, time=_now_ms())


@router.post(
    "/runs/{run_id}/inputs", response_model=s.RunInput, status_code=status.HTTP_201_CREATED
)
def record_input(
    run_id: RunId, body: s.RunInputCreate, request: Request, principal: Editor
) -> object:
    """Record that the run read a dataset version (lineage; once per pair).

    An unknown run is 404; an unknown dataset version, named in the body, is 400.
    """
    client = principal.client(request)
    client.get_run(run_id)
    try:
        client.record_input(run_id, body.dataset, body.version)
    except NotFound as exc:
        raise InvalidInput(exc.message, hint=exc.hint) from None
    return s.RunInput(run_id=run_id, dataset=body.dataset, version=body.version)


# ------------------------------------------------------------ params, metrics, tags


def _log(
    request: Request,
    principal: Principal,
    run_id: str,
    metrics: list[s.MetricPoint],
    params: dict[str, object],
    tags: dict[str, object],
) -> s.Logged:
    points = _metrics(metrics)
    principal.client(request).log_batch(run_id, points, params, tags)
    return s.Logged(metrics=len(points), params=len(params), tags=len(tags))


def _metrics(metrics: list[s.MetricPoint]) -> list[Metric]:
    now = _now_ms()
    return [
        Metric(
            m.key,
            s.metric_float(m.value),
            m.step,
            m.timestamp if m.timestamp is not None else now,
        )
        for m in metrics
    ]


@router.post("/runs/{run_id}/batch", response_model=s.Logged)
def log_batch(run_id: RunId, body: s.LogBatch, request: Request, principal: Editor) -> object:
    """Metrics, params and tags in one transaction: all are written, or none."""
    return _log(request, principal, run_id, body.metrics, body.params, body.tags)


@router.post("/runs/{run_id}/metrics", response_model=s.Logged)
def log_metrics(run_id: RunId, body: s.LogMetrics, request: Request, principal: Editor) -> object:
    return _log(request, principal, run_id, body.metrics, {}, {})


@router.post("/runs/{run_id}/params", response_model=s.Logged)
def log_params(run_id: RunId, body: s.LogParams, request: Request, principal: Editor) -> object:
    """Params are immutable: logging a key again with another value is a conflict."""
    return _log(request, principal, run_id, [], body.params, {})


@router.post("/runs/{run_id}/tags", response_model=s.Logged)
def set_tags(run_id: RunId, body: s.SetTags, request: Request, principal: Editor) -> object:
    return _log(request, principal, run_id, [], {}, body.tags)


@router.get("/runs/{run_id}/metric-history", response_model=s.Page[s.Metric])
def metric_history(
    run_id: RunId,
    request: Request,
    principal: Viewer,
    key: Annotated[str, Query(min_length=1, max_length=250, description="The metric key.")],
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Every point of one metric, by step then time."""
    history = principal.client(request).get_metric_history(run_id, key)
    return page(history, max_results, page_token)


# ------------------------------------------------------------------------ artifacts


@router.get("/runs/{run_id}/artifacts", response_model=s.Page[s.Artifact])
def list_artifacts(
    run_id: RunId,
    request: Request,
    principal: Viewer,
    path: Annotated[str, Query(max_length=1024, description="A folder or file path.")] = "",
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """The run's artifacts (below ``path``, if given), by path."""
    page_offset(page_token)  # a bad token is refused before the lookup
    return page(principal.client(request).list_artifacts(run_id, path), max_results, page_token)


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    response_model=s.Artifact,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
)
async def upload_artifact(
    run_id: RunId, path: ArtifactPath, request: Request, principal: Editor
) -> object:
    """Store the request body as the artifact ``path`` of the run (replacing one there).

    The body is streamed in bounded memory. With an ``X-Shipyard-Digest:
    sha256:<hex>`` header the bytes must hash to it, and a body shorter than
    its Content-Length is refused: in both cases nothing is stored.
    """
    upload = Upload(request)
    client = principal.client(request)
    return await run_in_threadpool(client.log_artifact_stream, run_id, path, upload)


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses=download_responses("application/octet-stream"),
)
def download_artifact(
    run_id: RunId, path: ArtifactPath, request: Request, principal: Viewer
) -> StreamingResponse:
    """The artifact's bytes, with Content-Length and ``X-Shipyard-Digest``."""
    client = principal.client(request)
    artifact = client.get_artifact(run_id, path)
    return stream_blob(
        client.blobs.open(artifact.digest),
        artifact.digest,
        artifact.size,
        "application/octet-stream",
        filename=artifact.path,
    )
