"""``herald worker``'s own HTTP: ``/healthz`` and ``/metrics`` on HERALD_WORKER_METRICS_PORT.

Served by a uvicorn.Server in the worker's event loop, so a scrape sees the same process the
worker sends from. The socket is bound before anything else starts, so a port already in use
stops the command with one line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Response

from herald import __version__
from herald.api.problems import problem
from herald.engine.metrics import exposition
from herald.engine.queue_metrics import refresh_queue_gauges
from herald.engine.service import Herald
from herald.engine.worker import Worker

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 5


@dataclass
class WorkerHealth:
    """The worker loop's state as /healthz tells it."""

    task: asyncio.Task[None] | None = None
    stop_requested: bool = False

    def problem(self) -> str | None:
        """Why the worker is not healthy, or None while its loop runs."""
        if self.task is None:
            return "worker not started"
        if self.task.done():
            if not self.task.cancelled() and self.task.exception() is not None:
                return f"worker crashed: {type(self.task.exception()).__name__}"
            return "worker stopped"
        if self.stop_requested:
            return "worker is stopping"
        return None


def create_worker_ops_app(herald: Herald, health: WorkerHealth) -> FastAPI:
    app = FastAPI(title="Herald worker", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz", response_model=None)
    async def healthz() -> Response | dict[str, str]:
        reason = health.problem()
        if reason is not None:
            return problem(503, reason, title="Worker not running")
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        await refresh_queue_gauges(herald.db)
        body, media_type = exposition()
        return Response(body, media_type=media_type)

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; OSError (e.g. address in use) for the caller to report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restart may rebind at once; a live listener still refuses the bind on Linux.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn.Server minus its signal handling: the worker owns SIGINT/SIGTERM and stops us."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_worker(herald: Herald, sock: socket.socket | None, *, log_level: str = "info") -> None:
    """Run a Worker until SIGINT/SIGTERM, serving /healthz and /metrics on ``sock`` meanwhile.

    The server stops after the worker loop has ended (it answers 503 while the worker drains).
    A worker that crashes is re-raised once the server is down.
    """
    worker = Worker(herald)
    health = WorkerHealth()

    def request_stop() -> None:
        health.stop_requested = True
        worker.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    server: _Server | None = None
    server_task: asyncio.Task[None] | None = None
    try:
        health.task = asyncio.create_task(worker.run(), name="herald-worker")
        if sock is not None:
            config = uvicorn.Config(
                create_worker_ops_app(herald, health),
                log_config=None,  # Herald's logging set-up stays as it is
                # uvicorn's own start-up lines say less than ours; its warnings and errors still show
                log_level=max(logging.WARNING, logging.getLevelNamesMapping().get(log_level.upper(), logging.INFO)),
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            )
            server = _Server(config)
            server_task = asyncio.create_task(server.serve(sockets=[sock]), name="herald-worker-ops")
            host, port = sock.getsockname()[:2]
            log.info("worker metrics on http://%s:%s/metrics", f"[{host}]" if ":" in host else host, port)
        await asyncio.wait([health.task])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if server is not None and server_task is not None:
            server.should_exit = True
            try:
                await server_task
            except Exception:
                log.exception("the worker metrics server failed")
        if health.task is not None and not health.task.done():  # we were cancelled ourselves
            request_stop()
            await asyncio.wait([health.task])
    assert health.task is not None
    health.task.result()  # a crashed worker's exception, now that the server is down
