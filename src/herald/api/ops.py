"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from herald import __version__
from herald.api.auth import HeraldDep
from herald.api.openapi import Health, documented
from herald.api.problems import problem
from herald.engine.metrics import exposition
from herald.engine.queue_metrics import refresh_queue_gauges

router = APIRouter(tags=["operations"])


@router.get("/healthz", **documented(Health))
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", **documented(Health, errors=(503,)))
async def readyz(herald: HeraldDep) -> Any:
    try:
        async with herald.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return problem(503, f"database unreachable: {type(exc).__name__}", title="Not ready")
    if herald.settings.redis_url:  # rate limits and the shared cache live there: no Redis, not ready
        failure = await _redis_failure(herald.settings.redis_url)
        if failure:
            return problem(503, f"Redis unreachable: {failure}", title="Not ready")
    return {"status": "ready"}


READY_REDIS_TIMEOUT = 2.0


async def _redis_failure(url: str) -> str | None:
    """Why Redis does not answer PING (the exception's type only: its text may hold the URL), or None."""
    import redis.asyncio as redis

    client = redis.from_url(url, socket_connect_timeout=READY_REDIS_TIMEOUT, socket_timeout=READY_REDIS_TIMEOUT)
    try:
        async with asyncio.timeout(READY_REDIS_TIMEOUT + 0.5):
            await client.ping()
    except Exception as exc:
        return type(exc).__name__
    finally:
        await client.aclose()
    return None


@router.get("/metrics", response_class=PlainTextResponse, description="Prometheus text format")
async def metrics(herald: HeraldDep) -> Response:
    await refresh_queue_gauges(herald.db)
    body, media_type = exposition()
    return Response(body, media_type=media_type)
