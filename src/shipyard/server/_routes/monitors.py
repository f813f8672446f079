"""Monitors and their per-window results."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.server._routes._common import ERROR_RESPONSES

router = APIRouter(prefix="/monitors", tags=["monitors"], responses=ERROR_RESPONSES)
