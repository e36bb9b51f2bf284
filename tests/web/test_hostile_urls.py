"""URLs in content never run script: the widget follows or loads a URL only when it is http(s) or
relative (same origin), never ``javascript:``, ``data:`` or ``vbscript:``, however it is spelled.

Herald refuses such URLs where they come in (tests/api/test_links.py), so they cannot reach the
widget through it any more; but items stored by an older Herald, or a proxy in between, could still
carry them, and the widget must stand on its own. The test takes Herald's real answers and swaps
placeholder URLs for hostile ones on the way to the browser (``page.route``), so the JSON is exactly
what Herald sends. One relative link in the same list must still be followed: the control.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.web.conftest import BrowserPage, LiveHerald, require_playwright

expect = require_playwright()

PLACEHOLDER = "https://placeholder.invalid/"
HOSTILE = {
    "js": "javascript:window.__pwned='js'",
    "mixed": " JaVaScRiPt:window.__pwned='mixed'",
    "tab": "java\tscript:window.__pwned='tab'",
    "ctrl": "\x01javascript:window.__pwned='ctrl'",
    "data": "data:text/html,<script>window.top.__pwned='data'</script>",
    "vb": "vbscript:window.__pwned='vb'",
    "svg": "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' onload='top.__pwned=1'/>",
}
LINKS = ("js", "mixed", "tab", "ctrl", "data", "vb")
ME = re.compile(r"/v1/me/(?!events)")  # every JSON answer (a mark read answers the item too), not the stream


def _swap(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return HOSTILE[value.removeprefix(PLACEHOLDER)]
    if isinstance(value, dict):
        return {k: _swap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v) for v in value]
    return value


def _hostile_answers(route: Any) -> None:
    response = route.fetch()
    if response.status != 200:
        route.fulfill(response=response)
        return
    route.fulfill(response=response, json=_swap(response.json()))


def _shadow_links(bp: BrowserPage) -> list[list[str]]:
    """Every <a href> and <img src> in the widgets' shadow roots, as the DOM holds them."""
    return list(
        bp.page.evaluate(
            """[...document.querySelectorAll('herald-inbox, herald-banner')].flatMap((e) =>
                [...e.shadowRoot.querySelectorAll('a[href], img[src]')].map((n) =>
                    [n.tagName, n.getAttribute('href') || n.getAttribute('src')]))"""
        )
    )


def test_hostile_urls_are_never_followed_loaded_or_linked(live: LiveHerald, browser_page: Any) -> None:
    landing = live.serve_page("<!doctype html><title>landing</title><p id=landed>landed</p>")
    relative = landing.removeprefix(live.url)  # "/__test__/n": a same-origin relative link
    live.put_type(
        "link.hostile", {"title": "${t}", "action_url": "${u}", "actions": [{"label": "go ${t}", "url": "${u}"}]}
    )
    for name in LINKS:
        live.notify("link.hostile", "alice", {"t": name, "u": PLACEHOLDER + name})
    live.notify("link.hostile", "alice", {"t": "control", "u": relative})
    live.announce(
        title="banner",
        kind="banner",
        content_type="image",
        media_url=PLACEHOLDER + "svg",
        action_url=PLACEHOLDER + "js",
    )
    live.announce(title="notice", content_type="image", media_url=PLACEHOLDER + "data", action_url=PLACEHOLDER + "vb")
    items = {i["title"]: i["id"] for i in live.inbox("alice")}

    # realtime off: the stream would carry Herald's own items (inbox.updated after a read); the stream
    # path is test_a_hostile_url_over_the_stream_is_not_followed's
    bp = browser_page(
        live.widget_page(banner=True, attrs='realtime="off"'), setup=lambda page: page.route(ME, _hostile_answers)
    )
    page_url = bp.page.url
    banner = bp.page.locator("herald-banner [part=banner]")
    expect(banner).to_have_count(1)
    expect(banner.locator(".title")).to_have_text("banner")
    # the answers did carry the hostile URLs (the route swapped them in): the test shows what it claims
    served = bp.page.evaluate(
        "fetch('/v1/me/banners', {headers: {Authorization: 'Bearer ' + "
        "document.querySelector('herald-inbox').getAttribute('token')}}).then(r => r.json())"
    )
    assert served["items"][0]["action_url"] == HOSTILE["js"] and served["items"][0]["media_url"] == HOSTILE["svg"]
    assert bp.page.locator("herald-banner a").count() == 0  # no link, no image
    assert bp.page.locator("herald-banner img").count() == 0
    banner.locator(".main").click()

    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(len(LINKS) + 1)
    for name in LINKS:
        row = bp.page.locator(f'herald-inbox [part=item][data-id="{items[name]}"]')
        row.locator(".main").click()
        expect(row).to_have_attribute("data-read", "true")  # it was clicked: marked read, nothing opened
        row.locator("[part=action]").click()
    bp.page.locator("herald-inbox [part=tab][data-tab=announcement]").click()
    expect(bp.part("item")).to_have_count(2)
    for row in bp.part("item").all():
        row.locator(".main").click()
    bp.page.wait_for_timeout(300)
    bp.shot("hostile")
    assert _shadow_links(bp) == []
    assert bp.page.evaluate("typeof window.__pwned") == "undefined"
    assert bp.events("herald:open") == []
    assert bp.page.url == page_url
    assert not [u for u in bp.requests if u.startswith(("data:", "javascript:", "vbscript:"))]

    # the control: a relative link in the same list is followed (so the clicks above were real)
    bp.page.locator("herald-inbox [part=tab][data-tab=reminder]").click()
    bp.page.locator(f'herald-inbox [part=item][data-id="{items["control"]}"] .main').click()
    bp.page.wait_for_url(landing)
    expect(bp.page.locator("#landed")).to_have_text("landed")


