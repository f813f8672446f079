"""Monitors and their per-window results.

Only definitions, prepared references and results travel here: the drift and
performance computation runs where ``run_monitor`` is called, next to the
prediction log it reads (see :mod:`shipyard.monitoring._monitors`), and
stores its windows through these routes.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictFloat, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import _monitors
from shipyard.server import _schemas as s
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
    stream_blob,
)
from shipyard.tracking import Client
from shipyard.tracking._monitors import window_from_json

router = APIRouter(prefix="/monitors", tags=["monitors"], responses=ERROR_RESPONSES)

#: Windows one request may record (the remote client sends more in batches of this size).
MAX_WINDOWS_PER_REQUEST = 200
MAX_RESULTS_PER_WINDOW = 2_000
MAX_COLUMNS = 10_000

MonitorName = Annotated[
    str, Path(max_length=128, description="The monitor's name.", examples=["credit"])
]
Millis = Annotated[int | None, Query(ge=0, le=s.MAX_INT, description="ms since the epoch.")]
ColumnName = Annotated[StrictStr, Field(min_length=1, max_length=s.NAME_LENGTH)]
Threshold = Annotated[StrictFloat | StrictInt, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
# Whole numbers; 3.0 counts as one (see ``_schemas``).
WindowSeconds = s.bounded_int(_monitors.MIN_WINDOW_SECONDS, _monitors.MAX_WINDOW_SECONDS)
WindowRows = s.bounded_int(1, _monitors.MAX_WINDOW_ROWS)
WindowNumber = s.bounded_int(-s.MAX_INT, s.MAX_INT)
Count = s.bounded_int(0, 2**31 - 1)


class Monitor(s.Response):
    id: int
    name: str
    deployment: str
    reference: str
    reference_digest: str | None
    window: str
    window_seconds: int | None
    window_rows: int | None
    columns: list[str] | None
    tests: str | dict[str, str] | None
    thresholds: dict[str, float] | None
    task: str | None
    created_at: int
    created_by: str
    windows: int
    last_window: int | None
    last_end: int | None
    checked_at: int | None


class MonitorCreate(s.Request):
    """A monitor whose reference was prepared and stored (``POST /monitors/_reference``)."""

    name: s.Name
    deployment: s.Name
    reference: Annotated[StrictStr, Field(min_length=1, max_length=1024)]
    reference_digest: Annotated[StrictStr, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    window_seconds: WindowSeconds | None = None
    window_rows: WindowRows | None = None
    columns: Annotated[list[ColumnName] | None, Field(min_length=1, max_length=MAX_COLUMNS)] = None
    tests: (
        Annotated[StrictStr, Field(min_length=1, max_length=64)]
        | Annotated[dict[ColumnName, StrictStr], Field(max_length=MAX_COLUMNS)]
        | None
    ) = None
    thresholds: Annotated[dict[ColumnName, Threshold], Field(max_length=MAX_COLUMNS)] | None = None
    task: Literal["classification", "regression"] | None = None


class TaskSet(s.Request):
    task: Literal["classification", "regression"]


class Result(s.Request):
    kind: Literal["input", "prediction"]
    column: ColumnName
    test: Annotated[StrictStr, Field(max_length=32)]
    statistic: Finite | None
    p_value: Finite | None
    threshold: Finite | None
    drift: bool | None
    status: Annotated[StrictStr, Field(min_length=1, max_length=32)]


class Window(s.Request):
    number: WindowNumber
    start: s.Millis
    end: s.Millis
    rows: Count
    labelled: Count
    drift_share: Annotated[float, Field(ge=0, le=1)] | None
    metrics: Annotated[dict[ColumnName, Finite], Field(max_length=100)]
    evaluated_at: s.Millis
    results: Annotated[list[Result], Field(max_length=MAX_RESULTS_PER_WINDOW)]


class WindowsRecord(s.Request):
    windows: Annotated[list[Window], Field(min_length=1, max_length=MAX_WINDOWS_PER_REQUEST)]


class ResultOut(s.Response):
    kind: str
    column: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drift: bool | None
    status: str


class WindowOut(s.Response):
    number: int
    start: int
    end: int
    rows: int
    labelled: int
    drift_share: float | None
    metrics: dict[str, float]
    evaluated_at: int
    results: list[ResultOut]


class Recorded(s.Response):
    windows: int


class AlertsChanged(s.Response):
    """The alerts opened or closed, as ``GET /alerts`` lists them."""

    alerts: list[dict[str, Any]]


def _monitor(found: object) -> Monitor:
    return Monitor.model_validate(found, from_attributes=True)


@router.get("", response_model=s.Page[Monitor])
def list_monitors(
    request: Request,
    principal: Viewer,
    deployment: Annotated[
        str | None, Query(max_length=128, description="Only this deployment's monitors.")
    ] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Monitors by name, each with how far its evaluation has got."""
    found = [_monitor(m) for m in principal.client(request).list_monitors(deployment)]
    return page(found, max_results, page_token)


