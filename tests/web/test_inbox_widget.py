"""<herald-inbox> in Chromium against a real Herald: the badge, the panel, marks, tabs, infinite
scroll, states, the keyboard, locales, the token-refresh hook. Each test runs on SQLite and PostgreSQL.

The realtime tests (SSE) are in test_realtime_widget.py; these use the REST API the widget polls.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from tests.web.conftest import BrowserPage, LiveHerald, require_playwright, wait_until

expect = require_playwright()

ORDER = "order.paid"
ORDER_TEMPLATE = {"title": "订单 ${n} 已支付", "summary": "金额 ${amount} 元", "body": "订单 ${n} 的详情：已发货。"}


def orders(live: LiveHerald, count: int, user: str = "alice") -> list[str]:
    """``count`` reminders for ``user``; their ids, newest first (as the inbox lists them)."""
    live.put_type(ORDER, ORDER_TEMPLATE)
    for n in range(count):
        live.notify(ORDER, user, {"n": n, "amount": f"{n}.00"})
    return [i["id"] for i in live.inbox(user, "&category=reminder")]


def item(bp: BrowserPage, item_id: str) -> Any:
    return bp.page.locator(f'herald-inbox [part=item][data-id="{item_id}"]')


def shadow(bp: BrowserPage, script: str) -> Any:
    """Evaluate ``script`` with ``root`` = <herald-inbox>'s shadow root."""
    return bp.page.evaluate(f"(() => {{ const root = document.querySelector('herald-inbox').shadowRoot; {script} }})()")


def loaded(bp: BrowserPage) -> None:
    """Wait until the widget has its counts (the bell's label says so)."""
    expect(bp.part("bell")).to_have_attribute("aria-label", re.compile(r"^(通知|Notifications)"))
    wait_until(lambda: bp.page.evaluate("document.querySelector('herald-inbox').counts !== null"))


def test_badge_counts_unread_is_absent_at_zero_and_caps_at_99(live: LiveHerald, browser_page: Any) -> None:
    bp = browser_page(live.widget_page())
    loaded(bp)
    expect(bp.part("badge")).to_have_count(0)
    expect(bp.part("bell")).to_have_attribute("aria-label", "通知")
    bp.shot("zero")
    orders(live, 3)
    bp.page.reload()
    expect(bp.part("badge")).to_have_text("3")
    expect(bp.part("bell")).to_have_attribute("aria-label", "通知，3 条未读")
    for n in range(3, 100):
        live.notify(ORDER, "alice", {"n": n, "amount": "1.00"})
    bp.page.reload()
    expect(bp.part("badge")).to_have_text("99+")
    expect(bp.part("bell")).to_have_attribute("aria-label", "通知，100 条未读")
    bp.shot("99-plus")


def test_badge_shows_a_new_notification_without_reload_by_polling(live: LiveHerald, browser_page: Any) -> None:
    """With the stream off (or absent) the widget polls the counts."""
    bp = browser_page(live.widget_page(attrs='realtime="off" poll-interval="1"'))
    loaded(bp)
    assert bp.page.evaluate("document.querySelector('herald-inbox').connection") == "polling"
    orders(live, 1)
    expect(bp.part("badge")).to_have_text("1", timeout=3000)


