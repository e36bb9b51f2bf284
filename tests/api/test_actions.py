"""Actions with reasons (issue 8, rule 8): a trigger's actions on each recipient's inbox item, in
their locale; one answer per item through ``POST /v1/me/inbox/{item_id}/actions/{action_id}``,
atomic under concurrent answers; the answer on the item (both read paths), in the notification's
status, on the user's streams and to the business system as a signed ``message.action`` event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from herald.store import actions as action_store
from herald.store.actions import Response
from herald.store.tables import inbox_items, inbox_responses, notifications
from herald.store.types import utcnow
from tests.api.test_accounts import fields_named
from tests.api.test_bad_input import json_values
from tests.api.test_hot_inbox import routes_only
from tests.conftest import Harness
from tests.engine.test_streams import collect, counted, has, named
from tests.support import SECRET, Receiver, free_port, serve_asgi

MEETING = "meeting.invite"
CONFIRM = {"id": "confirm", "label": {"zh-CN": "确认", "en": "Confirm"}}
DECLINE = {"id": "decline", "label": {"zh-CN": "拒绝", "en": "Decline"}, "requires_reason": True, "style": "danger"}
ACTIONS = [CONFIRM, DECLINE]


@pytest.fixture
async def meeting(harness: Harness) -> str:
    """An in-app type whose template has a link action (which a trigger's actions replace)."""
    await harness.put_type(
        MEETING,
        ["inapp"],
        {"inapp": {"title": "会议：${topic}", "actions": [{"label": "详情", "url": "https://example.com/m"}]}},
    )
    return MEETING


async def invite(h: Harness, to: list[Any], actions: list[dict[str, Any]] | None = ACTIONS, **extra: Any) -> str:
    body: dict[str, Any] = {"type": MEETING, "to": to, "data": {"topic": "周会"}, **extra}
    if actions is not None:
        body["actions"] = actions
    r = await h.trigger(body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def only_item(h: Harness, user: str) -> dict[str, Any]:
    r = await h.client.get("/v1/me/inbox?category=reminder", headers=h.user(user))
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    return item  # type: ignore[no-any-return]


async def answer(h: Harness, user: str, item_id: str, action: str, body: Any = None) -> httpx.Response:
    path = f"/v1/me/inbox/{item_id}/actions/{action}"
    if body is None:
        return await h.client.post(path, headers=h.user(user))
    if isinstance(body, bytes):  # JSON as sent, escapes and all
        return await h.client.post(path, content=body, headers={**h.user(user), "Content-Type": "application/json"})
    return await h.client.post(path, json=body, headers=h.user(user))


async def status_of(h: Harness, notification_id: str) -> dict[str, Any]:
    r = await h.client.get(f"/v1/notifications/{notification_id}", headers=h.reader())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_confirm_is_recorded_marks_the_item_read_and_shows_on_every_read(harness: Harness, meeting: str) -> None:
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    assert item["actions"] == [
        {"id": "confirm", "label": "确认", "requires_reason": False},
        {"id": "decline", "label": "拒绝", "requires_reason": True, "style": "danger"},
    ]  # the trigger's, in place of the template's link; labels in the default locale (zh-CN)
    assert item["response"] is None and item["read"] is False

    r = await answer(harness, "alice", item["id"], "confirm", {})
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in ("item_id", "action", "reason")} == {
        "item_id": item["id"],
        "action": "confirm",
        "reason": None,
    }
    assert body["item"]["response"] == {"action": "confirm", "reason": None, "at": body["at"]}
    assert body["item"]["read"] is True

    feed = await only_item(harness, "alice")
    single = (await harness.client.get(f"/v1/me/inbox/{item['id']}", headers=harness.user("alice"))).json()
    assert feed == single == body["item"]
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts["total"] == 0


async def test_the_fast_path_and_the_routes_give_the_same_bytes_for_answered_items(
    harness: Harness, meeting: str, database_url: str
) -> None:
    await invite(harness, ["alice"])
    await invite(harness, ["alice"])
    first, second = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert (
        await answer(harness, "alice", first["id"], "decline", {"reason": '时间冲突 "quoted" \\ 😀'})
    ).status_code == 201
    await harness.client.post("/v1/announcements", json={"title": "公告"}, headers=harness.admin())
    async with routes_only(database_url) as routes:
        for query in ("", "?limit=1", "?status=read", "?status=unread"):
            hot = await harness.client.get(f"/v1/me/inbox{query}", headers=harness.user("alice"))
            slow = await routes.get(f"/v1/me/inbox{query}", headers=harness.user("alice"))
            assert hot.status_code == slow.status_code == 200
            assert hot.content == slow.content, query
    page = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    answered = next(i for i in page if i["id"] == first["id"])
    assert answered["response"]["reason"] == '时间冲突 "quoted" \\ 😀'
    assert answered["response"]["at"].endswith("+00:00")
    assert next(i for i in page if i["id"] == second["id"])["response"] is None
    assert next(i for i in page if i["category"] == "announcement")["response"] is None


async def test_a_second_answer_is_409_whatever_the_action(harness: Harness, meeting: str) -> None:
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    assert (await answer(harness, "alice", item["id"], "decline", {"reason": "出差"})).status_code == 201
    for action, body in (("decline", {"reason": "出差"}), ("confirm", {}), ("confirm", None)):
        r = await answer(harness, "alice", item["id"], action, body)
        assert r.status_code == 409, r.text
        assert "answered already" in r.json()["detail"]
    assert (await only_item(harness, "alice"))["response"]["action"] == "decline"


@pytest.mark.parametrize("body", [None, {}, {"reason": None}, {"reason": ""}, {"reason": "  \n\t "}])
async def test_a_required_reason_that_is_missing_is_422_naming_reason(
    harness: Harness, meeting: str, body: Any
) -> None:
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    r = await answer(harness, "alice", item["id"], "decline", body)
    assert fields_named(r) == ["reason"]
    assert (await only_item(harness, "alice"))["response"] is None  # nothing recorded
    assert (await answer(harness, "alice", item["id"], "decline", {"reason": " 时间冲突 "})).json()[
        "reason"
    ] == "时间冲突"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x" * 1001}, "reason"),
        ({"reason": 5}, "reason"),
        ({"reason": "a\u0000b"}, "reason"),
        (b'{"reason": "a\\ud800b"}', "reason"),
        ({"why": "x"}, "why"),
    ],
)
async def test_bad_reasons_are_422(harness: Harness, meeting: str, body: Any, field: str) -> None:
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    r = await answer(harness, "alice", item["id"], "confirm", body)
    assert fields_named(r) == [field]
    assert (await answer(harness, "alice", item["id"], "confirm", {"reason": "x" * 1000})).status_code == 201