@router.post(
    "/_reference",
    response_model=s.StoredFile,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
)
async def upload_reference(request: Request, principal: Editor) -> object:
    """Store a prepared reference (``Reference.to_bytes()``, streamed) for ``POST /monitors``."""
    upload = Upload(request)
    client = principal.client(request)
    digest, size = await run_in_threadpool(_store_reference, client, upload)
    return s.StoredFile(digest=digest, size=size)


def _store_reference(client: Client, upload: Upload) -> tuple[str, int]:
    with client.blobs.writer() as sink:
        size = 0
        for chunk in upload:
            size += sink.write(chunk)
        if size == 0:  # raised inside the writer: nothing is stored
            raise InvalidInput("The reference is empty.", hint="Send its bytes as the body.")
    assert sink.info is not None
    return sink.info.digest, sink.info.size


@router.post("", response_model=Monitor, status_code=status.HTTP_201_CREATED)
def create_monitor(body: MonitorCreate, request: Request, principal: Editor) -> object:
    """Record a monitor whose prepared reference is stored already."""
    if (body.window_seconds is None) == (body.window_rows is None):
        raise InvalidInput(
            "A monitor needs exactly one of window_seconds and window_rows.",
            hint="Send window_seconds (time windows) or window_rows (row windows), not both.",
        )
    _monitors._check_name("monitor", body.name)
    _monitors._check_name("deployment", body.deployment)
    _monitors._parse_reference(body.reference)
    fields = body.model_dump()
    if fields["thresholds"] is not None:
        fields["thresholds"] = {k: float(v) for k, v in fields["thresholds"].items()}
    return _monitor(principal.client(request)._create_monitor(**fields))


@router.get("/{name}", response_model=Monitor)
def get_monitor(name: MonitorName, request: Request, principal: Viewer) -> object:
    return _monitor(principal.client(request).get_monitor(name))


@router.delete("/{name}", response_model=Monitor)
def delete_monitor(name: MonitorName, request: Request, principal: Editor) -> object:
    """Delete the monitor with its windows, results, alert rules and alerts."""
    return _monitor(principal.client(request).delete_monitor(name))


@router.put("/{name}/task", response_model=Monitor)
def set_task(name: MonitorName, body: TaskSet, request: Request, principal: Editor) -> object:
    """Record whether the monitored model classifies or regresses."""
    return _monitor(principal.client(request)._set_monitor_task(name, body.task))


@router.get(
    "/{name}/reference",
    response_class=StreamingResponse,
    responses=download_responses("application/octet-stream"),
)
def download_reference(name: MonitorName, request: Request, principal: Viewer) -> StreamingResponse:
    """The monitor's prepared reference bytes, with ``X-Shipyard-Digest``."""
    client = principal.client(request)
    found = client.get_monitor(name)
    if found.reference_digest is None:
        raise NotFound("prepared reference of monitor", name)
    digest = found.reference_digest
    return stream_blob(
        client.blobs.open(digest), digest, client.blobs.size(digest), "application/octet-stream"
    )


@router.get("/{name}/windows", response_model=s.Page[WindowOut])
def list_windows(
    name: MonitorName,
    request: Request,
    principal: Viewer,
    start: Millis = None,
    end: Millis = None,
    results: Annotated[
        bool, Query(description="Include each window's per-column results.")
    ] = False,
    limit: Annotated[
        int | None, Query(ge=1, le=s.MAX_INT, description="Only the newest this many windows.")
    ] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Evaluated windows overlapping ``[start, end)``, oldest first."""
    found = principal.client(request).monitor_windows(
        name, start=start, end=end, results=results, limit=limit
    )
    return page(found, max_results, page_token)


@router.post("/{name}/windows", response_model=Recorded)
def record_windows(
    name: MonitorName, body: WindowsRecord, request: Request, principal: Editor
) -> object:
    """Store evaluated windows (new, or evaluated again) with their results, in one transaction."""
    windows = [window_from_json(w.model_dump()) for w in body.windows]
    principal.client(request)._record_monitor_windows(name, windows)
    return Recorded(windows=len(windows))


@router.post("/{name}/alerts/evaluate", response_model=AlertsChanged)
def evaluate_alerts(name: MonitorName, request: Request, principal: Editor) -> object:
    """Evaluate the monitor's alert rules over its stored windows (``run_monitor`` calls
    this after recording windows); the alerts opened or closed."""
    client = principal.client(request)
    changed = client._evaluate_monitor_alerts(client.get_monitor(name))
    return AlertsChanged(alerts=[dataclasses.asdict(a) for a in changed])
