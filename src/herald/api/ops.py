"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from herald import __version__
from herald.api.auth import HeraldDep
from herald.api.problems import problem
from herald.engine.queue_metrics import refresh_queue_gauges

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", response_model=None)
async def readyz(herald: HeraldDep) -> Any:
    try:
        async with herald.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return problem(503, f"database unreachable: {type(exc).__name__}", title="Not ready")
    return {"status": "ready"}


@router.get("/metrics")
async def metrics(herald: HeraldDep) -> Response:
    await refresh_queue_gauges(herald.db)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