def test_clicking_an_item_marks_it_read_and_the_badge_drops(live: LiveHerald, browser_page: Any) -> None:
    ids = orders(live, 3)
    bp = browser_page(live.widget_page())
    expect(bp.part("badge")).to_have_text("3")
    bp.part("bell").click()
    expect(bp.part("panel")).to_be_visible()
    expect(bp.part("item")).to_have_count(3)
    assert bp.part("item").evaluate_all("els => els.map(e => e.dataset.id)") == ids
    expect(item(bp, ids[0]).locator(".title")).to_have_text("订单 2 已支付")
    expect(item(bp, ids[0]).locator(".summary")).to_have_text("金额 2.00 元")
    expect(item(bp, ids[0]).locator("time")).to_have_text("刚刚")
    bp.shot("open")
    item(bp, ids[1]).locator(".main").click()
    expect(item(bp, ids[1])).to_have_attribute("data-read", "true")
    expect(item(bp, ids[0])).to_have_attribute("data-read", "false")
    expect(bp.part("badge")).to_have_text("2")
    expect(bp.page.locator("herald-inbox [part=tab][data-tab=reminder] .n")).to_have_text("2")
    wait_until(lambda: next(i for i in live.inbox("alice") if i["id"] == ids[1])["read"])
    assert live.counts("alice")["total"] == 2
    wait_until(lambda: bp.events("herald:read"))
    assert bp.events("herald:read")[0]["item"]["id"] == ids[1]
    bp.shot("one-read")


def test_click_opens_the_action_url_or_lets_the_page_route_it(live: LiveHerald, browser_page: Any) -> None:
    landing = live.serve_page("<!doctype html><title>landing</title><p id=landed>landed</p>")
    live.put_type("link.x", {"title": "${t}", "action_url": "${u}"})
    # Herald refuses it (422); test_hostile_urls.py shows the widget's own guard, should one get through
    evil = {"type": "link.x", "to": ["alice"], "data": {"t": "evil", "u": "javascript:1"}}
    r = live.client.post("/v1/notifications", json=evil)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["templates.inapp.action_url"], r.text
    live.notify("link.x", "alice", {"t": "plain", "u": ""})  # no link: the row expands instead
    live.notify("link.x", "alice", {"t": "spa", "u": landing + "?spa"})
    live.notify("link.x", "alice", {"t": "good", "u": landing})
    good, spa, plain = (i["id"] for i in live.inbox("alice"))
    script = """document.addEventListener('herald:open', (e) => {
      if (e.detail.url.endsWith('?spa')) { e.preventDefault(); window.routed = e.detail.url; } });"""
    bp = browser_page(live.widget_page(script=script))
    bp.part("bell").click()
    item(bp, plain).locator(".main").click()
    expect(item(bp, plain)).to_have_attribute("data-read", "true")
    assert [e["item"]["id"] for e in bp.events("herald:open")] == []  # no URL to open
    expect(item(bp, plain)).to_have_class(re.compile(r"\bopen\b"))  # it expanded instead
    item(bp, spa).locator(".main").click()  # the page routes it itself (preventDefault)
    wait_until(lambda: bp.page.evaluate("window.routed"))
    assert bp.page.evaluate("window.routed") == landing + "?spa"
    assert bp.page.url != landing + "?spa"
    item(bp, good).locator(".main").click()
    bp.page.wait_for_url(landing)
    expect(bp.page.locator("#landed")).to_have_text("landed")
    wait_until(lambda: all(i["read"] for i in live.inbox("alice")))  # keepalive: the mark outlived the page


def test_mark_all_read_marks_the_tab_read(live: LiveHerald, browser_page: Any) -> None:
    orders(live, 3)
    live.put_type("chat.dm", {"title": "来自 Bob 的私信"}, category="direct")
    live.notify("chat.dm", "alice")
    bp = browser_page(live.widget_page())
    expect(bp.part("badge")).to_have_text("4")
    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(3)
    bp.part("mark-all").click()
    expect(bp.page.locator("herald-inbox [part=item][data-read=false]")).to_have_count(0)
    expect(bp.part("badge")).to_have_text("1")  # the direct message is another tab's
    assert live.counts("alice")["by_category"] == {"reminder": 0, "announcement": 0, "direct": 1}
    bp.shot("reminders-read")
    bp.page.locator("herald-inbox [part=tab][data-tab=direct]").click()
    expect(bp.part("item")).to_have_count(1)
    bp.part("mark-all").click()
    expect(bp.part("badge")).to_have_count(0)
    assert live.counts("alice")["total"] == 0
    bp.shot("all-read")


