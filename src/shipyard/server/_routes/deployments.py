"""Deployments: definitions kept in the store, and predictions through them.

``POST /deployments/{name}/predict`` serves the stored deployment in this
server's process, with the code ``shipyard serve`` runs
(:class:`shipyard.serving._app.Endpoints`): the model loads on the first
request, aliases and updates are followed, every prediction is logged. It
takes the bodies ``/predict`` of ``shipyard serve`` takes and answers the same.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import Response
from pydantic import Field, StrictFloat, StrictInt, StrictStr

from shipyard.server import _schemas as s
from shipyard.server._routes._common import ERROR_RESPONSES, Editor, MaxResults, PageToken, Viewer
from shipyard.server._routes._common import page as one_page
from shipyard.store._schema import PATH_LENGTH
from shipyard.tracking._deployments import KEEP

router = APIRouter(prefix="/deployments", tags=["deployments"], responses=ERROR_RESPONSES)

DeploymentName = Annotated[
    str, Path(max_length=128, description="The deployment's name.", examples=["credit"])
]
ModelUri = Annotated[StrictStr, Field(max_length=PATH_LENGTH, examples=["models:/credit@champion"])]
Percent = Annotated[StrictFloat | StrictInt, Field(examples=[10])]

#: The request body in the OpenAPI spec: JSON rows or columns. Arrow IPC streams
#: (``application/vnd.apache.arrow.stream``) and Parquet files (``application/x-parquet``)
#: are read too, as by ``shipyard serve``; they are named in the description only, since
#: OpenAPI tools cannot make or check such bodies.
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": 'JSON {"inputs": [{column: value, ...}, ...]} or {"inputs": {column: '
        '[...]}} or {"columns": [...], "data": [[...], ...]}; or an Arrow IPC stream '
        "(application/vnd.apache.arrow.stream) or a Parquet file (application/x-parquet).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class Deployment(s.Response):
    name: str
    model_uri: str
    canary_uri: str | None
    #: The share of requests the canary answers, in percent.
    canary_percent: float | None
    shadow_uri: str | None
    description: str | None
    created_at: int
    created_by: str
    updated_at: int


class DeploymentCreate(s.Request):
    name: Annotated[StrictStr, Field(max_length=128, examples=["credit"])]
    model: ModelUri
    canary: ModelUri | None = None
    canary_percent: Percent | None = None
    shadow: ModelUri | None = None
    description: s.Description | None = None


_UPDATABLE = ("model", "canary", "canary_percent", "shadow", "description")


class DeploymentUpdate(s.Request):
    """The fields to change; a field left out stays, null removes it (canary, shadow)."""

    model: ModelUri | None = None
    canary: ModelUri | None = None
    canary_percent: Percent | None = None
    shadow: ModelUri | None = None
    description: s.Description | None = None


class Prediction(s.Response):
    predictions: list[object]
    #: Per row, one probability per class, when the model has them.
    probabilities: list[list[float | None]] | None
    #: The version that answered (the canary's, for a request drawn for it).
    model_version: str
    prediction_ids: list[str]


@router.get("", response_model=s.Page[Deployment])
def list_deployments(
    request: Request, principal: Viewer, max_results: MaxResults = 100, page_token: PageToken = None
) -> object:
    """Every deployment, by name."""
    return one_page(principal.client(request).list_deployments(), max_results, page_token)


@router.post("", response_model=Deployment, status_code=status.HTTP_201_CREATED)
def create_deployment(body: DeploymentCreate, request: Request, principal: Editor) -> object:
    """Store a deployment; each URI must resolve (the model version or alias exists)."""
    return principal.client(request).create_deployment(
        body.name,
        body.model,
        canary=body.canary,
        canary_percent=body.canary_percent,
        shadow=body.shadow,
        description=body.description,
    )


@router.get("/{name}", response_model=Deployment)
def get_deployment(name: DeploymentName, request: Request, principal: Viewer) -> object:
    return principal.client(request).get_deployment(name)


@router.patch("/{name}", response_model=Deployment)
def update_deployment(
    name: DeploymentName, body: DeploymentUpdate, request: Request, principal: Editor
) -> object:
    """Change what the deployment serves; servers running it pick the change up in seconds."""
    given = body.model_fields_set
    return principal.client(request).update_deployment(
        name,
        **{field: getattr(body, field) if field in given else KEEP for field in _UPDATABLE},
    )


@router.delete("/{name}", response_model=Deployment)
def delete_deployment(name: DeploymentName, request: Request, principal: Editor) -> object:
    """Remove the definition (its prediction log is kept); answers what it was."""
    return principal.client(request).delete_deployment(name)


@router.post(
    "/{name}/predict",
    response_model=Prediction,
    openapi_extra=PREDICT_BODY,
    responses={415: {"model": s.ErrorResponse, "description": "A body it cannot read."}},
)
async def predict(name: DeploymentName, request: Request, principal: Editor) -> Response:
    """Predict with the stored deployment (canary and shadow included); every prediction is
    logged under the deployment's name. An editor's call, since it writes the log."""
    from shipyard.serving import _app
    from shipyard.tracking._deployments import deployment_name

    endpoint = await _app.endpoints_of(request.app).get(deployment_name(name))
    return await endpoint.predict(request)
