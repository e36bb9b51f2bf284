"""``herald admin …`` as an operator runs it (a subprocess in a directory of its own), and the accounts
it makes logging in to the console; ``herald serve --demo`` printing a console admin's password."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, running_harness
from tests.support import free_port, wait_for_ok
from tests.test_cli import assert_one_clear_line, clean_env, herald, herald_command, running
from tests.web.console_support import audit_rows, csrf_of, login

PASSWORD = "a long enough password"


def admin(
    args: list[str], cwd: Path, password: str | None = PASSWORD, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = clean_env(**({"HERALD_ADMIN_PASSWORD": password} if password is not None else {}))
    return subprocess.run(
        [*herald_command(), "admin", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


async def login_status(db: Path, username: str, password: str) -> tuple[int, list[tuple[str, str, str | None]]]:
    """The console's answer to a login on the CLI's database, and the audit log (actor, action, target)."""
    settings = make_settings(f"sqlite+aiosqlite:///{db}")
    async with running_harness(settings) as h:
        r = await login(h.client, username, password)
        return r.status_code, [(a, action, target) for a, action, target, _ in await audit_rows(h.herald)]


def test_admin_create_list_set_password_disable_enable(tmp_path: Path) -> None:
    assert herald(["migrate"], tmp_path, clean_env()).returncode == 0
    created = admin(["create", "ops-lead", "--role", "admin"], tmp_path)
    assert created.returncode == 0, created.stderr
    assert "created console account 'ops-lead' (admin)" in created.stderr
    assert PASSWORD not in created.stderr + created.stdout
    prompted = admin(["create", "viewer-1", "--role", "viewer"], tmp_path, password=None, stdin="pw for viewer\n" * 2)
    assert prompted.returncode == 0, prompted.stderr

    listed = admin(["list"], tmp_path)
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["USERNAME", "ROLE", "CREATED", "LAST_LOGIN", "DISABLED"]
    assert [r.split()[:2] + r.split()[3:] for r in rows] == [
        ["ops-lead", "admin", "-", "no"],
        ["viewer-1", "viewer", "-", "no"],
    ]
    assert "$argon2" not in listed.stdout

    db = tmp_path / "herald.db"
    status, _ = asyncio.run(login_status(db, "ops-lead", PASSWORD))
    assert status == 303
    assert asyncio.run(login_status(db, "viewer-1", "pw for viewer"))[0] == 303

    assert admin(["set-password", "ops-lead"], tmp_path, password="the next password").returncode == 0
    assert asyncio.run(login_status(db, "ops-lead", PASSWORD))[0] == 401
    assert asyncio.run(login_status(db, "ops-lead", "the next password"))[0] == 303

    assert admin(["disable", "viewer-1"], tmp_path).returncode == 0
    assert asyncio.run(login_status(db, "viewer-1", "pw for viewer"))[0] == 401
    assert "yes" in admin(["list"], tmp_path).stdout.splitlines()[2]
    assert admin(["enable", "viewer-1"], tmp_path).returncode == 0
    _, audit = asyncio.run(login_status(db, "viewer-1", "pw for viewer"))
    by_cli = [(action, target) for actor, action, target in audit if actor == "cli"]
    assert by_cli == [
        ("account.create", "ops-lead"),
        ("account.create", "viewer-1"),
        ("account.password", "ops-lead"),
        ("account.disable", "viewer-1"),
        ("account.enable", "viewer-1"),
    ]


@pytest.mark.parametrize(
    ("args", "password", "code", "expected"),
    [
        (["create", "x", "--role", "root"], PASSWORD, 2, "unknown role 'root'; choose from viewer, operator, admin"),
        (["create", "x", "--role", "admin"], "short", 2, "HERALD_ADMIN_PASSWORD must be at least 8 characters"),
        (["create", "a\tb", "--role", "admin"], PASSWORD, 2, "the username must not contain control"),
        (["disable", "nobody"], PASSWORD, 1, "no console account named 'nobody'"),
        (["set-password", "nobody"], PASSWORD, 1, "no console account named 'nobody'"),
    ],
)
def test_admin_mistakes_are_one_clear_line(
    tmp_path: Path, args: list[str], password: str, code: int, expected: str
) -> None:
    assert herald(["migrate"], tmp_path, clean_env()).returncode == 0
    done = admin(args, tmp_path, password=password)
    assert done.returncode == code, done.stderr
    assert_one_clear_line(done, expected)


def test_a_taken_username_and_a_mismatched_prompt_create_nothing(tmp_path: Path) -> None:
    assert herald(["migrate"], tmp_path, clean_env()).returncode == 0
    assert admin(["create", "ops", "--role", "admin"], tmp_path).returncode == 0
    again = admin(["create", "ops", "--role", "viewer"], tmp_path)
    assert again.returncode == 1
    assert_one_clear_line(again, "a console account named 'ops' exists already")
    mismatched = admin(
        ["create", "other", "--role", "admin"], tmp_path, password=None, stdin="one password\ntwo password\n"
    )
    assert mismatched.returncode != 0
    assert len(admin(["list"], tmp_path).stdout.strip().splitlines()) == 2


@pytest.mark.slow
def test_serve_demo_prints_a_console_admins_password_once(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    env = clean_env(HERALD_PORT=str(port), HERALD_LOG_LEVEL="warning")
    with running(["serve", "--demo"], tmp_path, env, log) as proc:
        wait_for_ok(f"{base}/readyz", proc, log)
        found = re.search(r"Console: \S+/console, user 'admin', password \(shown once\): (\S+)", log.read_text())
        assert found, log.read_text()
        with httpx.Client(base_url=base) as client:
            page = client.get("/console/login")
            r = client.post(
                "/console/login", data={"csrf_token": csrf_of(page.text), "username": "admin", "password": found[1]}
            )
            assert r.status_code == 303, r.text
            assert "console.login" in client.get("/console/audit").text
    first = log.read_text()
    with running(["serve", "--demo"], tmp_path, env, log) as proc:
        wait_for_ok(f"{base}/readyz", proc, log)
        second = log.read_text()[len(first) :]
        assert "console accounts exist already" in second and "shown once" not in second, second
