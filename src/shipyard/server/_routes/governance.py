"""Lineage graphs and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from shipyard import data
from shipyard.server import _schemas as s
from shipyard.server._routes._common import (
    ERROR_RESPONSES,
    MaxResults,
    PageToken,
    Viewer,
    next_token,
    page_offset,
)

router = APIRouter(tags=["governance"], responses=ERROR_RESPONSES)


@router.get("/lineage", response_model=s.Lineage)
def get_lineage(
    request: Request,
    principal: Viewer,
    ref: Annotated[
        str,
        Query(
            max_length=1200,
            description="dataset:NAME@VERSION, model:NAME/VERSION or run:RUN_ID",
        ),
    ],
    depth: Annotated[int, Query(ge=0, le=100, description="Hops each way.")] = 25,
) -> object:
    """What ``ref`` came from and what came from it, as nodes and edges."""
    return data.lineage(ref, depth=depth, client=principal.client(request))


@router.get("/audit/events", response_model=s.Page[s.AuditEvent])
def audit_events(
    request: Request,
    principal: Viewer,
    object_type: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=1200)] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Audit events in chain order (oldest first), optionally about one object."""
    offset = page_offset(page_token)
    found = principal.client(request).audit_events(
        object_type, object_id, limit=offset + max_results + 1
    )
    items = found[offset : offset + max_results]
    return {
        "items": items,
        "next_page_token": next_token(offset, max_results, len(found) > offset + max_results),
    }


@router.get("/audit/verify", response_model=s.AuditReport)
def verify_audit(request: Request, principal: Viewer) -> object:
    """Recompute the hash chain; the report names the first bad event, if any."""
    return principal.client(request).verify_audit()
