"""What a server loads at start: libraries a channel, a backend or a migration needs are imported
only when used, so the memory and start time they cost cannot come back unnoticed.

Each check runs in a fresh interpreter (this test process has imported everything long ago).
bench/footprint.py measures the figures themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PG_URL, SECRET

# Imported on first use, never at start (on SQLite, without Redis): channel libraries, the crypto
# behind secrets at rest and user tokens, Alembic, the PostgreSQL driver and dialect, metrics, Jinja2
# (the first template saved or rendered).
LAZY = (
    "alembic",
    "apprise",
    "pywebpush",
    "py_vapid",
    "requests",
    "urllib3",
    "httpx",
    "aiosmtplib",
    "cryptography",
    "jwt",
    "asyncpg",
    "redis",
    "prometheus_client",
    "typer",
    "jinja2",
    "herald.core.template_engine",
    "sqlalchemy.dialects.postgresql",
)

REPORT = """
import json, sys
lazy = {lazy!r}
print(json.dumps(sorted(m for m in lazy if m in sys.modules)))
"""


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def loaded(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    result: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_app_loads_no_optional_library(tmp_path: Path) -> None:
    done = run_python("import herald.app\n" + REPORT.format(lazy=LAZY), tmp_path)
    assert loaded(done) == []


def test_the_report_sees_what_is_loaded(tmp_path: Path) -> None:
    """The check above could pass by looking in the wrong place: here it must see what it names."""
    done = run_python("import herald.app, httpx, alembic\n" + REPORT.format(lazy=LAZY), tmp_path)
    assert loaded(done) == ["alembic", "httpx", "sqlalchemy.dialects.postgresql"]  # Alembic loads every dialect


def test_the_first_template_loads_jinja2(tmp_path: Path) -> None:
    """Deferred, not removed: the first check or render imports it, and works."""
    code = """
    from herald.core.templates import render_fields, validate_fields
    validate_fields({"title": "Hi ${name}"})
    assert render_fields({"title": "Hi ${name}"}, {"name": "Ann"}) == {"title": "Hi Ann"}
    """
    done = run_python(textwrap.dedent(code) + REPORT.format(lazy=LAZY), tmp_path)
    assert loaded(done) == ["herald.core.template_engine", "jinja2"]


PARTIAL_INDEXES = [
    "ix_deliveries_due",
    "ix_deliveries_ended",
    "ix_inbox_items_merge_target",
    "ix_inbox_items_user_unread",
    "ix_jobs_due",
    "ix_jobs_finished",
    "ix_notifications_cancellation_key",
    "ix_notifications_schedule_occurrence",
    "uq_digests_open",
]


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://herald@127.0.0.1/herald"])
def test_an_engine_gives_the_partial_indexes_their_where(url: str) -> None:
    """tables.py names no dialect's option itself (``postgresql_where`` would load the PostgreSQL
    dialect on SQLite): ``create_engine`` adds the option of the database it is for."""
    from sqlalchemy.schema import CreateIndex

    from herald.store.db import create_engine
    from herald.store.tables import metadata

    dialect = create_engine(url).dialect  # no connection is made
    partial = {
        index.name: str(CreateIndex(index).compile(dialect=dialect))
        for table in metadata.sorted_tables
        for index in table.indexes
        if " WHERE " in str(CreateIndex(index).compile(dialect=dialect))
    }
    assert sorted(partial) == PARTIAL_INDEXES
    assert partial["ix_jobs_due"].endswith("WHERE status IN ('pending', 'running')")


async def test_the_partial_indexes_match_the_migrated_schema(database_url: str) -> None:
    """The WHERE each partial index has in tables.py is the one the migrations created."""
    from sqlalchemy import text
    from sqlalchemy.schema import CreateIndex

    from herald.store.db import create_engine
    from herald.store.tables import metadata

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"
            else:
                query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            stored = {name: ddl for name, ddl in (await conn.execute(text(query))).all() if " WHERE " in ddl}
    finally:
        await engine.dispose()
    declared = {
        index.name: str(CreateIndex(index).compile(dialect=engine.dialect))
        for table in metadata.sorted_tables
        for index in table.indexes
        if index.name in stored
    }
    assert sorted(declared) == sorted(stored) == PARTIAL_INDEXES
    for name, ddl in declared.items():
        assert " WHERE " in ddl, name
        if engine.dialect.name == "sqlite":  # PostgreSQL rewrites the clause it stores (= ANY (ARRAY[...]))
            assert " ".join(ddl.split()) == " ".join(stored[name].split())


SERVE_START = """
import asyncio
from herald.app import create_app
from herald.cli import _prepare
from herald.config import Settings

async def healthz(app):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/healthz", "raw_path": b"/healthz", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"herald.test")], "client": ("127.0.0.1", 1), "server": ("herald.test", 80),
    }
    await app(scope, receive, send)
    return sent[0]["status"]

async def main():
    settings = Settings()
    await _prepare(settings, demo=False)  # what `herald serve` does before it serves
    app = create_app(settings, run_worker=True)
    async with app.router.lifespan_context(app):
        assert await healthz(app) == 200
        await asyncio.sleep(0.5)  # the worker polls, finds nothing, waits