async def test_labels_come_in_each_recipients_locale(harness: Harness, meeting: str) -> None:
    for user, locale in (("en-user", "en-GB"), ("zh-user", "zh-CN"), ("fr-user", "fr")):
        r = await harness.client.put(f"/v1/users/{user}", json={"locale": locale}, headers=harness.admin())
        assert r.status_code in (200, 201), r.text
    await invite(harness, ["en-user", "zh-user", "fr-user", "new-user", {"id": "inline", "locale": "en"}])
    labels = {}
    for user in ("en-user", "zh-user", "fr-user", "new-user", "inline"):
        labels[user] = [a["label"] for a in (await only_item(harness, user))["actions"]]
    assert labels == {
        "en-user": ["Confirm", "Decline"],  # same language
        "zh-user": ["确认", "拒绝"],
        "fr-user": ["确认", "拒绝"],  # none of theirs: the deployment's default locale
        "new-user": ["确认", "拒绝"],
        "inline": ["Confirm", "Decline"],
    }


async def test_labels_in_an_audience_fan_out_are_localized_too(harness: Harness, meeting: str) -> None:
    for user, locale in (("a", "en"), ("b", "zh-CN")):
        r = await harness.client.put(
            f"/v1/users/{user}", json={"locale": locale, "tags": ["team"]}, headers=harness.admin()
        )
        assert r.status_code in (200, 201), r.text
    await invite(harness, None, audience={"tags": ["team"]})  # type: ignore[arg-type]
    await harness.drain()
    assert [a["label"] for a in (await only_item(harness, "a"))["actions"]] == ["Confirm", "Decline"]
    assert [a["label"] for a in (await only_item(harness, "b"))["actions"]] == ["确认", "拒绝"]


