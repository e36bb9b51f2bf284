"""Direct messages (个人私信): the rules that need no I/O.

A conversation is the pair of its two users, written in a fixed order so that it has one name
whoever writes; a message's body is text with a deployment-wide limit in characters (Unicode code
points, as a reader counts them, not bytes); the receiver's ``direct`` inbox item shows the last
message shortened to one line.
"""

from __future__ import annotations

from herald.core.inputs import text_problem

ITEM_TYPE = "direct.message"
"""The ``type`` of the receiver's inbox item (category ``direct``): one per conversation."""
SUMMARY_CHARS = 140
"""The last message in the inbox item's summary is cut to this many characters (``…`` included)."""


def pair(user: str, peer: str) -> tuple[str, str]:
    """The conversation of two users, the same whoever of them writes."""
    return (user, peer) if user <= peer else (peer, user)


def message_problems(sender: str, to: str, body: str, *, max_chars: int) -> list[tuple[str, str]]:
    """What is wrong with a message, as (field, message) pairs; empty when it may be sent."""
    problems: list[tuple[str, str]] = []
    if to == sender:
        problems.append(("to", "is you: a message goes to another user"))
    body_problem = text_problem(body)
    if body_problem is not None:
        problems.append(("body", body_problem))
    elif not body.strip():
        problems.append(("body", "is empty: write some text"))
    elif len(body) > max_chars:
        problems.append(("body", f"has {len(body)} characters; at most {max_chars} are allowed"))
    return problems


def summary(body: str, limit: int = SUMMARY_CHARS) -> str:
    """``body`` on one line (runs of whitespace, line breaks included, become one space), cut to
    ``limit`` characters with ``…`` when longer."""
    line = " ".join(body.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def display_name(user_id: str, name: str | None) -> str:
    """What the receiver's inbox item calls the sender: their name, else their id."""
    return name.strip() if name and name.strip() else user_id
