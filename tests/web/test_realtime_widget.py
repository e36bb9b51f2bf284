"""The widget over Server-Sent Events (docs/realtime.md): updates without reload, other tabs, banners,
token expiry, a server restart, and a page on another origin through CORS."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import make_settings
from tests.support import free_port, serve_asgi
from tests.web.conftest import BrowserPage, LiveHerald, require_playwright, wait_until
from tests.web.test_inbox_widget import ORDER, item, orders

expect = require_playwright()


def connection(bp: BrowserPage, selector: str = "herald-inbox") -> str:
    return str(bp.page.evaluate(f"document.querySelector('{selector}').connection"))


def streaming(bp: BrowserPage, timeout: float = 10) -> None:
    wait_until(lambda: connection(bp) == "live", timeout=timeout)


def test_the_badge_shows_a_new_notification_within_a_second(live: LiveHerald, browser_page: Any) -> None:
    live.put_type(ORDER, {"title": "订单 ${n} 已支付"})
    bp = browser_page(live.widget_page())
    streaming(bp)
    expect(bp.part("badge")).to_have_count(0)
    bp.part("bell").click()
    expect(bp.part("panel")).to_have_attribute("data-state", "empty")
    for n, badge in ((1, "1"), (2, "2")):
        sent = time.monotonic()
        live.notify(ORDER, "alice", {"n": n})
        expect(bp.part("badge")).to_have_text(badge, timeout=1000)
        assert time.monotonic() - sent < 1.0
    # the open panel took them too, newest first, without a reload
    titles = bp.part("item").locator(".title").all_text_contents()
    assert titles == ["订单 2 已支付", "订单 1 已支付"]
    expect(bp.page.locator("herald-inbox .sr[aria-live]")).to_have_text("新消息：订单 2 已支付")
    assert sum("/v1/me/inbox?" in u for u in bp.requests) == 1  # no polling: one list load, then events
    bp.shot("live")


def test_a_change_in_another_tab_shows_here(live: LiveHerald, browser_page: Any) -> None:
    newer, older = orders(live, 2)
    one, two = browser_page(live.widget_page()), browser_page(live.widget_page())
    for bp in (one, two):
        streaming(bp)
        bp.part("bell").click()
        expect(bp.part("item")).to_have_count(2)
    item(one, newer).locator(".main").click()
    expect(item(two, newer)).to_have_attribute("data-read", "true")
    expect(two.part("badge")).to_have_text("1")
    item(one, older).locator(".archive").click()
    expect(item(two, older)).to_have_count(0)
    expect(two.part("badge")).to_have_count(0)


def test_a_merged_item_moves_to_the_top_with_its_new_title(live: LiveHerald, browser_page: Any) -> None:
    """Merging (issue 8): ``inbox.updated`` of an item merged with a new event puts it first."""
    liked = {"title": "${actors}等 ${count} 人赞了你的文章"}
    live.put_type("post.liked", liked)
    r = live.client.put(
        "/v1/notification-types/post.liked",
        json={"channels": ["inapp"], "merge": {"key": "${post}", "window_seconds": 3600}},
    )
    assert r.status_code == 200, r.text
    live.notify("post.liked", "alice", {"post": "p1"}, actor={"id": "u1", "name": "张三"})
    live.put_type(ORDER, {"title": "订单 ${n} 已支付"})
    live.notify(ORDER, "alice", {"n": 1})
    bp = browser_page(live.widget_page())
    streaming(bp)
    bp.part("bell").click()
    titles = bp.part("item").locator(".title")
    expect(titles).to_have_text(["订单 1 已支付", "张三等 1 人赞了你的文章"])
    live.notify("post.liked", "alice", {"post": "p1"}, actor={"id": "u2", "name": "李四"})
    expect(titles).to_have_text(["李四、张三等 2 人赞了你的文章", "订单 1 已支付"], timeout=2000)
    expect(bp.part("badge")).to_have_text("2")


def test_banners_and_announcements_arrive_live(live: LiveHerald, browser_page: Any) -> None:
    bp = browser_page(live.widget_page(banner=True))
    streaming(bp)
    wait_until(lambda: connection(bp, "herald-banner") == "live")
    bp.part("bell").click()
    bp.page.locator("herald-inbox [part=tab][data-tab=announcement]").click()
    expect(bp.part("panel")).to_have_attribute("data-state", "empty")
    sale = live.announce(title="双十一大促", summary="全场五折", kind="banner")
    banner = bp.page.locator("herald-banner [part=banner]")
    expect(banner.locator(".title")).to_have_text("双十一大促", timeout=2000)
    expect(bp.part("item").locator(".title")).to_have_text("双十一大促")
    expect(bp.part("badge")).to_have_text("1")
    r = live.client.patch(f"/v1/announcements/{sale}", json={"title": "双十一大促：最后一天"})
    assert r.status_code == 200, r.text
    expect(banner.locator(".title")).to_have_text("双十一大促：最后一天", timeout=2000)
    expect(bp.part("item").locator(".title")).to_have_text("双十一大促：最后一天")
    assert live.client.delete(f"/v1/announcements/{sale}").status_code == 204
    expect(banner).to_have_count(0, timeout=2000)
    expect(bp.part("item")).to_have_count(0)
    expect(bp.part("badge")).to_have_count(0)


def test_an_expiring_token_is_refreshed_and_the_stream_goes_on(live: LiveHerald, browser_page: Any) -> None:
    live.put_type(ORDER, {"title": "订单 ${n} 已支付"})
    script = """window.refreshes = 0;
      document.querySelector('herald-inbox').tokenProvider = async () => {
        window.refreshes++;
        return (await fetch('/__test__/token')).text();
      };"""
    fresh, expiring = live.token("alice"), live.token("alice", expires_in=3)
    live.serve_file("token", fresh.encode(), "text/plain")
    bp = browser_page(live.widget_page(token=expiring, script=script))
    streaming(bp)
    wait_until(lambda: bp.page.evaluate("window.refreshes") >= 1, timeout=10)  # token.expired, then a new token
    streaming(bp)
    live.notify(ORDER, "alice", {"n": 1})
    expect(bp.part("badge")).to_have_text("1", timeout=2000)
    assert bp.inbox().get_attribute("token") == fresh


def test_reconnects_after_the_server_restarts(live: LiveHerald, browser_page: Any) -> None:
    live.put_type(ORDER, {"title": "订单 ${n} 已支付"})
    bp = browser_page(live.widget_page())
    streaming(bp)
    bp.part("bell").click()
    live.stop()
    wait_until(lambda: connection(bp) in ("reconnecting", "connecting"), timeout=10)
    bp.shot("server-down")
    live.start()
    live.notify(ORDER, "alice", {"n": 1})  # sent while the widget is still waiting to reconnect
    streaming(bp, timeout=40)
    expect(bp.part("badge")).to_have_text("1", timeout=5000)  # the replay (since the last event id)
    expect(bp.part("item").locator(".title")).to_have_text("订单 1 已支付")
    live.notify(ORDER, "alice", {"n": 2})
    expect(bp.part("badge")).to_have_text("2", timeout=1000)
    bp.shot("reconnected")


def page_on_another_origin(live: LiveHerald, token: str) -> bytes:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body>
<h1>shop.example</h1>
<herald-inbox api-url="{live.url}" token="{token}"></herald-inbox>
<herald-banner api-url="{live.url}" token="{token}"></herald-banner>
<script src="{live.url}/static/herald-inbox.js"></script>
</body></html>""".encode()


