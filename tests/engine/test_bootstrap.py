"""First start and ``--demo``: the demo is seeded into an empty database only, never over the operator's work."""

from __future__ import annotations

from herald.engine.bootstrap import DEMO_TYPE, ensure_first_admin_key, seed_demo
from tests.conftest import Harness


async def inbox_titles(harness: Harness, user_id: str) -> list[str]:
    r = await harness.client.get("/v1/me/inbox", headers=harness.user(user_id))
    assert r.status_code == 200, r.text
    return [item["title"] for item in r.json()["items"]]


async def test_demo_seeds_an_empty_database_once_and_never_over_edits(harness: Harness) -> None:
    first = await seed_demo(harness.herald)
    assert first.seeded and first.token
    assert await inbox_titles(harness, "alice") == ["充值成功"]
    assert await inbox_titles(harness, "bob") == ["Recharge succeeded"]

    r = await harness.client.put(
        f"/v1/notification-types/{DEMO_TYPE}",
        json={"name": "Edited by the operator", "channels": ["inapp"], "priority": "high"},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text
    r = await harness.client.put(
        f"/v1/notification-types/{DEMO_TYPE}/templates/inapp?locale=zh-CN",
        json={"title": "已改", "summary": "s ${amount}", "body": "b ${amount}"},
        headers=harness.admin(),
    )
    assert r.status_code == 200, r.text

    again = await seed_demo(harness.herald)  # `herald serve --demo` restarted

    assert not again.seeded
    assert again.token  # alice is still there: her token is printed again
    r = await harness.client.get(f"/v1/notification-types/{DEMO_TYPE}", headers=harness.admin())
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["priority"]) == ("Edited by the operator", "high")
    assert r.json()["templates"]["inapp"]["zh-CN"]["title"] == "已改"
    assert await inbox_titles(harness, "alice") == ["充值成功"]  # no second demo notification
    assert await inbox_titles(harness, "bob") == ["Recharge succeeded"]


async def test_demo_leaves_a_database_with_users_alone(harness: Harness) -> None:
    r = await harness.client.put("/v1/users/carol", json={"name": "Carol"}, headers=harness.admin())
    assert r.status_code in (200, 201), r.text

    seed = await seed_demo(harness.herald)

    assert not seed.seeded and seed.token is None
    r = await harness.client.get(f"/v1/notification-types/{DEMO_TYPE}", headers=harness.admin())
    assert r.status_code == 404
    r = await harness.client.get("/v1/users/alice", headers=harness.admin())
    assert r.status_code == 404


async def test_first_admin_key_only_on_an_empty_key_table(harness: Harness) -> None:
    assert await ensure_first_admin_key(harness.herald) is None  # the harness made keys already
