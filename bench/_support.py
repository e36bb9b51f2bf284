"""What several benchmarks share: the scratch PostgreSQL database, free ports, child servers."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import asyncpg
import httpx
from sqlalchemy.engine import make_url


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def fresh_postgres(url: str) -> None:
    """Drop and create the benchmark database through a maintenance connection to ``postgres``."""
    target = make_url(url)
    name = target.database
    assert name and name not in ("postgres", "template0", "template1"), f"refusing to drop database {name!r}"
    conn = await asyncpg.connect(asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(proc: subprocess.Popen[bytes], base: str, timeout: float) -> None:
    """Until ``base``/healthz answers 200; RuntimeError if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