async def test_without_trigger_actions_the_templates_apply_and_an_empty_list_clears_them(
    harness: Harness, meeting: str
) -> None:
    await invite(harness, ["alice"], actions=None)
    await invite(harness, ["bob"], actions=[])
    assert (await only_item(harness, "alice"))["actions"] == [{"label": "详情", "url": "https://example.com/m"}]
    assert (await only_item(harness, "bob"))["actions"] == []
    for user in ("alice", "bob"):  # nothing to answer
        item = await only_item(harness, user)
        assert (await answer(harness, user, item["id"], "confirm", {})).status_code == 404


async def test_template_actions_with_ids_are_answered_too(harness: Harness) -> None:
    await harness.put_type(
        "leave.request",
        ["inapp"],
        {
            "inapp": {
                "title": "请假",
                "actions": [{"id": "approve", "label": "批准"}, {"id": "reject", "label": "驳回"}],
            }
        },
    )
    r = await harness.trigger({"type": "leave.request", "to": ["boss"], "data": {}})
    assert r.status_code == 202, r.text
    item = await only_item(harness, "boss")
    r = await answer(harness, "boss", item["id"], "reject", {"reason": "人手不足"})
    assert r.status_code == 201, r.text
    status = await status_of(harness, item_notification(r))
    assert [(x["user_id"], x["action"], x["reason"]) for x in status["responses"]] == [("boss", "reject", "人手不足")]


def item_notification(r: httpx.Response) -> str:
    return str(r.json()["notification_id"])


async def test_nobody_answers_another_users_item_and_unknown_things_are_404(harness: Harness, meeting: str) -> None:
    await invite(harness, ["alice", "bob"])
    alices = await only_item(harness, "alice")
    r = await answer(harness, "bob", alices["id"], "confirm", {})
    assert r.status_code == 404 and r.json()["detail"] == "inbox item not found"
    assert (await answer(harness, "alice", alices["id"], "maybe", {})).json()["detail"] == "action not found"
    assert (await answer(harness, "alice", "itm_nope", "confirm", {})).status_code == 404
    ann = await harness.client.post("/v1/announcements", json={"title": "公告"}, headers=harness.admin())
    assert (await answer(harness, "alice", ann.json()["id"], "confirm", {})).status_code == 404
    assert (await answer(harness, "alice", alices["id"], "x" * 65, {})).status_code == 422  # a path too long
    no_token = await harness.client.post(f"/v1/me/inbox/{alices['id']}/actions/confirm", json={})
    assert no_token.status_code == 401
    api_key = await harness.client.post(
        f"/v1/me/inbox/{alices['id']}/actions/confirm", json={}, headers=harness.admin()
    )
    assert api_key.status_code == 401
    assert (await only_item(harness, "alice"))["response"] is None  # none of it answered anything
    assert (await only_item(harness, "bob"))["response"] is None


async def test_an_expired_item_cannot_be_answered(harness: Harness, meeting: str) -> None:
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    async with harness.herald.db.write() as conn:
        await conn.execute(inbox_items.update().values(expires_at=utcnow()))
    assert (await answer(harness, "alice", item["id"], "confirm", {})).status_code == 404


async def test_concurrent_answers_one_wins(harness: Harness, meeting: str) -> None:
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    bodies = [("confirm", {}) if n % 2 else ("decline", {"reason": f"理由 {n}"}) for n in range(16)]
    results = await asyncio.gather(*(answer(harness, "alice", item["id"], a, b) for a, b in bodies))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 15, [r.text for r in results]
    (won,) = [r.json() for r in results if r.status_code == 201]
    assert (await only_item(harness, "alice"))["response"]["action"] == won["action"]
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(inbox_responses))).scalar_one() == 1


