"""<herald-banner>, and hostile content: every field the widget shows is inserted as text (hostile
URLs: test_hostile_urls.py).

The payloads go through Herald itself (templates, actors, announcements), not around it.
"""

from __future__ import annotations

from typing import Any

from tests.web.conftest import LiveHerald, require_playwright, wait_until

expect = require_playwright()

# Each would run script if it were parsed as HTML (the image "x" fails to load at once).
PAYLOADS = {
    "title": '<img src=x onerror="window.__pwned=1">',
    "summary": '<svg onload="window.__pwned=2"></svg>',
    "body": '"><script>window.__pwned=3</script><img src=x onerror="window.__pwned=3">',
    "actor": '<iframe src="javascript:window.parent.__pwned=4"></iframe>',
    "action": '<img src=x onerror="window.__pwned=5">',
    "banner_title": '<img src=x onerror="window.__pwned=6">',
    "banner_summary": '<a href="javascript:window.__pwned=7">click</a><img src=x onerror="window.__pwned=7">',
}
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="80">'
    b'<rect width="600" height="80" fill="#f97316"/></svg>'
)


def test_banner_shows_live_banners_with_images_and_dismiss(live: LiveHerald, browser_page: Any) -> None:
    image = live.serve_file("banner.svg", SVG, "image/svg+xml")
    landing = live.serve_page("<!doctype html><title>landing</title><p id=landed>sale</p>")
    sale = live.announce(
        title="双十一大促", summary="全场五折", kind="banner", content_type="image", media_url=image, action_url=landing
    )
    notice = live.announce(title="系统升级通知")  # a notice: in the inbox, not a banner
    bp = browser_page(live.widget_page(banner=True))
    banner = bp.page.locator("herald-banner [part=banner]")
    expect(banner).to_have_count(1)
    assert banner.get_attribute("data-id") == sale
    expect(banner.locator(".title")).to_have_text("双十一大促")
    expect(banner.locator(".summary")).to_have_text("全场五折")
    img = bp.page.locator("herald-banner [part=image]")
    expect(img).to_have_attribute("src", image)
    wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth > 0"))
    bp.shot("banner")
    assert bp.page.locator(f'herald-banner [data-id="{notice}"]').count() == 0
    bp.page.locator("herald-banner [part=dismiss]").click()
    expect(banner).to_have_count(0)
    assert live.client.get("/v1/me/banners", headers=live.me("alice")).json()["items"] == []
    assert bp.events("herald:dismiss")[0]["item"]["id"] == sale
    bp.shot("dismissed")


def test_banner_link_opens_its_action_url(live: LiveHerald, browser_page: Any) -> None:
    landing = live.serve_page("<!doctype html><title>landing</title><p id=landed>sale</p>")
    live.announce(title="双十一大促", kind="banner", action_url=landing)
    bp = browser_page(live.widget_page(banner=True))
    bp.page.locator("herald-banner [part=banner] a.main").click()
    bp.page.wait_for_url(landing)


def test_xss_payloads_render_as_text_and_run_nothing(live: LiveHerald, browser_page: Any) -> None:
    live.put_type(
        "xss.test",
        {
            "title": "${title}",
            "summary": "${summary}",
            "body": "${body}",
            "actions": [{"label": "${action}"}],  # hostile URLs: test_hostile_urls.py (Herald refuses them)
        },
    )
    live.notify("xss.test", "alice", PAYLOADS, actor={"id": "mallory", "name": PAYLOADS["actor"]})
    live.announce(
        title=PAYLOADS["banner_title"],
        summary=PAYLOADS["banner_summary"],
        kind="banner",
    )
    bp = browser_page(live.widget_page(banner=True))
    bp.part("bell").click()
    expect(bp.part("item")).to_have_count(1)
    row = bp.part("item")
    expect(row.locator(".title")).to_have_text(PAYLOADS["title"])
    expect(row.locator(".summary")).to_have_text(PAYLOADS["summary"])
    expect(row.locator(".body")).to_have_text(PAYLOADS["body"])
    expect(row.locator(".actor")).to_have_text(PAYLOADS["actor"])
    expect(row.locator("[part=action]")).to_have_text(PAYLOADS["action"])
    banner = bp.page.locator("herald-banner [part=banner]")
    expect(banner.locator(".title")).to_have_text(PAYLOADS["banner_title"])
    expect(banner.locator(".summary")).to_have_text(PAYLOADS["banner_summary"])
    # no URL: no link, no image
    assert bp.page.locator("herald-banner a").count() == 0
    assert bp.page.locator("herald-banner img").count() == 0
    bp.shot("payloads")
    # clicking everything clickable runs nothing either
    row.locator(".main").click()
    row.locator("[part=action]").click()
    banner.locator(".main").click()
    expect(bp.part("panel")).to_be_hidden()  # a click outside closed the panel
    bp.part("bell").click()
    bp.page.locator("herald-inbox [part=tab][data-tab=announcement]").click()  # the banner is an announcement too
    expect(bp.part("item").locator(".title")).to_have_text(PAYLOADS["banner_title"])
    expect(bp.part("item").locator(".summary")).to_have_text(PAYLOADS["banner_summary"])
    bp.part("item").locator(".main").click()
    bp.page.wait_for_timeout(300)
    elements = """(() => {
        const roots = [...document.querySelectorAll('herald-inbox, herald-banner')].map(e => e.shadowRoot);
        return roots.flatMap(r => [...r.querySelectorAll('img, svg:not([aria-hidden]), script, iframe, a')]).length;
    })()"""
    assert bp.page.evaluate(elements) == 0
    assert bp.page.evaluate("typeof window.__pwned") == "undefined"
    assert bp.page.url.startswith(live.url + "/__test__/")
    assert bp.events("herald:open") == []
