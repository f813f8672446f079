"""Datasets: versions with schema, profile and validation; contracts; Parquet down and up; diffs."""

from __future__ import annotations

import base64
import binascii
import tempfile
import zlib
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard import data
from shipyard.data._contract import Contract
from shipyard.data._register import check_name
from shipyard.errors import InvalidInput, NotFound
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

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=ERROR_RESPONSES)

PARQUET = "application/vnd.apache.parquet"
#: Content types an upload may declare, and the format each means.
UPLOAD_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    PARQUET: "parquet",
    "application/x-parquet": "parquet",
}
#: The contract a registration brings along: its UTF-8 YAML, zlib-deflated, base64url-encoded.
#: A header, so that the body stays the plain CSV or Parquet file; deflated, since a
#: contract's YAML shrinks about fivefold and proxies often cap a header line at 8 KiB.
CONTRACT_HEADER = "X-Shipyard-Contract"
MAX_CONTRACT_HEADER = 64 << 10

DatasetName = Annotated[
    str, Path(max_length=128, description="The dataset's name.", examples=["credit"])
]
Version = Annotated[int, Path(ge=1, le=s.MAX_INT, description="A version number.", examples=[1])]


@router.get("", response_model=s.Page[s.Dataset])
def list_datasets(
    request: Request,
    principal: Viewer,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Datasets by name, each with its newest version number."""
    found = data.list_datasets(client=principal.client(request))
    return page(found, max_results, page_token)


@router.get("/{name}", response_model=s.Dataset)
def get_dataset(name: DatasetName, request: Request, principal: Viewer) -> object:
    check_name(name)  # a malformed name is refused, not looked for
    for found in data.list_datasets(client=principal.client(request)):
        if found.name == name:
            return found
    raise NotFound("dataset", name, hint="List datasets with GET /api/v1/datasets.")


@router.get("/{name}/versions", response_model=s.Page[s.DatasetVersionSummary])
def list_versions(
    name: DatasetName,
    request: Request,
    principal: Viewer,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """The dataset's versions, oldest first, without their profiles (get one for that)."""
    versions = data.dataset_versions(name, client=principal.client(request))
    if not versions:
        get_dataset(name, request, principal)  # NotFound for a dataset that does not exist
    return page(versions, max_results, page_token)


@router.get("/{name}/versions/{version}", response_model=s.DatasetVersion)
def get_version(name: DatasetName, version: Version, request: Request, principal: Viewer) -> object:
    """One version: schema, profile (per-column statistics) and contract check."""
    return data.get_dataset(name, version, client=principal.client(request))


@router.post(
    "/{name}/versions",
    response_model=s.DatasetVersion,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
)
async def register_version(
    name: DatasetName,
    request: Request,
    principal: Editor,
    format: Annotated[
        Literal["csv", "parquet"] | None,
        Query(description="The body's format; default: from its Content-Type."),
    ] = None,
    description: Annotated[str | None, Query(max_length=s.MAX_DESCRIPTION_LENGTH)] = None,
    strict: Annotated[
        bool | None,
        Query(description="Refuse (true) or store with a report (false) on a failed check."),
    ] = None,
    run_id: Annotated[
        str | None, Query(max_length=64, description="The run that produced it (lineage).")
    ] = None,
    contract: Annotated[
        str | None,
        Header(
            alias=CONTRACT_HEADER,
            max_length=MAX_CONTRACT_HEADER,
            description="A contract to check against and keep (as register_dataset(contract=...)): "
            "its YAML, zlib-deflated, base64url-encoded.",
        ),
    ] = None,
) -> object:
    """Register the body (a CSV or Parquet file) as a new version of dataset ``name``.

    The body is streamed to a temporary file (bounded memory), checked against
    Content-Length and ``X-Shipyard-Digest`` if sent, then profiled, checked
    against the dataset's contract (or the one in ``X-Shipyard-Contract``,
    which becomes the dataset's current contract when the version is new) and
    stored. A strict contract that the rows break is a 400 ``contract_violation``
    naming each failed column and expectation; nothing is stored then. Equal
    rows return the version that holds them already.
    """
    check_name(name)
    given = None if contract is None else _contract_from_header(contract)
    chosen = format or UPLOAD_TYPES.get(
        request.headers.get("content-type", "").split(";")[0].strip().lower()
    )
    if chosen is None:
        raise InvalidInput(
            "Cannot tell whether the upload is CSV or Parquet.",
            hint=f"Pass ?format=csv or ?format=parquet, or Content-Type text/csv or {PARQUET}.",
        )
    upload = Upload(request)
    client = principal.client(request)
    return await run_in_threadpool(
        _register, client, name, upload, chosen, description, strict, run_id, given
    )


def _contract_from_header(value: str) -> Contract:
    """The contract an ``X-Shipyard-Contract`` header carries, parsed and checked."""
    try:
        deflated = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(deflated, s.MAX_CONTRACT_LENGTH + 1)
        complete = inflater.eof and len(raw) <= s.MAX_CONTRACT_LENGTH
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, zlib.error):
        complete, text = False, ""
    if not complete:
        raise InvalidInput(
            f"The {CONTRACT_HEADER} header is not a contract: expected its YAML (at most "
            f"{s.MAX_CONTRACT_LENGTH:,} bytes) as UTF-8, zlib-deflated, then base64url-encoded.",
            hint="Python: base64.urlsafe_b64encode(zlib.compress(contract_yaml.encode())); "
            "shipyard.register_dataset(..., contract=...) sends it so.",
        )
    return Contract.from_yaml(text, source=f"the contract in {CONTRACT_HEADER}")


