"""One-click unsubscribe end to end: the email's List-Unsubscribe headers (a real local SMTP
server), the confirmation page that changes nothing, the POST that turns that type's email off for
that user only, and links that were tampered with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest

from herald.engine.unsubscribe import Unsubscribe, sign
from tests.conftest import Harness, make_settings, running_harness
from tests.engine.test_delivery import EMAIL_TEMPLATE, setup_email, status_of
from tests.support import SECRET, Mailbox

PUBLIC_URL = "http://herald.test"  # the test client's own base URL: the links can be followed as they are
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def public(database_url: str) -> AsyncIterator[Harness]:
    async with running_harness(make_settings(database_url, public_url=PUBLIC_URL)) as h:
        yield h


def link_of(message: EmailMessage) -> str:
    """The List-Unsubscribe URL, checked as it travelled: one line, no encoded words."""
    raw = {name.lower(): str(value) for name, value in message.raw_items()}
    header = raw["list-unsubscribe"]
    assert "\n" not in header and "=?" not in header, header
    assert header.startswith("<") and header.endswith(">"), header
    assert raw["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    return header[1:-1]


async def email_types(h: Harness) -> dict[str, Any]:
    r = await h.client.get("/v1/me/preferences", headers=h.user("u1"))
    assert r.status_code == 200, r.text
    return r.json()["types"]  # type: ignore[no-any-return]


async def test_one_click_turns_that_type_off_for_that_user_only(public: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = public
    box, port = mailbox
    await setup_email(h, port)
    await h.put_type("order.refunded", ["email"], {"email": EMAIL_TEMPLATE})
    await h.client.put("/v1/users/u2", json={"email": "u2@example.com"}, headers=h.admin())
    r = await h.trigger({"type": "order.paid", "to": ["u1", "u2"], "data": {"amount": "9.90"}})
    await h.drain()
    by_user = {str(m["To"]).rpartition("<")[2].split("@")[0]: m for m in box.messages}
    url, other = link_of(by_user["u1"]), link_of(by_user["u2"])
    assert url.startswith(f"{PUBLIC_URL}/unsubscribe/") and url != other

    # the page asks, in Chinese or English, and changes nothing
    page = await h.client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text and "退订" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    english = await h.client.get(url, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Unsubscribe" in english.text and "order.paid" in english.text
    assert await email_types(h) == {}

    # what a mail provider sends (RFC 8058), twice: the second changes nothing more
    for _ in range(2):
        done = await h.client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert done.status_code == 200, done.text
        assert "已退订" in done.text
        assert await email_types(h) == {"order.paid": {"channels": {"email": False}}}
    r = await h.client.get("/v1/users/u2/preferences", headers=h.admin())
    assert r.json()["types"] == {}, "the other user's preferences are untouched"

    # order.paid's email is now skipped for u1; the in-app item, another type and u2 are not
    box.messages.clear()
    paid = (await h.trigger({"type": "order.paid", "to": ["u1", "u2"], "data": {"amount": "1"}})).json()["id"]
    refunded = (await h.trigger({"type": "order.refunded", "to": ["u1"], "data": {"amount": "1"}})).json()["id"]
    await h.drain()
    status = await status_of(h, paid)
    (skipped,) = [d for d in status["deliveries"] if d["user_id"] == "u1" and d["channel"] == "email"]
    assert skipped["status"] == "skipped" and skipped["reason"] == "preference"
    assert {d["user_id"] for d in status["deliveries"] if d["channel"] == "inapp"} == {"u1", "u2"}
    (sent,) = (await status_of(h, refunded))["deliveries"]
    assert sent["status"] == "sent"
    assert sorted(str(m["To"]).rpartition("<")[2].split("@")[0] for m in box.messages) == ["u1", "u2"]


async def test_a_link_changed_in_any_part_is_refused(public: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = public
    box, port = mailbox
    await setup_email(h, port)
    await h.client.put("/v1/users/u2", json={"email": "u2@example.com"}, headers=h.admin())
    await h.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    await h.drain()
    url = link_of(box.messages[0])
    token = url.rpartition("/")[2]
    payload, _, signature = token.partition(".")
    theirs = sign(SECRET, Unsubscribe("u2", "order.paid", "email")).partition(".")[0]
    forged = sign("another secret", Unsubscribe("u2", "order.paid", "email"))
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in (
        f"{theirs}.{signature}",  # another user's payload under this link's signature
        f"{flipped}.{signature}",
        f"{payload}.{signature[:-1]}",
        forged,
        payload,
        "x.y",
        "%00",
        "a" * 3000,
    ):
        for method in ("GET", "POST"):
            r = await h.client.request(method, f"{PUBLIC_URL}/unsubscribe/{bad}", headers=ONE_CLICK)
            assert 400 <= r.status_code < 500, (bad, method, r.status_code)
    for user in ("u1", "u2"):
        r = await h.client.get(f"/v1/users/{user}/preferences", headers=h.admin())
        assert r.json()["types"] == {}, user


async def test_unsubscribing_keeps_the_rest_of_the_document(public: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = public
    box, port = mailbox
    await setup_email(h, port)
    document = {
        "channels": {"sms": False},
        "types": {"order.paid": {"enabled": True, "channels": {"inapp": True}}},
        "quiet_hours": {"start": "23:00", "end": "23:01", "timezone": "Asia/Shanghai"},
    }
    assert (await h.client.put("/v1/me/preferences", json=document, headers=h.user("u1"))).status_code == 200
    await h.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    await h.drain()
    r = await h.client.post(link_of(box.messages[0]), headers=ONE_CLICK)
    assert r.status_code == 200, r.text
    r = await h.client.get("/v1/me/preferences", headers=h.user("u1"))
    answer = r.json()
    assert answer["channels"] == {"sms": False} and answer["quiet_hours"] == document["quiet_hours"]
    assert answer["types"] == {"order.paid": {"enabled": True, "channels": {"email": False, "inapp": True}}}


async def test_an_erased_users_link_no_longer_works(public: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = public
    box, port = mailbox
    await setup_email(h, port)
    await h.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    await h.drain()
    url = link_of(box.messages[0])
    assert (await h.client.delete("/v1/users/u1", headers=h.admin())).status_code == 204
    assert (await h.client.get(url)).status_code == 404
    assert (await h.client.post(url, headers=ONE_CLICK)).status_code == 404
    assert (await h.client.get("/v1/users/u1", headers=h.admin())).status_code == 404  # not created again


async def test_no_link_for_critical_types_or_without_a_public_url(
    public: Harness, harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    await setup_email(public, port, critical=True)
    await public.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    await public.drain()
    await setup_email(harness, port)  # HERALD_PUBLIC_URL unset
    await harness.trigger({"type": "order.paid", "to": ["u1"], "data": {"amount": "1"}})
    await harness.drain()
    assert len(box.messages) == 2
    for message in box.messages:
        assert "List-Unsubscribe" not in message and "List-Unsubscribe-Post" not in message