async def test_the_answers_key_decides_between_transactions_that_both_passed_the_check(
    harness: Harness, meeting: str
) -> None:
    """Two answers in flight at once: the second waits for the first to commit, then loses (on
    PostgreSQL the unique index makes it wait; on SQLite the single writer does)."""
    await invite(harness, ["alice"])
    item = await only_item(harness, "alice")

    def response(action: str) -> Response:
        return Response(item["id"], None, "alice", action, None, utcnow())

    first_in = asyncio.Event()
    release = asyncio.Event()

    async def first() -> bool:
        async with harness.herald.db.write() as conn:
            recorded = await action_store.record_response(conn, response("confirm"))
            first_in.set()
            await release.wait()
            return recorded

    async def second() -> bool:
        await first_in.wait()
        async with harness.herald.db.write() as conn:
            return await action_store.record_response(conn, response("decline"))

    one = asyncio.create_task(first())
    two = asyncio.create_task(second())
    await first_in.wait()
    await asyncio.sleep(0.2)
    assert not two.done()  # waiting for the first transaction
    release.set()
    assert await one is True and await two is False


async def test_the_notification_lists_responses_and_who_has_not_answered(harness: Harness, meeting: str) -> None:
    notification_id = await invite(harness, ["carol", "alice", "bob", "dave"])
    other = await invite(harness, ["erin"])  # another notification: never mixed in
    before = await status_of(harness, notification_id)
    assert before["responses"] == [] and before["responses_total"] == 0
    assert before["awaiting"] == ["alice", "bob", "carol", "dave"] and before["awaiting_total"] == 4

    bob = await answer(harness, "bob", (await only_item(harness, "bob"))["id"], "decline", {"reason": "请假"})
    alice = await answer(harness, "alice", (await only_item(harness, "alice"))["id"], "confirm")
    dave = await only_item(harness, "dave")
    await harness.client.delete(f"/v1/me/inbox/{dave['id']}", headers=harness.user("dave"))  # gone unanswered
    after = await status_of(harness, notification_id)
    assert after["responses"] == [
        {"user_id": "alice", "item_id": alice.json()["item_id"], "action": "confirm", "reason": None,
         "at": alice.json()["at"]},
        {"user_id": "bob", "item_id": bob.json()["item_id"], "action": "decline", "reason": "请假",
         "at": bob.json()["at"]},
    ]  # fmt: skip
    assert after["responses_total"] == 2
    assert after["awaiting"] == ["carol"] and after["awaiting_total"] == 1
    assert (await status_of(harness, other))["awaiting"] == ["erin"]


async def test_a_notification_without_actions_awaits_nobody(harness: Harness, meeting: str) -> None:
    notification_id = await invite(harness, ["alice"], actions=None)  # the template's link only
    status = await status_of(harness, notification_id)
    assert (status["responses"], status["awaiting"], status["awaiting_total"]) == ([], [], 0)


