"""Deployments: definitions kept in the store, and predictions through them."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.server._routes._common import ERROR_RESPONSES

router = APIRouter(prefix="/deployments", tags=["deployments"], responses=ERROR_RESPONSES)
