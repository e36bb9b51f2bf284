"""The OpenAPI document a client can be generated from, and the docs pages that show it offline.

Routes declare what they answer with ``documented(Model, ...)`` on their decorators (documentation
only: the handlers' dicts are sent as they are, and the schemathesis test checks they match). What
follows from a route's dependencies is added here once for all: the bearer scheme it needs (API key
or user token), the problem+json answers it can give (401/403 from auth, 400/413/415/422 from a
body, 404 from a path parameter, 409 from ``Idempotency-Key``, 503 when the database is down), and
the ``Idempotency-Key`` header on the POSTs that create something.

Swagger UI and ReDoc are served from the ``fastapi-offline`` package's copies: a server without
internet access (or a browser behind a firewall) still shows its API docs.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.models import Schema
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from herald.api.auth import current_user
from herald.api.content_type import EXEMPT_PREFIXES
from herald.api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from herald.api.realtime_auth import stream_user
from herald.core.enums import Scope

DOCS_ASSETS_PATH = "/docs-assets"
REF_TEMPLATE = "#/components/schemas/{model}"
_REF_PREFIX = REF_TEMPLATE.removesuffix("{model}")
API_KEY_SCHEME = "ApiKey"
USER_TOKEN_SCHEME = "UserToken"  # noqa: S105 (a scheme name, not a secret)
IDEMPOTENCY_HEADER = "Idempotency-Key"
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

_DESCRIPTIONS = {
    400: "Malformed request (JSON that does not parse, a cursor this API did not give, a bad Idempotency-Key)",
    401: "No credentials, or not the kind this operation takes",
    403: "The API key lacks the scope this operation needs",
    404: "No such resource (or it belongs to someone else)",
    409: "Conflict: this Idempotency-Key was used with another body, or its first request is still running",
    413: "The request body is over 1 MiB",
    415: "The request body is not sent as Content-Type: application/json",
    422: "Invalid input; `errors` names each field",
    429: "Too many requests (realtime: this user already holds the most streams one process allows)",
    503: "The database is unreachable; retry after `Retry-After` seconds",
}


# ---------------------------------------------------------------------------------------------
# Response models (documentation: API.md's shapes, checked against real answers by schemathesis)


class _Out(BaseModel):
    # Documentation only, never used to validate: ``documented`` names them by reference, and
    # ``build_openapi`` builds their schemas on the first request of /openapi.json. Built at import
    # and handed to FastAPI, they cost every start ~40 ms and ~1 MiB (a TypeAdapter per route and status).
    model_config = ConfigDict(extra="allow", defer_build=True)


class ProblemError(_Out):
    field: str
    message: str


class Problem(_Out):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class Health(_Out):
    status: str
    version: str | None = None


class UserOut(_Out):
    id: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    channels: dict[str, Any]
    tags: list[str]
    data: dict[str, Any]
    created_at: str | None
    updated_at: str | None


class TokenOut(_Out):
    token: str = Field(description="An HS256 JWT for the `UserToken` scheme")
    expires_at: str


class NotificationTypeOut(_Out):
    key: str
    name: str
    names: dict[str, str] = Field(default_factory=dict, description="`{locale: name}`")
    category: str
    priority: str
    channels: list[str]
    critical: bool
    ttl_seconds: int | None
    description: str | None
    accounts: dict[str, Any] | None
    quiet_hours: str = Field(default="defer", description="defer | drop | deliver")
    dedup_seconds: int | None = None
    caps: list[dict[str, Any]] = Field(default_factory=list)
    throttle: dict[str, Any] | None = None
    merge: dict[str, Any] | None = None
    digest: dict[str, Any] | None = None
    created_at: str | None
    updated_at: str | None


class NotificationTypeDetail(NotificationTypeOut):
    templates: dict[str, dict[str, dict[str, Any]]] = Field(description="`{channel: {locale: fields}}`")


class NotificationTypePage(_Out):
    items: list[NotificationTypeOut]
    next_cursor: str | None


class TemplateOut(_Out):
    type: str
    channel: str
    locale: str
    fields: dict[str, Any]
    updated_at: str


class PreviewOut(_Out):
    type: str
    channel: str
    locale: str
    fields: dict[str, Any]


class AcceptedOut(_Out):
    id: str
    status: str
    recipients: int | None


class BatchResultOut(_Out):
    """One entry's answer: what ``POST /v1/notifications`` would have answered for it."""

    index: int = Field(description="The entry's position in `notifications`, from 0")
    status: int = Field(description="202 accepted (or replayed), 409 idempotency conflict, 422 invalid")
    id: str | None = Field(description="The notification's id when accepted or replayed")
    recipients: int | None = Field(default=None, description="As `recipients` of a single trigger's answer")
    replayed: bool = Field(default=False, description="A repeated `idempotency_key`: the first answer, nothing new")
    error: Problem | None = Field(description="The problem+json object a single trigger would have answered")