def test_tabs_show_notifications_announcements_and_messages(live: LiveHerald, browser_page: Any) -> None:
    (order,) = orders(live, 1)
    live.put_type("chat.dm", {"title": "来自 Bob 的私信"}, category="direct")
    live.notify("chat.dm", "alice")
    (dm,) = [i["id"] for i in live.inbox("alice", "&category=direct")]
    notice = live.announce(title="系统升级通知", summary="今晚 2 点维护")
    bp = browser_page(live.widget_page())
    bp.part("bell").click()
    tabs = bp.part("tab")
    expect(tabs).to_have_count(3)
    assert tabs.evaluate_all("els => els.map(e => e.querySelector('.label').textContent)") == ["通知", "公告", "私信"]
    selected = bp.page.locator("herald-inbox [part=tab][aria-selected=true]")
    expect(selected).to_have_attribute("data-tab", "reminder")
    expect(bp.part("item")).to_have_count(1)
    expect(item(bp, order)).to_be_visible()
    bp.page.locator("herald-inbox [part=tab][data-tab=announcement]").click()
    expect(bp.part("item")).to_have_count(1)
    expect(item(bp, notice).locator(".title")).to_have_text("系统升级通知")
    bp.shot("announcements")
    bp.page.keyboard.press("ArrowRight")  # the tab list takes arrow keys
    expect(selected).to_have_attribute("data-tab", "direct")
    expect(item(bp, dm).locator(".title")).to_have_text("来自 Bob 的私信")
    bp.shot("messages")
    bp.page.keyboard.press("ArrowRight")
    expect(selected).to_have_attribute("data-tab", "reminder")
    expect(item(bp, order)).to_be_visible()


def test_archive_removes_the_item(live: LiveHerald, browser_page: Any) -> None:
    newer, older = orders(live, 2)
    bp = browser_page(live.widget_page())
    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(2)
    item(bp, newer).locator(".archive").click()
    expect(item(bp, newer)).to_have_count(0)
    expect(bp.part("item")).to_have_count(1)
    expect(bp.part("badge")).to_have_text("1")
    assert [i["id"] for i in live.inbox("alice", "&archived=true")] == [newer]
    assert [i["id"] for i in live.inbox("alice")] == [older]
    assert bp.events("herald:archive")[0]["item"]["id"] == newer


def test_infinite_scroll_loads_the_next_pages(live: LiveHerald, browser_page: Any) -> None:
    ids = orders(live, 45)
    bp = browser_page(live.widget_page(attrs='page-size="20"'))
    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(20)
    for shown in (40, 45):
        shadow(bp, "root.querySelector('.list').scrollTop = 1e9;")
        expect(bp.part("item")).to_have_count(shown)
    assert bp.part("item").evaluate_all("els => els.map(e => e.dataset.id)") == ids
    shadow(bp, "root.querySelector('.list').scrollTop = 1e9;")
    bp.page.wait_for_timeout(300)
    expect(bp.part("item")).to_have_count(45)  # the end: nothing more asked for
    assert sum("category=reminder" in u for u in bp.requests) == 3


def test_zh_cn_and_en(live: LiveHerald, browser_page: Any) -> None:
    orders(live, 1)
    bp = browser_page(live.widget_page(attrs='locale="zh-CN"'))
    bp.part("bell").click()
    expect(bp.part("mark-all")).to_have_text("全部已读")
    expect(bp.part("item").locator("time")).to_have_text("刚刚")
    expect(bp.part("bell")).to_have_attribute("aria-label", "通知，1 条未读")
    bp.shot("zh-CN")
    bp.page.evaluate("document.querySelector('herald-inbox').setAttribute('locale', 'en')")
    labels = bp.part("tab").evaluate_all("els => els.map(e => e.querySelector('.label').textContent)")
    assert labels == ["Notifications", "Announcements", "Messages"]
    expect(bp.part("mark-all")).to_have_text("Mark all as read")
    expect(bp.part("item").locator("time")).to_have_text("just now")
    expect(bp.part("bell")).to_have_attribute("aria-label", "Notifications, 1 unread")
    bp.shot("en")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=5)
    bp.page.clock.set_fixed_time(later)
    bp.page.evaluate("document.querySelector('herald-inbox').setAttribute('locale', 'zh-CN')")
    expect(bp.part("item").locator("time")).to_have_text("3小时前")
    bp.page.evaluate("document.querySelector('herald-inbox').setAttribute('locale', 'en')")
    expect(bp.part("item").locator("time")).to_have_text("3 hours ago")


