"""The gunicorn worker: uvicorn with Canopy's WebSocket limits and a graceful drain.

On SIGTERM uvicorn would close every WebSocket with 1012 before the app hears of
it. The server here first lets the app flush its sessions and close their
sockets with 1001 ("going away"), then shuts down as usual.

A worker whose gunicorn master died (kill -9, OOM) would keep serving and hold
the port, so a new master could not bind it: the worker watches its parent and
stops (gracefully, as on SIGTERM) once it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from typing import Any

from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from canopy.config import Settings

log = logging.getLogger("canopy")

# The server accepts frames up to 1 MiB so the app itself can answer 64 KiB+ frames with error 413.
SERVER_MAX_FRAME_BYTES = 1024 * 1024
PARENT_CHECK_SECONDS = 1.0  # how often a worker checks that its master is still its parent


def freeze_startup_heap() -> None:
    """Moves everything alive after startup (modules, the app, its routes and models: ~180k objects) out of
    the garbage collector's reach: they live as long as the process, and every full collection walked them
    all, stalling every socket on the worker for tens of milliseconds (more under load) a few times a minute
    in a burst of prompts. Full collections now walk only what requests create."""
    gc.collect()
    gc.freeze()


class DrainingServer(Server):
    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)  # the app's lifespan startup has run
        freeze_startup_heap()

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
        watch = asyncio.create_task(self._watch_master(server), name="watch-master")
        try:
            await server.serve(sockets=self.sockets)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if not server.started:
            raise SystemExit(3)  # gunicorn's WORKER_BOOT_ERROR

    async def _watch_master(self, server: Server) -> None:
        """Stops the server once the master is gone (the worker was re-parented)."""
        while not server.should_exit:
            await asyncio.sleep(PARENT_CHECK_SECONDS)  # a poll period: nothing signals a parent's death
            if os.getppid() != self.ppid:
                log.warning("gunicorn master %s is gone: this worker stops and frees its port", self.ppid)
                server.should_exit = True