class BatchOut(_Out):
    results: list[BatchResultOut] = Field(description="One per entry, in the order sent")


class AttemptOut(_Out):
    attempt: int
    outcome: str
    account: str | None = None
    code: str | None
    error: str | None
    started_at: str | None
    finished_at: str | None


class DeliveryOut(_Out):
    id: str
    user_id: str
    channel: str
    account: str | None
    status: str
    reason: str | None = Field(
        description="Why it was skipped, failed or waits, as a code: preference, quiet_hours, dedup, frequency_cap, "
        "throttle, expired, cancelled, merged, digested, no_subscription_quota, no_address, blocked, no_account, "
        "gone, rate_limited, attempts_exhausted, provider_refused, …"
    )
    reason_detail: str | None = Field(default=None, description="The reason in words")
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    updated_at: str | None
    attempt_log: list[AttemptOut]
    read: bool | None = Field(default=None, description="In-app deliveries: whether the user read the item")


class NotificationResponseOut(_Out):
    user_id: str
    item_id: str
    action: str
    reason: str | None
    at: str


class DigestOut(_Out):
    id: str
    user_id: str
    channel: str
    status: str = Field(description="open (collecting) | closing | flushed (its delivery written)")
    count: int = Field(description="Events collected")
    max_items: int
    opened_at: str = Field(description="The window opened with its first event")
    flush_at: str = Field(description="The window's end")
    flushed_at: str | None
    events: list[str] = Field(description="The collected events' notification ids, in order")
    error: str | None = Field(description="Why the type's digest template was not (all) used: the built-in text was")


class NotificationOut(_Out):
    id: str
    type: str
    category: str
    status: str
    created_at: str
    send_at: str | None
    expires_at: str | None
    cancellation_key: str | None = Field(default=None, description="As given at trigger time")
    schedule: dict[str, str] | None = Field(
        default=None, description="`{id, occurrence_at}`: the schedule occurrence that sent it, if one did"
    )
    recipients: int | None
    channels: list[str]
    delivery_counts: dict[str, int]
    deliveries: list[DeliveryOut]
    deliveries_truncated: bool
    digest: DigestOut | None = Field(
        default=None, description="Set on a digest's own notification: the digest it sends (null on any other)"
    )
    responses: list[NotificationResponseOut] = Field(
        description="The recipients' answers to the items' actions, the first 1,000 by user id"
    )
    responses_total: int
    awaiting: list[str] = Field(
        description="Recipients whose item asks an answer and has none yet, the first 1,000 by user id"
    )
    awaiting_total: int


class CancelledOut(_Out):
    id: str
    status: str
    cancelled_deliveries: int


class KeyCancelledOut(_Out):
    cancelled: int = Field(description="Notifications with the key that had something unsent (0: none had)")
    cancelled_deliveries: int = Field(description="Pending deliveries of theirs that ended cancelled")


class AnnouncementOut(_Out):
    id: str
    title: str
    summary: str | None
    body: str | None
    kind: str
    content_type: str
    media_url: str | None
    action_url: str | None
    data: dict[str, Any]
    audience: dict[str, Any] | None
    starts_at: str | None
    ends_at: str | None
    created_at: str | None
    updated_at: str | None


class AnnouncementPage(_Out):
    items: list[AnnouncementOut]
    next_cursor: str | None


class RateLimitOut(_Out):
    count: int
    per_seconds: float


