"""Digests (rule 5): what one digest message says, from the events collected for one user.

A type with ``digest: {"channels": ["email"], "window_seconds": 600, "max_items": 50}`` has its
deliveries on those channels collected per user × type × channel instead of sent one by one; the
engine (``engine/digests.py``) sends ONE message when the window ends or ``max_items`` are in.
This module decides what that message says, with no I/O:

- the template context: ``events`` (each with its ``data``, its rendered ``fields`` on the channel,
  a one-line ``title``, ``created_at``, ``actor``, ``target``), ``count``, ``recipient``, ``type``
  and ``window``;
- the fields: ``digest_<name>`` of the channel's template renders the digest's ``<name>``
  (``digest_subject``, ``digest_title``, ``digest_body``, ``digest_html``, …); a text field with no
  digest version, or whose digest version fails (a missing variable, a limit), gets the built-in
  text in zh-CN or English; other fields are kept when constant (a robot's ``msgtype``) and rendered
  against the digest's context otherwise (dropped if that fails).

Every render is in the bounded sandbox (``core/templates.py``), under one shared deadline: a hostile
digest template costs about ``RENDER_SECONDS`` and then the built-in text is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.core.errors import TemplateError
from herald.core.templates import (
    COMMON_FIELDS,
    DIGEST_PREFIX,
    RENDER_SECONDS,
    has_recipient_fields,
    recipient_view,
    render_fields,
    render_for_recipient,
    without_digest_fields,
)

TEXT_FIELDS = ("subject", "title", "summary", "body", "text", "html")
"""The fields a digest message always has words for (the built-in text when the template has none)."""
EVENT_MAX_CHARS = 8192
"""An event whose data and fields take more than this as JSON comes with them left out (``truncated``):
a digest of up to 1,000 events stays a few megabytes at most."""
HEADLINE_MAX_CHARS = 120
BUILTIN_LISTED = 50
"""The built-in text lists this many events' titles, then says how many more there are."""
MIN_RENDER_SECONDS = 0.05
INAPP = "inapp"


