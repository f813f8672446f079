"""The model registry: models, versions, aliases, status, alias history, cards, files."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard import models
from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.models import _api as models_api
from shipyard.models._onnx import add_stored_onnx
from shipyard.server import _schemas as s
from shipyard.server._auth import Principal, Role
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

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)

#: Aliases only an admin may set or remove: they decide what production serves.
PROTECTED_ALIASES = ("champion",)

ModelName = Annotated[
    str, Path(max_length=128, description="The registered model's name.", examples=["credit"])
]
Version = Annotated[int, Path(ge=1, le=s.MAX_INT, description="A version number.", examples=[1])]
Alias = Annotated[
    str, Path(max_length=64, description="An alias, e.g. champion.", examples=["champion"])
]


def _check_may_move(principal: Principal, name: str, alias: str) -> None:
    if alias in PROTECTED_ALIASES and principal.role < Role.admin:
        raise PermissionDenied(
            f"The alias {alias!r} is protected: only an admin may move or remove it "
            f"({principal.name!r} is {principal.role.name}).",
            hint=f"Ask an admin to run `shipyard models alias {name} {alias} VERSION`.",
        )


@router.get("", response_model=s.Page[s.RegisteredModel])
def search_models(
    request: Request,
    principal: Viewer,
    name: Annotated[str | None, Query(max_length=128, description="Text in the name.")] = None,
    tag: Annotated[
        list[str] | None, Query(max_length=20, description="KEY=VALUE; all must match.")
    ] = None,
    alias: Annotated[str | None, Query(max_length=64, description="Having this alias.")] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Registered models by name, with tags, aliases and newest version."""
    tags = {}
    for item in tag or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"Bad tag filter {item!r}.", hint="Write KEY=VALUE, e.g. team=risk.")
        tags[key] = value
    found = principal.client(request).search_models(name, tags=tags, alias=alias)
    return page(found, max_results, page_token)


@router.get("/{name}", response_model=s.RegisteredModel)
def get_model(name: ModelName, request: Request, principal: Viewer) -> object:
    return principal.client(request).get_model(name)


@router.patch("/{name}", response_model=s.RegisteredModel)
def update_model(
    name: ModelName, body: s.ModelUpdate, request: Request, principal: Editor
) -> object:
    """Set the description and add or change tags (other tags are kept)."""
    return principal.client(request).update_model(
        name, description=body.description, tags=body.tags
    )


