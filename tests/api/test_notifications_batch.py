"""POST /v1/notifications/batch: many triggers in one request, each answered on its own."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from herald.api.notifications import entry_request_hash
from herald.store.tables import idempotency_keys, inbox_items, jobs, notifications
from herald.store.types import utcnow
from tests.conftest import Harness

BATCH = "/v1/notifications/batch"


async def batch(h: Harness, entries: Any, **headers: str) -> httpx.Response:
    body = json.dumps({"notifications": entries}).encode()  # ASCII: a lone surrogate travels escaped
    return await h.client.post(
        BATCH, content=body, headers={**h.sender(), "Content-Type": "application/json", **headers}
    )


def results(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["results"]
    assert [x["index"] for x in out] == list(range(len(out)))
    return out


async def count(h: Harness, table: Any) -> int:
    async with h.herald.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def titles(h: Harness, user: str) -> list[str]:
    r = await h.client.get("/v1/me/inbox", headers=h.user(user))
    assert r.status_code == 200, r.text
    return [i["title"] for i in r.json()["items"]]


async def test_each_entry_is_accepted_with_its_own_id(harness: Harness, inbox_type: str) -> None:
    entries = [{"type": inbox_type, "to": [f"u{i}"], "data": {"amount": str(i)}} for i in range(3)]
    out = results(await batch(harness, entries))
    assert [x["status"] for x in out] == [202, 202, 202]
    assert all(x["error"] is None and x["recipients"] == 1 and x["replayed"] is False for x in out)
    ids = [x["id"] for x in out]
    assert len(set(ids)) == 3 and all(i.startswith("ntf_") for i in ids)
    for i, notification_id in enumerate(ids):
        r = await harness.client.get(f"/v1/notifications/{notification_id}", headers=harness.reader())
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "processed"
        assert r.json()["delivery_counts"] == {"delivered": 1}
        r = await harness.client.get("/v1/me/inbox", headers=harness.user(f"u{i}"))
        (item,) = r.json()["items"]
        assert item["summary"] == f"充值 {i} 元"  # a new user has no locale: the default, zh-CN


async def test_an_invalid_entry_never_stops_the_others(harness: Harness, inbox_type: str) -> None:
    good = {"type": inbox_type, "to": ["alice"], "data": {"amount": "5"}}
    entries = [
        good,
        {"type": "no.such.type", "to": ["alice"], "data": {}},
        {"type": inbox_type, "to": ["alice"], "data": {}},  # the template needs 'amount'
        {**good, "bogus": 1},
        "not an object",
        {**good, "data": {"amount": "a\x00b"}},
        {**good, "to": []},
        good,
    ]
    out = results(await batch(harness, entries))
    assert [x["status"] for x in out] == [202, 422, 422, 422, 422, 422, 422, 202]
    fields = [[e["field"] for e in x["error"]["errors"]] if x["error"] else None for x in out]
    assert fields == [
        None,
        ["notifications.1.type"],
        ["notifications.2.data.amount"],
        ["notifications.3.bogus"],
        ["notifications.4"],  # not an object: the entry itself
        ["notifications.5.data.amount"],
        ["notifications.6.to"],
        None,
    ]
    assert out[6]["error"]["detail"] == "notifications.6.to: must name at least one recipient"
    assert all(x["id"] is None for x in out if x["status"] == 422)
    assert await count(harness, notifications) == 2
    assert await titles(harness, "alice") == ["充值成功", "充值成功"]


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "no.such.type", "to": ["u1"]},
        {"type": "recharge.succeeded", "to": ["u1"], "data": {}},
        {"type": "recharge.succeeded", "to": ["u1"], "data": {"amount": "1"}, "channels": ["fax"]},
        {"type": "recharge.succeeded", "data": {"amount": "1"}},
        {"type": "recharge.succeeded", "to": ["u1"], "audience": {"all": True}, "data": {"amount": "1"}},
        {"type": "recharge.succeeded", "audience": {}, "data": {"amount": "1"}},
        {"type": "recharge.succeeded", "to": [""], "data": {"amount": "1"}},
        {"type": "recharge.succeeded", "to": ["u1"], "data": {"amount": "1"}, "send_at": "2030-01-01T00:00:00"},
        {"type": "recharge.succeeded", "to": ["u1"], "data": {"amount": "1"}, "send_at": "2030-01-02T00:00:00Z",
         "expires_at": "2030-01-01T00:00:00Z"},
        {"type": "recharge.succeeded", "to": ["u1"], "data": {"amount": "\ud800"}},
        {"type": "bad key!", "to": ["u1"]},
        {"to": ["u1"]},
        [1, 2],
        {"type": "recharge.succeeded", "to": ["u1"], "data": {"amount": "1"}, "accounts": {"email": ["x"]}},
    ],
)  # fmt: skip
async def test_an_entrys_error_is_the_single_triggers_answer(harness: Harness, inbox_type: str, entry: Any) -> None:
    """The same problem, its fields named where they are in the batch (``to`` of entry 1: ``notifications.1.to``)."""
    single = await harness.client.post(
        "/v1/notifications",
        content=json.dumps(entry).encode(),
        headers={**harness.sender(), "Content-Type": "application/json"},
    )
    assert single.status_code == 422, single.text
    good = {"type": inbox_type, "to": ["u0"], "data": {"amount": "1"}}
    out = results(await batch(harness, [good, entry]))
    assert [x["status"] for x in out] == [202, 422]
    expected = single.json()
    for e in expected["errors"]:
        e["field"] = "notifications.1" if e["field"] == "body" else f"notifications.1.{e['field']}"
    expected["detail"] = "; ".join(f"{e['field']}: {e['message']}" for e in expected["errors"])
    assert out[1]["error"] == expected
    assert await count(harness, notifications) == 1


async def test_whole_request_errors_name_the_field(harness: Harness) -> None:
    for body, field in [
        ({}, "notifications"),
        ({"notifications": {"type": "x"}}, "notifications"),
        ({"notifications": []}, "notifications"),
        ({"notifications": [{}] * 1001}, "notifications"),
        ({"notifications": [{}], "extra": 1}, "extra"),
        ([{}], "body"),
    ]:
        r = await harness.client.post(BATCH, json=body, headers=harness.sender())
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.text)
    r = await harness.client.post(
        BATCH, content=b'{"notifications": [', headers={**harness.sender(), "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    r = await harness.client.post(BATCH, content=b"", headers={**harness.sender(), "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    big = [{"type": "t", "to": ["u" * 200] * 20}] * 300  # over 1 MiB
    r = await batch(harness, big)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    r = await harness.client.post(BATCH, content=b"notifications=1", headers=harness.sender())
    assert r.status_code == 415
    assert await count(harness, notifications) == 0


async def test_a_thousand_entries_are_accepted(harness: Harness, inbox_type: str) -> None:
    entries = [{"type": inbox_type, "to": [f"user{i % 50}"], "data": {"amount": str(i)}} for i in range(1000)]
    out = results(await batch(harness, entries))
    assert {x["status"] for x in out} == {202}
    assert await count(harness, notifications) == 1000
    assert await count(harness, inbox_items) == 1000


async def test_same_auth_and_scope_as_the_single_trigger(harness: Harness, inbox_type: str) -> None:
    entries = [{"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}}]
    r = await harness.client.post(BATCH, json={"notifications": entries})
    assert r.status_code == 401
    r = await harness.client.post(BATCH, json={"notifications": entries}, headers=harness.reader())
    assert r.status_code == 403
    r = await harness.client.post(BATCH, json={"notifications": entries}, headers=harness.user("u1"))
    assert r.status_code == 401
    r = await harness.client.post(BATCH, json={"notifications": entries}, headers=harness.admin())
    assert r.status_code == 200 and r.json()["results"][0]["status"] == 202


async def test_a_users_feed_lists_a_batch_in_the_order_sent(harness: Harness) -> None:
    await harness.put_type("seq", ["inapp"], {"inapp": {"title": "${n}"}})
    out = results(await batch(harness, [{"type": "seq", "to": ["bob"], "data": {"n": str(i)}} for i in range(30)]))
    assert [x["id"] for x in out] == sorted(x["id"] for x in out)
    assert await titles(harness, "bob") == [str(i) for i in reversed(range(10, 30))]  # a page of 20


async def test_entries_take_every_path_of_the_single_trigger(harness: Harness, inbox_type: str) -> None:
    await harness.put_type(
        "mail", ["inapp", "email"], {"inapp": {"title": "Hi"}, "email": {"title": "Hi", "body": "b"}}
    )
    await harness.put_type("personal", ["inapp"], {"inapp": {"title": "Dear ${recipient.name}"}})
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    entries = [
        {"type": inbox_type, "to": [{"id": "carol", "locale": "en", "name": "Carol"}], "data": {"amount": "7"}},
        {"type": inbox_type, "to": ["dave"], "data": {"amount": "8"}},
        {"type": "personal", "to": ["carol", "erin"]},
        {"type": "mail", "to": [{"id": "carol", "email": "carol@example.com"}]},
        {"type": inbox_type, "audience": {"all": True}, "data": {"amount": "9"}},
        {"type": inbox_type, "to": ["frank"], "data": {"amount": "10"}, "send_at": soon},
    ]
    out = results(await batch(harness, entries))
    assert [x["status"] for x in out] == [202] * 6, out
    assert [x["recipients"] for x in out] == [1, 1, 2, 1, None, 1]
    assert await titles(harness, "carol") == ["Hi", "Dear Carol", "Recharge succeeded"]  # her locale: en
    assert await titles(harness, "dave") == ["充值成功"]
    assert await titles(harness, "erin") == ["Dear "]  # no name: rendered empty, as the single trigger does
    r = await harness.client.get(f"/v1/notifications/{out[3]['id']}", headers=harness.reader())
    assert {d["channel"] for d in r.json()["deliveries"]} == {"inapp", "email"}
    statuses = []
    for x in out[4:]:
        r = await harness.client.get(f"/v1/notifications/{x['id']}", headers=harness.reader())
        statuses.append(r.json()["status"])
    assert statuses == ["expanding", "scheduled"]
    assert await count(harness, jobs) == 2
    async with harness.herald.db.read() as conn:
        email = (await conn.execute(select(func.count()).select_from(notifications))).scalar_one()
    assert email == 6
    r = await harness.client.get("/v1/users/carol", headers=harness.reader())
    assert r.json()["email"] == "carol@example.com" and r.json()["name"] == "Carol" and r.json()["locale"] == "en"


# -- idempotency keys, one per entry ---------------------------------------------------------


async def test_a_repeated_key_replays_the_first_answer_and_creates_nothing(harness: Harness, inbox_type: str) -> None:
    entries = [
        {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "idempotency_key": "order-1"},
        {"type": inbox_type, "to": ["u2"], "data": {"amount": "2"}, "idempotency_key": "order-2"},
        {"type": inbox_type, "to": ["u3"], "data": {"amount": "3"}},
    ]
    first = results(await batch(harness, entries))
    assert [x["replayed"] for x in first] == [False, False, False]
    again = results(await batch(harness, entries))
    assert [x["status"] for x in again] == [202, 202, 202]
    assert [x["replayed"] for x in again] == [True, True, False]
    assert [x["id"] for x in again[:2]] == [x["id"] for x in first[:2]]
    assert again[0]["recipients"] == 1
    assert again[2]["id"] != first[2]["id"]  # no key: a new notification every time
    assert await count(harness, notifications) == 4


async def test_a_key_with_another_body_is_409(harness: Harness, inbox_type: str) -> None:
    entry = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "idempotency_key": "k"}
    results(await batch(harness, [entry]))
    (out,) = results(await batch(harness, [{**entry, "data": {"amount": "2"}}]))
    assert out["status"] == 409 and out["id"] is None
    assert out["error"]["status"] == 409
    assert out["error"]["errors"] == [
        {
            "field": "notifications.0.idempotency_key",
            "message": "this idempotency_key was used with a different request body",
        }
    ]
    # the same JSON with its members in another order is the same entry
    reordered = {"data": {"amount": "1"}, "idempotency_key": "k", "to": ["u1"], "type": inbox_type}
    (out,) = results(await batch(harness, [reordered]))
    assert out["status"] == 202 and out["replayed"] is True
    assert await count(harness, notifications) == 1


async def test_a_key_repeated_within_one_batch(harness: Harness, inbox_type: str) -> None:
    entry = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "idempotency_key": "dup"}
    out = results(await batch(harness, [entry, entry, {**entry, "to": ["u2"]}]))
    assert [x["status"] for x in out] == [202, 202, 409]
    assert [x["replayed"] for x in out] == [False, True, False]
    assert out[0]["id"] == out[1]["id"]
    assert await count(harness, notifications) == 1


async def test_a_refused_entry_does_not_burn_its_key(harness: Harness, inbox_type: str) -> None:
    entry = {"type": inbox_type, "to": ["u1"], "data": {}, "idempotency_key": "fix-me"}
    (out,) = results(await batch(harness, [entry]))
    assert out["status"] == 422
    assert await count(harness, idempotency_keys) == 0
    # within one batch too: the first refused, the fixed one after it accepted
    fixed = {**entry, "data": {"amount": "3"}}
    out = results(await batch(harness, [entry, fixed, fixed]))
    assert [x["status"] for x in out] == [422, 202, 202]
    assert out[2]["replayed"] is True and out[2]["id"] == out[1]["id"]
    # and once it is recorded, even the refused body is answered by the key (as with the header)
    (out,) = results(await batch(harness, [entry]))
    assert out["status"] == 409


async def test_a_recorded_key_is_answered_before_the_entry_is_checked_again(harness: Harness, inbox_type: str) -> None:
    entry = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "idempotency_key": "k"}
    (first,) = results(await batch(harness, [entry]))
    r = await harness.client.delete(f"/v1/notification-types/{inbox_type}", headers=harness.admin())
    assert r.status_code == 204
    (again,) = results(await batch(harness, [entry]))
    assert again["status"] == 202 and again["replayed"] is True and again["id"] == first["id"]
    (other,) = results(await batch(harness, [{**entry, "idempotency_key": "k2"}]))
    assert other["status"] == 422 and other["error"]["errors"][0]["field"] == "notifications.0.type"


async def test_bad_keys_are_422_naming_the_field(harness: Harness, inbox_type: str) -> None:
    good = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}}
    keys: list[object] = ["", "k" * 256, 5, "k" * 255]
    out = results(await batch(harness, [{**good, "idempotency_key": k} for k in keys]))
    assert [x["status"] for x in out] == [422, 422, 422, 202]
    assert [x["error"]["errors"][0]["field"] for x in out[:3]] == [
        f"notifications.{i}.idempotency_key" for i in range(3)
    ]


async def test_keys_are_scoped_per_api_key_and_apart_from_the_header(harness: Harness, inbox_type: str) -> None:
    body = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}}
    r = await harness.trigger(body, **{"Idempotency-Key": "shared"})
    assert r.status_code == 202
    (out,) = results(await batch(harness, [{**body, "idempotency_key": "shared"}]))
    assert out["status"] == 409  # the single trigger's request was another request
    (first,) = results(await batch(harness, [{**body, "idempotency_key": "mine"}]))
    r = await harness.client.post(
        BATCH, json={"notifications": [{**body, "idempotency_key": "mine"}]}, headers=harness.admin()
    )
    (other,) = results(r)
    assert other["status"] == 202 and other["replayed"] is False and other["id"] != first["id"]


async def test_an_expired_key_is_used_again(harness: Harness, inbox_type: str) -> None:
    entry = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}, "idempotency_key": "old"}
    (first,) = results(await batch(harness, [entry]))
    async with harness.herald.db.write() as conn:
        await conn.execute(idempotency_keys.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    (again,) = results(await batch(harness, [{**entry, "data": {"amount": "2"}}]))
    assert again["status"] == 202 and again["replayed"] is False and again["id"] != first["id"]


async def test_a_key_still_in_flight_is_409(harness: Harness, inbox_type: str) -> None:
    body = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}}
    async with harness.herald.db.write() as conn:  # what a single trigger's claim leaves while it runs
        await conn.execute(
            idempotency_keys.insert().values(
                scope=await _send_key_id(harness), key="busy", request_hash=entry_request_hash(body), state="in_flight",
                created_at=utcnow(), expires_at=utcnow() + timedelta(hours=1),
            )
        )  # fmt: skip
    (out,) = results(await batch(harness, [{**body, "idempotency_key": "busy"}]))
    assert out["status"] == 409 and "still being processed" in out["error"]["detail"]


async def _send_key_id(h: Harness) -> str:
    r = await h.client.get("/v1/api-keys", headers=h.admin())
    return next(k["id"] for k in r.json()["items"] if k["name"] == "sender")  # type: ignore[no-any-return]


# -- absurd input ----------------------------------------------------------------------------


async def test_lone_surrogates_are_named_where_they_are(harness: Harness, inbox_type: str) -> None:
    good = {"type": inbox_type, "to": ["u1"], "data": {"amount": "1"}}
    entries = [
        good,
        {**good, "type": "\ud800"},
        {**good, "to": ["u\udfff"]},
        {**good, "idempotency_key": "k\ud800"},
        {**good, "to": [{"id": "u2", "name": "\ud83d"}]},
        {**good, "\ud800": 1},
    ]
    out = results(await batch(harness, entries))
    assert [x["status"] for x in out] == [202, 422, 422, 422, 422, 422]
    fields = [x["error"]["errors"][0]["field"] for x in out[1:]]
    assert fields[:4] == [
        "notifications.1.type",
        "notifications.2.to.0",
        "notifications.3.idempotency_key",
        "notifications.4.to.0.name",
    ]
    assert fields[4].startswith("notifications.5")
    json.dumps(out, ensure_ascii=False).encode()  # every answer is valid UTF-8: no surrogate echoed back
    assert await count(harness, notifications) == 1
    # in the batch's own members: the whole request, naming the member
    body = b'{"notifications": [], "\\ud800": 1}'
    r = await harness.client.post(BATCH, content=body, headers={**harness.sender(), "Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json", r.text
    r.json()


async def test_entries_are_committed_together_or_not_at_all(
    harness: Harness, inbox_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herald.engine import trigger as trigger_engine

    entries = [
        {"type": inbox_type, "to": [f"u{i}"], "data": {"amount": str(i)}, "idempotency_key": f"k{i}"} for i in range(5)
    ]
    real = trigger_engine.delivery_store.insert_deliveries

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("the database went away mid-batch")

    await harness.put_type(
        "mail", ["inapp", "email"], {"inapp": {"title": "Hi"}, "email": {"title": "Hi", "body": "b"}}
    )
    entries.append({"type": "mail", "to": ["u9"], "idempotency_key": "k9"})  # its delivery row is written last
    monkeypatch.setattr(trigger_engine.delivery_store, "insert_deliveries", broken)
    r = await batch(harness, entries)
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json", r.text
    assert await count(harness, notifications) == 0
    assert await count(harness, inbox_items) == 0
    assert await count(harness, idempotency_keys) == 0  # no key is burnt: the retry is a first try
    monkeypatch.setattr(trigger_engine.delivery_store, "insert_deliveries", real)
    out = results(await batch(harness, entries))
    assert [(x["status"], x["replayed"]) for x in out] == [(202, False)] * 6
    assert await count(harness, notifications) == 6


@pytest.mark.parametrize("share", [True, False])
async def test_concurrent_batches_sharing_keys_accept_each_key_once(
    harness: Harness, inbox_type: str, share: bool
) -> None:
    import asyncio

    def entries(offset: int) -> list[dict[str, Any]]:
        base = 0 if share else offset
        return [
            {"type": inbox_type, "to": [f"u{i}"], "data": {"amount": str(i)}, "idempotency_key": f"key-{base + i}"}
            for i in range(50)
        ]

    answers = await asyncio.gather(*(batch(harness, entries(100 * n)) for n in range(4)))
    outs = [results(r) for r in answers]
    assert all(x["status"] == 202 for out in outs for x in out)
    fresh = sum(not x["replayed"] for out in outs for x in out)
    assert fresh == (50 if share else 200)
    assert await count(harness, notifications) == fresh
    if share:  # every batch answers each key with the one id it was accepted under
        assert all([x["id"] for x in out] == [x["id"] for x in outs[0]] for out in outs)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
_entries = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("recharge.succeeded"), "to": st.just(["u1"]), "data": st.just({"amount": "1"})},
            optional={"idempotency_key": st.sampled_from(["a", "b", "", 7]), "channels": _json, "send_at": _json},
        ),
        st.dictionaries(st.sampled_from(["type", "to", "data", "audience", "idempotency_key", "x"]), _json, max_size=4),
        _json,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=_entries)
async def test_any_list_of_entries_is_answered_entry_by_entry(
    harness: Harness, inbox_type: str, entries: list[Any]
) -> None:
    before = await count(harness, notifications)
    out = results(await batch(harness, entries))
    assert len(out) == len(entries)
    for i, x in enumerate(out):
        assert x["status"] in (202, 409, 422), x
        assert (x["error"] is None) == (x["status"] == 202) and (x["id"] is not None) == (x["status"] == 202)
        if x["error"] is not None:
            assert x["error"]["status"] == x["status"] and x["error"]["detail"]
            assert all(
                e["field"] == f"notifications.{i}" or e["field"].startswith(f"notifications.{i}.")
                for e in x["error"].get("errors", [])
            ), x
    fresh = [x["id"] for x in out if x["status"] == 202 and not x["replayed"]]
    assert len(set(fresh)) == len(fresh)
    assert await count(harness, notifications) - before == len(fresh)