class ChannelOut(_Out):
    name: str
    title: str
    requires_account: bool
    requires_template: bool
    secret_fields: list[str]
    settings_schema: dict[str, Any]
    template_schema: dict[str, Any] | None
    rate_limit: RateLimitOut | None


class ChannelList(_Out):
    items: list[ChannelOut]


class ChannelAccountOut(_Out):
    name: str
    channel: str
    config: dict[str, Any] = Field(description="Secret fields are masked")
    default: bool
    group: str | None = None
    created_at: str | None
    updated_at: str | None
    error: str | None = None
    callback_url: str | None = None


class ChannelAccountPage(_Out):
    items: list[ChannelAccountOut]
    next_cursor: str | None


class ApiKeyOut(_Out):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: str | None
    revoked_at: str | None


class ApiKeyPage(_Out):
    items: list[ApiKeyOut]
    next_cursor: str | None


class EventWebhookOut(_Out):
    name: str
    url: str
    secret: str = Field(description="Always masked")
    events: list[str]
    created_at: str
    updated_at: str
    error: str | None = None


class EventWebhookPage(_Out):
    items: list[EventWebhookOut]
    next_cursor: str | None


class ItemResponseOut(_Out):
    action: str
    reason: str | None
    at: str


class InboxItemOut(_Out):
    id: str
    type: str | None
    category: str
    title: str | None
    summary: str | None
    body: str | None
    data: dict[str, Any]
    actor: dict[str, Any] | None
    count: int = Field(default=1, description="How many events the item stands for: above 1 once merged")
    actors: list[dict[str, Any]] = Field(
        default_factory=list, description="The actors of those events, newest first, each once, at most 5"
    )
    target: dict[str, Any] | None
    action_url: str | None
    actions: list[Any]
    response: ItemResponseOut | None = Field(
        default=None, description="The user's own answer to the item's actions (null: not answered)"
    )
    read: bool
    read_at: str | None
    seen_at: str | None
    archived: bool
    created_at: str | None
    expires_at: str | None
    kind: str | None = None
    content_type: str | None = None
    media_url: str | None = None


class ActionAnswerOut(_Out):
    item_id: str
    notification_id: str | None
    action: str
    reason: str | None
    at: str
    item: InboxItemOut = Field(description="The item after the answer: read, with its `response`")


class InboxPage(_Out):
    items: list[InboxItemOut]
    next_cursor: str | None


class InboxCounts(_Out):
    total: int = Field(description="Unread items")
    by_category: dict[str, int]
    unseen: int = Field(description="Unread items not seen yet (`POST /v1/me/inbox/seen` sets it to 0)")


class ReadAllOut(_Out):
    updated: int


class BannerList(_Out):
    items: list[InboxItemOut]


class MessageOut(_Out):
    """A direct message (docs/direct-messages.md)."""

    id: str = Field(description="`msg_…`")
    conversation: str = Field(description="The other user of the conversation, seen from the reader")
    from_: str = Field(alias="from")
    to: str
    body: str
    created_at: str


class MessagePage(_Out):
    items: list[MessageOut]
    next_cursor: str | None


class ConversationOut(_Out):
    peer: str = Field(description="The other user's id")
    peer_name: str | None
    unread: int = Field(description="Messages from the peer not read yet")
    read_at: str | None = Field(description="When the reader last read the conversation")
    updated_at: str = Field(description="The time of the last message")
    last_message: MessageOut


class ConversationPage(_Out):
    items: list[ConversationOut]
    next_cursor: str | None


class BlockOut(_Out):
    user_id: str
    created_at: str


class BlockPage(_Out):
    items: list[BlockOut]
    next_cursor: str | None


class ConversationReadOut(_Out):
    """One admin read of a conversation: who, which, when (never what)."""

    id: str = Field(description="`cvr_…`")
    key_id: str
    key_name: str
    user_id: str
    peer: str
    at: str


class ConversationReadPage(_Out):
    items: list[ConversationReadOut]
    next_cursor: str | None


