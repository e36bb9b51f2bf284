"""Cancelling a notification: what has not been sent yet, and the notification while work is to come."""

from __future__ import annotations

from datetime import timedelta

import pytest

from herald.core.errors import NotFound
from herald.engine.notifications import Cancelled, cancel_notification
from herald.store.types import utcnow
from tests.conftest import Harness


async def test_cancel_stops_pending_deliveries_of_a_processed_notification(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    r = await harness.trigger({"type": "order.shipped", "to": ["u1", "u2"], "data": {}})
    nid = r.json()["id"]
    cancelled = await cancel_notification(harness.herald.db, nid)
    # already expanded: its deliveries are cancelled, its own status stays
    assert cancelled == Cancelled(nid, "processed", 2)
    assert await cancel_notification(harness.herald.db, nid) == Cancelled(nid, "processed", 0)


async def test_cancel_ends_a_scheduled_notification(harness: Harness) -> None:
    await harness.put_type("order.shipped", ["webhook"], {})
    later = (utcnow() + timedelta(hours=1)).isoformat()
    r = await harness.trigger({"type": "order.shipped", "to": ["u1"], "data": {}, "send_at": later})
    nid = r.json()["id"]
    assert await cancel_notification(harness.herald.db, nid) == Cancelled(nid, "cancelled", 0)
    r = await harness.client.delete(f"/v1/notifications/{nid}", headers=harness.sender())
    assert r.json() == {"id": nid, "status": "cancelled", "cancelled_deliveries": 0}
    status = (await harness.client.get(f"/v1/notifications/{nid}", headers=harness.reader())).json()
    assert status["status"] == "cancelled"


async def test_cancelling_an_unknown_notification_is_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound):
        await cancel_notification(harness.herald.db, "ntf_nope")
    r = await harness.client.delete("/v1/notifications/ntf_nope", headers=harness.sender())
    assert r.status_code == 404
