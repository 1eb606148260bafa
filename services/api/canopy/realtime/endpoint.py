"""The `/ws/session` route."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from canopy.realtime.connection import Connection
from canopy.services import Services

router = APIRouter()


@router.websocket("/ws/session")
async def session_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    assert services.sessions is not None
    await Connection(websocket, services.sessions, services.settings, services.metrics).serve()
