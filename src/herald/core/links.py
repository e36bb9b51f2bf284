"""Links shown to users (an in-app item's ``action_url`` and ``actions[].url``, an announcement's
``action_url`` and ``media_url``): an absolute http(s) URL or a relative one, never a URL that runs
script (``javascript:``, ``data:``, ``vbscript:``) or leaves the web (``file:``, ...).

The scheme is read as a browser reads it (WHATWG URL): leading and trailing C0 controls and spaces
are ignored and tabs and line breaks removed anywhere, so ``" java\\tscript:…"`` is ``javascript:``.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

WEB_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_IGNORED = re.compile(r"[\t\n\r]")
_TEMPLATE_START = re.compile(r"\$\{|\{%|\{#")
LINK_RULE = "only an absolute http(s) URL or a relative one (no javascript:, data:, ...)"


def link_scheme(url: str) -> str | None:
    """The scheme a browser reads in ``url`` (lowercase), or None for a relative URL."""
    found = _SCHEME.match(_IGNORED.sub("", url).strip("".join(map(chr, range(0x21)))))
    return found.group()[:-1].lower() if found else None


def link_problem(url: Any, *, absolute: bool = False) -> str | None:
    """Why ``url`` may not be shown as a link, or None. ``absolute``: a relative URL is refused too
    (an image the widget loads from Herald's page is no use)."""
    if not isinstance(url, str):
        return "must be a string"
    scheme = link_scheme(url)
    if scheme is None:
        return "must be an absolute http(s) URL" if absolute else None
    if scheme not in WEB_SCHEMES:
        return f"a {scheme}: URL is not allowed; {LINK_RULE}"
    return None


def checked_link(url: str | None) -> str | None:
    """A pydantic ``AfterValidator``: ``url`` itself, or ValueError naming the rule."""
    if url is not None and (problem := link_problem(url)) is not None:
        raise ValueError(problem)
    return url


def checked_media_link(url: str | None) -> str | None:
    if url is not None and (problem := link_problem(url, absolute=True)) is not None:
        raise ValueError(problem)
    return url


def _link_fields(fields: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every link of in-app content: ``action_url``, ``actions.<i>.url``."""
    if "action_url" in fields:
        yield "action_url", fields["action_url"]
    actions = fields.get("actions")
    if isinstance(actions, list):
        for i, action in enumerate(actions):
            if isinstance(action, Mapping) and "url" in action:
                yield f"actions.{i}.url", action["url"]


def template_link_problems(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The links of an in-app template that are wrong whatever the data: the text before the first
    ``${``/``{%``/``{#`` already names a scheme that is not http(s) (``javascript:${x}``).
    ``${url}`` alone is checked when rendered (``rendered_link_problems``)."""
    problems = []
    for path, value in _link_fields(fields):
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append((path, "must be a string"))
            continue
        start = _TEMPLATE_START.search(value)
        literal = value if start is None else value[: start.start()]
        if (start is None or link_scheme(literal) is not None) and (problem := link_problem(literal)) is not None:
            problems.append((path, problem))
    return problems


def rendered_link_problems(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The links of rendered in-app content that may not be shown. Values still to be rendered per
    recipient (not strings) are skipped: ``safe_links`` drops them if they turn out wrong."""
    return [
        (path, problem)
        for path, value in _link_fields(content)
        if isinstance(value, str) and (problem := link_problem(value)) is not None
    ]


def safe_links(content: Mapping[str, Any]) -> dict[str, Any]:
    """``content`` with every link that may not be shown removed: the last guard before an item is
    written (a link rendered per recipient from their profile cannot be refused in the request)."""
    out = dict(content)
    url = out.get("action_url")
    if url is not None and link_problem(url) is not None:
        out["action_url"] = None
    actions = out.get("actions")
    if isinstance(actions, list) and any(
        isinstance(a, Mapping) and "url" in a and link_problem(a["url"]) is not None for a in actions
    ):
        out["actions"] = [
            {k: v for k, v in a.items() if k != "url"}
            if isinstance(a, Mapping) and "url" in a and link_problem(a["url"]) is not None
            else a
            for a in actions
        ]
    return out
