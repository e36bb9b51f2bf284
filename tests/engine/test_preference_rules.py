"""Preferences and quiet hours end to end: through the API, the trigger and the worker, traced in
``GET /v1/notifications/{id}``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from herald.core.quiet_hours import window_end
from herald.engine.worker import Worker
from herald.store.tables import deliveries
from herald.store.types import utcnow
from tests.conftest import REDIS_URL, Harness, make_settings, running_harness
from tests.engine.test_catalog_cache import statements
from tests.support import SECRET, Receiver

TYPE = "order.shipped"


async def setup(h: Harness, url: str, **type_extra: Any) -> None:
    r = await h.client.put(
        "/v1/channel-accounts/hook",
        json={"channel": "webhook", "config": {"url": url, "secret": SECRET}},
        headers=h.admin(),
    )
    assert r.status_code == 200, r.text
    await h.put_type(TYPE, ["inapp", "webhook"], {"inapp": {"title": "发货了"}}, **type_extra)


async def prefer(h: Harness, user: str, document: dict[str, Any]) -> None:
    r = await h.client.put("/v1/me/preferences", json=document, headers=h.user(user))
    assert r.status_code == 200, r.text


async def status_of(h: Harness, notification_id: str) -> dict[str, Any]:
    r = await h.client.get(f"/v1/notifications/{notification_id}", headers=h.reader())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def delivery(status: dict[str, Any], user: str, channel: str) -> dict[str, Any]:
    (found,) = [d for d in status["deliveries"] if d["user_id"] == user and d["channel"] == channel]
    return found  # type: ignore[no-any-return]


async def send(h: Harness, to: list[str], **extra: Any) -> str:
    r = await h.trigger({"type": TYPE, "to": to, **extra})
    assert r.status_code == 202, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def inbox_count(h: Harness, user: str) -> int:
    r = await h.client.get("/v1/me/inbox", headers=h.user(user))
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


def quiet_around(now: datetime, zone: str) -> dict[str, str]:
    """Quiet hours from an hour before ``now`` to an hour after it, on the wall clock of ``zone``."""
    local = now.astimezone(ZoneInfo(zone))
    return {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=1)).strftime("%H:%M"),
    }


async def drain_at(h: Harness, clock: Callable[[], datetime]) -> None:
    """The worker, its stages seeing ``clock()`` as now (a moment the test chooses)."""
    worker = Worker(h.herald)
    worker.services = replace(worker.services, clock=clock)
    for _ in range(20):
        if not await worker.run_once():
            return


async def make_due(h: Harness) -> None:
    async with h.herald.db.write() as conn:
        await conn.execute(update(deliveries).where(deliveries.c.status == "pending").values(next_attempt_at=utcnow()))


# -- channels turned off ----------------------------------------------------------------------------


async def test_a_channel_turned_off_is_skipped_with_reason_preference(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup(harness, url)
    await prefer(harness, "u1", {"types": {TYPE: {"channels": {"webhook": False}}}})
    await prefer(harness, "u2", {"channels": {"webhook": False}, "types": {TYPE: {"enabled": True}}})  # type wins
    await prefer(harness, "u3", {"categories": {"reminder": {"enabled": False}}})
    notification = await send(harness, ["u1", "u2", "u3", "u4"])
    await harness.drain()
    status = await status_of(harness, notification)
    for user in ("u1", "u3"):
        skipped = delivery(status, user, "webhook")
        assert skipped["status"] == "skipped" and skipped["reason"] == "preference", skipped
        assert skipped["reason_detail"] and skipped["attempt_log"] == [] and skipped["attempts"] == 0  # never tried
    for user in ("u2", "u4"):
        assert delivery(status, user, "webhook")["status"] == "sent"
    sent_to = sorted(r.json()["data"]["recipient"]["id"] for r in receiver.requests)
    assert sent_to == ["u2", "u4"]
    # u1 turned off only the webhook: the inbox item is there; u3 turned the whole category off
    assert await inbox_count(harness, "u1") == 1
    assert await inbox_count(harness, "u3") == 0
    assert delivery(status, "u3", "inapp")["reason"] == "preference"


async def test_critical_types_bypass_preferences_and_quiet_hours(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    receiver, url = webhook
    await setup(harness, url, critical=True)
    quiet = quiet_around(utcnow(), "UTC")
    await prefer(harness, "u1", {"channels": {"webhook": False, "inapp": False}, "quiet_hours": quiet})
    notification = await send(harness, ["u1"])
    await harness.drain()
    status = await status_of(harness, notification)
    assert delivery(status, "u1", "webhook")["status"] == "sent"
    assert delivery(status, "u1", "inapp")["status"] == "delivered"
    assert len(receiver.requests) == 1 and await inbox_count(harness, "u1") == 1


# -- quiet hours ------------------------------------------------------------------------------------


async def test_quiet_hours_defer_to_the_window_end_then_send(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup(harness, url)
    now = utcnow()
    quiet = quiet_around(now, "Asia/Shanghai")
    await prefer(harness, "u1", {"quiet_hours": {**quiet, "timezone": "Asia/Shanghai"}})
    ends = window_end(now, quiet["start"], quiet["end"], "Asia/Shanghai")
    assert ends is not None
    notification = await send(harness, ["u1"])
    await harness.drain()
    held = delivery(await status_of(harness, notification), "u1", "webhook")
    assert held["status"] == "pending" and held["reason"] == "quiet_hours", held
    assert datetime.fromisoformat(held["next_attempt_at"]) == ends
    assert held["attempts"] == 0 and held["attempt_log"] == [] and receiver.requests == []
    assert await inbox_count(harness, "u1") == 1  # in-app items land at once

    # claimed again inside the window (a worker with a fast clock...): held again, to the same end
    await make_due(harness)
    await harness.drain()
    held = delivery(await status_of(harness, notification), "u1", "webhook")
    assert held["status"] == "pending" and datetime.fromisoformat(held["next_attempt_at"]) == ends
    assert held["attempts"] == 0 and receiver.requests == []

    # the window has ended: a new worker (the row is all there is) sends it, once
    await make_due(harness)
    await drain_at(harness, lambda: ends + timedelta(seconds=1))
    sent = delivery(await status_of(harness, notification), "u1", "webhook")
    assert sent["status"] == "sent" and sent["attempts"] == 1, sent
    assert len(receiver.requests) == 1


async def test_quiet_hours_drop_and_deliver(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await setup(harness, url, quiet_hours="drop")
    await harness.put_type("login.code", ["webhook"], {}, quiet_hours="deliver")
    await prefer(harness, "u1", {"quiet_hours": {**quiet_around(utcnow(), "UTC"), "timezone": "UTC"}})
    dropped = await send(harness, ["u1"])
    r = await harness.trigger({"type": "login.code", "to": ["u1"]})
    delivered = r.json()["id"]
    await harness.drain()
    skipped = delivery(await status_of(harness, dropped), "u1", "webhook")
    assert skipped["status"] == "skipped" and skipped["reason"] == "quiet_hours", skipped
    assert delivery(await status_of(harness, delivered), "u1", "webhook")["status"] == "sent"
    assert len(receiver.requests) == 1


async def test_a_window_ending_after_the_expiry_is_skipped_expired(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    _, url = webhook
    await setup(harness, url)
    await prefer(harness, "u1", {"quiet_hours": {**quiet_around(utcnow(), "UTC"), "timezone": "UTC"}})
    notification = await send(harness, ["u1"], expires_at=(utcnow() + timedelta(minutes=5)).isoformat())
    await harness.drain()
    skipped = delivery(await status_of(harness, notification), "u1", "webhook")
    assert skipped["status"] == "skipped" and skipped["reason"] == "expired", skipped


async def test_quiet_hours_outside_the_window_send_at_once(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    _, url = webhook
    await setup(harness, url)
    local = utcnow().astimezone(ZoneInfo("Pacific/Kiritimati"))
    later = {
        "start": (local + timedelta(hours=2)).strftime("%H:%M"),
        "end": (local + timedelta(hours=3)).strftime("%H:%M"),
    }
    await prefer(harness, "u1", {"quiet_hours": {**later, "timezone": "Pacific/Kiritimati"}})
    notification = await send(harness, ["u1"])
    await harness.drain()
    assert delivery(await status_of(harness, notification), "u1", "webhook")["status"] == "sent"


async def test_the_profile_timezone_then_the_deployment_default(
    harness: Harness, webhook: tuple[Receiver, str]
) -> None:
    _, url = webhook
    await setup(harness, url)
    now = utcnow()
    # no timezone in the quiet hours: the profile's (UTC+14)
    await harness.client.put("/v1/users/u1", json={"timezone": "Pacific/Kiritimati"}, headers=harness.admin())
    kiritimati = quiet_around(now, "Pacific/Kiritimati")
    await prefer(harness, "u1", {"quiet_hours": kiritimati})
    # neither: HERALD_DEFAULT_TIMEZONE (UTC-2:30 or -3:30)
    harness.herald.settings.default_timezone = "America/St_Johns"
    st_johns = quiet_around(now, "America/St_Johns")
    await prefer(harness, "u2", {"quiet_hours": st_johns})
    notification = await send(harness, ["u1", "u2"])
    await harness.drain()
    status = await status_of(harness, notification)
    for user, quiet, zone in (("u1", kiritimati, "Pacific/Kiritimati"), ("u2", st_johns, "America/St_Johns")):
        held = delivery(status, user, "webhook")
        assert held["reason"] == "quiet_hours", held
        ends = window_end(now, quiet["start"], quiet["end"], zone)
        assert datetime.fromisoformat(held["next_attempt_at"]) == ends


# -- the in-app inbox, decided at trigger time --------------------------------------------------------


async def test_inapp_turned_off_writes_no_item_and_says_why(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    _, url = webhook
    await setup(harness, url)
    first = await send(harness, ["u1", "u2"])  # before anyone turned the inbox off
    await prefer(harness, "u1", {"types": {TYPE: {"channels": {"inapp": False}}}})
    # a category turned off, but this type turned back on: the type wins
    await prefer(
        harness, "u3", {"categories": {"reminder": {"channels": {"inapp": False}}}, "types": {TYPE: {"enabled": True}}}
    )
    second = await send(harness, ["u1", "u2", "u3"])
    await harness.drain()
    assert await inbox_count(harness, "u1") == 1  # the first notification's only
    assert await inbox_count(harness, "u2") == 2 and await inbox_count(harness, "u3") == 1
    status = await status_of(harness, second)
    skipped = delivery(status, "u1", "inapp")
    assert skipped["status"] == "skipped" and skipped["reason"] == "preference" and skipped["next_attempt_at"] is None
    assert "in-app" in skipped["reason_detail"]
    assert delivery(status, "u2", "inapp")["status"] == "delivered"
    assert delivery(status, "u1", "webhook")["status"] == "sent"  # only the inbox was turned off
    assert status["delivery_counts"]["skipped"] == 1
    assert delivery(await status_of(harness, first), "u1", "inapp")["status"] == "delivered"
    # turned back on: items again
    await prefer(harness, "u1", {})
    await send(harness, ["u1"])
    assert await inbox_count(harness, "u1") == 2


async def test_inapp_preferences_hold_for_batches_and_fan_outs(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    _, url = webhook
    await setup(harness, url)
    await prefer(harness, "u1", {"channels": {"inapp": False}})
    r = await harness.client.post(
        "/v1/notifications/batch",
        json={"notifications": [{"type": TYPE, "to": ["u1", "u2"]}, {"type": TYPE, "to": ["u2", "u1"]}]},
        headers=harness.sender(),
    )
    assert r.status_code == 200, r.text
    batch = [result["id"] for result in r.json()["results"]]
    harness.herald.settings.inline_fanout_limit = 1  # two recipients: a fan-out job
    fanned = await send(harness, ["u1", "u2"])
    r = await harness.trigger({"type": TYPE, "audience": {"all": True}})
    audience = r.json()["id"]
    await harness.drain()
    assert await inbox_count(harness, "u1") == 0 and await inbox_count(harness, "u2") == 4
    for notification in (*batch, fanned, audience):
        status = await status_of(harness, notification)
        assert delivery(status, "u1", "inapp")["reason"] == "preference", notification
        assert delivery(status, "u2", "inapp")["status"] == "delivered", notification


async def test_critical_types_reach_the_inbox_whatever_the_preferences(harness: Harness) -> None:
    await harness.put_type("login.alert", ["inapp"], {"inapp": {"title": "新设备登录"}}, critical=True)
    await prefer(harness, "u1", {"channels": {"inapp": False}})
    r = await harness.trigger({"type": "login.alert", "to": ["u1"]})
    assert r.status_code == 202
    assert await inbox_count(harness, "u1") == 1


async def test_nobody_turned_the_inbox_off_costs_no_statement(harness: Harness, webhook: tuple[Receiver, str]) -> None:
    _, url = webhook
    await setup(harness, url)
    await harness.put_type("other.type", ["inapp"], {"inapp": {"title": "x"}})
    await prefer(harness, "u9", {"types": {"other.type": {"enabled": False}}, "channels": {"webhook": False}})
    await send(harness, ["u1"])  # warms the caches
    with statements(harness.herald) as seen:
        await send(harness, ["u2"])
    assert not [s for s in seen if "inapp_choices" in s], seen  # someone muted another type: not this one
    await prefer(harness, "u9", {"types": {TYPE: {"channels": {"inapp": False}}}})
    with statements(harness.herald) as seen:
        await send(harness, ["u2", "u9"])
    # the probe "has anyone?" (once per type per process, ttl), then one read for all the recipients
    reads = [s for s in seen if "FROM inapp_choices WHERE user_id" in s]
    assert len(reads) == 1 and len([s for s in seen if "inapp_choices" in s]) <= 2, seen
    assert await inbox_count(harness, "u9") == 0


@pytest.mark.skipif(REDIS_URL is None, reason="two processes share the Redis backplane (required under CI=true)")
async def test_a_save_in_one_process_is_heard_by_the_others_trigger(database_url: str) -> None:
    settings = make_settings(database_url, redis_url=REDIS_URL)
    async with running_harness(settings) as first, running_harness(settings) as other:
        await first.put_type(TYPE, ["inapp"], {"inapp": {"title": "t"}})
        other.herald.inapp_opt_outs.ttl = 60.0  # only the backplane can tell it in time
        assert (await other.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202  # "nobody": cached
        await prefer(first, "u1", {"channels": {"inapp": False}})
        for _ in range(100):
            if not other.herald.inapp_opt_outs._answers:
                break
            await asyncio.sleep(0.02)
        assert (await other.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202
        assert await inbox_count(other, "u1") == 1
