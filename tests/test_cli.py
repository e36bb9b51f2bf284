"""The ``herald`` command as an operator runs it: in a subprocess, in a directory of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from herald import __version__
from tests.conftest import PG_URL, SECRET
from tests.support import free_port, wait_for_ok


def herald_command() -> list[str]:
    script = Path(sys.executable).with_name("herald")
    return [str(script)] if script.exists() else [sys.executable, "-m", "herald.cli"]


def clean_env(**values: str) -> dict[str, str]:
    """The environment without the caller's HERALD_* settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(values)
    return env


def herald(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*herald_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def herald_lines(stderr: str) -> list[str]:
    """What the command said to the operator (log lines carry a timestamp and a level)."""
    return [line for line in stderr.strip().splitlines() if line.startswith("herald:")]


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert "Traceback" not in done.stderr and "Error ─" not in done.stderr, done.stderr
    (line,) = herald_lines(done.stderr)
    other = [x for x in done.stderr.strip().splitlines() if x != line]
    assert all(" INFO herald: " in x for x in other), done.stderr  # at most the start line beside it
    for part in expected:
        assert part in line, line
    return line


# -- item 11: --version, ports -------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    done = herald(["--version"], tmp_path, clean_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"herald {__version__}"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["serve", "--port", "99999"], {}),
        (["api", "--port", "99999"], {}),
        (["serve", "--port", "0"], {}),
        (["serve"], {"HERALD_PORT": "99999"}),
    ],
)
def test_a_port_outside_1_to_65535_is_refused(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    try:
        done = herald(args, tmp_path, clean_env(**env), timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"herald {' '.join(args)} ran instead of refusing the port")
    assert done.returncode == 2, done.stderr
    assert "port" in done.stderr.lower() and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # refused before a database was created


@contextmanager
def running(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([*herald_command(), *args], cwd=cwd, env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_api_takes_host_and_port_like_serve(tmp_path: Path) -> None:
    env = clean_env(HERALD_PORT=str(free_port()))  # not the port it must bind
    assert herald(["migrate"], tmp_path, env).returncode == 0
    port, log = free_port(), tmp_path / "api.log"
    with running(["api", "--host", "127.0.0.1", "--port", str(port)], tmp_path, env, log) as proc:
        wait_for_ok(f"http://127.0.0.1:{port}/readyz", proc, log)


# -- item 11: apikey list / revoke ---------------------------------------------------------------


def test_apikey_list_and_revoke(tmp_path: Path) -> None:
    env = clean_env()
    assert herald(["migrate"], tmp_path, env).returncode == 0
    created = herald(["apikey", "create", "--name", "billing", "--scopes", "send,read"], tmp_path, env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()

    listed = herald(["apikey", "list"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST", "USED", "REVOKED"]
    (row,) = rows
    key_id, name, prefix, scopes, created_at, last_used, revoked = row.split()
    assert key_id.startswith("key_") and name == "billing" and scopes == "read,send"
    assert prefix == key[:10] + "…" and key not in listed.stdout  # never the key itself
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created_at) and (last_used, revoked) == ("-", "-")

    done = herald(["apikey", "revoke", key_id], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert herald_lines(done.stderr) == [] and f"revoked {key_id}" in done.stderr
    revoked_at = herald(["apikey", "list"], tmp_path, env).stdout.strip().splitlines()[1].split()[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", revoked_at)

    again = herald(["apikey", "revoke", key_id], tmp_path, env)
    assert again.returncode == 1
    assert_one_clear_line(again, f"no active API key '{key_id}'")


# -- item 10: a wrong database URL, one line ------------------------------------------------------

COMMANDS = [
    ["serve"],
    ["api"],
    ["worker"],
    ["migrate"],
    ["apikey", "create", "--name", "x"],
    ["apikey", "list"],
    ["apikey", "revoke", "key_x"],
]


def run_all(commands: list[list[str]], cwd: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands side by side (each is a Python start-up: in a row they take long)."""
    procs = [
        subprocess.Popen(
            [*herald_command(), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in commands
    ]
    done = []
    for args, proc in zip(commands, procs, strict=True):
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail(f"herald {' '.join(args)} did not stop")
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def test_a_closed_port_is_one_line_for_every_command(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://herald:hunter2@127.0.0.1:{free_port()}/herald"
    env = clean_env(
        HERALD_DATABASE_URL=url,
        HERALD_SECRET_KEY=SECRET,
        HERALD_REDIS_URL="redis://:redispass@127.0.0.1:6379/9",
        HERALD_WORKER_METRICS_PORT="0",
    )
    for done in run_all(COMMANDS, tmp_path, env):
        assert done.returncode == 1, (done.args, done.stderr)
        assert_one_clear_line(
            done,
            "herald: cannot use the database postgresql+asyncpg://herald:***@127.0.0.1:",
            "connection refused",
            "HERALD_DATABASE_URL (postgresql+asyncpg://",
        )
        # the start line names the database and Redis, passwords masked
        start = re.search(r" INFO herald: [a-z ]+: database (\S+), redis (\S+)$", done.stderr, re.MULTILINE)
        assert start, done.stderr
        assert re.fullmatch(r"postgresql\+asyncpg://\S*\*\*\*@127\.0\.0\.1:\d+/herald", start[1]), start[1]
        assert re.fullmatch(r"redis://\S*\*\*\*@127\.0\.0\.1:6379/9", start[2]), start[2]
        assert "hunter2" not in done.stderr and "redispass" not in done.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (HERALD_TEST_DATABASE_URL)")
def test_a_missing_postgres_database_is_one_line(tmp_path: Path) -> None:
    assert PG_URL is not None
    url = PG_URL.rsplit("/", 1)[0] + "/herald_no_such_database"
    env = clean_env(HERALD_DATABASE_URL=url, HERALD_SECRET_KEY=SECRET, HERALD_WORKER_METRICS_PORT="0")
    for done in run_all([["migrate"], ["serve"], ["worker"], ["apikey", "list"]], tmp_path, env):
        assert done.returncode == 1, (done.args, done.stderr)
        assert_one_clear_line(
            done, 'database "herald_no_such_database" does not exist', "create it", "postgresql+asyncpg://"
        )


@pytest.mark.parametrize(
    ("scheme", "commands"),
    [("postgres", [*COMMANDS, ["token", "alice"]]), ("postgresql", [["migrate"], ["token", "alice"]])],
)
def test_a_postgres_url_without_the_driver_names_the_fix(
    tmp_path: Path, scheme: str, commands: list[list[str]]
) -> None:
    env = clean_env(HERALD_DATABASE_URL=f"{scheme}://herald:hunter2@db/herald", HERALD_SECRET_KEY=SECRET)
    for done in run_all(commands, tmp_path, env):
        assert done.returncode == 2, (done.args, done.stderr)
        assert_one_clear_line(
            done, f"unsupported scheme '{scheme}://'", "for PostgreSQL write postgresql+asyncpg://user:password@host"
        )
        assert "hunter2" not in done.stderr


def test_only_serve_and_migrate_create_a_sqlite_database(tmp_path: Path) -> None:
    env = clean_env()  # the default: ./herald.db
    for done in run_all([*COMMANDS[1:3], *COMMANDS[4:], ["token", "alice"]], tmp_path, env):
        assert done.returncode == 2, (done.args, done.stderr)
        assert_one_clear_line(done, f"herald: no database at {tmp_path.resolve()}/herald.db", "HERALD_DATABASE_URL")
        assert done.stdout == ""
    assert not list(tmp_path.iterdir())  # neither a database nor a key file

    done = herald(["migrate"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "migrate: database sqlite+aiosqlite:///./herald.db, redis none" in done.stderr
    assert (tmp_path / "herald.db").exists()
    token = herald(["token", "alice"], tmp_path, env)
    assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr


def test_a_database_without_the_schema_says_to_migrate(tmp_path: Path) -> None:
    (tmp_path / "herald.db").touch()  # there, but never migrated
    done = herald(["apikey", "list"], tmp_path, clean_env(HERALD_AUTO_MIGRATE="false"))
    assert done.returncode == 1, done.stderr
    assert_one_clear_line(done, "no such table", "run `herald migrate` first")


# -- item 9: serve --demo restarted --------------------------------------------------------------


@pytest.mark.slow
def test_serve_demo_restarted_keeps_the_operators_edits(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    env = clean_env(HERALD_PORT=str(port), HERALD_LOG_LEVEL="warning")
    with running(["serve", "--demo"], tmp_path, env, log) as proc:
        wait_for_ok(f"{base}/readyz", proc, log)
        first = log.read_text()
        admin = re.search(r"first admin API key \(shown once, keep it\): (hk_\S+)", first)
        token = re.search(r"alice's user token: (\S+)", first)
        assert admin and token and "Demo seeded" in first, first
        headers = {"Authorization": f"Bearer {admin[1]}"}
        r = httpx.put(
            f"{base}/v1/notification-types/recharge.succeeded",
            json={"name": "Mine now", "channels": ["inapp"]},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        inbox = httpx.get(f"{base}/v1/me/inbox", headers={"Authorization": f"Bearer {token[1]}"}).json()
        assert len(inbox["items"]) == 1

    with running(["serve", "--demo"], tmp_path, env, log) as proc:
        wait_for_ok(f"{base}/readyz", proc, log)
        second = log.read_text()[len(first) :]
        assert "Demo not seeded" in second and "alice's user token" in second, second
        r = httpx.get(f"{base}/v1/notification-types/recharge.succeeded", headers=headers)
        assert r.status_code == 200 and r.json()["name"] == "Mine now", r.text
        inbox = httpx.get(f"{base}/v1/me/inbox", headers={"Authorization": f"Bearer {token[1]}"}).json()
        assert len(inbox["items"]) == 1, inbox  # no second demo notification
