"""Alert rules on monitors, and the alerts they open."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.server._routes._common import ERROR_RESPONSES

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ERROR_RESPONSES)
