#!/usr/bin/env python
"""Footprint of ``herald serve``: idle memory and start time, beside a hello-world FastAPI app.

    python bench/footprint.py                      # 5 rounds, about 1.5 min
    python bench/footprint.py --repeat 3 --settle 1 --no-floor
  options: --repeat N  --settle S (seconds idle before reading RSS)  --top K (import offenders shown)
           --no-use (skip the "after first use" figure)  --no-floor (skip each dependency's own cost)
           --no-bytecode-cache (compile Herald's modules from source at every start)

Each round, in the same run:
- **Herald, first start**: ``python -m herald.cli serve`` (API + worker in one process, the embedded
  default) on a fresh SQLite data directory, so it creates the schema and the first admin key;
- **Herald, restart**: the same command again on that directory (schema current: the usual start);
- **baseline**: a hello-world FastAPI app (one ``GET /healthz`` route) under ``python -m uvicorn``;
- **stack**: the same app, which also imports what Herald cannot start without (SQLAlchemy's asyncio
  extension, aiosqlite, pydantic-settings) and opens a SQLite engine with one query at start: the
  floor of this stack served, before any of Herald's own code.

For each: the wall time from just before the process is spawned to the first 200 from ``GET
/healthz`` (polled every 5 ms), the CPU time the process (and the children it waited for) used up
to then, which a busy machine inflates far less than the wall time, and the resident set
(``VmRSS`` of ``/proc/PID/status``) after the process has answered and sat idle for ``--settle``
seconds. Figures are the median over the rounds; the ratio is Herald ÷ baseline.

Bytecode: an installed package has its modules compiled at install. A checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (this machine's sessions set it) would compile Herald's ~120 modules
from source at every start, ~0.25 s that no installation pays. So every process here runs with
Python's bytecode cache on, kept in a private ``PYTHONPYCACHEPREFIX`` (the checkout stays
untouched), warmed by one start of each that is not measured. ``--no-bytecode-cache`` measures the
other way.

After first use (first start only, unless ``--no-use``): with the admin key the first start printed,
a type with an in-app template, a user, a notification to them, a user token and a read of their
inbox and counts, then RSS again after ``--settle`` seconds. Whatever Herald imports only on first
use shows here, so the idle figure cannot hide it.

Then ``import herald.app`` alone: wall time and RSS in a fresh interpreter (median), which of the
heavy optional libraries it loaded (none should be), and ``python -X importtime`` summed by
top-level package (self time), each with the Herald module that first pulled it in.

Floor (unless ``--no-floor``): the import cost of what Herald cannot start without, alone in a fresh
interpreter and all together, then what each further library costs on top of that: what bounds
Herald's idle RSS and start time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _support import free_port

HELLO_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
"""

# Libraries a channel, a backend, a template or a command needs only when used: ``import herald.app``
# on SQLite without Redis should load none of them (tests/test_footprint.py keeps it so).
OPTIONAL = (
    "alembic", "apprise", "pywebpush", "requests", "cryptography", "jwt", "aiosmtplib", "asyncpg",
    "redis", "httpx", "prometheus_client", "jinja2", "sqlalchemy.dialects.postgresql", "typer",
)  # fmt: skip

STACK_APP = """
from contextlib import asynccontextmanager

import aiosqlite  # noqa: F401
import pydantic_settings  # noqa: F401
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


@asynccontextmanager
async def lifespan(app):
    engine = create_async_engine("sqlite+aiosqlite:///stack.db")
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
"""

# What any Herald start imports: each alone, then all together.
FLOOR_PARTS = (
    ("python alone", ""),
    ("fastapi + uvicorn (the baseline)", "import fastapi, uvicorn"),
    ("sqlalchemy (Core)", "import sqlalchemy"),
    ("sqlalchemy.ext.asyncio (+ ORM) + aiosqlite", "import sqlalchemy.ext.asyncio, aiosqlite"),
    ("pydantic-settings (config)", "import pydantic_settings"),
)
FLOOR = "import fastapi, uvicorn, sqlalchemy.ext.asyncio, aiosqlite, pydantic_settings"
# What each costs on top of that floor.
ON_TOP = (
    ("pydantic.v1 (FastAPI's check of route models)", "import pydantic.v1"),
    ("typer (the CLI; not for serve or api)", "import typer"),
    ("jinja2 sandbox (first template)", "import jinja2.sandbox, jinja2.meta"),
    ("sqlalchemy PostgreSQL dialect (PostgreSQL only)", "import sqlalchemy.dialects.postgresql"),
    ("alembic (when the schema is behind)", "import alembic.command"),
    ("httpx (HTTP channels, first send)", "import httpx"),
    ("cryptography + PyJWT (first token)", "import jwt, cryptography.fernet"),
    ("prometheus_client (first metric)", "import prometheus_client"),
    ("requests + pywebpush (first Web Push)", "import pywebpush"),
    ("import herald.app", "import herald.app"),
)

