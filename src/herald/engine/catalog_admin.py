"""Changing the catalogue (notification types and their templates) and previewing a template: the
checks and writes ``PUT/DELETE /v1/notification-types…`` and ``POST /v1/templates/preview`` make,
shared with the console's type and template pages so both answer the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.digests import template_digest_problems
from herald.core.errors import Invalid, NotFound, TemplateError
from herald.core.links import template_link_problems
from herald.core.merge import key_problem as merge_key_problem
from herald.core.rules import TypeRules, rule_problems
from herald.core.templates import (
    COMMON_FIELDS,
    SAMPLE_RECIPIENT,
    TemplateLimitError,
    check_limits,
    render_for_recipient,
    validate_fields,
    without_digest_fields,
)
from herald.engine.accounts import check_account_choice
from herald.engine.service import Herald
from herald.engine.trigger import missing_templates, render_all
from herald.store import catalog

InTransaction = Callable[[AsyncConnection], Awaitable[None]]
"""Run in the transaction of a change, after it (the console's audit record): both commit or neither."""


def check_channels(herald: Herald, channels: Sequence[str], field: str = "channels") -> None:
    unknown = [(f"{field}.{i}", f"unknown channel '{c}'") for i, c in enumerate(channels) if c not in herald.channels]
    if unknown:
        raise Invalid(unknown)


async def save_type(
    herald: Herald,
    key: str,
    fields: dict[str, Any],
    accounts: Mapping[str, Sequence[str]] | None,
    also: InTransaction | None = None,
) -> tuple[dict[str, Any], bool]:
    """Create or replace type ``key`` from ``fields`` (a ``NotificationTypeIn`` dumped as JSON):
    ``(row, created)``, or Invalid naming each field that cannot be."""
    check_channels(herald, fields["channels"])
    fields["name"] = fields.get("name") or key
    fields["channels"] = list(dict.fromkeys(fields["channels"]))
    if problems := rule_problems(fields["channels"], TypeRules.of(fields)):
        raise Invalid(problems)
    merge = fields.get("merge")
    if merge is not None and (problem := await asyncio.to_thread(merge_key_problem, merge["key"])):
        raise Invalid([("merge.key", problem)])
    async with herald.db.write() as conn:
        if accounts is not None:
            fields["accounts"] = await check_account_choice(
                conn, herald.box, herald.channels, accounts, fields["channels"]
            )
        existing = await catalog.get_type(conn, key)
        templates = await catalog.get_templates(conn, key) if existing is not None else {}
        if existing is not None and templates:  # a live type: a new channel must have its template first
            added = set(fields["channels"]) - set(existing["channels"])
            if errors := missing_templates(herald, key, fields["channels"], templates, only=added):
                raise Invalid([(f, f"{m}: save the template first, then add the channel") for f, m in errors])
        row, created = await catalog.put_type(conn, key, fields)
        if also is not None:
            await also(conn)
    herald.cache_changed("catalog")  # committed: the next trigger here reads it anew, elsewhere once told
    return row, created


async def check_template(herald: Herald, channel: str, fields: dict[str, Any]) -> None:
    """Invalid naming each field of a ``channel`` template that cannot be saved: syntax, links,
    digest fields, the channel's own template model, and limits whatever the data."""
    if channel not in herald.channels:
        raise Invalid([("channel", f"unknown channel '{channel}'")])
    if not fields:
        raise Invalid([("body", "a template needs at least one field (title, body, ...)")])
    try:
        validate_fields(fields)
    except TemplateError as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc
    if channel == "inapp" and (bad_links := template_link_problems(fields)):
        raise Invalid(bad_links)
    kind = herald.channels[channel]
    generic = kind.requires_template or bool(kind.routes_over)
    if digest_problems := template_digest_problems(channel, fields, model=kind.Template, generic=generic):
        raise Invalid(digest_problems)
    own = without_digest_fields(fields)  # the digest's fields (digest_title, …) are checked above
    _check_own_fields(channel, kind.Template, own, generic)
    try:  # a template over a limit whatever the data (nested loops, 'a'.center(10**9)) is refused now
        await asyncio.to_thread(check_limits, fields)
    except TemplateLimitError as exc:
        raise Invalid([(exc.field or "body", f"{exc.message} (limit: {exc.limit})")]) from exc
    except TemplateError as exc:
        raise Invalid([(exc.field or "body", exc.message)]) from exc


def _check_own_fields(channel: str, model: type[BaseModel] | None, own: dict[str, Any], generic: bool) -> None:
    if model is not None:  # the channel's own fields: SMS template code, robot msgtype, ...
        try:
            model.model_validate(own)
        except ValidationError as exc:
            raise Invalid([(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()]) from exc
    # the generic fields; a channel that needs no template of its own (webhook) sends the content as is
    elif generic and (unknown := [f for f in own if f not in COMMON_FIELDS]):
        known = ", ".join(COMMON_FIELDS)
        raise Invalid([(f, f"unknown template field '{f}' for channel '{channel}' (known: {known})") for f in unknown])


async def save_template(
    herald: Herald,
    key: str,
    channel: str,
    locale: str,
    fields: dict[str, Any],
    also: InTransaction | None = None,
) -> dict[str, Any]:
    """Check and store type ``key``'s template for ``channel`` in ``locale``; NotFound without the type."""
    await check_template(herald, channel, fields)
    async with herald.db.write() as conn:
        if await catalog.get_type(conn, key) is None:
            raise NotFound("notification type")
        saved = await catalog.put_template(conn, key, channel, locale, fields)
        if also is not None:
            await also(conn)
    herald.cache_changed("catalog")
    return saved


async def delete_template(
    herald: Herald, key: str, channel: str, locale: str, also: InTransaction | None = None
) -> bool:
    async with herald.db.write() as conn:
        deleted = await catalog.delete_template(conn, key, channel, locale)
        if deleted and also is not None:
            await also(conn)
    if deleted:
        herald.cache_changed("catalog")
    return deleted


async def delete_type(herald: Herald, key: str, also: InTransaction | None = None) -> bool:
    async with herald.db.write() as conn:
        deleted = await catalog.delete_type(conn, key)
        if deleted and also is not None:
            await also(conn)
    if deleted:
        herald.cache_changed("catalog")
    return deleted


def preview_fields(channel: str, locale: str, fields: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """A template's fields as a trigger renders them (every missing variable named at once, as
    Invalid), ``recipient`` being ``SAMPLE_RECIPIENT`` unless the data has its own. CPU-bound:
    callers on the event loop use ``render_preview``."""
    prepared = render_all({channel: {locale: fields}}, [channel], data)[channel][locale]
    rendered, _ = render_for_recipient(prepared, data, SAMPLE_RECIPIENT)
    return rendered


async def render_preview(channel: str, locale: str, fields: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.to_thread(preview_fields, channel, locale, fields, data)