def test_relative_and_http_links_stay_links(live: LiveHerald, browser_page: Any) -> None:
    """The guard is not a blanket ban: http(s) and same-origin relative URLs render as links and images."""
    image = live.serve_file(
        "ok.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "image/svg+xml"
    )
    landing = live.serve_page("<!doctype html><title>landing</title>")
    live.announce(
        title="sale", kind="banner", content_type="image", media_url=image, action_url=landing.removeprefix(live.url)
    )
    bp = browser_page(live.widget_page(banner=True))
    expect(bp.page.locator("herald-banner [part=banner]")).to_have_count(1)
    links = dict((tag, url) for tag, url in _shadow_links(bp))
    assert links == {"A": landing, "IMG": image}


def test_a_hostile_url_over_the_stream_is_not_followed(live: LiveHerald, browser_page: Any) -> None:
    """``inbox.updated`` on the event stream changes an item's link to ``javascript:``: the row shows the
    new title (the event arrived) and a click opens nothing. Before the event the same click would
    have followed the item's relative link."""
    landing = live.serve_page("<!doctype html><title>landing</title><p id=landed>landed</p>")
    live.put_type("link.s", {"title": "${t}", "action_url": "${u}"})
    live.notify("link.s", "alice", {"t": "before", "u": landing.removeprefix(live.url)})
    (item,) = live.inbox("alice")
    updated = {**item, "title": "after", "action_url": HOSTILE["mixed"]}
    ready = {"user_id": "alice", "heartbeat_seconds": 300, "expires_at": None}
    frames = [
        "retry: 60000\n\n",
        f"id: evt_1\nevent: ready\ndata: {json.dumps(ready)}\n\n",
        *[": wait\n\n"] * 40,  # 2 s (50 ms a piece) for the panel to open and list the item
        f"id: evt_2\nevent: inbox.updated\ndata: {json.dumps(updated)}\n\n",
        *[": wait\n\n"] * 40,  # open 2 s more while the test clicks (then the widget waits 30 s to reconnect)
    ]
    stream = live.serve_file("stream", "\0".join(frames).encode(), "text/event-stream")

    def stubbed_stream(route: Any) -> None:
        route.continue_(url=stream)

    bp = browser_page(live.widget_page(), setup=lambda page: page.route(re.compile(r"/v1/me/events"), stubbed_stream))
    page_url = bp.page.url
    bp.part("bell").click()
    row = bp.page.locator(f'herald-inbox [part=item][data-id="{item["id"]}"]')
    expect(row.locator(".title")).to_have_text("after")
    row.locator(".main").click()
    bp.page.wait_for_timeout(300)
    assert bp.page.url == page_url
    assert bp.page.evaluate("typeof window.__pwned") == "undefined"
    assert bp.events("herald:open") == []
    assert _shadow_links(bp) == []