async def test_large_audiences_list_the_first_answers_and_count_them_all(
    harness: Harness, meeting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herald.engine import actions as action_engine

    monkeypatch.setattr(action_engine, "RESPONSE_LIST_CAP", 3)
    users = [f"u{n}" for n in range(7)]
    notification_id = await invite(harness, users)
    for user in users[:4]:
        assert (await answer(harness, user, (await only_item(harness, user))["id"], "confirm")).status_code == 201
    status = await status_of(harness, notification_id)
    assert [r["user_id"] for r in status["responses"]] == ["u0", "u1", "u2"] and status["responses_total"] == 4
    assert status["awaiting"] == ["u4", "u5", "u6"] and status["awaiting_total"] == 3


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    events = Receiver()
    with serve_asgi(events, free_port()) as base:
        yield events, f"{base}/events"


async def test_the_answer_reaches_the_business_system_signed(
    harness: Harness, meeting: str, receiver: tuple[Receiver, str]
) -> None:
    events, url = receiver
    events.reset()
    r = await harness.client.put(
        "/v1/event-webhooks/erp",
        json={"url": url, "secret": SECRET, "events": ["message.action", "message.read"]},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    notification_id = await invite(harness, ["alice"])
    item = await only_item(harness, "alice")
    answered = (await answer(harness, "alice", item["id"], "decline", {"reason": "时间冲突"})).json()
    await harness.drain()
    assert all(e.signature_valid for e in events.requests) and len(events.requests) == 2
    by_type = {e.json()["type"]: e.json()["data"] for e in events.requests}
    assert by_type["message.action"] == {
        "notification_id": notification_id,
        "item_id": item["id"],
        "user_id": "alice",
        "type": MEETING,
        "action": "decline",
        "reason": "时间冲突",
        "at": answered["at"],
    }
    assert by_type["message.read"]["item_id"] == item["id"]  # answering read it

    events.requests.clear()
    await answer(harness, "alice", item["id"], "confirm", {})  # 409: no event
    await harness.drain()
    assert events.requests == []


async def test_open_streams_hear_the_item_changed(harness: Harness, meeting: str) -> None:
    stream = harness.herald.realtime.hub.open("alice")
    await invite(harness, ["alice"])
    await collect(stream, has("inbox.new"))
    item = await only_item(harness, "alice")
    r = await answer(harness, "alice", item["id"], "confirm")
    got = await collect(stream, counted(0))
    assert named(got, "inbox.updated") == [r.json()["item"]]


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ([CONFIRM, {**DECLINE, "id": "confirm"}], "actions.1.id"),
        ([{"id": "has space", "label": "x"}], "actions.0.id"),
        ([{"id": "a/b", "label": "x"}], "actions.0.id"),
        ([{"id": "x" * 65, "label": "x"}], "actions.0.id"),
        ([{"label": "详情"}], "actions.0.id"),  # neither an answer nor a link
        ([{"label": "详情", "url": "https://x.example", "requires_reason": True}], "actions.0.requires_reason"),
        ([{"id": "ok"}], "actions.0.label"),
        ([{"id": "ok", "label": ""}], "actions.0.label"),
        ([{"id": "ok", "label": "x" * 65}], "actions.0.label"),
        ([{"id": "ok", "label": {}}], "actions.0.label"),
        ([{"id": "ok", "label": {"zh-CN": "x" * 65}}], "actions.0.label.zh-CN"),
        ([{"id": "ok", "label": {"not a locale": "x"}}], "actions.0.label.not a locale"),
        ([{"id": "ok", "label": "x", "url": "javascript:alert(1)"}], "actions.0.url"),
        ([{"id": "ok", "label": "x", "url": " java\tscript:alert(1)"}], "actions.0.url"),
        ([{"id": "ok", "label": "x", "style": "blink"}], "actions.0.style"),
        ([{"id": "ok", "label": "x", "onclick": "y"}], "actions.0.onclick"),
        ([{"id": f"a{n}", "label": "x"} for n in range(6)], "actions"),
        ({"id": "ok"}, "actions"),
        ([{"id": "ok", "label": "a\u0000"}], "actions.0.label"),
    ],
)
async def test_bad_actions_are_422_naming_the_field_and_create_nothing(
    harness: Harness, meeting: str, actions: Any, field: str
) -> None:
    r = await harness.trigger({"type": MEETING, "to": ["alice"], "data": {"topic": "x"}, "actions": actions})
    assert field in fields_named(r), r.text
    async with harness.herald.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(notifications))).scalar_one() == 0


async def test_actions_need_the_inbox(harness: Harness, meeting: str) -> None:
    await harness.put_type("mail.only", ["webhook"], {"webhook": {"title": "x"}})
    r = await harness.trigger({"type": "mail.only", "to": ["alice"], "data": {}, "actions": [CONFIRM]})
    assert fields_named(r) == ["actions"]