def test_locale_defaults_to_the_page_language(live: LiveHerald, browser_page: Any) -> None:
    bp = browser_page(live.widget_page(before="<script>document.documentElement.lang = 'en'</script>"), locale="en")
    bp.part("bell").click()
    expect(bp.part("mark-all")).to_have_text("Mark all as read")


def test_keyboard_tab_enter_escape_and_focus_trap(live: LiveHerald, browser_page: Any) -> None:
    first, second = orders(live, 2)
    bp = browser_page(live.widget_page())
    loaded(bp)
    bell = bp.part("bell")
    assert bell.get_attribute("aria-haspopup") == "dialog" and bell.get_attribute("aria-expanded") == "false"
    bp.page.focus("#before")
    bp.page.keyboard.press("Tab")
    assert shadow(bp, "return root.activeElement && root.activeElement.getAttribute('part');") == "bell"
    bp.page.keyboard.press("Enter")
    panel = bp.part("panel")
    expect(panel).to_be_visible()
    expect(bell).to_have_attribute("aria-expanded", "true")
    assert panel.get_attribute("role") == "dialog" and panel.get_attribute("aria-modal") == "true"
    assert shadow(bp, "return root.activeElement.getAttribute('aria-selected');") == "true"  # on the selected tab
    bp.shot("keyboard-open")
    inside = "return !!(root.activeElement && root.activeElement.closest('[part=panel]'));"
    seen = set()
    for _ in range(12):  # mark-all, close, tab, 2 × (item, archive): wraps around, never leaves
        bp.page.keyboard.press("Tab")
        assert shadow(bp, inside)
        seen.add(shadow(bp, "return root.activeElement.className || root.activeElement.getAttribute('part');"))
    assert {"mark-all", "close", "tab", "main", "archive"} <= seen, seen
    shadow(bp, "root.querySelector('[part=mark-all]').focus();")
    bp.page.keyboard.press("Shift+Tab")  # from the first to the last
    assert shadow(bp, "return root.activeElement.className;") == "archive"
    assert shadow(bp, "return root.activeElement.closest('[part=item]').dataset.id;") == second
    shadow(bp, f"root.querySelector('[data-id=\"{first}\"] .main').focus();")
    bp.page.keyboard.press("Enter")  # an item opens (is marked read) from the keyboard
    expect(item(bp, first)).to_have_attribute("data-read", "true")
    bp.page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(bell).to_have_attribute("aria-expanded", "false")
    assert shadow(bp, "return root.activeElement && root.activeElement.getAttribute('part');") == "bell"


def test_empty_error_and_offline_states(live: LiveHerald, browser_page: Any) -> None:
    bp = browser_page(live.widget_page())
    bp.part("bell").click()
    note = bp.page.locator("herald-inbox .note")
    expect(note).to_have_text("暂无消息")
    expect(bp.part("panel")).to_have_attribute("data-state", "empty")
    bp.shot("empty")
    bp.page.route("**/v1/me/inbox?*", lambda route: route.fulfill(status=500, body="boom"))
    bp.page.locator("herald-inbox [part=tab][data-tab=announcement]").click()
    expect(bp.part("panel")).to_have_attribute("data-state", "error")
    expect(note).to_contain_text("消息加载失败")
    bp.shot("error")
    bp.page.unroute("**/v1/me/inbox?*")
    live.announce(title="恢复了")
    note.get_by_role("button").click()  # retry
    expect(bp.part("item")).to_have_count(1)
    bp.context.set_offline(True)
    expect(bp.part("panel")).to_have_attribute("data-state", "offline")
    expect(note).to_have_text("网络已断开，恢复后将自动更新。")
    bp.shot("offline")
    bp.context.set_offline(False)
    expect(bp.part("panel")).to_have_attribute("data-state", "")
    expect(bp.part("item")).to_have_count(1)


