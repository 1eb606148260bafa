"""The gunicorn worker: uvicorn with Canopy's WebSocket limits and a graceful drain.

On SIGTERM uvicorn would close every WebSocket with 1012 before the app hears of
it. The server here first lets the app flush its sessions and close their
sockets with 1001 ("going away"), then shuts down as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from canopy.config import Settings

log = logging.getLogger("canopy")

# The server accepts frames up to 1 MiB so the app itself can answer 64 KiB+ frames with error 413.
SERVER_MAX_FRAME_BYTES = 1024 * 1024


class DrainingServer(Server):
    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.app
        drain = getattr(getattr(app, "state", None), "drain", None)
        if drain is not None:
            try:
                await drain()
            except Exception:
                log.exception("drain on shutdown failed")
        await super().shutdown(sockets)


class CanopyWorker(UvicornWorker):  # type: ignore[misc]  # untyped base
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "ws": "websockets-sansio",
        "ws_max_size": SERVER_MAX_FRAME_BYTES,
        "lifespan": "on",
        "proxy_headers": True,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read here, where the base class turns CONFIG_KWARGS into uvicorn's config, from the same
        # Settings (environment and .env) the app reads; bad settings stop the worker as they would the app.
        settings = Settings()
        self.CONFIG_KWARGS = {**type(self).CONFIG_KWARGS, "ws_per_message_deflate": settings.ws_per_message_deflate}
        super().__init__(*args, **kwargs)

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            raise SystemExit(3)  # gunicorn's WORKER_BOOT_ERROR
