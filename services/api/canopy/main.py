"""The ASGI app: `canopy.main:app` (gunicorn) or `create_app(settings)` (tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException

from canopy import accounts
from canopy.agents import agui, forwarding
from canopy.agents.mcp_server import CanopyMcp, McpMount
from canopy.agents.streams import AgentStreams
from canopy.api import auth, health, interchange, sessions, sharing, tokens
from canopy.assistant.factory import make_http_client, make_provider
from canopy.cluster.ownership import Ownership
from canopy.config import Settings
from canopy.db import create_engine, init_database, log_storage_failure
from canopy.errors import CanopyError
from canopy.loginthrottle import LoginThrottle
from canopy.logs import configure_logging
from canopy.metrics import Metrics
from canopy.middleware import RequestContextMiddleware
from canopy.origins import OriginGuardMiddleware
from canopy.passwords import HashLimiter
from canopy.quotas import Quotas
from canopy.realtime.endpoint import SessionSocketMiddleware
from canopy.realtime.manager import SessionManager
from canopy.realtime.store import SessionStore
from canopy.services import Services

log = logging.getLogger("canopy")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(CanopyError)
    async def canopy_error(_request: Request, exc: CanopyError) -> JSONResponse:
        # The one place a tree, session or provider error becomes a REST response (the socket's
        # counterpart is the connection's read loop, which makes it an `error` frame).
        return JSONResponse({"detail": exc.message}, status_code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Echoing the input back would put passwords in responses; keep location, message and type.
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(OperationalError)
    async def storage_error(_request: Request, exc: OperationalError) -> JSONResponse:
        # Locked, full or failing database: transient, nothing was written (the transaction rolled back).
        # Handled here rather than by the catch-all, which re-raises and so drops the keep-alive connection.
        log_storage_failure(log, "storage unavailable", exc=exc)
        return JSONResponse(
            {"detail": "Storage unavailable; try again later"}, status_code=503, headers={"Retry-After": "5"}
        )

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)


async def _join_cluster(
    settings: Settings, engine: AsyncEngine, store: SessionStore, manager: SessionManager
) -> Ownership | None:
    """On PostgreSQL, this process is one replica of possibly several: it serves a session only
    under its lease, every commit is fenced by it, and events from the others reach it."""
    if not settings.clustered:
        return None
    cluster = Ownership(engine, settings.lease_seconds, manager.cluster_host(), address=settings.internal_url)
    store.set_fence(cluster.leases.check)
    manager.cluster = cluster
    await cluster.start()
    log.info(
        "replica %s at %s: leases of %.0f s, listening for cluster events",
        cluster.name,
        cluster.address,
        settings.lease_seconds,
    )
    return cluster


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    streams = AgentStreams(metrics.agent_streams)
    mcp = CanopyMcp(settings, metrics, streams)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # past a lease's lifetime, a transaction still open belongs to a replica that lost its leases anyway
        engine = create_engine(settings.sqlalchemy_url, idle_in_transaction_seconds=max(settings.lease_seconds, 5.0))
        version = await init_database(engine)
        log.info("database ready (schema version %d)", version)
        http_client = make_http_client(settings)
        store = SessionStore(engine)
        manager = SessionManager(store, settings, metrics, make_provider(settings, http_client))
        cluster = await _join_cluster(settings, engine, store, manager)
        app.state.services = Services(
            settings=settings,
            engine=engine,
            metrics=metrics,
            login_failures=LoginThrottle(settings),
            sessions=manager,
            hashing=HashLimiter(settings.password_hash_concurrency, settings.password_hash_queue),
            quotas=Quotas(settings),
            agent_streams=streams,
            bus=cluster.bus if cluster is not None else None,
        )
        if cluster is not None:  # before serving: no socket or stream exists here yet that an event could miss
            accounts.follow_cluster(app.state.services, cluster.bus)
        app.state.drain = manager.drain
        evictions = asyncio.create_task(manager.evict_forever(), name="session-eviction")
        await mcp.start(manager, engine)
        try:
            yield
        finally:
            evictions.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await evictions
            await mcp.stop()
            await manager.drain()
            if cluster is not None:  # after drain stored everything: the leases are freed at once
                await cluster.close()
            await store.close()
            await http_client.aclose()
            await engine.dispose()

    # The docs are off in production unless API_DOCS=true; app.openapi() (export scripts, tests) works either way.
    docs = settings.docs_enabled
    app = FastAPI(
        title="Canopy API",
        version="0.1.0",
        lifespan=lifespan,
        redoc_url=None,
        docs_url="/api/docs" if docs else None,
        openapi_url="/api/openapi.json" if docs else None,
    )
    _install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(health.router)
    app.include_router(interchange.router)  # before sessions: /import is not a session id
    app.include_router(sessions.router)
    app.include_router(sharing.router)
    app.include_router(tokens.router)
    app.include_router(agui.router)
    app.include_router(forwarding.router)  # replicas' calls to each other; nginx answers 404 for them
    app.state.mcp = mcp
    app.add_middleware(McpMount, mcp=mcp)  # /mcp: the MCP SDK's app
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(SessionSocketMiddleware)
    app.add_middleware(OriginGuardMiddleware, allowed_origins=settings.allowed_origins)  # outermost of ours
    return app


def _app_from_environment() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


def __getattr__(name: str) -> FastAPI:
    # `canopy.main:app` is built on first access so importing the module (tests, tools) reads no environment.
    if name == "app":
        app = _app_from_environment()
        globals()["app"] = app
        return app
    raise AttributeError(name)
