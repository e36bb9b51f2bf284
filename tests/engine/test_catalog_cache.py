"""The per-process cache of types and templates behind the trigger: fresh at once here, within the
TTL elsewhere, and no statements for them on a warm trigger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from herald.app import create_app
from herald.engine.service import Herald
from herald.engine.trigger import TriggerRequest, trigger
from herald.store import catalog
from tests.conftest import REDIS_URL, Harness, make_settings, running_harness

TYPE = "order.shipped"


async def inbox_titles(h: Harness, user: str) -> list[str]:
    r = await h.client.get("/v1/me/inbox", headers=h.user(user))
    assert r.status_code == 200, r.text
    return [i["title"] for i in r.json()["items"]]


async def put_template(h: Harness, title: str, channel: str = "inapp", **params: str) -> None:
    r = await h.client.put(
        f"/v1/notification-types/{TYPE}/templates/{channel}", json={"title": title}, headers=h.admin(), params=params
    )
    assert r.status_code == 200, r.text


@contextmanager
def statements(herald: Herald) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(herald.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(herald.db.engine.sync_engine, "before_cursor_execute", record)


async def test_a_change_is_seen_by_the_next_trigger_here_at_once(harness: Harness) -> None:
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "v1"}})
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202
    await put_template(harness, "v2")
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202
    assert await inbox_titles(harness, "u1") == ["v2", "v1"]

    # a second locale: now the recipient's locale chooses
    await put_template(harness, "v3 en", locale="en")
    await harness.client.put("/v1/users/u2", json={"locale": "en"}, headers=harness.admin())
    assert (await harness.trigger({"type": TYPE, "to": ["u1", "u2"]})).status_code == 202
    assert (await inbox_titles(harness, "u2"))[0] == "v3 en"

    # a template removed, a channel added, the type deleted: each seen by the very next trigger
    r = await harness.client.delete(f"/v1/notification-types/{TYPE}/templates/inapp?locale=en", headers=harness.admin())
    assert r.status_code == 204
    assert (await harness.trigger({"type": TYPE, "to": ["u2"]})).status_code == 202
    assert (await inbox_titles(harness, "u2"))[0] == "v2"
    r = await harness.client.put(
        f"/v1/notification-types/{TYPE}", json={"channels": ["inapp"], "category": "direct"}, headers=harness.admin()
    )
    assert r.status_code == 200
    r = await harness.trigger({"type": TYPE, "to": ["u3"]})
    r = await harness.client.get(f"/v1/notifications/{r.json()['id']}", headers=harness.reader())
    assert r.json()["category"] == "direct"
    assert (await harness.client.delete(f"/v1/notification-types/{TYPE}", headers=harness.admin())).status_code == 204
    r = await harness.trigger({"type": TYPE, "to": ["u1"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"


async def test_a_type_created_after_an_unknown_trigger_is_seen_at_once(harness: Harness) -> None:
    r = await harness.trigger({"type": TYPE, "to": ["u1"]})
    assert r.status_code == 422
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "new"}})
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202


@asynccontextmanager
async def second_instance(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url), run_worker=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://other") as client:
            yield client


async def test_a_change_made_by_another_process_is_seen_within_the_ttl(harness: Harness, database_url: str) -> None:
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "v1"}})
    cache = harness.herald.catalog
    cache.ttl = 60.0
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202  # cached here
    async with second_instance(database_url) as other:
        r = await other.put(
            f"/v1/notification-types/{TYPE}/templates/inapp", json={"title": "v2"}, headers=harness.admin()
        )
        assert r.status_code == 200, r.text
    # this process has not heard of it (no backplane here): the cached type is used...
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202
    assert await inbox_titles(harness, "u1") == ["v1", "v1"]
    # ...until the TTL has passed since it was read
    cache.ttl = 0.2
    await asyncio.sleep(0.25)
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202
    assert (await inbox_titles(harness, "u1"))[0] == "v2"


async def _titles_until(h: Harness, user: str, wanted: str, *, within: float) -> float:
    """Trigger ``TYPE`` for ``user`` until its newest in-app title is ``wanted``; the seconds it took."""
    started = time.monotonic()
    while True:
        assert (await h.trigger({"type": TYPE, "to": [user]})).status_code == 202
        titles = await inbox_titles(h, user)
        elapsed = time.monotonic() - started
        if titles[0] == wanted or elapsed > within:
            assert titles[0] == wanted, (titles[:3], elapsed)
            return elapsed
        await asyncio.sleep(0.02)


@pytest.mark.skipif(REDIS_URL is None, reason="two processes share the Redis backplane (required under CI=true)")
async def test_an_edit_through_one_process_reaches_the_others_cache_over_the_backplane(database_url: str) -> None:
    settings = make_settings(database_url, redis_url=REDIS_URL)
    async with running_harness(settings) as first, running_harness(settings) as other:
        await first.put_type(TYPE, ["inapp"], {"inapp": {"title": "v1"}})
        assert (await other.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202  # cached over there
        other.herald.catalog.ttl = 3600.0  # from now on only the backplane can refresh it

        await put_template(first, "v2")  # a template edited
        assert await _titles_until(other, "u1", "v2", within=1.0) < 1.0
        r = await first.client.put(  # the type edited: a category is not in the content
            f"/v1/notification-types/{TYPE}", json={"channels": ["inapp"], "category": "direct"}, headers=first.admin()
        )
        assert r.status_code == 200, r.text
        started = time.monotonic()
        while other.herald.catalog._entries and time.monotonic() - started < 1.0:
            await asyncio.sleep(0.02)
        r = await other.trigger({"type": TYPE, "to": ["u1"]})
        r = await other.client.get(f"/v1/notifications/{r.json()['id']}", headers=other.reader())
        assert r.json()["category"] == "direct"
        assert time.monotonic() - started < 1.0
        # the type deleted: refused over there too
        assert (await first.client.delete(f"/v1/notification-types/{TYPE}", headers=first.admin())).status_code == 204
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            r = await other.trigger({"type": TYPE, "to": ["u1"]})
            if r.status_code == 422:
                break
            await asyncio.sleep(0.02)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type", r.text


async def test_the_default_ttl_is_two_seconds(harness: Harness) -> None:
    assert harness.herald.catalog.ttl == 2.0


async def test_a_warm_trigger_reads_no_type_and_writes_in_few_statements(harness: Harness) -> None:
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "hi"}})
    assert (await harness.trigger({"type": TYPE, "to": ["u1"]})).status_code == 202
    with statements(harness.herald) as seen:
        assert (await harness.trigger({"type": TYPE, "to": ["u2"]})).status_code == 202
    assert not [s for s in seen if "notification_types" in s or "FROM templates" in s], seen
    # PostgreSQL: users, notification and inbox item in one statement; SQLite: one per table
    written = [s for s in seen if not s.startswith("BEGIN")]
    assert len(written) == (1 if harness.herald.db.is_postgres else 3), seen
    assert await inbox_titles(harness, "u2") == ["hi"]


async def test_a_one_statement_trigger_on_postgresql_has_no_begin_and_commit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not harness.herald.db.is_postgres:
        pytest.skip("PostgreSQL only: SQLite writes take BEGIN IMMEDIATE (one writer)")
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection as Adapted

    started: list[str] = []
    real = Adapted._start_transaction

    async def counting(self: Any) -> None:
        if self.isolation_level != "autocommit":  # else no BEGIN is sent
            started.append("BEGIN")
        await real(self)

    monkeypatch.setattr(Adapted, "_start_transaction", counting)
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "hi ${n}"}})
    assert (await harness.trigger({"type": TYPE, "to": ["u1"], "data": {"n": "0"}})).status_code == 202
    started.clear()
    with statements(harness.herald) as seen:
        assert (await harness.trigger({"type": TYPE, "to": ["u1", "u2"], "data": {"n": "1"}})).status_code == 202
    assert started == [] and len(seen) == 1, (started, seen)
    # with an Idempotency-Key its answer is stored in the same transaction: BEGIN ... COMMIT
    r = await harness.trigger({"type": TYPE, "to": ["u1"], "data": {"n": "2"}}, **{"Idempotency-Key": "k1"})
    assert r.status_code == 202 and started, started
    started.clear()
    # an inline profile is a second statement: a transaction
    r = await harness.trigger({"type": TYPE, "to": [{"id": "u3", "name": "U"}], "data": {"n": "3"}})
    assert r.status_code == 202 and started, started
    assert await inbox_titles(harness, "u1") == ["hi 2", "hi 1", "hi 0"]
    assert await inbox_titles(harness, "u2") == ["hi 1"]
    assert await inbox_titles(harness, "u3") == ["hi 3"]


async def test_a_read_running_when_the_catalog_changes_is_not_kept(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "v1"}})
    cache = harness.herald.catalog
    cache.invalidate()
    reading, release = asyncio.Event(), asyncio.Event()
    real_get_type = catalog.get_type

    async def slow_get_type(conn: Any, key: str) -> dict[str, Any] | None:
        row = await real_get_type(conn, key)
        reading.set()
        await release.wait()
        return row

    monkeypatch.setattr(catalog, "get_type", slow_get_type)
    pending = asyncio.create_task(cache.get(TYPE))
    await reading.wait()
    cache.invalidate()  # a change committed while the read ran: its result may be old
    release.set()
    assert (await pending) is not None  # its own caller gets an answer...
    monkeypatch.setattr(catalog, "get_type", real_get_type)
    with statements(harness.herald) as seen:
        await cache.get(TYPE)
    assert seen, "the read that raced the change was not kept: the next get reads again"
    with statements(harness.herald) as seen:
        await cache.get(TYPE)
    assert not seen


async def test_concurrent_cold_triggers_share_one_read_and_never_stall(harness: Harness) -> None:
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "hi"}})
    harness.herald.catalog.invalidate()
    with statements(harness.herald) as seen:
        async with asyncio.timeout(30):
            answers = await asyncio.gather(
                *(trigger(harness.herald, TriggerRequest(type=TYPE, to=[f"u{i}"])) for i in range(64))
            )
    assert len({a.id for a in answers}) == 64
    assert len([s for s in seen if "notification_types" in s]) == 1


async def test_a_failed_read_is_raised_to_every_waiter_and_not_kept(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.put_type(TYPE, ["inapp"], {"inapp": {"title": "hi"}})
    cache = harness.herald.catalog
    cache.invalidate()

    async def broken(conn: Any, key: str) -> dict[str, Any] | None:
        await asyncio.sleep(0.01)
        raise OSError("connection reset")

    monkeypatch.setattr(catalog, "get_type", broken)
    outcomes = await asyncio.gather(*(cache.get(TYPE) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcomes)
    monkeypatch.undo()
    assert (await cache.get(TYPE)) is not None
