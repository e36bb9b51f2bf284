"""The fan-out job: expands a large or scheduled notification in idempotent chunks.

Each chunk is one transaction holding its inserts and the job's new cursor, committed only if
this worker still owns the job; a chunk is therefore written exactly once even when a lease
expires under a slow worker and another one takes the job over.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from herald.core.enums import NotificationStatus
from herald.engine import live, metrics
from herald.engine.expand import INAPP, delivery_expiry, expand_chunk
from herald.engine.preferences import InappAsk, inapp_check_needed, opted_out
from herald.engine.service import Herald
from herald.store import catalog, users
from herald.store import jobs as job_store
from herald.store import notifications as notification_store
from herald.store.records import Job
from herald.store.types import utcnow

log = logging.getLogger(__name__)


class LostLease(Exception):
    pass


class FanoutJobHandler:
    """Handles ``fanout`` jobs (large lists, audiences, scheduled sends)."""

    kind = "fanout"

    def __init__(self, herald: Herald) -> None:
        self._herald = herald

    async def __call__(self, job: Job, owner: str) -> None:
        await run_fanout_job(self._herald, job, owner=owner)


async def run_fanout_job(herald: Herald, job: Job, *, owner: str, budget_seconds: float = 1.0) -> None:
    """Expand chunks until the recipients run out (then mark the notification processed) or the
    time budget is spent (then hand the job back, due now): a large fan-out never holds a worker
    so long that a high-priority delivery waits behind it."""
    chunk_size = herald.settings.fanout_chunk_size
    lease = timedelta(seconds=herald.settings.lease_seconds)
    payload = dict(job.payload)
    notification_id = payload["notification_id"]
    async with herald.db.read() as conn:
        notification = await notification_store.get_notification(conn, notification_id)
        ntype = await catalog.get_type(conn, notification["type_key"]) if notification else None
    if notification is None or notification["status"] == NotificationStatus.CANCELLED:
        async with herald.db.write() as conn:
            await job_store.finish_job(conn, job.id, owner=owner, status="done", now=utcnow())
        return
    expires_at = delivery_expiry(notification, ntype["ttl_seconds"] if ntype else None)

    started = time.monotonic()
    while True:
        now = utcnow()
        check_inapp = await inapp_check_needed(herald, ntype or {}, notification)  # before a connection is held
        async with herald.db.write() as conn:
            status = await notification_store.lock_status(conn, notification_id)
            if status is None or status == NotificationStatus.CANCELLED:
                await job_store.finish_job(conn, job.id, owner=owner, status="done", now=now)
                return
            recipients, more = await _next_chunk(conn, payload, chunk_size)
            inapp_off: set[str] = set()
            if recipients and check_inapp:  # someone turned the inbox off for the type: who, of these?
                ask = InappAsk(notification["type_key"], notification["category"], [r["id"] for r in recipients])
                (inapp_off,) = await opted_out(conn, [ask])
            if recipients:
                await expand_chunk(
                    conn,
                    notification,
                    recipients,
                    now=now,
                    default_locale=herald.settings.default_locale,
                    expires_at=expires_at,
                    inapp_off=inapp_off,
                )
            payload["expanded"] += len(recipients)
            out_of_time = time.monotonic() - started >= budget_seconds
            if more:
                if not await job_store.save_job_progress(
                    conn,
                    job.id,
                    owner=owner,
                    payload=payload,
                    lease_until=now + lease,
                    now=now,
                    release=out_of_time,
                ):
                    await conn.rollback()
                    raise LostLease(job.id)
            else:
                if not await job_store.finish_job(conn, job.id, owner=owner, status="done", now=now):
                    await conn.rollback()
                    raise LostLease(job.id)
                await notification_store.mark_processed(conn, notification_id, payload["expanded"], now)
        if recipients and INAPP in notification["channels"]:
            receivers = [r["id"] for r in recipients if r["id"] not in inapp_off]
            metrics.inbox_items_written.inc(len(receivers))
            # committed: one backplane message for the chunk (user ids, not items; never one per user)
            live.items_written(herald, notification_id, now, receivers)
        herald.wake_worker()
        if not more:
            log.info("fan-out of %s done: %d recipients", notification_id, payload["expanded"])
            return
        if out_of_time:
            return


async def _next_chunk(conn: Any, payload: dict[str, Any], size: int) -> tuple[list[dict[str, Any]], bool]:
    """The next chunk's recipients (id, locale), advancing the payload's cursor; and whether more remain."""
    listed = payload.get("recipients")
    if listed is not None:
        start = payload["offset"]
        ids = listed[start : start + size]
        payload["offset"] = start + len(ids)
        await users.ensure_users(conn, ids)
        known = await users.get_users(conn, ids)
        chunk = [{"id": uid, "locale": known.get(uid, {}).get("locale")} for uid in ids]
        return chunk, payload["offset"] < len(listed)
    audience = payload.get("audience") or {}
    rows, last = await users.users_page(conn, after=payload.get("after"), limit=size, tags=audience.get("tags"))
    payload["after"] = last
    return rows, last is not None
