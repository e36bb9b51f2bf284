"""Digests (issue 8, rule 5) end to end: events collected per user × type × channel, ONE message at
the window's end or at max_items, exactly once even with two workers racing, on both databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from herald.engine import digests as digest_engine
from herald.engine.fanout import LostLease
from herald.engine.worker import Worker
from herald.store import jobs as job_store
from herald.store.tables import deliveries, digest_events, digests, jobs, notifications
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.support import SECRET, Mailbox, Receiver

TYPE = "post.liked"
EMAIL = {
    "subject": "${who} 赞了你的文章",
    "body": "${who} 赞了《${post}》",
    "html": "<p>${who} 赞了《${post}》</p>",
    "digest_subject": "您有 ${count} 条新点赞",
    "digest_body": "{% for e in events %}${e.data.who}|${e.fields.subject}\n{% endfor %}"
    "共 ${count} 条，${recipient.name}",
}


async def setup_email(h: Harness, port: int, *, max_items: int = 50, template: dict[str, Any] | None = None) -> None:
    r = await h.client.put(
        "/v1/channel-accounts/smtp",
        json={
            "channel": "email",
            "config": {"host": "127.0.0.1", "port": port, "sender": "Herald <noreply@example.com>", "timeout": 5},
            "default": True,
        },
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    await h.put_type(
        TYPE,
        ["inapp", "email"],
        {"inapp": {"title": "${who} 赞了你"}, "email": template or EMAIL},
        name="点赞",
        digest={"channels": ["email"], "window_seconds": 600, "max_items": max_items},
    )
    for uid, name in (("u1", "张三"), ("u2", "李四")):
        r = await h.client.put(
            f"/v1/users/{uid}", json={"email": f"{uid}@example.com", "name": name}, headers=h.admin()
        )
        assert r.status_code in (200, 201), r.text


async def like(h: Harness, who: str, to: str = "u1", post: str = "Herald") -> str:
    r = await h.trigger({"type": TYPE, "to": [to], "data": {"who": who, "post": post}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def status_of(h: Harness, notification_id: str) -> dict[str, Any]:
    r = await h.client.get(f"/v1/notifications/{notification_id}", headers=h.reader())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def email_delivery(h: Harness, notification_id: str) -> dict[str, Any]:
    (d,) = [d for d in (await status_of(h, notification_id))["deliveries"] if d["channel"] == "email"]
    return dict(d)


async def all_digests(h: Harness) -> list[dict[str, Any]]:
    async with h.herald.db.read() as conn:
        rows = (await conn.execute(select(digests).order_by(digests.c.opened_at, digests.c.id))).mappings()
        return [dict(r) for r in rows]


async def windows_end(h: Harness) -> None:
    """Every digest's window ends now: its flush job becomes due (as time passing would make it)."""
    async with h.herald.db.write() as conn:
        await conn.execute(
            update(jobs)
            .where(jobs.c.kind == "digest", jobs.c.status == "pending")
            .values(run_at=utcnow() - timedelta(seconds=1))
        )


async def drain_racing(
    h: Harness, workers: int = 2, rounds: int = 50, clock: Callable[[], datetime] | None = None
) -> None:
    """Run ``workers`` Worker instances side by side until none finds anything due (their stages
    seeing ``clock()`` as now, when given)."""
    pool = [Worker(h.herald) for _ in range(workers)]
    if clock is not None:
        for worker in pool:
            worker.services = replace(worker.services, clock=clock)
    for _ in range(rounds):
        if not any(await asyncio.gather(*(w.run_once() for w in pool))):
            return


def bodies(box: Mailbox) -> list[str]:
    return [str(m.get_body(("plain",)).get_content()) for m in box.messages]  # type: ignore[union-attr]


