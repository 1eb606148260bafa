"""The `/ws/session` route, served by a pure ASGI middleware ahead of FastAPI's router.

A session socket lives for hours. Routed through FastAPI it would keep the router's and
the dependency machinery's frames and objects alive for all that time (about 13 KB per
socket, measured with tracemalloc); served here it keeps only the connection itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from canopy.realtime.connection import Connection
from canopy.services import Services

PATH = "/ws/session"


class SessionSocketMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        assert services.sessions is not None and services.quotas is not None
        websocket = WebSocket(scope, receive, send)
        await Connection(websocket, services.sessions, services.settings, services.metrics, services.quotas).serve()