MEASURE_IMPORT = """
import json, sys, time
{before}
rss0 = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
t = time.perf_counter()
{statement}
seconds = time.perf_counter() - t
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
optional = [m for m in {optional!r} if m in sys.modules]
print(json.dumps({{"seconds": seconds, "rss_kib": rss, "delta_kib": rss - rss0, "optional": optional}}))
"""


@dataclass
class Start:
    seconds: float
    cpu_seconds: float
    rss_mib: float


@dataclass
class Rounds:
    fresh: list[Start] = field(default_factory=list)
    restart: list[Start] = field(default_factory=list)
    baseline: list[Start] = field(default_factory=list)
    stack: list[Start] = field(default_factory=list)
    after_use: list[float] = field(default_factory=list)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` (its own and its waited-for children's CPU time)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def request(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before /healthz answered:\n{log.read_text()}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)
    raise RuntimeError(f"/healthz did not answer within {timeout} s:\n{log.read_text()}")


@contextmanager
def started(cmd: list[str], env: dict[str, str], cwd: Path, port: int, log: Path) -> Iterator[tuple[int, float, float]]:
    """Spawn ``cmd``; yield its pid, the seconds from spawn to the first 200 from /healthz and the
    CPU seconds it used until then."""
    with log.open("ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, proc, log)
            yield proc.pid, time.perf_counter() - t0, cpu_seconds(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def python_env(pycache: Path | None) -> dict[str, str]:
    """The environment of every measured process: no HERALD_* of the caller's, and the bytecode
    cache on in ``pycache`` (or off when None)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def measure_herald(base_env: dict[str, str], data_dir: Path, settle: float, use: bool) -> tuple[Start, float | None]:
    port = free_port()
    log = data_dir / "serve.log"
    env = {
        **base_env,
        "HERALD_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/herald.db",
        "HERALD_HOST": "127.0.0.1",
        "HERALD_PORT": str(port),
        "HERALD_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "herald.cli", "serve"]
    with started(cmd, env, data_dir, port, log) as (pid, seconds, cpu):
        time.sleep(settle)
        idle = Start(seconds, cpu, rss_mib(pid))
        if not use:
            return idle, None
        first_use(port, admin_key(log))
        time.sleep(settle)
        return idle, rss_mib(pid)


def admin_key(log: Path) -> str:
    match = re.search(r"\b(hk_\S+)", log.read_text())
    if match is None:
        raise RuntimeError(f"the first start printed no admin key:\n{log.read_text()}")
    return match.group(1)


def first_use(port: int, key: str) -> None:
    """The calls a new installation makes first: a type, a user, a notification, an inbox read."""

    def ok(status: int, body: Any, what: str) -> Any:
        if status >= 300:
            raise RuntimeError(f"{what}: {status} {body}")
        return body

    kind = {"name": "Hello", "channels": ["inapp"]}
    ok(*request(port, "PUT", "/v1/notification-types/bench.hello", kind, key), "type")
    template = {"title": "Hello ${name}", "summary": "s", "body": "b"}
    path = "/v1/notification-types/bench.hello/templates/inapp?locale=zh-CN"
    ok(*request(port, "PUT", path, template, key), "template")
    ok(*request(port, "PUT", "/v1/users/alice", {"name": "Alice"}, key), "user")
    trigger = {"type": "bench.hello", "to": ["alice"], "data": {"name": "Alice"}}
    ok(*request(port, "POST", "/v1/notifications", trigger, key), "trigger")
    token = ok(*request(port, "POST", "/v1/users/alice/tokens", {"expires_in": 3600}, key), "token")["token"]
    inbox = ok(*request(port, "GET", "/v1/me/inbox", token=token), "inbox")
    if len(inbox["items"]) != 1:
        raise RuntimeError(f"expected one inbox item, got {inbox}")
    ok(*request(port, "GET", "/v1/me/inbox/counts", token=token), "counts")


def measure_baseline(
    base_env: dict[str, str], work_dir: Path, settle: float, source: str = HELLO_APP, name: str = "hello_app"
) -> Start:
    (work_dir / f"{name}.py").write_text(source)
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", f"{name}:app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning"]
    with started(cmd, base_env, work_dir, port, work_dir / f"{name}.log") as (pid, seconds, cpu):
        time.sleep(settle)
        return Start(seconds, cpu, rss_mib(pid))


def import_cost(env: dict[str, str], statement: str, before: str = "") -> dict[str, Any]:
    code = MEASURE_IMPORT.format(before=before, statement=statement or "pass", optional=OPTIONAL)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------------------------------
# -X importtime


@dataclass
class Imported:
    name: str
    self_us: int
    herald_importer: str | None  # the nearest herald.* module above it in the import tree


def import_tree(env: dict[str, str], statement: str) -> list[Imported]:
    """Every module ``statement`` imports, with the Herald module that (transitively) asked for it."""
    cmd = [sys.executable, "-X", "importtime", "-c", statement]
    err = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stderr
    # importtime prints a module after everything it imported, one indent deeper: rebuild the tree,
    # then walk it in the order the imports started
    pending: dict[int, list[tuple[str, int, list[Any]]]] = {}
    for line in err.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if match:
            depth = (len(match.group(3)) - 1) // 2
            node = (match.group(4), int(match.group(1)), pending.pop(depth + 1, []))
            pending.setdefault(depth, []).append(node)
    found: list[Imported] = []

    def walk(nodes: list[tuple[str, int, list[Any]]], herald: str | None) -> None:
        for name, self_us, children in nodes:
            found.append(Imported(name, self_us, herald))
            walk(children, name if name == "herald" or name.startswith("herald.") else herald)

    walk(pending.get(0, []), None)
    return found


def offenders(tree: list[Imported], top: int) -> list[tuple[str, float, int, str]]:
    """(package, self ms, modules, first pulled in by) for the ``top`` costliest top-level packages."""
    totals: dict[str, list[float]] = {}
    importer: dict[str, str] = {}
    for module in tree:  # in the order the imports started
        package = module.name.split(".")[0]
        entry = totals.setdefault(package, [0.0, 0])
        entry[0] += module.self_us / 1000
        entry[1] += 1
        if package not in importer:
            importer[package] = module.herald_importer or "-"
    ranked = sorted(totals.items(), key=lambda item: -item[1][0])
    return [(name, ms, int(count), importer[name]) for name, (ms, count) in ranked if name != "herald"][:top]


# ---------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def repeat(times: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    results = [measure() for _ in range(times)]
    return {
        "seconds": median([r["seconds"] for r in results]),
        "rss_mib": median([r["rss_kib"] / 1024 for r in results]),
        "delta_mib": median([r["delta_kib"] / 1024 for r in results]),
        "optional": results[-1]["optional"],
    }


def run_rounds(args: argparse.Namespace, env: dict[str, str]) -> Rounds:
    rounds = Rounds()
    with tempfile.TemporaryDirectory(prefix="herald-footprint-") as tmp:  # warm-up, not measured
        measure_herald(env, Path(tmp), 0, use=False)
        measure_baseline(env, Path(tmp), 0)
        measure_baseline(env, Path(tmp), 0, STACK_APP, "stack_app")
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="herald-footprint-") as tmp:
            data_dir = Path(tmp)
            fresh, used = measure_herald(env, data_dir, args.settle, use=not args.no_use)
            restart = measure_herald(env, data_dir, args.settle, use=False)[0]
            baseline = measure_baseline(env, data_dir, args.settle)
            stack = measure_baseline(env, data_dir, args.settle, STACK_APP, "stack_app")
        rounds.fresh.append(fresh)
        rounds.restart.append(restart)
        rounds.baseline.append(baseline)
        rounds.stack.append(stack)
        if used is not None:
            rounds.after_use.append(used)
        print(
            f"  round {i + 1}: first start {fresh.seconds:.2f} s {fresh.rss_mib:.1f} MiB · restart "
            f"{restart.seconds:.2f} s {restart.rss_mib:.1f} MiB · baseline "
            f"{baseline.seconds:.2f} s {baseline.rss_mib:.1f} MiB · stack {stack.seconds:.2f} s "
            f"{stack.rss_mib:.1f} MiB · load {loadavg()}",
            flush=True,
        )
    return rounds


def print_starts(rounds: Rounds) -> None:
    base = Start(
        median([s.seconds for s in rounds.baseline]),
        median([s.cpu_seconds for s in rounds.baseline]),
        median([s.rss_mib for s in rounds.baseline]),
    )
    print()
    print(
        f"{'':<48} {'start→/healthz s':>16} {'× base':>7} {'CPU s':>6} {'× base':>7} {'idle RSS MiB':>13} {'× base':>7}"
    )
    rows = [
        ("herald serve, first start (fresh dir)", rounds.fresh),
        ("herald serve, restart (schema current)", rounds.restart),
        ("baseline: hello-world FastAPI + uvicorn", rounds.baseline),
        ("stack: baseline + SQLAlchemy/aiosqlite/settings", rounds.stack),
    ]
    for label, starts in rows:
        sec = median([s.seconds for s in starts])
        cpu = median([s.cpu_seconds for s in starts])
        mib = median([s.rss_mib for s in starts])
        print(
            f"{label:<48} {sec:>16.2f} {sec / base.seconds:>7.2f} {cpu:>6.2f} {cpu / base.cpu_seconds:>7.2f}"
            f" {mib:>13.1f} {mib / base.rss_mib:>7.2f}"
        )
    if rounds.after_use:
        used = median(rounds.after_use)
        label = "herald serve, after first use"
        print(f"{label:<48} {'':>16} {'':>7} {'':>6} {'':>7} {used:>13.1f} {used / base.rss_mib:>7.2f}")
    print("targets (issue 11): idle RSS <= 80 MiB, start -> /healthz <= 0.8 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="rounds; figures are medians (default 5)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds idle before reading RSS (default 2)")
    parser.add_argument("--top", type=int, default=12, help="import-time offenders shown (default 12)")
    parser.add_argument("--no-use", action="store_true", help="skip the RSS after first use")
    parser.add_argument("--no-floor", action="store_true", help="skip the import cost of each dependency")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="compile from source at every start")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        sys.exit("footprint.py reads /proc/PID/status: Linux only")

    cache = "off" if args.no_bytecode_cache else "on"
    print(f"python {sys.version.split()[0]}, {args.repeat} rounds, settle {args.settle} s, bytecode cache {cache}")
    print(f"load at the start {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="herald-footprint-pycache-") as pycache:
        env = python_env(None if args.no_bytecode_cache else Path(pycache))
        print_starts(run_rounds(args, env))

        app = repeat(args.repeat, lambda: import_cost(env, "import herald.app"))
        print()
        print(f"import herald.app: {app['seconds']:.2f} s, {app['rss_mib']:.1f} MiB (median of {args.repeat})")
        print(f"  optional libraries it loaded: {', '.join(app['optional']) or 'none'}")
        print(f"  -X importtime, self time by top-level package (top {args.top}):")
        print(f"    {'package':<22} {'ms':>6} {'modules':>8}  first pulled in by")
        for name, ms, count, by in offenders(import_tree(env, "import herald.app"), args.top):
            print(f"    {name:<22} {ms:>6.0f} {count:>8}  {by}")

        if not args.no_floor:
            print_floor(env, args.repeat)
    print(f"\nload at the end {loadavg()}")


def print_floor(env: dict[str, str], times: int) -> None:
    print()
    print(f"floor: imports alone in a fresh interpreter (median of {times})")
    print(f"    {'':<48} {'s':>6} {'RSS MiB':>8}")
    for label, statement in FLOOR_PARTS:
        cost = repeat(times, lambda statement=statement: import_cost(env, statement))  # type: ignore[misc]
        print(f"    {label:<48} {cost['seconds']:>6.2f} {cost['rss_mib']:>8.1f}")
    cost = repeat(times, lambda: import_cost(env, FLOOR))
    print(f"    {'all of the above: the floor':<48} {cost['seconds']:>6.2f} {cost['rss_mib']:>8.1f}")
    print(f"  on top of the floor:{'':<27} {'+s':>6} {'+MiB':>8}")
    for label, statement in ON_TOP:
        cost = repeat(times, lambda statement=statement: import_cost(env, statement, before=FLOOR))  # type: ignore[misc]
        print(f"    {label:<48} {cost['seconds']:>6.2f} {cost['delta_mib']:>8.1f}")


if __name__ == "__main__":
    main()
