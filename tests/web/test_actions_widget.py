"""Action buttons (confirm / decline with a reason) on inbox items, against the real endpoint
``POST /v1/me/inbox/{item_id}/actions/{action_id}``: an answer is sent once and then shown on the item
(the chosen button pressed, the others disabled), an item answered elsewhere shows that answer, and
an action Herald cannot take (404, stubbed with page.route) leaves the buttons usable.
"""

from __future__ import annotations

import json
from typing import Any

from tests.web.conftest import BrowserPage, LiveHerald, require_playwright, wait_until

expect = require_playwright()

MEETING = {
    "title": "会议邀请：${topic}",
    "summary": "${when}",
    "actions": [
        {"id": "confirm", "label": "接受"},
        {"id": "decline", "label": "拒绝", "reason": True, "style": "danger"},
        {"label": "详情", "url": "${url}"},
    ],
}


def meeting(live: LiveHerald) -> tuple[str, str]:
    landing = live.serve_page("<!doctype html><title>details</title><p id=landed>details</p>")
    live.put_type("meeting.invite", MEETING)
    live.notify("meeting.invite", "alice", {"topic": "周会", "when": "周一 10:00", "url": landing})
    (item,) = live.inbox("alice")
    assert [a.get("id") for a in item["actions"]] == ["confirm", "decline", None]
    return item["id"], landing


def open_item(bp: BrowserPage, item_id: str) -> Any:
    bp.part("bell").click()
    row = bp.page.locator(f'herald-inbox [part=item][data-id="{item_id}"]')
    expect(row.locator("[part=action]")).to_have_count(3)
    return row


def test_actions_post_to_the_action_url_and_a_missing_endpoint_is_handled(live: LiveHerald, browser_page: Any) -> None:
    item_id, landing = meeting(live)
    bp = browser_page(live.widget_page())
    posted: list[tuple[str, Any]] = []

    def not_built(route: Any) -> None:
        posted.append((route.request.url, json.loads(route.request.post_data or "null")))
        body = json.dumps({"type": "about:blank", "title": "Not found", "status": 404, "detail": "Not Found"})
        route.fulfill(status=404, content_type="application/problem+json", body=body)

    bp.page.route("**/actions/**", not_built)
    row = open_item(bp, item_id)
    assert row.locator("[part=action]").all_text_contents() == ["接受", "拒绝", "详情"]
    bp.shot("actions")
    row.get_by_text("接受").click()
    expect(row.locator(".msg")).to_have_text("该操作暂不可用。")
    assert posted == [(f"{live.url}/v1/me/inbox/{item_id}/actions/confirm", {})]
    expect(row.get_by_text("接受")).to_be_enabled()  # may be tried again
    row.get_by_text("拒绝").click()
    reason = row.locator("textarea")
    expect(reason).to_be_focused()
    assert reason.get_attribute("aria-label") == "原因"
    reason.fill("时间冲突")
    bp.shot("decline-reason")
    row.locator("[data-submit]").click()
    wait_until(lambda: len(bp.events("herald:action")) == 2)
    assert posted[1] == (f"{live.url}/v1/me/inbox/{item_id}/actions/decline", {"reason": "时间冲突"})
    events = bp.events("herald:action")
    assert [(e["action"].get("id"), e["reason"], e["ok"], e["status"]) for e in events] == [
        ("confirm", None, False, 404),
        ("decline", "时间冲突", False, 404),
    ]
    row.get_by_text("详情").click()  # a link action opens its URL
    bp.page.wait_for_url(landing)


