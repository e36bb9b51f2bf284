"""``/console/api-keys``: API keys (admins only). List with prefix, scopes, last use; create (the key is
shown once, on the answer to the POST, never again: only its hash is stored); revoke.

The audit log records the key's id, name and scopes, never the key.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from herald.core.enums import Scope
from herald.core.inputs import text_problem
from herald.store.apikeys import create_api_key, list_api_keys, revoke_api_key
from herald.store.console import audit
from herald.web.console.auth import Admin, Console, ConsoleDenied
from herald.web.console.render import redirect, render

router = APIRouter(include_in_schema=False)
BASE = "/console/api-keys"
MAX_NAME = 200
SCOPES = tuple(s.value for s in Scope if s is not Scope.CONVERSATIONS_READ)
"""``conversations:read`` (reading users' private messages) is given by ``herald apikey create`` only,
on the server's command line: never by a click in the console."""


async def _list_page(
    console: Console,
    *,
    status: int = 200,
    field_errors: dict[str, str] | None = None,
    typed: dict[str, object] | None = None,
    created: dict[str, object] | None = None,
) -> Response:
    async with console.herald.db.read() as conn:
        keys = await list_api_keys(conn)
    return render(
        console,
        "api_keys.html",
        status=status,
        title="keys.title",
        nav="api_keys",
        keys=keys,
        scopes=SCOPES,
        field_errors=field_errors or {},
        typed=typed or {"name": "", "scopes": ["send", "read"]},
        created=created,
    )


@router.get(BASE)
async def keys_page(console: Admin) -> Response:
    return await _list_page(console)


def _name_problem(console: Console, name: str) -> str | None:
    if not name:
        return console.t("keys.err.name_empty")
    if len(name) > MAX_NAME:
        return console.t("keys.err.name_long", max=MAX_NAME)
    if text_problem(name) is not None:
        return console.t("keys.err.name_text")
    return None


@router.post(BASE)
async def create_key(console: Admin) -> Response:
    name = console.form.get("name").strip()
    wanted = console.form.getall("scopes")
    scopes = sorted({s for s in wanted if s in SCOPES})
    errors: dict[str, str] = {}
    problem = _name_problem(console, name)
    if problem is not None:
        errors["name"] = problem
    if not scopes or len(scopes) != len(set(wanted)):
        errors["scopes"] = console.t("keys.err.scopes")
    if errors:
        typed: dict[str, object] = {"name": name[:MAX_NAME], "scopes": scopes}
        return await _list_page(console, status=422, field_errors=errors, typed=typed)
    async with console.herald.db.write() as conn:
        key, plaintext = await create_api_key(conn, name, scopes)
        await audit(conn, console.account, "api_key.create", key.id, {"name": name, "scopes": scopes})
    # shown on this answer only: the page is not cached (Cache-Control: no-store) and never redirected to
    return await _list_page(console, created={"id": key.id, "name": name, "key": plaintext})


@router.post(BASE + "/{key_id}/revoke")
async def revoke_key(key_id: str, console: Admin) -> Response:
    async with console.herald.db.write() as conn:
        known = {str(k["id"]): k for k in await list_api_keys(conn)}
        key = known.get(key_id[:100])
        if key is None or not await revoke_api_key(conn, key_id):
            raise ConsoleDenied(404, "error.not_found")
        await audit(conn, console.account, "api_key.revoke", key_id, {"name": key["name"]})
    console.request.app.state.api_keys.clear()  # this process stops accepting it at once; others within seconds
    return redirect(BASE, notice="notice.key_revoked")