async def test_events_are_collected_and_one_message_sent_at_the_windows_end(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    h = harness
    box, port = mailbox
    await setup_email(h, port)
    ids = [await like(h, who) for who in ("王五", "赵六", "钱七")]
    other = await like(h, "孙八", to="u2")
    await h.drain()
    await asyncio.sleep(0.1)
    assert box.messages == []  # collected, nothing sent yet

    (first, second, third) = [await email_delivery(h, i) for i in ids]
    assert {(d["status"], d["reason"]) for d in (first, second, third)} == {("skipped", "digested")}
    digest_id = first["reason_detail"].split("collected into digest ")[1].split(" ")[0]
    assert digest_id.startswith("ntf_") and all(digest_id in d["reason_detail"] for d in (second, third))
    assert (await email_delivery(h, other))["reason_detail"].find(digest_id) == -1  # u2 has their own
    assert first["attempt_log"] == []  # decided before any send: no attempt
    collecting = await status_of(h, digest_id)
    assert collecting["status"] == "collecting" and collecting["type"] == TYPE and collecting["deliveries"] == []
    window = collecting["digest"]
    assert (window["status"], window["count"], window["channel"], window["user_id"]) == ("open", 3, "email", "u1")
    assert window["events"] == ids
    # the window opened with the first event and lasts window_seconds
    opened, ends = (utcnow().fromisoformat(window[k]) for k in ("opened_at", "flush_at"))
    assert ends - opened == timedelta(seconds=600)
    assert (await status_of(h, ids[0]))["digest"] is None  # an ordinary notification is no digest

    await windows_end(h)
    await h.drain()
    await asyncio.sleep(0.1)
    assert len(box.messages) == 2  # one digest per user
    mine = next(m for m in box.messages if "u1@" in str(m["To"]))
    assert mine["Subject"] == "您有 3 条新点赞"
    body = str(mine.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert body.splitlines() == [
        "王五|王五 赞了你的文章",
        "赵六|赵六 赞了你的文章",
        "钱七|钱七 赞了你的文章",
        "共 3 条，张三",
    ]
    sent = await status_of(h, digest_id)
    assert sent["status"] == "processed" and sent["digest"]["status"] == "flushed"
    (d,) = sent["deliveries"]
    assert (d["status"], d["channel"], d["user_id"]) == ("sent", "email", "u1")
    assert str(mine["X-Herald-Delivery-Id"]) == d["id"]  # the stable delivery id reaches the provider
    assert sent["digest"]["flushed_at"] is not None and sent["digest"]["error"] is None
    # the digest's own delivery was not collected again
    assert len(await all_digests(h)) == 2


async def test_max_items_flushes_at_once_and_a_new_window_opens(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = harness
    box, port = mailbox
    await setup_email(h, port, max_items=3)
    for i in range(7):
        await like(h, f"用户{i}")
    await h.drain()
    await asyncio.sleep(0.1)
    assert sorted(m["Subject"] for m in box.messages) == ["您有 3 条新点赞"] * 2  # full: sent without waiting
    found = await all_digests(h)
    assert sorted((d["status"], d["count"]) for d in found) == [("flushed", 3), ("flushed", 3), ("open", 1)]
    await windows_end(h)
    await h.drain()
    await asyncio.sleep(0.1)
    assert sorted(m["Subject"] for m in box.messages) == ["您有 1 条新点赞"] + ["您有 3 条新点赞"] * 2
    listed = sorted(line.split("|")[0] for b in bodies(box) for line in b.splitlines() if "|" in line)
    assert listed == sorted(f"用户{i}" for i in range(7))  # every event in exactly one digest


async def test_two_workers_in_the_same_millisecond_make_one_digest_per_window(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    h = harness
    box, port = mailbox
    await setup_email(h, port, max_items=5)
    instant = utcnow()
    h.herald.settings.worker_batch_size = 4  # small claims: the two workers interleave
    for i in range(23):
        await like(h, f"w{i}")
    await drain_racing(h, clock=lambda: instant)  # every event in the same millisecond
    await asyncio.sleep(0.1)
    found = await all_digests(h)
    assert sorted((d["status"], d["count"]) for d in found) == [("flushed", 5)] * 4 + [("open", 3)]
    async with h.herald.db.read() as conn:
        events = (await conn.execute(select(digest_events))).mappings().all()
    assert len(events) == 23 and len({e["notification_id"] for e in events}) == 23
    positions = {d["id"]: sorted(e["position"] for e in events if e["digest_id"] == d["id"]) for d in found}
    assert all(p == list(range(1, len(p) + 1)) for p in positions.values())  # no gap, no double
    assert len(box.messages) == 4

    await windows_end(h)
    await drain_racing(h)
    await asyncio.sleep(0.1)
    assert sorted(m["Subject"] for m in box.messages) == ["您有 3 条新点赞"] + ["您有 5 条新点赞"] * 4
    assert len(set(box.delivery_ids())) == 5


async def test_two_flushes_of_one_digest_send_it_once(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = harness
    box, port = mailbox
    await setup_email(h, port)
    for who in ("a", "b"):
        await like(h, who)
    await h.drain()
    (digest,) = await all_digests(h)
    now = utcnow()
    async with h.herald.db.write() as conn:  # a second job for the same digest (max_items and the window's end)
        await job_store.enqueue_job(conn, "digest", {"digest_id": digest["id"]}, run_at=now, now=now)
    await windows_end(h)
    await drain_racing(h, workers=2)
    await asyncio.sleep(0.1)
    assert len(box.messages) == 1
    async with h.herald.db.read() as conn:
        states = (await conn.execute(select(jobs.c.status).where(jobs.c.kind == "digest"))).scalars().all()
        n = await conn.execute(select(func.count()).select_from(deliveries).where(deliveries.c.status == "sent"))
    assert sorted(states) == ["done", "done"] and n.scalar_one() == 1


async def test_a_flush_that_crashes_or_loses_its_lease_is_retried_and_sends_once(
    harness: Harness, mailbox: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    box, port = mailbox
    await setup_email(h, port)
    await like(h, "甲")
    await like(h, "乙")
    await h.drain()
    await windows_end(h)

    # 1. the worker dies mid-flush: the window is closed, nothing written; the job comes back
    real = digest_engine._compose
    calls = 0

    async def crashing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("worker killed")
        return await real(*args)

    monkeypatch.setattr(digest_engine, "_compose", crashing)
    await Worker(h.herald).run_once()
    (after_crash,) = await all_digests(h)
    assert after_crash["status"] == "closing" and after_crash["delivery_id"] is None
    async with h.herald.db.write() as conn:  # the retry's backoff, elapsed
        await conn.execute(update(jobs).where(jobs.c.status == "pending").values(run_at=utcnow()))

    # 2. a worker whose lease was taken over writes nothing (rolled back with its job's finish)
    now = utcnow()
    async with h.herald.db.write() as conn:
        (job,) = await job_store.claim_due_jobs(
            conn, owner="A", now=now, lease_until=now + timedelta(seconds=60), limit=1
        )
        await conn.execute(update(jobs).values(lease_owner="B"))
    with pytest.raises(LostLease):
        await digest_engine.flush_digest(h.herald, job, owner="A")
    (after_lost,) = await all_digests(h)
    assert after_lost["status"] == "closing" and after_lost["delivery_id"] is None
    async with h.herald.db.write() as conn:  # B died too: its lease ends
        await conn.execute(update(jobs).values(run_at=utcnow() - timedelta(seconds=1), status="pending"))

    await h.drain()
    await asyncio.sleep(0.1)
    assert len(box.messages) == 1 and box.messages[0]["Subject"] == "您有 2 条新点赞"
    (flushed,) = await all_digests(h)
    assert flushed["status"] == "flushed" and flushed["delivery_id"] == box.delivery_ids()[0]


async def test_a_delivery_handled_twice_is_collected_once(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    """A worker crashed after collecting, before recording the outcome: the lease ends, the
    delivery is claimed again, and its event is not counted twice."""
    h = harness
    _, port = mailbox
    await setup_email(h, port)
    nid = await like(h, "甲")
    await h.drain()
    async with h.herald.db.write() as conn:  # as if the outcome had never been recorded: the claim's count stays
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.notification_id == nid, deliveries.c.channel == "email")
            .values(status="pending", next_attempt_at=utcnow(), reason=None, reason_detail=None, attempts=1)
        )
    await h.drain()
    (digest,) = await all_digests(h)
    assert digest["count"] == 1
    d = await email_delivery(h, nid)
    assert (d["status"], d["reason"]) == ("skipped", "digested") and digest["notification_id"] in d["reason_detail"]


async def test_digest_content_on_a_webhook_receiver_uses_the_built_in_text(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    h = harness
    receiver, url = webhook
    r = await h.client.put(
        "/v1/channel-accounts/hook",
        json={"channel": "webhook", "config": {"url": url, "secret": SECRET}},
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    await h.put_type(
        "order.shipped", ["webhook"], {}, name="Shipping", digest={"channels": ["webhook"], "window_seconds": 60}
    )
    await h.client.put("/v1/users/en-user", json={"locale": "en-US"}, headers=h.admin())
    await h.client.put("/v1/users/zh-user", json={"locale": "zh-CN"}, headers=h.admin())
    for order in ("o-1", "o-2"):
        r = await h.trigger({"type": "order.shipped", "to": ["en-user", "zh-user"], "data": {"order": order}})
        assert r.status_code == 202, r.text
    await h.drain()
    assert receiver.requests == []
    await windows_end(h)
    await h.drain()
    assert len(receiver.requests) == 2 and all(q.signature_valid for q in receiver.requests)
    sent = {q.json()["data"]["recipient"]["id"]: q.json()["data"] for q in receiver.requests}
    en, zh = sent["en-user"], sent["zh-user"]
    assert en["content"]["title"] == "Shipping: 2 new notifications"
    assert zh["content"]["title"] == "Shipping：您有 2 条新通知"
    assert en["data"]["count"] == 2
    assert [e["data"] for e in en["data"]["events"]] == [{"order": "o-1"}, {"order": "o-2"}]
    assert en["content"]["body"].count("· ") == 2


async def test_a_hostile_digest_template_does_not_freeze_the_worker(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    h = harness
    box, port = mailbox
    hostile = {
        **EMAIL,
        # harmless with no events (so it is saved), enormous with a few: over a limit, then the built-in text
        "digest_body": "{% for e in events %}{% for i in range(10000) %}{% for j in range(10000) %}"
        "${e.data.who}{% endfor %}{% endfor %}{% endfor %}",
        "digest_subject": "{% for e in events %}{% for f in events %}{% for i in range(9999) %}${i}{% endfor %}"
        "{% endfor %}{% endfor %}",
    }
    await setup_email(h, port, template=hostile)
    for i in range(30):
        await like(h, f"u{i}")
    await h.drain()
    await windows_end(h)

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    await h.drain()
    took = time.monotonic() - started
    ticking.cancel()
    await asyncio.sleep(0.1)
    assert took < 10
    assert max(gaps) < 0.5  # the render ran beside the event loop, not on it
    (message,) = box.messages
    assert message["Subject"] == "点赞：您有 30 条新通知"  # the built-in text
    assert str(message.get_body(("plain",)).get_content()).count("· ") == 30  # type: ignore[union-attr]
    (digest,) = await all_digests(h)
    assert "digest_body" in digest["last_error"] and "digest_subject" in digest["last_error"]
    status = await status_of(h, digest["notification_id"])
    assert status["digest"]["error"] == digest["last_error"]


async def test_digest_fields_are_never_rendered_at_trigger_time_and_are_checked_when_saved(harness: Harness) -> None:
    h = harness
    await h.put_type(TYPE, ["inapp", "email"], {"inapp": {"title": "t"}, "email": EMAIL})
    r = await h.trigger({"type": TYPE, "to": ["u1"], "data": {"who": "甲", "post": "p"}})
    assert r.status_code == 202, r.text  # ${events} and ${count} are no missing variables
    preview = await h.client.post(
        "/v1/templates/preview",
        json={"type": TYPE, "channel": "email", "data": {"who": "甲", "post": "p"}},
        headers=h.reader(),
    )
    assert preview.status_code == 200 and "digest_subject" not in preview.json()["fields"]

    async def put(channel: str, fields: dict[str, Any]) -> Any:
        return await h.client.put(f"/v1/notification-types/{TYPE}/templates/{channel}", json=fields, headers=h.admin())

    bad = await put("email", {**EMAIL, "digest_nonsense": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "digest_nonsense"
    bad = await put("inapp", {"title": "t", "digest_title": "${count}"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "digest_title"
    bad = await put("email", {**EMAIL, "digest_body": "{% for e in events %}"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "digest_body"
    bad = await put("email", {**EMAIL, "digest_body": "${'a' * 100000}"})  # over a limit whatever the events
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "digest_body"
    r = await h.client.put(
        f"/v1/notification-types/{TYPE}",
        json={
            "channels": ["inapp", "email"],
            "digest": {"channels": ["email"], "window_seconds": 60, "max_items": 1001},
        },
        headers=h.admin(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("digest")


async def test_cancelling_a_collected_event_takes_it_out_of_the_open_digest(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    h = harness
    box, port = mailbox
    await setup_email(h, port)
    kept, dropped = await like(h, "留下"), await like(h, "取消")
    only = await like(h, "唯一", to="u2")
    await h.drain()
    for nid in (dropped, only):
        r = await h.client.delete(f"/v1/notifications/{nid}", headers=h.sender())
        assert r.status_code == 200 and r.json()["cancelled_deliveries"] == 1
        d = await email_delivery(h, nid)
        assert (d["status"], d["reason"]) == ("cancelled", "cancelled")
    mine = next(d for d in await all_digests(h) if d["user_id"] == "u1")
    window = (await status_of(h, mine["notification_id"]))["digest"]
    assert (window["count"], window["events"]) == (1, [kept])
    await windows_end(h)
    await h.drain()
    await asyncio.sleep(0.1)
    (message,) = box.messages
    assert message["Subject"] == "您有 1 条新点赞" and "留下" in bodies(box)[0] and "取消" not in bodies(box)[0]
    u2 = next(d for d in await all_digests(h) if d["user_id"] == "u2")
    assert u2["status"] == "flushed" and u2["delivery_id"] is None  # nothing left: nothing sent
    assert (await status_of(h, u2["notification_id"]))["status"] == "cancelled"
    r = await h.client.delete(f"/v1/notifications/{kept}", headers=h.sender())  # sent with its digest: too late
    assert r.json()["cancelled_deliveries"] == 0
    assert (await email_delivery(h, kept))["status"] == "skipped"


async def test_erasing_a_user_erases_their_digests(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    h = harness
    _, port = mailbox
    await setup_email(h, port)
    await like(h, "甲")
    await like(h, "乙", to="u2")
    await h.drain()
    (mine,) = [d for d in await all_digests(h) if d["user_id"] == "u1"]
    r = await h.client.delete("/v1/users/u1", headers=h.admin())
    assert r.status_code == 204
    assert [d["user_id"] for d in await all_digests(h)] == ["u2"]
    async with h.herald.db.read() as conn:
        left = (await conn.execute(select(notifications.c.id).where(notifications.c.digest_id.is_not(None)))).all()
        events = (await conn.execute(select(func.count()).select_from(digest_events))).scalar_one()
    assert [row[0] for row in left] != [mine["notification_id"]] and len(left) == 1 and events == 1
    r = await h.client.get(f"/v1/notifications/{mine['notification_id']}", headers=h.reader())
    assert r.status_code == 404
    r = await h.client.get(f"/v1/notifications/{mine['notification_id']}", headers=h.user("u2"))
    assert r.status_code in (401, 403)  # a user token reads no notification's trace, digests included


async def test_a_recipient_the_channel_cannot_reach_is_not_collected(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    h = harness
    _, port = mailbox
    await setup_email(h, port)
    r = await h.trigger({"type": TYPE, "to": ["nobody"], "data": {"who": "甲", "post": "p"}})
    await h.drain()
    d = await email_delivery(h, r.json()["id"])
    assert (d["status"], d["reason"]) == ("skipped", "no_address")
    assert await all_digests(h) == []


async def test_a_user_who_turned_email_off_gets_no_digest(harness: Harness, mailbox: tuple[Mailbox, int]) -> None:
    """Preferences come first: the events of a user who turned email off are not collected."""
    h = harness
    box, port = mailbox
    await setup_email(h, port)
    r = await h.client.put("/v1/users/u1/preferences", json={"channels": {"email": False}}, headers=h.admin())
    assert r.status_code == 200, r.text
    off = [await like(h, who) for who in ("甲", "乙")]
    on = await like(h, "丙", to="u2")
    await h.drain()
    for nid in off:
        d = await email_delivery(h, nid)
        assert (d["status"], d["reason"]) == ("skipped", "preference")
    assert (await email_delivery(h, on))["reason"] == "digested"
    assert [d["user_id"] for d in await all_digests(h)] == ["u2"]
    await windows_end(h)
    await h.drain()
    await asyncio.sleep(0.1)
    assert [str(m["To"]) for m in box.messages] == ["李四 <u2@example.com>"]


async def test_a_digest_is_held_back_by_the_users_later_preference(
    harness: Harness, mailbox: tuple[Mailbox, int]
) -> None:
    """The digest's own delivery goes through the stages like any other: turned off meanwhile, not sent."""
    h = harness
    box, port = mailbox
    await setup_email(h, port)
    await like(h, "甲")
    await h.drain()
    r = await h.client.put("/v1/users/u1/preferences", json={"channels": {"email": False}}, headers=h.admin())
    assert r.status_code == 200, r.text
    await windows_end(h)
    await h.drain()
    (digest,) = await all_digests(h)
    d = await email_delivery(h, digest["notification_id"])
    assert (d["status"], d["reason"]) == ("skipped", "preference") and box.messages == []
