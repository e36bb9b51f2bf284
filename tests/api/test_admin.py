"""Admin endpoints: API keys (list, revoke), template deletion, announcement times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import update

from herald.store.tables import jobs
from herald.store.types import utcnow
from tests.conftest import Harness


async def test_list_and_revoke_api_keys(harness: Harness) -> None:
    r = await harness.client.get("/v1/api-keys", headers=harness.admin())
    assert r.status_code == 200
    keys = {k["name"]: k for k in r.json()["items"]}
    assert set(keys) == {"admin", "sender", "reader"}
    assert all(k["prefix"].startswith("hk_") and "hash" not in str(k) for k in keys.values())
    assert harness.send_key not in r.text

    assert (await harness.client.get("/v1/api-keys", headers=harness.sender())).status_code == 403
    assert (await harness.client.get("/v1/users/x", headers=harness.reader())).status_code == 404  # still valid
    r = await harness.client.delete(f"/v1/api-keys/{keys['reader']['id']}", headers=harness.admin())
    assert r.status_code == 204
    r = await harness.client.get("/v1/users/x", headers=harness.reader())
    assert r.status_code == 401  # revoked: refused at once in this process
    r = await harness.client.delete(f"/v1/api-keys/{keys['reader']['id']}", headers=harness.admin())
    assert r.status_code == 404


async def test_delete_a_template(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.delete(
        f"/v1/notification-types/{inbox_type}/templates/inapp?locale=en", headers=harness.admin()
    )
    assert r.status_code == 204
    r = await harness.client.get(f"/v1/notification-types/{inbox_type}", headers=harness.reader())
    assert set(r.json()["templates"]["inapp"]) == {"zh-CN"}
    r = await harness.client.delete(
        f"/v1/notification-types/{inbox_type}/templates/inapp?locale=en", headers=harness.admin()
    )
    assert r.status_code == 404


async def test_announcement_times_are_utc_from_the_first_answer(harness: Harness) -> None:
    shanghai = timezone(timedelta(hours=8))
    starts = datetime.now(shanghai).replace(microsecond=0) - timedelta(hours=1)
    r = await harness.client.post(
        "/v1/announcements", json={"title": "t", "starts_at": starts.isoformat()}, headers=harness.admin()
    )
    created = r.json()
    assert created["starts_at"] == starts.astimezone(UTC).isoformat()
    again = (await harness.client.get(f"/v1/announcements/{created['id']}", headers=harness.reader())).json()
    assert again == created


async def test_moving_the_start_moves_the_feed_position(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.post(
        "/v1/announcements",
        json={"title": "later", "starts_at": (utcnow() + timedelta(hours=1)).isoformat()},
        headers=harness.admin(),
    )
    ann = r.json()["id"]
    await harness.trigger({"type": inbox_type, "to": ["alice"], "data": {"amount": "1"}})
    r = await harness.client.patch(
        f"/v1/announcements/{ann}", json={"starts_at": utcnow().isoformat()}, headers=harness.admin()
    )
    assert r.status_code == 200
    feed = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()["items"]
    assert feed[0]["id"] == ann  # it went live after the reminder: it is the newest


async def test_inapp_delivery_counts_are_complete_beyond_the_listed_thousand(harness: Harness, inbox_type: str) -> None:
    harness.herald.settings.inline_fanout_limit = 2000
    r = await harness.trigger({"type": inbox_type, "to": [f"u{i}" for i in range(1001)], "data": {"amount": "1"}})
    status = (await harness.client.get(f"/v1/notifications/{r.json()['id']}", headers=harness.reader())).json()
    assert status["delivery_counts"] == {"delivered": 1001}
    assert len(status["deliveries"]) == 1000 and status["deliveries_truncated"] is True


async def test_audience_recipients_are_null_until_expanded(harness: Harness, inbox_type: str) -> None:
    await harness.client.put("/v1/users/a1", json={}, headers=harness.admin())
    r = await harness.trigger(
        {
            "type": inbox_type,
            "audience": {"all": True},
            "data": {"amount": "1"},
            "send_at": (utcnow() + timedelta(hours=1)).isoformat(),
        }
    )
    nid = r.json()["id"]
    status = (await harness.client.get(f"/v1/notifications/{nid}", headers=harness.reader())).json()
    assert status["recipients"] is None and status["status"] == "scheduled"
    async with harness.herald.db.write() as conn:
        await conn.execute(update(jobs).values(run_at=utcnow()))
    await harness.drain()
    status = (await harness.client.get(f"/v1/notifications/{nid}", headers=harness.reader())).json()
    assert status["recipients"] == 1 and status["status"] == "processed"