@router.get("/{name}/versions", response_model=s.Page[s.ModelVersion])
def list_versions(
    name: ModelName,
    request: Request,
    principal: Viewer,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """The model's versions, oldest first."""
    return page(principal.client(request).model_versions(name), max_results, page_token)


@router.post(
    "/{name}/files",
    response_model=s.StoredFile,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
)
async def upload_file(name: ModelName, request: Request, principal: Editor) -> object:
    """Store the body (a model file, streamed) for ``POST /models/{name}/versions``.

    With ``X-Shipyard-Digest: sha256:<hex>`` the bytes must hash to it, and a
    body shorter than its Content-Length is refused: in both cases nothing is stored.
    """
    upload = Upload(request)
    client = principal.client(request)
    digest, size = await run_in_threadpool(models_api.store_model_file, client, name, upload)
    return s.StoredFile(digest=digest, size=size)


@router.post("/{name}/versions", response_model=s.ModelVersion, status_code=status.HTTP_201_CREATED)
def register_version(
    name: ModelName, body: s.ModelVersionCreate, request: Request, principal: Editor
) -> object:
    """Register an uploaded file as the next version: the file is re-hashed against its
    digest first. With ``run_id`` the version records the run and the datasets it read."""
    return models_api.register_stored_file(
        principal.client(request),
        name,
        flavor=body.flavor,
        serialization=body.file.serialization,
        digest=body.file.digest,
        size=body.file.size,
        meta=body.file.meta,
        environment=body.environment,
        signature=body.signature,
        input_example=body.input_example,
        description=body.description,
        tags=body.tags,
        run_id=body.run_id,
    )


@router.get("/{name}/versions/{version}", response_model=s.ModelVersion)
def get_version(name: ModelName, version: Version, request: Request, principal: Viewer) -> object:
    return principal.client(request).get_model_version(name, version)


@router.put("/{name}/versions/{version}/status", response_model=s.ModelVersion)
def set_status(
    name: ModelName, version: Version, body: s.StatusSet, request: Request, principal: Editor
) -> object:
    """Mark a version ``ready`` or ``archived`` (archived: never ``@latest``)."""
    client = principal.client(request)
    client.set_model_version_status(name, version, body.status)
    return client.get_model_version(name, version)


@router.get("/{name}/aliases/{alias}", response_model=s.ModelVersion)
def resolve_alias(name: ModelName, alias: Alias, request: Request, principal: Viewer) -> object:
    """The version an alias points at now (``latest``: the newest ready version)."""
    return principal.client(request).get_model_version(f"models:/{name}@{alias}")


@router.put("/{name}/aliases/{alias}", response_model=s.AliasMoved)
def set_alias(
    name: ModelName, alias: Alias, body: s.AliasSet, request: Request, principal: Editor
) -> object:
    """Point ``alias`` at a version, moving it if needed (protected aliases: admin only)."""
    _check_may_move(principal, name, alias)
    previous = principal.client(request).set_alias(name, alias, body.version)
    return s.AliasMoved(name=name, alias=alias, version=body.version, previous=previous)


@router.delete("/{name}/aliases/{alias}", response_model=s.AliasMoved)
def delete_alias(name: ModelName, alias: Alias, request: Request, principal: Editor) -> object:
    """Remove ``alias`` (protected aliases: admin only)."""
    _check_may_move(principal, name, alias)
    previous = principal.client(request).delete_alias(name, alias)
    return s.AliasMoved(name=name, alias=alias, version=None, previous=previous)


@router.get("/{name}/alias-history", response_model=s.Page[s.AliasMove])
def alias_history(
    name: ModelName,
    request: Request,
    principal: Viewer,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Every alias move of the model, oldest first, with who made it."""
    return page(principal.client(request).alias_history(name), max_results, page_token)


@router.get(
    "/{name}/versions/{version}/card",
    response_class=Response,
    responses={
        200: {
            "description": "The model card.",
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
    },
)
def model_card(
    name: ModelName,
    version: Version,
    request: Request,
    principal: Viewer,
    format: Literal["markdown", "html"] = "markdown",
) -> Response:
    """The version's model card, as Markdown or as a standalone HTML page."""
    text = models.model_card(
        f"models:/{name}/{version}", format=format, client=principal.client(request)
    )
    media_type = "text/html" if format == "html" else "text/markdown"
    return Response(text, media_type=f"{media_type}; charset=utf-8")


@router.put("/{name}/versions/{version}/files/{format}", response_model=s.ModelVersion)
def add_file(
    name: ModelName,
    version: Version,
    format: Annotated[Literal["onnx"], Path(description="The format to add: onnx.")],
    body: s.ModelFileCreate,
    request: Request,
    principal: Editor,
) -> object:
    """Add (or replace) the version's ``onnx`` file: what ``export_onnx`` does remotely.

    Upload the file first with ``POST /models/{name}/files``. The client has
    converted it and checked its predictions against the original; the server
    checks the stored bytes against ``digest`` and ``size``, that they parse as
    ONNX, and that ``meta`` matches the ``shipyard`` entry inside the file.
    """
    if body.serialization != "onnx":
        raise InvalidInput(
            f"An onnx file has serialization 'onnx'; got {body.serialization!r}.",
            hint='Send "serialization": "onnx".',
        )
    return add_stored_onnx(
        principal.client(request),
        name,
        version,
        digest=body.digest,
        size=body.size,
        meta=body.meta,
    )


@router.get(
    "/{name}/versions/{version}/files/{format}",
    response_class=StreamingResponse,
    responses=download_responses("application/octet-stream"),
)
def download_file(
    name: ModelName,
    version: Version,
    format: Annotated[str, Path(max_length=32, description="native or onnx")],
    request: Request,
    principal: Viewer,
) -> StreamingResponse:
    """The version's model file in ``format``, with ``X-Shipyard-Digest``.

    The bytes are served as stored; whoever loads them checks the digest and
    decides whether to trust the serialization (see the version's ``files``).
    """
    client = principal.client(request)
    found = client.get_model_version(name, version)
    file = found.files.get(format)
    if file is None:
        raise NotFound(
            "format",
            f"{found.uri} ({format})",
            hint=f"Stored formats: {', '.join(sorted(found.files))}.",
        )
    return stream_blob(
        client.blobs.open(file.digest),
        file.digest,
        file.size,
        "application/octet-stream",
        filename=f"{found.name}-{found.version}.{format}",
    )
