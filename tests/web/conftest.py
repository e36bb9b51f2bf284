"""Browser tests: Playwright for Python driving Debian's Chromium against a real Herald server.

The server is Herald itself (``create_app``, lifespan and all) under uvicorn in a thread on a free
port, on SQLite and on PostgreSQL (the ``database_url`` fixture). Test pages are served by a thin
ASGI wrapper on the same origin (``/__test__/…``), or by a second server on another origin for CORS.

Chromium is ``/usr/bin/chromium`` (``apt-get install -y chromium``; ``HERALD_CHROMIUM`` overrides).
Under CI=true a missing Chromium or Playwright fails these tests; elsewhere they skip, saying which.
Screenshots of each state are kept under ``$HERALD_WEB_ARTIFACTS`` (default: a directory in pytest's
temporary directory); the path is printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from herald.app import create_app
from herald.config import Settings
from herald.engine.service import Herald
from herald.engine.tokens import mint_user_token
from herald.store.apikeys import create_api_key
from herald.store.db import create_engine
from herald.store.migrate import upgrade
from tests.conftest import BACKENDS, IN_CI, PG_URL, SECRET, _reset_postgres, make_settings
from tests.support import free_port

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDGET_JS = Path(__file__).resolve().parents[2] / "src/herald/web/static/herald-inbox.js"
_artifacts: list[Path] = []


T = TypeVar("T")


def run_async(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(work())`` in a thread of its own: Playwright's sync API keeps an event loop
    running in the test's thread, where ``asyncio.run`` refuses to start another."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(work()))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


# The two database fixtures of tests/conftest.py, with their async work moved off the test's thread.
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web-template") / "herald.db"

    async def migrate() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    run_async(migrate)
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "herald.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    assert PG_URL is not None
    run_async(lambda: _reset_postgres(PG_URL))
    return PG_URL


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set HERALD_CHROMIUM)"
    return None


def require_playwright() -> Any:
    """Playwright's ``expect``, for a test module to import at its top. Without Playwright the module
    fails to collect under CI=true, and is skipped, saying why, elsewhere."""
    missing = browser_missing()
    if missing and IN_CI:
        raise RuntimeError(f"CI=true: the browser tests must run, not skip: {missing}")
    if missing:
        pytest.skip(missing, allow_module_level=True)
    from playwright.sync_api import expect

    return expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: while Playwright's sync API runs, its event
    loop is the thread's running loop, and pytest-asyncio could not run the async tests after it."""
    missing = browser_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true: the browser tests must run, not skip: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("HERALD_WEB_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("web-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    _artifacts.append(path)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _artifacts:
        shots = len(list(path.glob("*.png")))
        terminalreporter.write_line(f"herald widget screenshots: {shots} in {path} (HERALD_WEB_ARTIFACTS)")


# -- the server ------------------------------------------------------------------------------------


class PageServer:
    """An ASGI wrapper: ``/__test__/…`` serves the pages a test registered, the rest goes to Herald."""

    def __init__(self, app: Any, pages: dict[str, tuple[str, bytes]]) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__test__/"):
            page = self.pages.get(scope["path"])
            if page and page[0] == "text/event-stream":
                await self.stream(page[1], send)
                return
            status, (content_type, body) = (200, page) if page else (404, ("text/plain", b"no such test page"))
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def stream(body: bytes, send: Any) -> None:
        """A stub event stream: the body's NUL-separated pieces, 50 ms apart, then the end."""
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for piece in body.split(b"\0"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})


class ThreadServer:
    """uvicorn in a thread, with the lifespan (migrations off, realtime hub and all)."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited at start"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "uvicorn did not stop"


_page_ids = itertools.count(1)


@dataclass
class LiveHerald:
    """A running Herald with an admin key, and helpers to set up what a test shows in the browser."""

    settings: Settings
    port: int
    admin_key: str
    pages: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    server: ThreadServer | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **app_options: Any) -> None:
        self.server = ThreadServer(PageServer(create_app(self.settings, **app_options), self.pages), self.port)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self) -> None:
        """Stop the server and start a new one (a new app, as a new process would) on the same port."""
        self.stop()
        self.start()

    # -- data --------------------------------------------------------------------------------------
    def token(self, user: str, expires_in: int = 3600) -> str:
        return mint_user_token(SECRET, user, expires_in)[0]

    def me(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def put_type(self, key: str, inapp: dict[str, Any], *, category: str = "reminder") -> None:
        r = self.client.put(f"/v1/notification-types/{key}", json={"channels": ["inapp"], "category": category})
        assert r.status_code in (200, 201), r.text
        r = self.client.put(f"/v1/notification-types/{key}/templates/inapp", json=inapp)
        assert r.status_code == 200, r.text

    def notify(self, key: str, user: str, data: dict[str, Any] | None = None, **extra: Any) -> None:
        r = self.client.post("/v1/notifications", json={"type": key, "to": [user], "data": data or {}, **extra})
        assert r.status_code == 202, r.text

    def announce(self, **fields: Any) -> str:
        r = self.client.post("/v1/announcements", json=fields)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def counts(self, user: str) -> dict[str, Any]:
        r = self.client.get("/v1/me/inbox/counts", headers=self.me(user))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def inbox(self, user: str, query: str = "") -> list[dict[str, Any]]:
        r = self.client.get(f"/v1/me/inbox?limit=100{query}", headers=self.me(user))
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    # -- pages -------------------------------------------------------------------------------------
    def serve_page(self, html: str, content_type: str = "text/html; charset=utf-8") -> str:
        path = f"/__test__/{next(_page_ids)}"
        self.pages[path] = (content_type, html.encode())
        return self.url + path

    def serve_file(self, name: str, body: bytes, content_type: str) -> str:
        path = f"/__test__/{name}"
        self.pages[path] = (content_type, body)
        return self.url + path

    def widget_page(
        self,
        user: str = "alice",
        *,
        token: str | None = None,
        attrs: str = "",
        banner: bool = False,
        before: str = "",
        head: str = "",
        script: str = "",
        api_url: str | None = None,
        script_src: str | None = None,
    ) -> str:
        """A page with the widget: ``<herald-inbox>`` (and ``<herald-banner>``) for ``user``."""
        token = token if token is not None else self.token(user)
        src = script_src or self.url + "/static/herald-inbox.js"
        api = api_url or self.url
        banner_el = f'<herald-banner api-url="{api}" token="{token}" {attrs}></herald-banner>' if banner else ""
        return self.serve_page(
            f"""<!doctype html><html><head><meta charset="utf-8">{head}<title>widget test</title>
