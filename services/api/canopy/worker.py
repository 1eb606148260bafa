"""The gunicorn worker: uvicorn with Canopy's WebSocket limits and a graceful drain.

On SIGTERM uvicorn would close every WebSocket with 1012 before the app hears of
it. The server here first lets the app flush its sessions and close their
sockets with 1001 ("going away"), then shuts down as usual.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

log = logging.getLogger("canopy")

# The server accepts frames up to 1 MiB so the app itself can answer 64 KiB+ frames with error 413.
SERVER_MAX_FRAME_BYTES = 1024 * 1024


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


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
        "ws_per_message_deflate": _flag("WS_PER_MESSAGE_DEFLATE"),
        "lifespan": "on",
        "proxy_headers": True,
    }

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            raise SystemExit(3)  # gunicorn's WORKER_BOOT_ERROR
