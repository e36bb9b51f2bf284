"""Publishing announcements: the rules, and the live cache told to reload after every change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from herald.core.enums import AnnouncementKind
from herald.core.errors import Invalid, NotFound
from herald.engine import announcements as engine
from herald.store.types import utcnow
from tests.conftest import Harness


@dataclass
class CountingCache:
    invalidations: int = 0
    changes: list[tuple[str | None, str | None]] = field(default_factory=list)

    def changed(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.invalidations += 1
        self.changes.append((before and before["kind"], after and after["kind"]))


async def test_every_change_invalidates_the_live_cache(harness: Harness) -> None:
    db, live = harness.herald.db, CountingCache()
    saved = await engine.create_announcement(db, live, engine.NewAnnouncement(title="hello"))
    assert saved["audience"] == {"all": True} and saved["kind"] == "notice" and live.invalidations == 1
    changed = await engine.update_announcement(db, live, saved["id"], {"kind": AnnouncementKind.BANNER})
    assert changed["kind"] == "banner" and live.invalidations == 2
    await engine.delete_announcement(db, live, saved["id"])
    assert live.invalidations == 3
    # each change names the row before and after it (what the realtime streams need)
    assert live.changes == [(None, "notice"), ("notice", "banner"), ("banner", None)]


async def test_refused_changes_leave_the_cache_alone(harness: Harness) -> None:
    db, live = harness.herald.db, CountingCache()
    now = utcnow()
    with pytest.raises(Invalid) as bad:
        await engine.create_announcement(db, live, engine.NewAnnouncement(title="t", starts_at=now, ends_at=now))
    assert bad.value.errors[0][0] == "ends_at"
    saved = await engine.create_announcement(db, live, engine.NewAnnouncement(title="t"))
    with pytest.raises(Invalid) as bad:
        await engine.update_announcement(db, live, saved["id"], {"title": None})
    assert bad.value.errors[0][0] == "title"
    with pytest.raises(Invalid) as bad:
        await engine.update_announcement(db, live, saved["id"], {"ends_at": now - timedelta(days=1), "starts_at": now})
    assert bad.value.errors[0][0] == "ends_at"
    with pytest.raises(NotFound):
        await engine.update_announcement(db, live, "ann_nope", {"title": "x"})
    with pytest.raises(NotFound):
        await engine.delete_announcement(db, live, "ann_nope")
    assert live.invalidations == 1
