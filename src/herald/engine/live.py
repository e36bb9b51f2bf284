"""What the engine tells the realtime backplane, always after the commit of the change it reports.

Each call queues one small message and returns (``Realtime.publish`` never blocks and never raises):
a trigger or a worker is never slowed or failed by realtime. Messages name users and ids, never
content: the API process holding a user's stream reads the item itself (engine/streams.py), so a
fan-out chunk of 10,000 recipients is one message of user ids, and an announcement to everyone is
one message whatever the audience.

Messages (``k`` is the kind):

- ``items``: ``{n: notification id, at: created_at, u: [user ids]}``: in-app items were written;
- ``item``: ``{u, i: item id, a: "new" | "updated" | "removed"}``: one item of one user was written
  alone (a direct message's item), changed or removed;
- ``counts``: ``{u}``: a user's counts changed (read-all, seen);
- ``announcement``: ``{i, before, after}``: an announcement changed; ``before``/``after`` are who
  could see it (audience, window, kind), null when it did not or no longer exists;
- ``invalidate``: ``{cache}``: an admin changed what an edge cache holds (``Herald.edge_caches``);
- ``gap``: ``{since}``: messages since then may be lost (realtime/publisher.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from herald.engine.service import Herald

ITEMS, ITEM, COUNTS, ANNOUNCEMENT, INVALIDATE = "items", "item", "counts", "announcement", "invalidate"
NEW, UPDATED, REMOVED = "new", "updated", "removed"


def items_written(herald: Herald, notification_id: str, created_at: datetime, user_ids: Sequence[str]) -> None:
    """In-app items of ``notification_id`` were committed for ``user_ids``, all with ``created_at``
    (one call per inline trigger or fan-out chunk)."""
    if user_ids:
        herald.realtime.publish({"k": ITEMS, "n": notification_id, "at": created_at.isoformat(), "u": list(user_ids)})


def item_changed(herald: Herald, user_id: str, item_id: str, *, removed: bool = False, new: bool = False) -> None:
    action = REMOVED if removed else NEW if new else UPDATED
    herald.realtime.publish({"k": ITEM, "u": user_id, "i": item_id, "a": action})


def counts_changed(herald: Herald, user_id: str) -> None:
    herald.realtime.publish({"k": COUNTS, "u": user_id})


def visibility(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """Who can see an announcement, and when: what a listener needs to tell who saw it change."""
    if row is None:
        return None
    return {
        "audience": row["audience"],
        "kind": row["kind"],
        "starts_at": row["starts_at"].isoformat() if row["starts_at"] else None,
        "ends_at": row["ends_at"].isoformat() if row["ends_at"] else None,
    }


def announcement_message(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    row = after if after is not None else before
    assert row is not None
    return {"k": ANNOUNCEMENT, "i": row["id"], "before": visibility(before), "after": visibility(after)}


def cache_message(name: str) -> dict[str, Any]:
    return {"k": INVALIDATE, "cache": name}
