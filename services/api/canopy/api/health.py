"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from canopy.api.deps import ServicesDep
from canopy.db import ping

router = APIRouter(tags=["operations"])


@router.get("/api/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/readyz", responses={503: {"description": "Database unreachable"}})
async def readyz(services: ServicesDep) -> dict[str, str]:
    if not await ping(services.engine):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Database unreachable")
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=services.metrics.content_type)
