"""POST/GET/DELETE /v1/schedules: recurring sends, everything checked when created."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from herald.store.tables import jobs, schedules
from herald.store.types import utcnow
from tests.api.test_accounts import fields_named
from tests.conftest import Harness

SHANGHAI = ZoneInfo("Asia/Shanghai")


def trigger_body(**extra: Any) -> dict[str, Any]:
    return {"type": "recharge.succeeded", "to": ["u1", "u2"], "data": {"amount": "10"}, **extra}


def schedule_body(**extra: Any) -> dict[str, Any]:
    return {"cron": "0 9 * * *", "timezone": "Asia/Shanghai", "trigger": trigger_body(), **extra}


async def create(h: Harness, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await h.client.post("/v1/schedules", json=body, headers={**h.sender(), **headers})


async def count(h: Harness, table: Any) -> int:
    async with h.herald.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def next_nine_in_shanghai(after: datetime) -> datetime:
    here = after.astimezone(SHANGHAI)
    nine = here.replace(hour=9, minute=0, second=0, microsecond=0)
    return nine if nine > here else nine + timedelta(days=1)  # Shanghai keeps no DST


async def test_create_get_list_delete(harness: Harness, inbox_type: str) -> None:
    before = utcnow()
    r = await create(harness, schedule_body(name="daily recharge digest"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"].startswith("sch_")
    assert created["cron"] == "0 9 * * *" and created["timezone"] == "Asia/Shanghai"
    assert created["name"] == "daily recharge digest" and created["catch_up_seconds"] == 3600
    assert created["trigger"] == {"type": "recharge.succeeded", "to": ["u1", "u2"], "data": {"amount": "10"}}
    assert datetime.fromisoformat(created["next_run_at"]) == next_nine_in_shanghai(before)
    assert created["runs"] == 0 and created["missed"] == 0 and created["last_run_at"] is None

    r = await harness.client.get(f"/v1/schedules/{created['id']}", headers=harness.reader())
    assert r.status_code == 200 and r.json() == created

    r = await harness.client.get("/v1/schedules", headers=harness.reader())
    assert r.status_code == 200 and r.json() == {"items": [created], "next_cursor": None}

    r = await harness.client.delete(f"/v1/schedules/{created['id']}", headers=harness.sender())
    assert r.status_code == 204
    r = await harness.client.get(f"/v1/schedules/{created['id']}", headers=harness.reader())
    assert r.status_code == 404
    r = await harness.client.delete(f"/v1/schedules/{created['id']}", headers=harness.sender())
    assert r.status_code == 404
    async with harness.herald.db.read() as conn:
        statuses = (await conn.execute(select(jobs.c.status).where(jobs.c.kind == "schedule"))).scalars().all()
    assert statuses == ["done"]  # its job ended too


async def test_the_list_pages_newest_first_with_a_cursor(harness: Harness, inbox_type: str) -> None:
    ids = []
    for i in range(5):
        r = await create(harness, schedule_body(name=f"s{i}"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await harness.client.get("/v1/schedules", params=params, headers=harness.reader())
        assert r.status_code == 200, r.text
        seen += [s["id"] for s in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)  # ids ascend with time: newest first
    r = await harness.client.get("/v1/schedules", params={"cursor": "not-a-cursor"}, headers=harness.reader())
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),  # seconds: more often than once a minute
        ({"cron": "0 0 30 2 *"}, "cron"),  # never fires
        ({"cron": "@reboot"}, "cron"),
        ({"cron": ""}, "cron"),
        ({"cron": "0 9 * * *\x00"}, "cron"),
        ({"cron": "x" * 101}, "cron"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "+08:00"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"catch_up_seconds": 59}, "catch_up_seconds"),
        ({"catch_up_seconds": 10**12}, "catch_up_seconds"),
        ({"name": "n" * 201}, "name"),
        ({"trigger": None}, "trigger"),
        ({"trigger": trigger_body(type="no.such.type")}, "trigger.type"),
        ({"trigger": trigger_body(data={})}, "trigger.data.amount"),
        ({"trigger": trigger_body(channels=["pigeon"])}, "trigger.channels.0"),
        ({"trigger": trigger_body(to=[])}, "trigger.to"),
        ({"trigger": trigger_body(to=None)}, "trigger.to"),
        ({"trigger": trigger_body(send_at="2030-01-01T09:00:00+08:00")}, "trigger.send_at"),
        ({"trigger": trigger_body(expires_at="2030-01-01T09:00:00+08:00")}, "trigger.expires_at"),
        ({"trigger": trigger_body(cancellation_key="k" * 201)}, "trigger.cancellation_key"),
        ({"trigger": trigger_body(surprise=1)}, "trigger.surprise"),
        ({"every": "day"}, "every"),
    ],
)
async def test_every_bad_field_is_named_and_nothing_is_created(
    harness: Harness, inbox_type: str, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**schedule_body(), **change}.items() if v is not None}
    r = await create(harness, body, **{"Idempotency-Key": "k1"})
    assert field in fields_named(r), r.text
    assert await count(harness, schedules) == 0 and await count(harness, jobs) == 0
    r = await create(harness, schedule_body(), **{"Idempotency-Key": "k1"})  # the key was released
    assert r.status_code == 201, r.text


async def test_the_cron_and_the_trigger_are_named_together(harness: Harness, inbox_type: str) -> None:
    r = await create(harness, schedule_body(cron="0 0 31 4 *", trigger=trigger_body(data={}, send_at=None)))
    assert sorted(fields_named(r)) == ["cron", "trigger.data.amount"]


async def test_a_trigger_is_refused_as_a_real_trigger_would_be(harness: Harness, inbox_type: str) -> None:
    """The same messages as POST /v1/notifications gives, under ``trigger.``."""
    bad = trigger_body(data={}, channels=["inapp", "pigeon"])
    direct = await harness.trigger(bad)
    scheduled = await create(harness, schedule_body(trigger=bad))
    assert [f"trigger.{e['field']}" for e in direct.json()["errors"]] == fields_named(scheduled)
    assert [e["message"] for e in direct.json()["errors"]] == [e["message"] for e in scheduled.json()["errors"]]


async def test_scopes(harness: Harness, inbox_type: str) -> None:
    r = await harness.client.post("/v1/schedules", json=schedule_body(), headers=harness.reader())
    assert r.status_code == 403
    r = await harness.client.post("/v1/schedules", json=schedule_body())
    assert r.status_code == 401
    r = await create(harness, schedule_body())
    assert r.status_code == 201
    sid = r.json()["id"]
    r = await harness.client.delete(f"/v1/schedules/{sid}", headers=harness.reader())
    assert r.status_code == 403
    r = await harness.client.get(f"/v1/schedules/{sid}", headers=harness.user("u1"))
    assert r.status_code == 401  # a user token is not an API key
    r = await harness.client.get("/v1/schedules", headers=harness.sender())
    assert r.status_code == 403


async def test_unknown_and_hostile_ids_are_404(harness: Harness) -> None:
    for sid in ["sch_nope", "x" * 40, "%E2%80%AE"]:
        r = await harness.client.get(f"/v1/schedules/{sid}", headers=harness.reader())
        assert r.status_code == 404, r.text
    r = await harness.client.get(f"/v1/schedules/{'x' * 41}", headers=harness.reader())
    assert r.status_code == 422


async def test_idempotency_key(harness: Harness, inbox_type: str) -> None:
    first = await create(harness, schedule_body(), **{"Idempotency-Key": "s-1"})
    again = await create(harness, schedule_body(), **{"Idempotency-Key": "s-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    other = await create(harness, schedule_body(cron="0 10 * * *"), **{"Idempotency-Key": "s-1"})
    assert other.status_code == 409
    assert await count(harness, schedules) == 1


async def test_an_audience_and_a_cancellation_key_are_kept(harness: Harness, inbox_type: str) -> None:
    trigger = {
        "type": inbox_type,
        "audience": {"tags": ["vip"]},
        "data": {"amount": "1"},
        "cancellation_key": "weekly-vip",
    }
    r = await create(harness, schedule_body(cron="0 9 * * 1", trigger=trigger))
    assert r.status_code == 201, r.text
    assert r.json()["trigger"] == trigger


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cron=st.text(max_size=30)
    | st.lists(st.sampled_from(["*", "0", "59", "1-5", "*/7", "L", "MON", "#2", "?", "@daily"]), max_size=7).map(
        " ".join
    ),
    timezone=st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York", "Nowhere/Land", "", "\ud800"]),
)
async def test_any_cron_and_timezone_is_201_or_422_naming_them(
    harness: Harness, inbox_type: str, cron: str, timezone: str
) -> None:
    r = await harness.client.post(
        "/v1/schedules",
        content=json.dumps(schedule_body(cron=cron, timezone=timezone)),  # ASCII: lone surrogates escaped
        headers={**harness.sender(), "Content-Type": "application/json"},
    )
    assert r.status_code in (201, 400, 422), r.text
    if r.status_code != 201:
        assert set(e["field"] for e in r.json()["errors"]) <= {"cron", "timezone", "body"}, r.text