def test_an_expired_token_is_refreshed_through_the_token_provider(live: LiveHerald, browser_page: Any) -> None:
    orders(live, 1)
    expired, fresh = live.token("alice", expires_in=-120), live.token("alice")
    script = f"""window.refreshes = 0;
      document.querySelector('herald-inbox').tokenProvider = async () => {{
        window.refreshes++;
        return {json.dumps(fresh)};
      }};"""
    bp = browser_page(live.widget_page(token=expired, script=script))
    expect(bp.part("badge")).to_have_text("1")
    assert bp.inbox().get_attribute("token") == fresh
    assert bp.page.evaluate("window.refreshes") >= 1
    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(1)


def test_an_expired_token_without_a_provider_says_so(live: LiveHerald, browser_page: Any) -> None:
    bp = browser_page(live.widget_page(token=live.token("alice", expires_in=-120), attrs='realtime="off"'))
    bp.part("bell").click()
    expect(bp.part("panel")).to_have_attribute("data-state", "expired")
    expect(bp.page.locator("herald-inbox .note")).to_have_text("登录已过期，请刷新页面重新登录。")
    bp.shot("expired")


def test_theming_through_parts_and_custom_properties(live: LiveHerald, browser_page: Any) -> None:
    orders(live, 1)
    css = """<style>
      herald-inbox { --herald-accent: rgb(0, 128, 0); --herald-font: monospace; }
      herald-inbox::part(badge) { background: rgb(255, 0, 255); }
      herald-inbox::part(panel) { width: 420px; }
    </style>"""
    bp = browser_page(live.widget_page(before=css))
    badge = bp.part("badge")
    expect(badge).to_have_text("1")
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 0, 255)"
    bp.part("bell").click()
    assert bp.part("panel").evaluate("e => getComputedStyle(e).width") == "420px"
    selected = bp.page.locator("herald-inbox [part=tab][aria-selected=true]")
    assert selected.evaluate("e => getComputedStyle(e).color") == "rgb(0, 128, 0)"
    assert "monospace" in bp.part("panel").evaluate("e => getComputedStyle(e).fontFamily")
    bp.shot("themed")


def test_styled_under_a_content_security_policy_without_unsafe_inline_styles(
    live: LiveHerald, browser_page: Any
) -> None:
    orders(live, 1)
    csp = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self'"
    bp = browser_page(live.widget_page(head=f'<meta http-equiv="Content-Security-Policy" content="{csp}">'))
    badge = bp.part("badge")
    expect(badge).to_have_text("1")
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(220, 38, 38)"
    bp.part("bell").click()
    assert bp.part("panel").evaluate("e => getComputedStyle(e).position") == "absolute"
    expect(bp.part("item")).to_have_count(1)


def test_a_new_token_of_another_user_starts_over(live: LiveHerald, browser_page: Any) -> None:
    orders(live, 1, user="alice")
    for n in range(2):
        live.notify(ORDER, "bob", {"n": 10 + n, "amount": "1.00"})
    bp = browser_page(live.widget_page("alice"))
    expect(bp.part("badge")).to_have_text("1")
    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(1)
    bob = json.dumps(live.token("bob"))
    bp.page.evaluate(f"document.querySelector('herald-inbox').setAttribute('token', {bob})")
    expect(bp.part("badge")).to_have_text("2")
    expect(bp.part("item")).to_have_count(2)  # the open panel reloaded, as bob
    assert bp.part("item").locator(".title").all_text_contents() == ["订单 11 已支付", "订单 10 已支付"]
