"""The happy path end to end: trigger -> inbox -> counts -> read."""

from __future__ import annotations

from tests.conftest import Harness


async def test_trigger_lands_in_each_recipients_inbox_in_their_locale(harness: Harness, inbox_type: str) -> None:
    await harness.client.put("/v1/users/bob", json={"locale": "en"}, headers=harness.admin())
    r = await harness.trigger({"type": inbox_type, "to": ["alice", "bob"], "data": {"amount": "100.00"}})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["recipients"] == 2 and body["id"].startswith("ntf_")

    alice = (await harness.client.get("/v1/me/inbox", headers=harness.user("alice"))).json()
    assert [i["title"] for i in alice["items"]] == ["充值成功"]
    assert alice["items"][0]["summary"] == "充值 100.00 元"
    bob = (await harness.client.get("/v1/me/inbox", headers=harness.user("bob"))).json()
    assert bob["items"][0]["body"] == "100.00 credited"

    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts == {"total": 1, "by_category": {"reminder": 1, "announcement": 0, "direct": 0}, "unseen": 1}

    item_id = alice["items"][0]["id"]
    r = await harness.client.post(f"/v1/me/inbox/{item_id}/read", headers=harness.user("alice"))
    assert r.status_code == 200 and r.json()["read"] is True
    counts = (await harness.client.get("/v1/me/inbox/counts", headers=harness.user("alice"))).json()
    assert counts["total"] == 0

    status = (await harness.client.get(f"/v1/notifications/{body['id']}", headers=harness.reader())).json()
    assert {(d["user_id"], d["channel"], d["status"]) for d in status["deliveries"]} == {
        ("alice", "inapp", "delivered"),
        ("bob", "inapp", "delivered"),
    }
