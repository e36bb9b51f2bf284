"""Notifications (API key): trigger one or a batch, status with every delivery's trace, cancel."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.api.auth import HeraldDep, ReadKey, SendKey
from herald.api.idempotency import Store, idempotent, open_response, seal_response
from herald.api.limits import refuse_nul_in_url
from herald.api.openapi import AcceptedOut, BatchOut, CancelledOut, KeyCancelledOut, NotificationOut, documented
from herald.api.params import audience_of
from herald.api.problems import _field
from herald.api.schemas import CancelByKeyIn, Strict, TriggerIn
from herald.api.views import delivery_view, inapp_delivery_view
from herald.core.errors import Invalid
from herald.core.inputs import BadInput, check_json, printable
from herald.engine import notifications as notification_engine
from herald.engine import trigger as trigger_engine
from herald.engine.service import Herald
from herald.store.cancellation import KeyCancelled
from herald.store.idempotency_batch import DoneKey, KeyRow, find_keys, record_keys
from herald.store.types import utcnow

router = APIRouter(prefix="/v1", tags=["notifications"], dependencies=[Depends(refuse_nul_in_url)])
BATCH_MAX = 1000
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
_KEY: TypeAdapter[str | None] = TypeAdapter(IdempotencyKey | None)


def _request_of(body: TriggerIn) -> trigger_engine.TriggerRequest:
    return trigger_engine.TriggerRequest(
        type=body.type,
        to=[r if isinstance(r, str) else r.model_dump(exclude_unset=True) for r in body.to]
        if body.to is not None
        else None,
        audience=audience_of(body.audience),
        data=body.data,
        actor=body.actor,
        target=body.target,
        send_at=body.send_at,
        expires_at=body.expires_at,
        channels=body.channels,
        accounts=body.accounts,
        actions=[a.model_dump(exclude_none=True) for a in body.actions] if body.actions is not None else None,
        cancellation_key=body.cancellation_key,
    )


@router.post("/notifications", status_code=202, **documented(AcceptedOut, 202, idempotent=True))
async def trigger(body: TriggerIn, herald: HeraldDep, key: SendKey, request: Request) -> Response:
    req = _request_of(body)

    async def handler(store: Store | None) -> tuple[int, Any]:
        async def on_commit(conn: AsyncConnection, accepted: trigger_engine.Accepted) -> None:
            assert store is not None
            await store(conn, 202, accepted.as_json())

        accepted = await trigger_engine.trigger(herald, req, on_commit=on_commit if store is not None else None)
        return 202, accepted.as_json()

    return await idempotent(request, herald, key.id, handler)


# -- batch ---------------------------------------------------------------------------------------


class TriggerBatchEntry(TriggerIn):
    """The body of ``POST /v1/notifications``, with its own idempotency key."""

    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="What the `Idempotency-Key` header is to a single trigger, for this entry alone",
    )


class TriggerBatchIn(Strict):
    notifications: Annotated[list[TriggerBatchEntry], Field(min_length=1, max_length=BATCH_MAX)]


class _BatchShape(BaseModel):
    """The batch as parsed before its entries are looked at: each entry is checked on its own (so
    not ``Strict``, whose NUL check would refuse the whole batch for one entry's data)."""

    model_config = ConfigDict(extra="forbid")

    notifications: Annotated[list[Any], Field(min_length=1, max_length=BATCH_MAX)]


_TITLES = {409: "Conflict", 422: "Invalid request"}
_ENTRY_HASH_PREFIX = b"POST /v1/notifications/batch entry\n"
_MISMATCH = "this idempotency_key was used with a different request body"
_IN_FLIGHT = "a request with this idempotency_key is still being processed; retry later"
_UNREADABLE = "the first response to this idempotency_key cannot be read back: was HERALD_SECRET_KEY changed?"


def _at(index: int, field: str) -> str:
    """Where an entry's field is in the batch body: ``to`` of the fourth entry is ``notifications.3.to``."""
    return f"notifications.{index}" if field == "body" else f"notifications.{index}.{field}"


def _problem(
    index: int,
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """A problem+json object as ``problems.problem`` sends it, for entry ``index`` of a batch: its
    fields named where they are in the batch body, the detail (unless given) listing them."""
    named = [(_at(index, f), m) for f, m in errors] if errors is not None else None
    if detail is None:
        detail = "; ".join(f"{f}: {m}" for f, m in named or ())
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES[status],
        "status": status,
        "detail": printable(detail),
    }
    if named is not None:
        body["errors"] = [{"field": printable(f), "message": printable(m)} for f, m in named]
    return body


def _invalid(index: int, exc: Invalid) -> dict[str, Any]:
    return _problem(index, exc.status, title=exc.title, errors=exc.errors)


class _EntrySchemaError(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _schema_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """As the app names the fields of a body that fails its model (problems._validation)."""
    return [(_field((*prefix, *e.get("loc", ()))), e.get("msg", "invalid")) for e in exc.errors()]


def _result(
    index: int,
    status: int,
    *,
    accepted: dict[str, Any] | None = None,
    replayed: bool = False,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "index": index,
        "status": status,
        "id": accepted.get("id") if accepted else None,
        "recipients": accepted.get("recipients") if accepted else None,
        "replayed": replayed,
        "error": error,
    }


def _batch_entries(raw: bytes) -> list[Any]:
    """The entries of a batch body, or the whole request's error (400 / 422 naming the field)."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        body = json.loads(raw)
    except ValueError as exc:
        error = getattr(exc, "msg", str(exc))
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", getattr(exc, "pos", 0)),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error},
                }
            ]
        ) from exc
    except RecursionError as exc:
        raise Invalid([("body", "nested too deeply to parse")], status=400, title="Bad request") from exc
    try:
        return _BatchShape.model_validate(body).notifications
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


def entry_request_hash(entry: dict[str, Any]) -> str:
    """What a batch entry's idempotency key is checked against: its members (the key aside) in a
    canonical order, so the same JSON re-serialised is the same entry. Never equal to a single
    trigger's hash (another path): a key is one endpoint's or the other's."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(_ENTRY_HASH_PREFIX + canonical.encode()).hexdigest()


def _entry(raw: Any) -> tuple[trigger_engine.TriggerRequest, str | None, str | None]:
    """One entry as a trigger request, its idempotency key and its request hash; or Invalid /
    ValidationError, as the single trigger answers its body (before its key is looked at)."""
    try:
        check_json(raw)
    except BadInput as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc
    errors: list[tuple[str, str]] = []
    key = None
    without_key = raw
    if isinstance(raw, dict) and "idempotency_key" in raw:
        without_key = {k: v for k, v in raw.items() if k != "idempotency_key"}
        try:
            key = _KEY.validate_python(raw["idempotency_key"])
        except ValidationError as exc:
            errors += _schema_errors(exc, ("idempotency_key",))
    try:  # the single trigger's model: the same messages for the same mistakes
        body = TriggerIn.model_validate(without_key, from_attributes=True)  # as FastAPI validates
    except ValidationError as exc:
        raise _EntrySchemaError(errors + _schema_errors(exc)) from exc
    if errors:
        raise _EntrySchemaError(errors)
    req = _request_of(body)
    if key is None:
        return req, None, None
    return req, key, entry_request_hash(without_key)


@router.post("/notifications/batch", **documented(BatchOut, request_body=TriggerBatchIn))
async def trigger_batch(herald: HeraldDep, key: SendKey, request: Request) -> Response:
    """Up to 1,000 triggers, each answered on its own (202 / 409 / 422, in the order sent); those
    accepted are committed together, in one transaction."""
    entries = _batch_entries(await request.body())
    results: list[dict[str, Any] | None] = [None] * len(entries)
    reqs: list[trigger_engine.TriggerRequest] = []
    positions: list[int] = []
    keys: dict[int, tuple[str, str]] = {}
    for i, raw in enumerate(entries):
        try:
            req, idem_key, request_hash = _entry(raw)
        except Invalid as exc:
            results[i] = _result(i, exc.status, error=_invalid(i, exc))
            continue
        except _EntrySchemaError as exc:
            results[i] = _result(i, 422, error=_problem(i, 422, errors=exc.errors))
            continue
        reqs.append(req)
        positions.append(i)
        if idem_key is not None and request_hash is not None:
            keys[i] = (idem_key, request_hash)
    now = utcnow()
    prepared = dict(zip(positions, await trigger_engine.prepare_many(herald, reqs, now=now), strict=True))
    accepted: list[trigger_engine.Prepared] = []
    if prepared:
        async with herald.db.write() as conn:
            accepted = await _settle(herald, conn, key.id, prepared, keys, results, now=now)
            await trigger_engine.write_prepared(herald, conn, accepted, now=now)
    trigger_engine.after_commit(herald, accepted)
    return JSONResponse({"results": results})


async def _settle(
    herald: Herald,
    conn: AsyncConnection,
    scope: str,
    prepared: dict[int, trigger_engine.Prepared | Invalid],
    keys: dict[int, tuple[str, str]],
    results: list[dict[str, Any] | None],
    *,
    now: datetime,
) -> list[trigger_engine.Prepared]:
    """Fill in the results of the entries that passed their schema, and return those to write.

    An entry with a key is answered as the single trigger answers a request with that
    ``Idempotency-Key``, as if the entries had been sent one after another: the first accepted
    entry with a new key records it (in this transaction, with its answer); a later entry with the
    same key, or one whose key is already recorded, gets the recorded answer (same body) or 409.
    """
    stale_after = timedelta(seconds=herald.settings.lease_seconds)
    answers = {i: p.accepted.as_json() for i, p in prepared.items() if isinstance(p, trigger_engine.Prepared)}
    owners: dict[str, int] = {}
    for i, (idem_key, _) in keys.items():
        if i in answers and idem_key not in owners:
            owners[idem_key] = i
    sealed = {i: seal_response(herald.secret_key, _encode(answers[i])) for i in owners.values()}
    recorded = await record_keys(
        conn,
        scope,
        [DoneKey(k, keys[i][1], 202, sealed[i]) for k, i in owners.items()],
        now=now,
        stale_after=stale_after,
    )
    others = {k for k, _ in keys.values()} - recorded
    state: dict[str, KeyRow | None] = dict(await find_keys(conn, scope, others, now=now, stale_after=stale_after))
    to_write: list[trigger_engine.Prepared] = []
    for i, outcome in prepared.items():
        if i not in keys:
            if isinstance(outcome, Invalid):
                results[i] = _result(i, outcome.status, error=_invalid(i, outcome))
            else:
                results[i] = _result(i, 202, accepted=answers[i])
                to_write.append(outcome)
            continue
        idem_key, request_hash = keys[i]
        row = state.get(idem_key)
        if row is not None:
            results[i] = _recorded(herald, i, row, request_hash)
        elif owners.get(idem_key) == i and idem_key in recorded and not isinstance(outcome, Invalid):
            results[i] = _result(i, 202, accepted=answers[i])
            to_write.append(outcome)
            state[idem_key] = KeyRow(request_hash, "done", 202, sealed[i])
        elif isinstance(outcome, Invalid):
            results[i] = _result(i, outcome.status, error=_invalid(i, outcome))
        else:  # its key's row went away between two statements: as the single trigger, retry later
            results[i] = _result(i, 409, error=_problem(i, 409, _IN_FLIGHT))
    return to_write


def _recorded(herald: Herald, index: int, row: KeyRow, request_hash: str) -> dict[str, Any]:
    if row.request_hash != request_hash:
        return _result(index, 409, error=_problem(index, 409, _MISMATCH, errors=[("idempotency_key", _MISMATCH)]))
    if row.state == "in_flight":
        return _result(index, 409, error=_problem(index, 409, _IN_FLIGHT))
    replayed = open_response(herald.secret_key, row.body) if row.body else None
    if replayed is None:
        return _result(index, 409, error=_problem(index, 409, _UNREADABLE))
    return _result(index, row.status or 202, accepted=json.loads(replayed), replayed=True)


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@router.get("/notifications/{notification_id}", **documented(NotificationOut))
async def get_notification(notification_id: str, herald: HeraldDep, _: ReadKey) -> dict[str, Any]:
    return notification_view(await notification_engine.notification_trace(herald.db, notification_id))


def notification_view(trace: notification_engine.NotificationTrace) -> dict[str, Any]:
    """A notification's trace as ``GET /v1/notifications/{id}`` answers it (the console shows the same)."""
    n = trace.notification
    deliveries = [inapp_delivery_view(i) for i in trace.items] + [
        delivery_view(d, trace.attempts.get(d["id"], [])) for d in trace.deliveries
    ]
    return {
        "id": n["id"],
        "type": n["type_key"],
        "category": n["category"],
        "status": n["status"],
        "created_at": n["created_at"].isoformat(),
        "send_at": n["send_at"].isoformat() if n["send_at"] else None,
        "expires_at": n["expires_at"].isoformat() if n["expires_at"] else None,
        "cancellation_key": n["cancellation_key"],
        "schedule": {"id": n["schedule_id"], "occurrence_at": n["occurrence_at"].isoformat()}
        if n["schedule_id"] and n["occurrence_at"]
        else None,
        "recipients": n["recipients"],
        "channels": n["channels"],
        "delivery_counts": trace.counts,
        "deliveries": deliveries,
        "deliveries_truncated": trace.truncated,
        "digest": trace.digest,
        **trace.answers,
    }


@router.post("/notifications/cancel", **documented(KeyCancelledOut, idempotent=True))
async def cancel_by_key(body: CancelByKeyIn, herald: HeraldDep, key: SendKey, request: Request) -> Response:
    """Cancel what is unsent of every notification triggered with this ``cancellation_key``: 200
    with the count, 0 included (the key matched nothing, or all of it was sent or cancelled already)."""

    async def handler(store: Store | None) -> tuple[int, Any]:
        async def on_done(conn: AsyncConnection, result: KeyCancelled) -> None:
            if store is not None:
                await store(conn, 200, result.as_json())

        result = await notification_engine.cancel_by_key(herald.db, body.cancellation_key, on_done=on_done)
        return 200, result.as_json()

    return await idempotent(request, herald, key.id, handler)


@router.delete("/notifications/{notification_id}", **documented(CancelledOut))
async def cancel_notification(notification_id: str, herald: HeraldDep, _: SendKey) -> dict[str, Any]:
    cancelled = await notification_engine.cancel_notification(herald.db, notification_id)
    return cancelled.as_json()
