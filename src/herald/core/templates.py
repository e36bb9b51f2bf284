"""``${var}`` templates, rendered by Jinja2's sandbox, within limits.

Variables use ``${`` ``}`` as delimiters (compatible with the seed's ``${amount}``), undefined
variables are errors rather than empty strings (``${coupon | default('')}`` and ``{% if vip is
defined %}`` make one optional), ``null`` prints as nothing, and anything reaching for Python
internals (``${ ''.__class__ }``) is refused by the sandbox. Fields whose name is ``html`` or ends
in ``_html`` are autoescaped.

A render is bounded, so a hostile template costs at most a second and a few megabytes:

- ``range()`` gives at most ``MAX_RANGE`` items; loop iterations and calls together are at most
  ``MAX_STEPS`` per render (every ``for`` is rewritten to count its items);
- no string a template builds (``*``, ``+``, ``~``, ``%``, ``format``, filters such as ``center``,
  ``replace``, ``join``, ``indent``, str methods) may exceed ``MAX_OUTPUT_CHARS``, checked *before*
  the string is allocated, and all the text a render produces, captured output included, is at most
  ``MAX_PRODUCED_CHARS``;
- each rendered field is at most ``MAX_OUTPUT_CHARS`` characters;
- a render stops after ``RENDER_SECONDS`` (checked at every step, so it works in a worker thread,
  which is where callers on an event loop run it).

Over a limit is a ``TemplateLimitError`` naming the limit and the field.

The recipient: a field whose template uses ``recipient`` (``尊敬的 ${recipient.name}``) is rendered per
recipient. ``prepare_fields`` renders everything else once and keeps such a field as a marker
(checked against a sample recipient); ``render_for_recipient`` finishes a prepared set for one user.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import cache
from types import ModuleType
from typing import Any

from herald.core.errors import TemplateError

MAX_OUTPUT_CHARS = 65_536
"""The longest rendered field, and the longest string a template may build."""
MAX_PRODUCED_CHARS = 1_048_576
"""All the text one render may produce (strings built, output captured by ``set`` blocks and macros)."""
MAX_RANGE = 10_000
"""The most items one ``range()`` may give."""
MAX_STEPS = 100_000
"""Loop iterations plus calls (functions, macros, filters) in one render."""
RENDER_SECONDS = 1.0
"""The longest one render may take."""
RECIPIENT_RENDER_SECONDS = 0.2
"""The longest one recipient's fields may take where the caller renders on its event loop (the
worker's build): the template passed ``RENDER_SECONDS`` with a sample recipient when triggered."""
# ints beyond this many bits take seconds to multiply and cannot be printed anyway (4300 digits)
MAX_INT_BITS = 64_000
MAX_PRINT_DEPTH = 32
RECIPIENT = "recipient"
RECIPIENT_FIELDS = ("id", "name", "email", "phone", "locale", "timezone", "data")
"""What ``${recipient.…}`` offers: the user's profile (``data`` is the profile's own data)."""
_MARKER = "$recipient_template"


class TemplateLimitError(TemplateError):
    """A render went over one of the limits; ``limit`` names which."""

    def __init__(self, message: str, *, field: str | None = None, limit: str) -> None:
        super().__init__(message, field=field)
        self.limit = limit


class MissingVariables(TemplateError):
    """Variables a template needs that the data does not have: all of them, not just the first."""

    def __init__(self, variables: list[str], *, field: str | None = None) -> None:
        names = ", ".join(f"'{v}'" for v in variables)
        noun = "variable" if len(variables) == 1 else "variables"
        super().__init__(f"missing {noun} {names}", field=field, variable=variables[0])
        self.variables = variables


SAMPLE_RECIPIENT: Mapping[str, Any] = {
    "id": "sample-user",
    "name": "Sample User",
    "email": "user@example.com",
    "phone": "+8613800000000",
    "locale": "zh-CN",
    "timezone": "Asia/Shanghai",
    "data": {},
}
"""The recipient a per-recipient template is checked against when it is saved or triggered."""


DIGEST_PREFIX = "digest_"
"""A template field ``digest_<name>`` is the ``<name>`` of the type's digest message (core/digests.py):
rendered only when a digest is sent (it reads ``${events}`` and ``${count}``), never at trigger time."""