class OnePage:
    """The business site: one HTML page on its own origin."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": self.body})


def test_a_page_on_another_origin_works_through_cors(live: LiveHerald, browser_page: Any) -> None:
    (first,) = orders(live, 1)
    live.announce(title="新版上线", kind="banner")
    port = free_port()
    shop = f"http://127.0.0.1:{port}"
    live.stop()
    live.settings = make_settings(live.settings.database_url, cors_origins=[shop])
    live.start()
    with serve_asgi(OnePage(page_on_another_origin(live, live.token("alice"))), port):
        bp = browser_page(shop + "/", allowed=(live.url,))
        streaming(bp)
        expect(bp.part("badge")).to_have_text("2")
        expect(bp.page.locator("herald-banner [part=banner] .title")).to_have_text("新版上线")
        bp.part("bell").click()
        item(bp, first).locator(".main").click()  # a POST with a preflight
        expect(bp.part("badge")).to_have_text("1")
        wait_until(lambda: live.counts("alice")["by_category"]["reminder"] == 0)
        live.notify(ORDER, "alice", {"n": 9, "amount": "9.00"})
        expect(bp.part("badge")).to_have_text("2", timeout=1000)
        bp.shot("cross-origin")
        assert any(u.startswith(live.url + "/v1/me/events") for u in bp.requests)


def test_an_origin_not_listed_gets_nothing(live: LiveHerald, browser_page: Any) -> None:
    orders(live, 1)
    port = free_port()
    live.stop()
    live.settings = make_settings(live.settings.database_url, cors_origins=["https://shop.example.com"])
    live.start()
    with serve_asgi(OnePage(page_on_another_origin(live, live.token("alice"))), port):
        bp = browser_page(f"http://127.0.0.1:{port}/", allowed=(live.url,))
        bp.part("bell").click()
        expect(bp.part("panel")).to_have_attribute("data-state", "error")
        expect(bp.part("badge")).to_have_count(0)
        assert connection(bp) != "live"


def test_sse_frames_parse_across_chunks(live: LiveHerald, browser_page: Any) -> None:
    """A stub stream that splits events mid-line and inside a CRLF, with comments and a retry field,
    sent in pieces 50 ms apart: what a proxy may do to the bytes. The widget reads the same events."""
    item_json = json.dumps(
        {
            "id": "itm_x",
            "category": "reminder",
            "title": "分块 chunked",
            "read": False,
            "created_at": "2026-01-01T00:00:00Z",
        }
    )
    counts = json.dumps({"total": 7, "by_category": {"reminder": 7, "announcement": 0, "direct": 0}, "unseen": 7})
    chunks = [
        "retry: 1000\r\n\r\n: heartbeat comment\r\n\r\nid: e1\r\nevent: cou",
        "nts\r",  # a CRLF split in two: one line end, not two (which would end the event here)
        f"\ndata: {counts[:10]}",
        f"{counts[10:]}\r\n\r\nid: e2\nevent: inbox.new\ndata: {item_json[:30]}",
        f"{item_json[30:]}\n\n",
    ]
    stub = live.serve_file("sse", "\0".join(chunks).encode(), "text/event-stream")

    def to_stub(route: Any) -> None:
        route.continue_(url=stub)

    bp = browser_page(live.widget_page(), setup=lambda page: page.route("**/v1/me/events*", to_stub))
    expect(bp.part("badge")).to_have_text("7")
    bp.part("bell").click()
    expect(item(bp, "itm_x").locator(".title")).to_have_text("分块 chunked")