@dataclass(frozen=True)
class DigestEvent:
    """One collected event, as the digest's template sees it."""

    notification_id: str
    created_at: datetime
    data: Mapping[str, Any]
    fields: Mapping[str, Any]
    """The event's own template on the digest's channel, rendered for the recipient."""
    actor: Mapping[str, Any] | None = None
    target: Mapping[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        """``${events[i]}``: its data and fields (left out when too large), and a one-line title."""
        data, fields, truncated = dict(self.data), dict(self.fields), False
        if _json_size(data) + _json_size(fields) > EVENT_MAX_CHARS:
            data, fields, truncated = {}, {}, True
        return {
            "notification_id": self.notification_id,
            "created_at": self.created_at.isoformat(),
            "title": headline(self.fields),
            "data": data,
            "fields": fields,
            "actor": self.actor,
            "target": self.target,
            "truncated": truncated,
        }


@dataclass(frozen=True)
class DigestWindow:
    type_key: str
    type_name: str
    opened_at: datetime
    flush_at: datetime


@dataclass
class Rendered:
    """A digest message's fields, and why the type's digest template was not (all) used."""

    fields: dict[str, Any]
    errors: list[str] = field(default_factory=list)


def headline(fields: Mapping[str, Any]) -> str:
    """An event in one line: its title, else its subject, summary, text or body."""
    for name in ("title", "subject", "summary", "text", "body"):
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            line = " ".join(value.split())
            return line if len(line) <= HEADLINE_MAX_CHARS else line[: HEADLINE_MAX_CHARS - 1] + "…"
    return ""


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return EVENT_MAX_CHARS + 1


def digest_context(events: Sequence[DigestEvent], profile: Mapping[str, Any], window: DigestWindow) -> dict[str, Any]:
    """What a digest template renders with."""
    views = [e.view() for e in events]
    return {
        "events": views,
        "count": len(views),
        "recipient": recipient_view(profile),
        "type": {"key": window.type_key, "name": window.type_name},
        "window": {"start": window.opened_at.isoformat(), "end": window.flush_at.isoformat()},
    }


def event_fields(
    prepared: Mapping[str, Any], data: Mapping[str, Any], profile: Mapping[str, Any], *, deadline: float
) -> dict[str, Any]:
    """An event's stored rendering finished for the recipient (``${recipient.name}``), within what is
    left of ``deadline`` (``time.monotonic()``); past it, those fields are left empty."""
    if not has_recipient_fields(prepared):
        return dict(prepared)
    left = deadline - time.monotonic()
    if left <= 0:
        return {k: v for k, v in prepared.items() if not has_recipient_fields(v)}
    finished, _ = render_for_recipient(prepared, data, profile, seconds=min(left, RENDER_SECONDS))
    return finished


def is_digest_field(name: str) -> bool:
    return name.startswith(DIGEST_PREFIX) and len(name) > len(DIGEST_PREFIX)


def template_digest_problems(
    channel: str, fields: Mapping[str, Any], *, model: Any, generic: bool
) -> list[tuple[str, str]]:
    """``(field, why)`` for each digest field of a template saved for ``channel`` that cannot be:
    the in-app inbox has none; a ``digest_<name>`` must name a field of the channel's template (its
    ``model``'s fields, or the common ones for a ``generic`` channel; any for a channel that sends
    its content as is, like the webhook)."""
    if channel == INAPP:
        why = "the in-app inbox has no digest (a type's merge updates one item instead)"
        return [(name, why) for name in fields if name.startswith(DIGEST_PREFIX)]
    known: list[str] | None = None
    if model is not None:
        known = list(COMMON_FIELDS)
        for name, info in model.model_fields.items():
            known += [name] + ([info.alias] if info.alias else [])
        known = list(dict.fromkeys(known))
    elif generic:
        known = list(COMMON_FIELDS)
    return digest_field_problems(fields, known)


def digest_field_problems(fields: Mapping[str, Any], known: Sequence[str] | None) -> list[tuple[str, str]]:
    """``(field, why)`` for each ``digest_<name>`` of a template whose ``<name>`` the channel does not
    know (``known``: its template fields; None: any)."""
    problems = []
    for name in fields:
        if not name.startswith(DIGEST_PREFIX):
            continue
        base = name[len(DIGEST_PREFIX) :]
        if not base:
            problems.append((name, "a digest field is named digest_<field>, e.g. digest_title"))
        elif known is not None and base not in known:
            problems.append((name, f"'{base}' is not a template field of this channel (known: {', '.join(known)})"))
    return problems


def render_digest(
    template: Mapping[str, Any], context: Mapping[str, Any], locale: str | None, *, seconds: float = RENDER_SECONDS
) -> Rendered:
    """The digest message's fields from the channel's ``template`` (one locale), rendered with
    ``context`` (``digest_context``); see the module's docstring for which text each field gets."""
    deadline = time.monotonic() + seconds
    base = without_digest_fields(template)
    own = {k[len(DIGEST_PREFIX) :]: v for k, v in template.items() if is_digest_field(k)}
    names = list(dict.fromkeys([*base, *own]))
    if not any(n in TEXT_FIELDS for n in names):
        names += ["title", "body"]
    out = Rendered({})
    for name in names:
        if name in own:
            value = _render_one(name, own[name], context, deadline, out.errors, f"{DIGEST_PREFIX}{name}")
            if value is not None:
                out.fields[name] = value
                continue
        if name in TEXT_FIELDS:
            out.fields[name] = _builtin(name, context, locale)
        elif name not in own:
            value = _render_one(name, base[name], context, deadline, out.errors, name)
            if value is not None:
                out.fields[name] = value
    return out


def _render_one(
    name: str, source: Any, context: Mapping[str, Any], deadline: float, errors: list[str], shown: str
) -> Any:
    """``source`` rendered as the field ``name`` (so ``html`` is autoescaped); None, with the error
    noted, when it fails or the deadline has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        errors.append(f"{shown}: not rendered, the digest's render time ({RENDER_SECONDS:g} s) was spent")
        return None
    try:
        return render_fields({name: source}, context, seconds=max(left, MIN_RENDER_SECONDS))[name]
    except TemplateError as exc:
        errors.append(f"{shown}: {exc.message}")
        return None


# -- the built-in text ----------------------------------------------------------------------------

_LIST = (
    "{% for e in events[:" + str(BUILTIN_LISTED) + "] %}· ${e.title or e.created_at}\n{% endfor %}"
    "{% if count > " + str(BUILTIN_LISTED) + " %}{more}\n{% endif %}"
)
_HTML_LIST = (
    "<ul>{% for e in events[:" + str(BUILTIN_LISTED) + "] %}<li>${e.title or e.created_at}</li>{% endfor %}</ul>"
    "{% if count > " + str(BUILTIN_LISTED) + " %}<p>{more}</p>{% endif %}"
)
_MORE = {
    "zh": "…… 另有 ${count - " + str(BUILTIN_LISTED) + "} 条",
    "en": "… and ${count - " + str(BUILTIN_LISTED) + "} more",
}
_HEADLINE = {"zh": "${type.name}：您有 ${count} 条新通知", "en": "${type.name}: ${count} new notifications"}
_BUILTIN: dict[str, dict[str, str]] = {
    lang: {
        "subject": _HEADLINE[lang],
        "title": _HEADLINE[lang],
        "summary": _HEADLINE[lang],
        "body": _LIST.replace("{more}", _MORE[lang]),
        "text": _LIST.replace("{more}", _MORE[lang]),
        "html": "<p>" + _HEADLINE[lang] + "</p>" + _HTML_LIST.replace("{more}", _MORE[lang]),
    }
    for lang in ("zh", "en")
}


def builtin_language(locale: str | None) -> str:
    return "zh" if (locale or "").lower().startswith("zh") else "en"


def _builtin(name: str, context: Mapping[str, Any], locale: str | None) -> str:
    """The built-in text of a field: trusted, bounded (it lists at most ``BUILTIN_LISTED`` titles)."""
    source = _BUILTIN[builtin_language(locale)][name]
    rendered: str = render_fields({name: source}, context)[name]
    return rendered