def test_confirm_and_decline_with_reason_reach_the_server(live: LiveHerald, browser_page: Any) -> None:
    item_id, _ = meeting(live)
    live.notify("meeting.invite", "alice", {"topic": "复盘", "when": "周二 15:00", "url": live.url})
    second = next(i["id"] for i in live.inbox("alice") if i["id"] != item_id)
    bp = browser_page(live.widget_page())
    row = open_item(bp, item_id)
    row.get_by_text("接受").click()
    wait_until(lambda: bp.events("herald:action"))
    other = bp.page.locator(f'herald-inbox [part=item][data-id="{second}"]')
    other.get_by_text("拒绝").click()
    other.locator("textarea").fill("时间冲突")
    other.locator("[data-submit]").click()
    wait_until(lambda: len(bp.events("herald:action")) == 2)
    outcomes = [(e["action"]["id"], e["reason"], e["ok"]) for e in bp.events("herald:action")]
    assert outcomes == [("confirm", None, True), ("decline", "时间冲突", True)]
    expect(row.locator(".msg")).to_have_text("已提交")
    expect(other.locator(".msg")).to_have_text("已提交：时间冲突")
    bp.shot("answered")
    # answered: the choice stays pressed, no second answer; the link action still opens
    expect(row.locator('[data-action="confirm"]')).to_have_attribute("aria-pressed", "true")
    expect(row.locator('[data-action="decline"]')).to_have_attribute("aria-pressed", "false")
    expect(row.locator('[data-action="confirm"]')).to_be_disabled()
    expect(row.locator('[data-action="decline"]')).to_be_disabled()
    expect(row.get_by_text("详情")).to_be_enabled()
    answers = {i["id"]: (i["response"]["action"], i["response"]["reason"], i["read"]) for i in live.inbox("alice")}
    assert answers == {item_id: ("confirm", None, True), second: ("decline", "时间冲突", True)}


def test_an_item_answered_elsewhere_shows_that_answer_and_a_required_reason_is_asked_for(
    live: LiveHerald, browser_page: Any
) -> None:
    live.put_type("leave.request", {"title": "请假申请"})
    actions = [
        {"id": "approve", "label": {"zh-CN": "批准", "en": "Approve"}},
        {"id": "reject", "label": {"zh-CN": "驳回", "en": "Reject"}, "requires_reason": True},
    ]
    live.notify("leave.request", "boss", actions=actions)
    live.notify("leave.request", "boss", actions=actions)
    first, second = (i["id"] for i in live.inbox("boss"))
    bp = browser_page(live.widget_page(user="boss", attrs='realtime="off"'))  # no stream tells it first
    bp.part("bell").click()
    row = bp.page.locator(f'herald-inbox [part=item][data-id="{first}"]')
    expect(row.locator("[part=action]")).to_have_text(["批准", "驳回"])  # waits for the list to render
    # another device answers first: this tab's click is refused (409) and shows the recorded answer
    r = live.client.post(f"/v1/me/inbox/{first}/actions/reject", json={"reason": "人手不足"}, headers=live.me("boss"))
    assert r.status_code == 201, r.text
    row.get_by_text("批准").click()
    wait_until(lambda: bp.events("herald:action"))
    assert [(e["ok"], e["status"]) for e in bp.events("herald:action")] == [(False, 409)]
    expect(row.locator(".msg")).to_have_text("已提交：人手不足")
    expect(row.locator('[data-action="reject"]')).to_have_attribute("aria-pressed", "true")
    # a reason the action requires: an empty one is not sent
    other = bp.page.locator(f'herald-inbox [part=item][data-id="{second}"]')
    other.get_by_text("驳回").click()
    other.locator("[data-submit]").click()
    expect(other.locator("textarea")).to_be_focused()
    other.locator("textarea").fill("  ")
    other.locator("[data-submit]").click()
    other.locator("textarea").fill("预算不足")
    other.locator("[data-submit]").click()
    wait_until(lambda: len(bp.events("herald:action")) >= 2)
    expect(other.locator(".msg")).to_have_text("已提交：预算不足")
    sent = [(e["action"]["id"], e["reason"], e["status"]) for e in bp.events("herald:action")[1:]]
    assert sent == [("reject", "预算不足", 200)]  # the empty ones never left the page