asyncio.run(main())
"""


def test_a_server_starting_on_a_current_schema_loads_no_optional_library(tmp_path: Path) -> None:
    env = {"HERALD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/herald.db", "HERALD_WORKER_POLL_SECONDS": "0.1"}
    migrate = subprocess.run(
        [sys.executable, "-m", "herald.cli", "migrate"],
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    done = run_python(SERVE_START + REPORT.format(lazy=LAZY), tmp_path, env)
    assert loaded(done) == []  # Alembic included: the schema is current


def test_a_new_database_is_migrated_apart_from_the_server(tmp_path: Path) -> None:
    """A fresh installation gets its schema from a child ``herald migrate``: the serving process
    never imports Alembic (it would keep it for as long as it runs)."""
    env = {"HERALD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/herald.db"}
    code = """
    import asyncio, json, sys
    from herald.cli import _prepare
    from herald.config import Settings
    from herald.engine.service import Herald
    from herald.store.migrate import is_current

    async def main():
        settings = Settings()
        await _prepare(settings, demo=False)
        herald = Herald(settings)
        try:
            return await is_current(herald.db.engine)
        finally:
            await herald.close()

    current = asyncio.run(main())
    print(json.dumps({"current": current, "alembic": "alembic" in sys.modules}))
    """
    done = run_python(code, tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"current": True, "alembic": False}
    assert "Created the first admin API key" in done.stderr


def test_a_failed_migration_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    db = tmp_path / "herald.db"
    import sqlite3

    with sqlite3.connect(db) as conn:  # a schema from a newer Herald, say: Alembic cannot place it
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env["HERALD_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    done = subprocess.run(
        [sys.executable, "-m", "herald.cli", "api"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "Can't locate revision identified by '9999'" in done.stderr
    assert "Uvicorn running" not in done.stderr


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (HERALD_TEST_DATABASE_URL)")
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgresql_a_current_schema_loads_no_alembic(tmp_path: Path, database_url: str) -> None:
    env = {"HERALD_DATABASE_URL": database_url, "HERALD_SECRET_KEY": SECRET}
    lazy = ("alembic", "apprise", "pywebpush", "httpx", "jinja2")
    done = run_python(SERVE_START + REPORT.format(lazy=lazy), tmp_path, env)
    assert loaded(done) == []


SERVE_COMMAND = """
import json, sys
import uvicorn

def run(app, **options):  # where uvicorn would start serving: what has `herald serve` imported?
    print(json.dumps({{"options": {{k: options[k] for k in ("host", "port")}}, "routes": len(app.routes)}}))

uvicorn.run = run
sys.argv = ["herald", *{argv!r}]
from herald.cli import main
try:
    main()
except SystemExit as exc:  # Typer exits when its command returns
    assert not exc.code, exc.code
"""


@pytest.mark.parametrize(
    ("argv", "port", "typer"),
    [
        (["serve"], 8000, False),
        (["serve", "--port", "8765", "--no-demo", "--host=127.0.0.1"], 8765, False),
        (["serve", "--port", "+8765"], 8765, True),  # a value Typer reads: Typer reads it
    ],
)
def test_herald_serve_starts_without_typer(tmp_path: Path, argv: list[str], port: int, typer: bool) -> None:
    env = {"HERALD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/herald.db"}
    done = run_python(SERVE_COMMAND.format(argv=argv) + REPORT.format(lazy=LAZY), tmp_path, env)
    assert done.returncode == 0, done.stderr
    started, lazy = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert started["options"] == {"host": "127.0.0.1", "port": port}
    assert started["routes"] > 10  # the app itself was built
    assert lazy == (["typer"] if typer else [])
    assert "Created the first admin API key" in done.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], ("serve", {})),
        (
            ["serve", "--demo", "--host", "0.0.0.0", "--port=8001"],
            ("serve", {"demo": True, "host": "0.0.0.0", "port": 8001}),
        ),
        (["serve", "--no-demo"], ("serve", {"demo": False})),
        (["api", "--port", "65535"], ("api", {"port": 65535})),
        # everything else is Typer's: help, other commands, unknown or repeated options, odd values
        ([], None),
        (["serve", "--help"], None),
        (["--version"], None),
        (["worker"], None),
        (["api", "--demo"], None),
        (["serve", "--port"], None),
        (["serve", "--port", "0"], None),
        (["serve", "--port", "65536"], None),
        (["serve", "--port", "80a"], None),
        (["serve", "--port", "８０"], None),
        (["serve", "--host", "--port", "80"], None),
        (["serve", "--host="], None),
        (["serve", "--demo=yes"], None),
        (["serve", "--port", "80", "--port", "81"], None),
        (["serve", "extra"], None),
        (["serve", "--", "--port", "80"], None),
    ],
)
def test_what_the_cli_reads_without_typer(argv: list[str], expected: tuple[str, dict[str, object]] | None) -> None:
    from herald.cli import server_args

    assert server_args(argv) == expected