<style>body{{font-family:sans-serif;margin:0;padding:16px}}
.bar{{display:flex;justify-content:flex-end;gap:8px}}</style>
</head><body>{before}
<div class="bar"><button id="before">before</button>
<herald-inbox api-url="{api}" token="{token}" {attrs}></herald-inbox></div>
{banner_el}
<script>
window.heraldEvents = [];
for (const name of ['open', 'read', 'action', 'archive', 'panel', 'dismiss'].map((n) => 'herald:' + n))
  document.addEventListener(name, (e) =>
    window.heraldEvents.push({{name, detail: JSON.parse(JSON.stringify(e.detail))}}));
{script}
</script>
<script src="{src}"></script>
</body></html>"""
        )


def _create_admin_key(settings: Settings) -> str:
    async def run() -> str:
        herald = Herald(settings)
        try:
            async with herald.db.write() as conn:
                _, key = await create_api_key(conn, "admin", ["admin"])
            return key
        finally:
            await herald.close()

    return run_async(run)


@pytest.fixture
def live(database_url: str) -> Iterator[LiveHerald]:
    settings = make_settings(database_url)
    herald = LiveHerald(settings=settings, port=free_port(), admin_key=_create_admin_key(settings))
    herald.start()
    try:
        yield herald
    finally:
        herald.client.close()
        herald.stop()


# -- the browser page ------------------------------------------------------------------------------


@dataclass
class BrowserPage:
    page: Any
    context: Any
    requests: list[str]
    errors: list[str]
    shots: Path
    name: str

    def shot(self, state: str) -> Path:
        path = self.shots / f"{self.name}-{state}.png"
        self.page.screenshot(path=str(path))
        return path

    def inbox(self, selector: str = "herald-inbox") -> Any:
        return self.page.locator(selector)

    def part(self, name: str) -> Any:
        """The Playwright locator of ``[part=name]`` inside <herald-inbox>'s shadow root (CSS pierces it)."""
        return self.page.locator(f"herald-inbox [part={name}]")

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e["detail"] for e in self.page.evaluate("window.heraldEvents") if e["name"] == name]


@pytest.fixture
def browser_page(
    browser: Any, artifacts_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserPage]]:
    """Opens pages in a fresh browser context; after the test, checks that no script error happened
    and that every request went to an allowed origin (Herald's, or the page's own)."""
    opened: list[tuple[BrowserPage, set[str]]] = []

    def open_page(
        url: str, *, locale: str = "zh-CN", allowed: tuple[str, ...] = (), setup: Callable[[Any], Any] | None = None
    ) -> BrowserPage:
        context = browser.new_context(viewport={"width": 1000, "height": 760}, locale=locale)
        page = context.new_page()
        page.set_default_timeout(10_000)
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
        bp = BrowserPage(page, context, requests, errors, artifacts_dir, name)
        origins = {_origin(url), *(_origin(a) for a in allowed)}
        opened.append((bp, origins))
        if setup is not None:
            setup(page)
        page.goto(url)
        return bp

    yield open_page
    problems = []
    for bp, origins in opened:
        foreign = [u for u in bp.requests if _origin(u) not in origins]
        if foreign:
            problems.append(f"requests to other origins than {sorted(origins)}: {foreign}")
        if bp.errors:
            problems.append(f"script errors: {bp.errors}")
        bp.context.close()
    assert not problems, problems


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (for server-side state after a click)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(interval)


def event_stream_exists(live: LiveHerald) -> bool:
    """Whether this server has the realtime endpoint (issue 9's server half)."""
    with httpx.stream("GET", live.url + "/v1/me/events", headers=live.me("probe"), timeout=5) as r:
        return r.status_code == 200 and r.headers.get("content-type", "").startswith("text/event-stream")