async def test_five_actions_with_links_are_fine_and_a_batch_entry_carries_actions_too(
    harness: Harness, meeting: str
) -> None:
    five = [
        *ACTIONS,
        {"id": "later", "label": "稍后"},
        {"label": "议程", "url": "/agenda"},
        {"id": "x.y:z-1", "label": "x"},
    ]
    r = await harness.client.post(
        "/v1/notifications/batch",
        json={
            "notifications": [
                {"type": MEETING, "to": ["alice"], "data": {"topic": "t"}, "actions": five},
                {"type": MEETING, "to": ["bob"], "data": {"topic": "t"}, "actions": [CONFIRM, CONFIRM]},
            ]
        },
        headers=harness.sender(),
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["status"] == 202
    assert second["status"] == 422 and [e["field"] for e in second["error"]["errors"]] == [
        "notifications.1.actions.1.id"
    ]
    item = await only_item(harness, "alice")
    assert [a.get("id") for a in item["actions"]] == ["confirm", "decline", "later", None, "x.y:z-1"]
    assert item["actions"][3] == {"label": "议程", "url": "/agenda", "requires_reason": False}
    assert (await answer(harness, "alice", item["id"], "x.y:z-1")).status_code == 201


async def test_erasing_a_user_erases_their_answers(harness: Harness, meeting: str) -> None:
    await invite(harness, ["alice", "bob"])
    for user in ("alice", "bob"):
        assert (await answer(harness, user, (await only_item(harness, user))["id"], "confirm")).status_code == 201
    assert (await harness.client.delete("/v1/users/alice", headers=harness.admin())).status_code == 204
    async with harness.herald.db.read() as conn:
        left = [u for (u,) in await conn.execute(select(inbox_responses.c.user_id))]
    assert left == ["bob"]


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
action_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=70) | json_values,
        "label": st.text(max_size=70) | st.dictionaries(st.text(max_size=8), st.text(max_size=70), max_size=3),
        "requires_reason": st.booleans() | json_values,
        "url": st.text(max_size=30) | st.sampled_from(["https://x.example/a", "/rel", "javascript:x"]),
        "style": st.sampled_from(["danger", "primary", "bold"]),
    },
)


@FUZZ
@given(actions=st.lists(action_like, max_size=7) | json_values)
async def test_any_actions_are_accepted_or_named_never_a_5xx(harness: Harness, meeting: str, actions: Any) -> None:
    r = await harness.trigger({"type": MEETING, "to": ["fuzz"], "data": {"topic": "x"}, "actions": actions})
    assert r.status_code in (202, 422), r.text
    if r.status_code == 422:
        assert all(e["field"].startswith("actions") for e in r.json()["errors"]), r.text
        return
    items = (await harness.client.get("/v1/me/inbox?limit=1", headers=harness.user("fuzz"))).json()["items"]
    shown = items[0]["actions"]
    if actions is None:  # none given: the template's
        assert shown == [{"label": "详情", "url": "https://example.com/m"}]
        return
    assert len(shown) == len(actions) <= 5
    assert all(isinstance(a["label"], str) and 1 <= len(a["label"]) <= 64 for a in shown)
    ids = [a["id"] for a in shown if "id" in a]
    assert len(ids) == len(set(ids))


@FUZZ
@given(reason=st.none() | st.text(max_size=1100), action=st.sampled_from(["confirm", "decline"]))
async def test_any_reason_is_recorded_as_given_or_refused_naming_reason(
    harness: Harness, meeting: str, reason: str | None, action: str
) -> None:
    await invite(harness, ["fuzz"])
    items = (await harness.client.get("/v1/me/inbox?limit=1", headers=harness.user("fuzz"))).json()["items"]
    body = json.dumps({"reason": reason}).encode()  # lone surrogates as \\udxxx escapes, as a client sends them
    r = await answer(harness, "fuzz", items[0]["id"], action, body)
    assert r.status_code in (201, 422), r.text
    if r.status_code == 422:
        assert fields_named(r) == ["reason"]
        return
    kept = r.json()["reason"]
    assert kept == ((reason or "").strip() or None)
    assert action == "confirm" or kept is not None