class RealtimeEvent(_Out):
    """One event of the stream (docs/realtime.md): SSE `id:`, `event:` and `data:` lines."""

    id: str | None = Field(description="`evt_…`: send it back as `Last-Event-ID` or `?since=` to resume")
    event: str = Field(
        description="`ready`, `inbox.new`, `inbox.updated`, `inbox.removed`, `counts`, `announcement.new`,"
        " `announcement.updated`, `announcement.removed`, `banner.changed`, `heartbeat`, `sync.required`,"
        " `token.expired`"
    )
    data: dict[str, Any]


class JsonObject(_Out):
    """A JSON object whose fields the channel defines."""


# ---------------------------------------------------------------------------------------------
# What a route decorator says


_REQUEST_BODIES: dict[str, type[BaseModel]] = {}
"""Request bodies of routes that read their body themselves (``documented(request_body=...)``)."""


def documented(
    model: type[BaseModel] | None,
    status: int = 200,
    *,
    also: tuple[int, ...] = (),
    errors: tuple[int, ...] = (),
    idempotent: bool = False,
    description: str = "Success",
    request_body: type[BaseModel] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: the success answer's model (``None`` for a 204) for
    ``status`` and the other success statuses in ``also``, further problem answers the route gives
    beyond those its dependencies imply, and whether it takes an ``Idempotency-Key``. The handler's
    own return value is untouched (``response_model=None``). ``request_body``: the documented body
    of a route that parses its body itself (the batch trigger validates each entry on its own)."""
    responses: dict[int | str, dict[str, Any]] = {}
    if model is not None:  # by reference: the schema is built with the document (see _Out)
        content = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}}
        for code in (status, *also):
            responses[code] = {"description": description, "content": content}
    for code in errors:
        responses[code] = {"description": _DESCRIPTIONS.get(code, "Error")}
    extra: dict[str, Any] = {"x-herald-idempotent": True} if idempotent else {}
    if request_body is not None:
        _REQUEST_BODIES[request_body.__name__] = request_body
        ref = {"$ref": f"#/components/schemas/{request_body.__name__}"}
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    return {"response_model": None, "responses": responses, "openapi_extra": extra or None}


# ---------------------------------------------------------------------------------------------
# The document


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _auth_of(route: APIRoute) -> tuple[str | None, str | None]:
    """(scheme, scope) of a route: (API_KEY_SCHEME, 'send'), (USER_TOKEN_SCHEME, None) or (None, None)."""
    for dep in _dependencies(route.dependant):
        call = dep.call
        if call is current_user or call is stream_user:
            return USER_TOKEN_SCHEME, None
        if call is not None and getattr(call, "__qualname__", "").startswith("require_scope."):
            scope = inspect.getclosurevars(call).nonlocals.get("scope")
            return API_KEY_SCHEME, str(scope) if scope else None
    return None, None


def _problem_response(code: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    description = (existing or {}).get("description") or _DESCRIPTIONS.get(code, "Error")
    if code == 422 and description == "Validation Error":
        description = _DESCRIPTIONS[422]
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if code == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}}
    if code == 503:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}}
    return response


def _errors_for(path: str, route: APIRoute, scheme: str | None, operation: dict[str, Any]) -> set[int]:
    codes = {int(c) for c in operation.get("responses", {}) if c.isdigit() and int(c) >= 400}
    has_body = route.body_field is not None or "requestBody" in operation
    params = operation.get("parameters", [])
    if scheme is not None:
        codes.add(401)
    if scheme == API_KEY_SCHEME:
        codes.add(403)
    if has_body:
        codes |= {400, 413, 415}
    codes.add(422)  # every request passes the app's door (limits.refuse_bad_input): bad text in its URL is 422
    if any(p.get("in") == "path" for p in params):
        codes.add(404)
    if any(p.get("name") == "cursor" for p in params):
        codes.add(400)
    if operation.get("x-herald-idempotent"):
        codes |= {400, 409}
    if path.startswith("/v1/"):
        codes.add(503)
    if any(m in _BODY_METHODS for m in route.methods or ()) and path.startswith("/v1/"):
        codes.add(413)  # the size limit applies to any request body, wanted or not
        if not path.startswith(EXEMPT_PREFIXES):
            codes.add(415)  # and so does Content-Type: application/json
    return codes


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schemas["Problem"].pop("$defs", {}).items():
        schemas[name] = sub
    _add_response_schemas(schema, schemas)
    for name, model in _REQUEST_BODIES.items():
        schemas[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in schemas[name].pop("$defs", {}).items():
            schemas.setdefault(sub_name, sub)  # the models a body shares with others: documented once
    components["securitySchemes"] = {
        API_KEY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hk_…",
            "description": "An API key (`herald apikey create`), with the scopes `send`, `read`, `admin`;"
            " `admin` may do everything but read users' conversations, which takes `conversations:read`."
            " For the server-side endpoints.",
        },
        USER_TOKEN_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A user token (`POST /v1/users/{user_id}/tokens`, or an HS256 JWT with `sub` and"
            " `exp` signed with the server's secret). For `/v1/me/…`: only ever that user's data.",
        },
    }
    # operation ids are route names (app.operation_id); FastAPI may keep a route's own unique_id unprefixed
    routes = {route.name: route for route in _api_routes(app.routes) if route.include_in_schema}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            route = routes.get(operation.get("operationId", ""))
            if route is None:
                continue
            _complete_operation(path, operation, route)
    return schema


def _add_response_schemas(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The schemas of the response models ``documented`` refers to by name, built now (see ``_Out``)."""
    models: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = [_Out]
    while todo:
        for sub in todo.pop().__subclasses__():
            models[sub.__name__] = sub
            todo.append(sub)
    wanted = sorted(name for name in _referenced(document) if name in models and name not in schemas)
    if wanted:
        _, defs = models_json_schema([(models[name], "serialization") for name in wanted], ref_template=REF_TEMPLATE)
        for name, sub_schema in defs.get("$defs", {}).items():  # encoded as get_openapi encodes its own
            schemas.setdefault(
                name, jsonable_encoder(Schema.model_validate(sub_schema), by_alias=True, exclude_none=True)
            )


def _referenced(value: Any) -> Iterator[str]:
    """The component names ``value`` refers to (``{"$ref": "#/components/schemas/Name"}``), anywhere in it."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            yield ref.removeprefix(_REF_PREFIX)
        for item in value.values():
            yield from _referenced(item)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced(item)


def _api_routes(routes: Sequence[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI versions differ in how they keep them)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
            continue
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def _complete_operation(path: str, operation: dict[str, Any], route: APIRoute) -> None:
    scheme, scope = _auth_of(route)
    if scheme is not None:
        operation["security"] = [{scheme: []}]
        if scope is not None:
            operation["x-herald-scope"] = scope
            note = f"Needs an API key with the `{scope}` scope (or `admin`)."
            if not Scope(scope).implied_by_admin:
                note = f"Needs an API key with the `{scope}` scope (`admin` alone is not enough)."
            operation["description"] = (operation.get("description", "") + "\n\n" + note).strip()
    else:
        operation["security"] = []
    if operation.get("x-herald-idempotent"):
        operation.setdefault("parameters", []).append(
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "Replays within 24 h with the same body return the first answer and"
                " create nothing; the same key with another body is 409.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    responses = operation.setdefault("responses", {})
    for response in responses.values():  # a streamed answer (text/event-stream): the model alone, no "type"
        for media in response.get("content", {}).values():
            if "$ref" in media.get("schema", {}):
                media["schema"] = {"$ref": media["schema"]["$ref"]}
    for code in _errors_for(path, route, scheme, operation):
        responses[str(code)] = _problem_response(code, responses.get(str(code)))
    operation["responses"] = responses = dict(sorted(responses.items()))
    for code, response in responses.items():  # FastAPI's own default for the success answer
        if code.startswith("2") and response.get("description") == "Successful Response":
            response["description"] = "Success"


def install_openapi(app: FastAPI) -> None:
    """Replace FastAPI's document builder with ``build_openapi`` (computed once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Swagger UI at ``docs_url`` and ReDoc at ``redoc_url``, their scripts served by this app."""
    assets = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon.png",
            # Swagger UI would otherwise send the document to an online validator for its badge
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            redoc_js_url=f"{root}{DOCS_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
