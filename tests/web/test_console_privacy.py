"""What the console does not show (review of issues 8 and 10): the text of users' private messages,
and the scope that reads them, are out of a console account's reach."""

from __future__ import annotations

from herald.core.console import Role
from herald.store.apikeys import list_api_keys
from tests.conftest import Harness
from tests.web.console_support import logged_in

EN = {"Accept-Language": "en"}
PRIVATE = "my secret pin is 4242"


async def test_a_users_view_shows_who_wrote_not_what(harness: Harness) -> None:
    for user in ("alice", "bob"):
        r = await harness.client.put(f"/v1/users/{user}", json={"name": user.title()}, headers=harness.admin())
        assert r.status_code in (200, 201), r.text
    r = await harness.client.post("/v1/me/messages", json={"to": "bob", "body": PRIVATE}, headers=harness.user("alice"))
    assert r.status_code == 201, r.text
    inbox = (await harness.client.get("/v1/me/inbox", headers=harness.user("bob"))).json()["items"]
    assert any(PRIVATE in (i["summary"] or "") for i in inbox), "bob himself sees the message"

    await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    page = await harness.client.get("/console/trace?user=bob", headers=EN)
    assert page.status_code == 200
    assert "Alice" in page.text, "the conversation's item is listed, with who wrote"
    assert "4242" not in page.text


async def test_the_console_never_gives_the_conversations_scope(harness: Harness) -> None:
    csrf = await logged_in(harness.client, harness.herald, "root", Role.ADMIN)
    form = await harness.client.get("/console/api-keys")
    assert "conversations:read" not in form.text
    r = await harness.client.post(
        "/console/api-keys",
        data={"csrf_token": csrf, "name": "snoop", "scopes": ["read", "conversations:read"]},
    )
    assert r.status_code == 422, "refused, not quietly narrowed"
    async with harness.herald.db.read() as conn:
        assert [k for k in await list_api_keys(conn) if k["name"] == "snoop"] == []