COMMON_FIELDS = ("title", "summary", "body", "action_url", "actions", "html", "subject", "text", "url")
"""The template fields of a channel without its own ``Template`` model: the in-app item's, and
what email (``subject``, ``text``, ``html``) and Web Push (``url``) read."""


# -- Jinja2, imported on first use (template_engine.py) -------------------------------------------


@cache
def _engine() -> ModuleType:
    """The Jinja2 side, imported when first needed: a server that renders nothing never loads it."""
    from herald.core import template_engine

    return template_engine


def validate_fields(fields: Mapping[str, Any]) -> None:
    """Compile every string in ``fields``; raise TemplateError naming the first bad field."""
    _engine().validate_fields(fields)


def render_fields(
    fields: Mapping[str, Any], context: Mapping[str, Any], *, seconds: float | None = None
) -> dict[str, Any]:
    """Render every string in ``fields`` (nested dicts and lists too) against ``context``."""
    rendered: dict[str, Any] = _engine().render_fields(fields, context, seconds=seconds)
    return rendered


def check_limits(fields: Mapping[str, Any]) -> None:
    """Render ``fields`` with no data (every variable empty) and ``SAMPLE_RECIPIENT``: the check made
    when a template is saved. Raises ``TemplateLimitError`` for a template over a limit whatever the
    data, and ``TemplateError`` for a ``recipient`` field that does not exist (``recipient.nmae``)."""
    _engine().check_limits(fields)


def recipient_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What ``${recipient.…}`` sees of a user: ``RECIPIENT_FIELDS``, a missing ``data`` key printing as nothing."""
    view: dict[str, Any] = _engine().recipient_view(profile)
    return view


# -- per recipient ---------------------------------------------------------------------------------


def uses_recipient(fields: Any) -> bool:
    """Whether any string in ``fields`` is a template that reads ``recipient``."""
    return bool(_engine().uses_recipient(fields))


def uses_variables(fields: Any, names: Collection[str]) -> bool:
    """Whether any string in ``fields`` is a template that reads one of the variables ``names``."""
    return bool(_engine().uses_variables(fields, frozenset(names)))


def prepare_fields(
    fields: Mapping[str, Any], data: Mapping[str, Any], *, seconds: float | None = None
) -> dict[str, Any]:
    """Render ``fields`` once for a whole notification: a field that uses ``recipient`` is checked
    against ``SAMPLE_RECIPIENT`` and kept as a marker for ``render_for_recipient``. Data with its own
    ``recipient`` key keeps it (templates then render once, with that value). Digest fields
    (``digest_…``) are left out: they render only when a digest is sent."""
    if any(isinstance(k, str) and k.startswith(DIGEST_PREFIX) for k in fields):
        fields = without_digest_fields(fields)
    prepared: dict[str, Any] = _engine().prepare_fields(fields, data, seconds=seconds)
    return prepared


def without_digest_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` less the digest's own (``digest_…``)."""
    return {k: v for k, v in fields.items() if not (isinstance(k, str) and k.startswith(DIGEST_PREFIX))}


def has_recipient_fields(prepared: Any) -> bool:
    """Whether a prepared set still has fields to render per recipient."""
    if isinstance(prepared, Mapping):
        return _MARKER in prepared or any(has_recipient_fields(v) for v in prepared.values())
    if isinstance(prepared, list):
        return any(has_recipient_fields(v) for v in prepared)
    return False


def render_for_recipient(
    prepared: Mapping[str, Any],
    data: Mapping[str, Any],
    profile: Mapping[str, Any],
    *,
    seconds: float | None = None,
) -> tuple[dict[str, Any], list[TemplateError]]:
    """A prepared set finished for one user (see ``recipient_view``), and what failed. A field that
    fails for this user (over a limit with their data) is left empty and its error returned, never
    raised, so one recipient's odd profile never stops a fan-out nor fails a send."""
    if not has_recipient_fields(prepared):
        return dict(prepared), []
    finished: tuple[dict[str, Any], list[TemplateError]] = _engine().render_for_recipient(
        prepared, data, profile, seconds=seconds
    )
    return finished