def _register(
    client: Client,
    name: str,
    upload: Upload,
    format: str,
    description: str | None,
    strict: bool | None,
    run_id: str | None,
    contract: Contract | None,
) -> object:
    if run_id is not None:
        client.get_run(run_id)  # NotFound before a byte is read
    with tempfile.TemporaryDirectory(prefix="shipyard-upload-") as folder:
        path = FilePath(folder) / f"{name}.{format}"
        with open(path, "wb") as out:
            for block in upload:
                out.write(block)
        return client._register_dataset(
            name, path, description=description, contract=contract, strict=strict, run_id=run_id
        )


@router.get(
    "/{name}/versions/{version}/data",
    response_class=StreamingResponse,
    responses=download_responses(PARQUET),
)
def download_version(
    name: DatasetName, version: Version, request: Request, principal: Viewer
) -> StreamingResponse:
    """The version's rows as the stored Parquet file, with ``X-Shipyard-Digest``."""
    client = principal.client(request)
    found = data.get_dataset(name, version, client=client)
    return stream_blob(
        client.blobs.open(found.digest),
        found.digest,
        found.bytes,
        PARQUET,
        filename=f"{found.name}-{found.version}.parquet",
    )


@router.get("/{name}/contract", response_model=s.DatasetContract)
def get_contract(name: DatasetName, request: Request, principal: Viewer) -> object:
    """The dataset's current contract, as YAML."""
    text = data.dataset_contract(name, client=principal.client(request))
    return s.DatasetContract(name=name, contract=text)


@router.put("/{name}/contract", response_model=s.ContractStored)
def set_contract(
    name: DatasetName, body: s.ContractUpdate, request: Request, principal: Editor
) -> object:
    """Store a new version of the contract (checked first); the same text stores nothing new."""
    number = data.set_dataset_contract(name, body.contract, client=principal.client(request))
    return s.ContractStored(name=name, contract_version=number)


@router.get("/{name}/diff", response_model=s.DatasetDiff)
def diff_versions(
    name: DatasetName,
    request: Request,
    principal: Viewer,
    old: Annotated[int, Query(ge=1, le=s.MAX_INT)],
    new: Annotated[int, Query(ge=1, le=s.MAX_INT)],
) -> object:
    """Schema, row-count and per-column distribution changes from ``old`` to ``new``."""
    return data.diff_datasets(name, old, new, client=principal.client(request))
