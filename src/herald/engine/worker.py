"""The worker: claims due jobs and deliveries under a lease, sends, records every attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from herald.channels.base import Channel, OutboundMessage, Recipient, SendResult
from herald.core.backoff import retry_delay
from herald.core.errors import DeliveryError, RetryableError, SkipDelivery, TerminalError
from herald.core.locales import pick_locale
from herald.core.routing import choose_account
from herald.engine import events, metrics
from herald.engine.fanout import LostLease, run_fanout_job
from herald.engine.service import Herald
from herald.store import accounts as account_store
from herald.store import deliveries as delivery_store
from herald.store import idempotency as idempotency_store
from herald.store import jobs as job_store
from herald.store import notifications as notification_store
from herald.store import quotas as quota_store
from herald.store import users as user_store
from herald.store import webpush as webpush_store
from herald.store.types import utcnow

log = logging.getLogger(__name__)
MAX_SEND_TIMEOUT_SECONDS = 120.0
HOUSEKEEPING_SECONDS = 300.0
WEBPUSH = "webpush"


@dataclass
class Outcome:
    delivery: dict[str, Any]
    status: str
    started_at: datetime
    reason: str | None = None
    error: str | None = None
    code: str | None = None
    next_attempt_at: datetime | None = None
    provider_message_id: str | None = None
    attempted: bool = True
    gone: tuple[str, ...] = ()


class Worker:
    def __init__(self, herald: Herald) -> None:
        self.herald = herald
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._stopping = asyncio.Event()
        self._in_flight: set[str] = set()
        # A send must end well inside its lease, or another worker would claim and send it again.
        self.send_timeout = min(MAX_SEND_TIMEOUT_SECONDS, herald.settings.lease_seconds * 0.75)
        self._next_housekeeping = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self.herald.wake_worker()

    async def run(self) -> None:
        """Loop until ``stop()``: the batch in hand is finished, leases of unstarted work are released."""
        log.info("worker %s started", self.owner)
        try:
            while not self._stopping.is_set():
                try:
                    did = await self.run_once()
                except Exception:
                    log.exception("worker iteration failed; backing off")
                    did = False
                    await asyncio.sleep(1)
                if not did:
                    await self._wait_for_work()
        finally:
            await self._release_in_flight()
            log.info("worker %s stopped", self.owner)

    async def _wait_for_work(self) -> None:
        self.herald.work_available.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.herald.work_available.wait(), self.herald.settings.worker_poll_seconds)

    async def run_once(self) -> bool:
        """One round: due jobs, then one batch of due deliveries. True if anything was done."""
        did_jobs = await self._run_jobs()
        did_deliveries = await self._run_deliveries()
        if time.monotonic() >= self._next_housekeeping:
            await self._housekeeping()
        return did_jobs or did_deliveries

    async def _housekeeping(self) -> None:
        """Drop idempotency records past their 24 h window."""
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
        async with self.herald.db.write() as conn:
            purged = await idempotency_store.purge_expired(conn, utcnow())
        if purged:
            log.info("purged %d expired idempotency keys", purged)

    # -- jobs -----------------------------------------------------------------------------------

    async def _run_jobs(self) -> bool:
        settings = self.herald.settings
        now = utcnow()
        async with self.herald.db.write() as conn:
            claimed = await job_store.claim_due_jobs(
                conn, owner=self.owner, now=now, lease_until=now + timedelta(seconds=settings.lease_seconds), limit=4
            )
        for job in claimed:
            try:
                if job["kind"] == "fanout":
                    await run_fanout_job(self.herald, job, owner=self.owner)
                elif job["kind"] == events.JOB_KIND:
                    await events.run_event_job(self.herald, job)
                    async with self.herald.db.write() as conn:
                        await job_store.finish_job(conn, job["id"], owner=self.owner, status="done", now=utcnow())
                else:
                    raise ValueError(f"unknown job kind {job['kind']!r}")
            except events.PermanentJobError as exc:
                log.warning("job %s refused by its receiver: %s", job["id"], exc)
                async with self.herald.db.write() as conn:
                    await job_store.finish_job(
                        conn, job["id"], owner=self.owner, status="failed", now=utcnow(), error=str(exc)
                    )
            except LostLease:
                log.warning("lost the lease on job %s; another worker has it", job["id"])
            except Exception as exc:
                log.exception("job %s failed", job["id"])
                delay = retry_delay(job["attempts"], base=settings.retry_base_seconds, cap=settings.retry_max_seconds)
                async with self.herald.db.write() as conn:
                    if job["attempts"] >= settings.max_attempts:
                        await job_store.finish_job(
                            conn, job["id"], owner=self.owner, status="failed", now=utcnow(), error=repr(exc)
                        )
                    else:
                        await job_store.retry_job(
                            conn,
                            job["id"],
                            owner=self.owner,
                            run_at=utcnow() + timedelta(seconds=delay),
                            error=repr(exc),
                            now=utcnow(),
                        )
        return bool(claimed)

    # -- deliveries -----------------------------------------------------------------------------

    async def _run_deliveries(self) -> bool:
        settings = self.herald.settings
        now = utcnow()
        async with self.herald.db.write() as conn:
            batch = await delivery_store.claim_due_deliveries(
                conn,
                owner=self.owner,
                now=now,
                lease_until=now + timedelta(seconds=settings.lease_seconds),
                # every claimed row is sent at once, so the whole batch ends inside the lease
                limit=min(settings.worker_batch_size, settings.worker_concurrency),
            )
        if not batch:
            return False
        ids = [d["id"] for d in batch]
        self._in_flight.update(ids)
        try:
            context = await self._load_context(batch)
            outcomes = await asyncio.gather(*(self._deliver(d, context) for d in batch))
            await self._record(outcomes)
        except BaseException:
            # Cancelled (hard shutdown) or broken: hand back what was not recorded; rows already
            # finished are no longer 'sending' under this owner, so they are left alone.
            await self._release(ids)
            raise
        finally:
            self._in_flight.difference_update(ids)
        return True

    async def _load_context(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        async with self.herald.db.read() as conn:
            notifications = await notification_store.get_notifications(
                conn, list({d["notification_id"] for d in batch})
            )
            users = await user_store.get_users(conn, list({d["user_id"] for d in batch}))
            accounts: dict[str, list[dict[str, Any]]] = {}
            for name in {d["channel"] for d in batch}:
                kind = self.herald.channels.get(name)
                for channel in (name, *(kind.routes_over if kind else ())):
                    accounts[channel] = await account_store.list_accounts(conn, self.herald.box, channel)
            push_users = [d["user_id"] for d in batch if d["channel"] == WEBPUSH]
            subscriptions = await webpush_store.subscriptions_of(conn, list(set(push_users)))
        return {"notifications": notifications, "users": users, "accounts": accounts, "subscriptions": subscriptions}

    async def _deliver(self, delivery: dict[str, Any], context: dict[str, Any]) -> Outcome:
        started = utcnow()
        notification = context["notifications"].get(delivery["notification_id"])
        if notification is None or notification["status"] == "cancelled":
            return Outcome(delivery, "cancelled", started, reason="notification cancelled", attempted=False)
        if delivery["expires_at"] is not None and delivery["expires_at"] <= started:
            return Outcome(delivery, "expired", started, reason="expired before it could be sent", attempted=False)
        if delivery["attempts"] > self.herald.settings.max_attempts:
            # claimed again and again without an outcome being recorded: a crash loop
            return Outcome(delivery, "failed", started, reason=f"gave up after {delivery['attempts'] - 1} attempts")
        channel_name = delivery["channel"]
        channel = self.herald.channels.get(channel_name)
        if channel is None:
            return Outcome(delivery, "failed", started, error=f"channel '{channel_name}' is not installed")
        # A routing channel (sms) picks among its providers' accounts, for which a template exists.
        kinds = [k for k in channel.routes_over if k in notification["rendered"]] or [channel_name]
        settings_obj: Any = None
        if channel.requires_account or channel.routes_over:
            # after a retryable failure, fail over to another account (of another provider) if any
            failed_before = delivery["attempts"] > 1 and delivery["last_error"] is not None
            candidates = [a for k in kinds for a in context["accounts"].get(k, [])]
            account = choose_account(
                [a for a in candidates if a["config"] is not None] or candidates,
                avoid=delivery["account"] if failed_before else None,
            )
            if account is None:
                return Outcome(delivery, "skipped", started, reason=f"no '{channel_name}' channel account configured")
            delivery["account"] = account["name"]
            if channel.routes_over:
                channel_name, channel = account["channel"], self.herald.channels[account["channel"]]
            if account["config"] is None:
                return Outcome(delivery, "failed", started, error=account["error"])
            try:
                settings_obj = channel.Settings.model_validate(account["config"])
            except ValidationError as exc:
                return Outcome(delivery, "failed", started, error=f"account '{account['name']}' is invalid: {exc}")
        if channel.rate_limit is not None and delivery.get("account"):
            wait = await self.herald.rate_limiter.acquire(f"{channel_name}:{delivery['account']}", channel.rate_limit)
            if wait > 0:
                # Out of budget: back to the queue for when the window allows it; not an attempt.
                return Outcome(
                    delivery,
                    "pending",
                    started,
                    reason="rate limited",
                    next_attempt_at=started + timedelta(seconds=wait),
                    attempted=False,
                )
        user = context["users"].get(delivery["user_id"]) or {"id": delivery["user_id"]}
        templates = notification["rendered"].get(channel_name, {})
        locale = pick_locale(templates.keys(), user.get("locale"), self.herald.settings.default_locale)
        message = OutboundMessage(
            delivery_id=delivery["id"],
            notification_id=notification["id"],
            type=notification["type_key"],
            category=notification["category"],
            recipient=Recipient(
                id=user["id"],
                name=user.get("name"),
                email=user.get("email"),
                phone=user.get("phone"),
                locale=user.get("locale"),
                timezone=user.get("timezone"),
                channels=self._addresses(channel_name, user, context),
                data=user.get("data") or {},
            ),
            content=templates[locale] if locale else {},
            data=notification["data"],
            attempt=delivery["attempts"],
            created_at=notification["created_at"].isoformat(),
        )
        quota = channel.quota_key(message)
        if quota is not None:
            async with self.herald.db.write() as conn:
                if not await quota_store.take_one(conn, message.recipient.id, quota, started):
                    return Outcome(delivery, "skipped", started, reason=f"no subscription quota for {quota}")
        outcome = await self._send(channel, message, settings_obj, delivery, started)
        known = {s["endpoint"] for s in message.recipient.channels.get("webpush_subscriptions", [])}
        if outcome.status == "sent" and outcome.gone and known and known <= set(outcome.gone):
            outcome.status, outcome.reason = "skipped", "every Web Push subscription has expired"
        if quota is not None and outcome.status != "sent":
            async with self.herald.db.write() as conn:
                if outcome.code in channel.quota_exhausted_codes:
                    await quota_store.zero(conn, message.recipient.id, quota, utcnow())
                else:  # the grant was not used up: keep it for the retry or the next message
                    await quota_store.give_back(conn, message.recipient.id, quota, utcnow())
        return outcome

    async def _send(
        self, channel: Channel, message: OutboundMessage, settings_obj: Any, delivery: dict[str, Any], started: datetime
    ) -> Outcome:
        channel_name = channel.name
        clock = time.perf_counter()
        try:
            result: SendResult = await asyncio.wait_for(channel.send(message, settings_obj), self.send_timeout)
        except TimeoutError:
            return self._retry_or_fail(delivery, started, RetryableError("send timed out", code="timeout"))
        except SkipDelivery as exc:
            return Outcome(delivery, "skipped", started, reason=exc.message, code=exc.code)
        except TerminalError as exc:
            return Outcome(
                delivery,
                "failed",
                started,
                reason="provider refused",
                error=exc.message,
                code=exc.code,
                gone=tuple(getattr(exc, "gone", ())),
            )
        except RetryableError as exc:
            outcome = self._retry_or_fail(delivery, started, exc)
            outcome.gone = tuple(getattr(exc, "gone", ()))  # addresses found dead meanwhile
            return outcome
        except DeliveryError as exc:
            return Outcome(delivery, "failed", started, error=exc.message, code=exc.code)
        except Exception as exc:  # a channel bug must end up in the trace, not kill the worker
            log.exception("channel %s raised unexpectedly for %s", channel_name, delivery["id"])
            return self._retry_or_fail(delivery, started, RetryableError(f"{type(exc).__name__}: {exc}"))
        finally:
            metrics.send_seconds.labels(channel_name).observe(time.perf_counter() - clock)
        return Outcome(
            delivery, "sent", started, provider_message_id=result.provider_message_id, gone=tuple(result.gone)
        )

    @staticmethod
    def _addresses(channel_name: str, user: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """The user's channel addresses; for Web Push, their browsers' subscriptions too."""
        addresses = dict(user.get("channels") or {})
        if channel_name == WEBPUSH:
            addresses["webpush_subscriptions"] = context["subscriptions"].get(user["id"], [])
        return addresses

    def _retry_or_fail(self, delivery: dict[str, Any], started: datetime, exc: RetryableError) -> Outcome:
        settings = self.herald.settings
        if delivery["attempts"] >= settings.max_attempts:
            return Outcome(
                delivery,
                "failed",
                started,
                reason=f"gave up after {delivery['attempts']} attempts",
                error=exc.message,
                code=exc.code,
            )
        delay = retry_delay(
            delivery["attempts"],
            base=settings.retry_base_seconds,
            cap=settings.retry_max_seconds,
            retry_after=exc.retry_after,
        )
        return Outcome(
            delivery,
            "pending",
            started,
            error=exc.message,
            code=exc.code,
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )

    async def _record(self, outcomes: list[Outcome]) -> None:
        finished = utcnow()
        async with self.herald.db.write() as conn:
            for o in outcomes:
                d = o.delivery
                kept = await delivery_store.finish_delivery(
                    conn,
                    d["id"],
                    owner=self.owner,
                    now=finished,
                    status=o.status,
                    reason=o.reason,
                    last_error=(f"[{o.code}] {o.error}" if o.code else o.error) if o.error else None,
                    next_attempt_at=o.next_attempt_at,
                    provider_message_id=o.provider_message_id,
                    account=d.get("account"),
                    uncount_attempt=not o.attempted and o.status == "pending",
                )
                if not kept:
                    log.warning("delivery %s: lease lost before its outcome was recorded", d["id"])
                    continue
                metrics.deliveries_finished.labels(d["channel"], o.status).inc()
                if o.status in ("sent", "failed"):
                    await events.emit(
                        self.herald,
                        conn,
                        f"message.{o.status}",
                        {
                            "delivery_id": d["id"],
                            "notification_id": d["notification_id"],
                            "user_id": d["user_id"],
                            "channel": d["channel"],
                            "account": d.get("account"),
                            "attempts": d["attempts"],
                            "reason": o.reason,
                            "error": o.error,
                            "code": o.code,
                            "provider_message_id": o.provider_message_id,
                        },
                    )
                if o.gone:  # the push service says these browsers unsubscribed
                    await webpush_store.forget_endpoints(conn, o.gone)
                if o.attempted:
                    await delivery_store.record_attempt(
                        conn,
                        {
                            "delivery_id": d["id"],
                            "attempt": d["attempts"],
                            "worker": self.owner,
                            "started_at": o.started_at,
                            "finished_at": finished,
                            "outcome": "retry" if o.status == "pending" else o.status,
                            "code": o.code,
                            "error": o.error if o.error else o.reason if o.status == "skipped" else None,
                        },
                    )

    async def _release_in_flight(self) -> None:
        await self._release(list(self._in_flight))

    async def _release(self, ids: list[str]) -> None:
        if not ids:
            return
        try:
            async with self.herald.db.write() as conn:
                n = await delivery_store.release_deliveries(conn, ids, owner=self.owner, now=utcnow())
            if n:
                log.info("released %d in-flight deliveries", n)
        except Exception:
            log.exception("could not release %d deliveries; their lease will expire", len(ids))
