"""The worker: keeps up to ``concurrency`` deliveries and jobs in flight, claiming more as slots
free up, so one hung provider holds one slot and never a batch.

Three things overlap so that no slot waits on the database: deliveries are claimed ahead into a
small ready heap (a freed slot starts the next one at once, without a claim round trip), each
claimed delivery runs the stages of ``pipeline.py`` under its own deadline, and its outcome goes to
a settler task that records everything waiting in one transaction (``settle_deliveries``: one
statement per batch on PostgreSQL) while the sends go on. If a batch fails, each outcome in it is
recorded alone, so nothing that goes wrong with one releases, delays or resends another. Jobs are
handled by handlers registered by kind; each finishes its own job.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from herald.core.backoff import retry_at, retry_delay
from herald.core.errors import PermanentJobError
from herald.core.outcomes import Outcome
from herald.core.rules import TypeRules
from herald.engine import metrics, pipeline, retention
from herald.engine.digests import DigestJobHandler
from herald.engine.events import EventJobHandler, event_poster
from herald.engine.fanout import FanoutJobHandler, LostLease
from herald.engine.retention import RetentionJobHandler
from herald.engine.schedules import ScheduleJobHandler, rearm_failed_jobs
from herald.engine.service import Herald
from herald.engine.unsubscribe import UnsubscribeLinks
from herald.engine.wakeup import PostgresWakeup
from herald.store import accounts as account_store
from herald.store import deliveries as delivery_store
from herald.store import endpoints as endpoint_store
from herald.store import jobs as job_store
from herald.store import notifications as notification_store
from herald.store import preferences as preference_store
from herald.store import users as user_store
from herald.store.records import Delivery, Job
from herald.store.types import utcnow

log = logging.getLogger(__name__)
MAX_SEND_TIMEOUT_SECONDS = 120.0
HOUSEKEEPING_SECONDS = 300.0
JOB_SLOTS = 4
"""At most this many jobs at once, so deliveries always have slots."""
SETTLE_TRIES = 3
SETTLE_BATCH = 64
"""At most this many outcomes recorded in one transaction."""
SETTLE_MARGIN = 0.15
"""The share of the lease left, after a delivery's deadline, to record its outcome."""
READY_WAIT_SECONDS = 1.0
"""A delivery claimed ahead waits at most this long for a slot (a claim round trip is a few ms):
longer means the slots are held by slow sends, so it is handed back for any worker to take, and
this worker claims ahead again only once a slot frees."""


@dataclass(frozen=True, order=True)
class _Ready:
    """A delivery claimed ahead, waiting for a slot: most urgent first, then in claim order."""

    priority: int
    order: int
    claimed_at: float = field(compare=False)
    delivery: Delivery = field(compare=False)
    context: pipeline.Context = field(compare=False)


@dataclass(frozen=True)
class _Settlement:
    delivery: Delivery
    outcome: Outcome
    started: datetime
    sender: str


class JobHandler(Protocol):
    kind: str

    def __call__(self, job: Job, owner: str) -> Awaitable[None]:
        """Do the job and finish it (``job_store.finish_job``); raise to have it retried."""


def default_job_handlers(herald: Herald) -> dict[str, JobHandler]:
    handlers: list[JobHandler] = [FanoutJobHandler(herald), RetentionJobHandler(herald), ScheduleJobHandler(herald)]
    handlers.append(DigestJobHandler(herald))
    poster = event_poster(herald.channels)
    if poster is not None:  # event webhooks are posted like webhook deliveries
        handlers.append(EventJobHandler(herald.db, herald.box, poster))
    return {h.kind: h for h in handlers}


class Worker:
    def __init__(self, herald: Herald, *, handlers: dict[str, JobHandler] | None = None) -> None:
        self.herald = herald
        settings = herald.settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.handlers = handlers if handlers is not None else default_job_handlers(herald)
        self.concurrency = settings.worker_concurrency
        self.ahead = max(1, min(settings.worker_batch_size, self.concurrency) // 2)
        """Deliveries claimed ahead of the free slots, so a slot that frees starts the next at once."""
        self.max_leased = 2 * self.concurrency + self.ahead
        """Rows held at most: sending, ready and waiting to be recorded. When recording lags that
        far behind, claiming stops until it catches up."""
        # A send must end well inside its lease, or another worker would claim and send it again.
        self.policy = pipeline.Policy(
            max_attempts=settings.max_attempts,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            send_timeout=min(MAX_SEND_TIMEOUT_SECONDS, settings.lease_seconds * 0.75),
            # the whole delivery (budget, grant, send) ends before the lease does, with time to settle
            deadline=min(MAX_SEND_TIMEOUT_SECONDS, settings.lease_seconds * 0.75) + settings.lease_seconds * 0.1,
            default_locale=settings.default_locale,
            default_timezone=settings.default_timezone,
            unsubscribe=UnsubscribeLinks(herald.secret_key, settings.public_url) if settings.public_url else None,
        )
        self._settle_margin = timedelta(seconds=settings.lease_seconds * SETTLE_MARGIN)
        self.services = pipeline.Services(herald.db, herald.rate_limiter, herald.channels, herald.rule_counters)
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._leased: set[str] = set()  # delivery ids claimed and not yet settled (or handed back)
        self._ready: list[_Ready] = []  # a heap: priority, then claim order
        self._order = itertools.count()
        self._ready_wait = min(READY_WAIT_SECONDS, settings.lease_seconds * 0.05)
        self._stalled = False  # ready deliveries waited too long; no claiming ahead until a slot frees
        self._stale: list[str] = []  # claimed, never started: to hand back
        self._dry_deliveries = self._dry_jobs = False  # the last claim found less than it asked for
        self._next_poll = 0.0
        self._to_settle: asyncio.Queue[_Settlement] = asyncio.Queue()
        self._settler: asyncio.Task[None] | None = None
        self._next_housekeeping = 0.0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        self._stopping.set()
        self.herald.wake_worker()

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Loop until ``stop()``; then finish what is in flight (a hard cancel hands it back)."""
        log.info("worker %s started (concurrency %d)", self.owner, self.concurrency)
        wakeup = PostgresWakeup.for_settings(self.herald.settings, self.herald.wake_worker)
        if wakeup is not None:
            wakeup.start()
        try:
            while not self._stopping.is_set():
                try:
                    await self.fill_slots(ahead=True)
                    await self._housekeeping_if_due()
                except Exception:
                    log.exception("worker round failed; backing off")
                    await self._sleep(1.0)
                if not self._wants_claim(ahead=True):
                    await self._wait_for_work()
            while self._tasks:  # graceful: what runs finishes (nothing new starts), then is recorded
                await asyncio.wait(self._tasks)
            await self._stop_settler()
        finally:
            if wakeup is not None:
                await wakeup.stop()
            await self._hand_back()
            log.info("worker %s stopped", self.owner)

    async def run_once(self) -> bool:
        """Claim what is due (up to ``concurrency``), handle all of it, and return whether there was any."""
        self._dry_deliveries = self._dry_jobs = False
        claimed = await self.fill_slots(ahead=False)
        while self._tasks:
            await asyncio.wait(self._tasks)
        await self._stop_settler()
        await self._release_stale()
        await self._housekeeping_if_due()
        return claimed > 0

    async def fill_slots(self, *, ahead: bool = True) -> int:
        """Claim jobs into free slots, and deliveries into free slots plus (``ahead``) the ready
        heap; returns how many were claimed. A round woken by new work (or the poll interval)
        asks the database; one woken by a freed slot asks only if the last claim came back full."""
        if self.herald.work_available.is_set() or time.monotonic() >= self._next_poll:
            self._dry_deliveries = self._dry_jobs = False
            self._next_poll = time.monotonic() + self.herald.settings.worker_poll_seconds
        self.herald.work_available.clear()  # before claiming: a wake-up during the claim is kept
        self._slot_freed.clear()
        self._expire_ready()
        await self._release_stale()
        claimed = 0
        room = min(self._free_slots(), JOB_SLOTS - sum(1 for t in self._tasks if t.get_name().startswith("job:")))
        if room > 0 and not self._dry_jobs:
            jobs = await self._claim_jobs(room)
            self._dry_jobs = len(jobs) < room
            for job in jobs:
                self._spawn(f"job:{job.id}", self._run_job(job))
            claimed += len(jobs)
        self._start_ready()
        if self._wants_claim(ahead=ahead):
            limit = min(self._delivery_room(ahead=ahead), self.herald.settings.worker_batch_size)
            batch = await self._claim_deliveries(limit)
            self._dry_deliveries = len(batch) < limit
            if batch:
                try:
                    context = await self._load_context(batch)
                except Exception:
                    self._stale.extend(d.id for d in batch)  # claimed but unusable: handed back
                    raise
                claimed_at = time.monotonic()
                for delivery in batch:
                    heapq.heappush(
                        self._ready, _Ready(delivery.priority, next(self._order), claimed_at, delivery, context)
                    )
                self._start_ready()
            claimed += len(batch)
        return claimed

    def _free_slots(self) -> int:
        return self.concurrency - len(self._tasks)

    def _delivery_room(self, *, ahead: bool) -> int:
        """How many deliveries a claim may take now: the free slots (and the ready heap's
        shortfall), within the cap on rows held."""
        want = self._free_slots() - len(self._ready) + (self.ahead if ahead and not self._stalled else 0)
        return max(0, min(want, self.max_leased - len(self._leased)))

    def _wants_claim(self, *, ahead: bool) -> bool:
        """Whether a claim now is worth its round trip: a slot is free with nothing ready, or the
        ready heap is down to half; never after a claim that found the queue dry (until woken)."""
        if self._dry_deliveries or self._stopping.is_set():
            return False
        room = self._delivery_room(ahead=ahead)
        if room <= 0:
            return False
        if self._free_slots() > 0 and not self._ready:
            return True
        return ahead and not self._stalled and len(self._ready) <= self.ahead // 2

    def _start_ready(self) -> None:
        """Start ready deliveries into the free slots, most urgent first."""
        if self._stopping.is_set():
            return
        now = utcnow()
        while self._ready and self._free_slots() > 0:
            ready = heapq.heappop(self._ready)
            policy = self._policy_within_lease(ready.delivery, now)
            if policy is None:
                self._stale.append(ready.delivery.id)
                continue
            self._spawn(f"dlv:{ready.delivery.id}", self._run_delivery(ready.delivery, ready.context, policy))

    def _expire_ready(self) -> None:
        """Put aside the ready deliveries that waited too long for a slot (to be handed back)."""
        if not self._ready:
            return
        oldest = time.monotonic() - self._ready_wait
        if min(r.claimed_at for r in self._ready) > oldest:
            return
        keep = [r for r in self._ready if r.claimed_at > oldest]
        self._stale.extend(r.delivery.id for r in self._ready if r.claimed_at <= oldest)
        heapq.heapify(keep)
        self._ready = keep
        self._stalled = True

    def _policy_within_lease(self, delivery: Delivery, now: datetime) -> pipeline.Policy | None:
        """The policy a delivery starts under, so that it ends as far before its lease does as a
        fresh claim would: one that waited in the ready heap gets its deadline (and send timeout)
        cut by the wait. None, to be handed back, if its lease is nearly gone (a clock jump)."""
        if delivery.lease_until is None:
            return self.policy
        budget = (delivery.lease_until - now - self._settle_margin).total_seconds()
        if budget >= self.policy.deadline:
            return self.policy
        if budget < self.policy.deadline / 2:
            return None
        share = budget / self.policy.deadline
        return replace(self.policy, deadline=budget, send_timeout=self.policy.send_timeout * share)

    def _spawn(self, name: str, work: Awaitable[None]) -> None:
        async def unit() -> None:
            await work

        task = asyncio.create_task(unit(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._stalled = False
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with %r", task.get_name(), task.exception())
        self._start_ready()  # the slot goes to the next ready delivery at once
        self._poke(job=task.get_name().startswith("job:"))

    def _poke(self, *, job: bool = False) -> None:
        """Wake the loop if a claim may be due now (a slot or leased room freed): not on every
        freed slot, which would cost a loop round per delivery."""
        if job or not self._dry_jobs or self._wants_claim(ahead=True):
            self._slot_freed.set()

    # asyncio.timeout, not wait_for: before 3.12 wait_for can swallow a cancellation that races
    # with the wake-up, turning a hard stop into a graceful one.
    async def _wait_for_work(self) -> None:
        """Until new work is announced, a slot frees up, or the poll interval ends."""
        delay = max(0.0, self._next_poll - time.monotonic())
        if self._ready:  # wake to hand back what waits too long
            delay = min(delay, max(0.0, min(r.claimed_at for r in self._ready) + self._ready_wait - time.monotonic()))
        waits = [
            asyncio.ensure_future(self.herald.work_available.wait()),
            asyncio.ensure_future(self._slot_freed.wait()),
        ]
        try:
            async with asyncio.timeout(delay):
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            for w in waits:
                w.cancel()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    # -- deliveries -----------------------------------------------------------------------------

    async def _claim_deliveries(self, limit: int) -> list[Delivery]:
        now = utcnow()
        async with self.herald.db.write() as conn:
            batch = await delivery_store.claim_due_deliveries(
                conn,
                owner=self.owner,
                now=now,
                lease_until=now + timedelta(seconds=self.herald.settings.lease_seconds),
                limit=limit,
            )
        self._leased.update(d.id for d in batch)
        return batch

    async def _load_context(self, batch: Sequence[Delivery]) -> pipeline.Context:
        channels = self.herald.channels
        kinds = sorted({k for d in batch if (c := channels.get(d.channel)) for k in (d.channel, *c.routes_over)})
        user_ids = list({d.user_id for d in batch})
        async with self.herald.db.read() as conn:
            notifications = await notification_store.notifications_by_id(conn, list({d.notification_id for d in batch}))
            users = await user_store.profiles(conn, user_ids)
            accounts = await account_store.accounts_for(conn, self.herald.box, kinds)
            preferences = await preference_store.preferences_of(conn, user_ids)  # once per batch
            endpoints = {}
            for kind in kinds:
                if (channel := channels.get(kind)) is not None and channel.uses_endpoints:
                    for user_id, found in (await endpoint_store.endpoints_of(conn, kind, user_ids)).items():
                        endpoints[(kind, user_id)] = found
        rules = {}
        for type_key in {n.type_key for n in notifications.values()}:
            entry = await self.herald.catalog.get(type_key)
            if entry is not None:
                rules[type_key] = TypeRules.of(entry.type)
        return pipeline.Context(notifications, users, accounts, endpoints, rules, preferences=preferences)

    async def _release_stale(self) -> None:
        """Hand back deliveries that were claimed but never started (attempt undone)."""
        ids, self._stale = self._stale, []
        if not ids:
            return
        try:
            async with self.herald.db.write() as conn:
                await delivery_store.release_deliveries(conn, ids, owner=self.owner, now=utcnow())
        except Exception:
            log.exception("could not hand back %d deliveries; their lease will expire", len(ids))
        self._leased.difference_update(ids)

    async def _run_delivery(self, delivery: Delivery, context: pipeline.Context, policy: pipeline.Policy) -> None:
        """The stages, then the outcome to the settler: the slot frees as soon as the send is
        done, while the outcome waits to be recorded with others (the row stays leased meanwhile)."""
        started = utcnow()
        outcome = await pipeline.handle_delivery(delivery, context, self.services, policy)
        # addresses belong to the channel that sent: for a logical channel, the account's provider
        sender = next((a.channel for a in context.accounts if a.name == outcome.account), delivery.channel)
        self._ensure_settler()
        self._to_settle.put_nowait(_Settlement(delivery, outcome, started, sender))

    def _settled(self, item: _Settlement, kept: bool | None) -> None:
        """What a recorded (True), lost (False) or unrecordable (None) outcome leaves behind."""
        self._leased.discard(item.delivery.id)
        self._poke()
        if kept is None:
            return  # not recorded (database unreachable): the row comes back after its lease
        if not kept:
            log.warning("delivery %s: lease lost before its outcome was recorded", item.delivery.id)
            return
        metrics.deliveries_finished.labels(item.delivery.channel, item.outcome.status.value).inc()
        metrics.count_reason(item.outcome.status.value, item.outcome.reason)
        if item.outcome.attempted:
            metrics.sends_total.labels(item.delivery.channel, item.outcome.attempt_label).inc()

    def _ensure_settler(self) -> None:
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_forever(), name="herald-settler")

    async def _settle_forever(self) -> None:
        """Record outcomes as they come, many per transaction (all that are waiting, up to
        ``SETTLE_BATCH``): sends stay in flight meanwhile."""
        while True:
            batch = [await self._to_settle.get()]
            while len(batch) < SETTLE_BATCH and not self._to_settle.empty():
                batch.append(self._to_settle.get_nowait())
            try:
                await self._settle_batch(batch)
            finally:
                for _ in batch:
                    self._to_settle.task_done()

    async def _settle_batch(self, batch: list[_Settlement]) -> None:
        """All in one transaction; if that fails, each alone, so one bad outcome fails by itself."""
        if len(batch) > 1:
            try:
                async with self.herald.db.write() as conn:
                    kept = await self._record(conn, batch)
            except Exception as exc:
                log.warning("settling %d outcomes together failed (%s); settling each alone", len(batch), exc)
            else:
                for item, k in zip(batch, kept, strict=True):
                    self._settled(item, k)
                return
        for item in batch:
            self._settled(item, await self._settle_alone(item))

    async def _settle_alone(self, item: _Settlement) -> bool | None:
        """One outcome in its own transaction, tried a few times (a lost outcome means a resend
        after the lease); None if it could not be recorded."""
        for attempt in range(1, SETTLE_TRIES + 1):
            try:
                async with self.herald.db.write() as conn:
                    (kept,) = await self._record(conn, [item])
                    return kept
            except Exception as exc:
                if attempt == SETTLE_TRIES:
                    log.error(
                        "delivery %s: outcome not recorded (%s); it returns after its lease", item.delivery.id, exc
                    )
                    return None
                await asyncio.sleep(0.2 * attempt)
        return None

    async def _record(self, conn: AsyncConnection, batch: Sequence[_Settlement]) -> list[bool]:
        """The outcomes and their attempts, where this worker still holds the lease; then, for
        those, their events and forgotten addresses, in the same transaction."""
        kept = await delivery_store.settle_deliveries(
            conn,
            [delivery_store.Settlement(i.delivery, i.outcome, i.started) for i in batch],
            owner=self.owner,
            now=utcnow(),
        )
        for item, k in zip(batch, kept, strict=True):
            if k:
                await self._after_settle(conn, item.delivery, item.outcome, item.sender)
        return kept

    async def _after_settle(self, conn: AsyncConnection, delivery: Delivery, outcome: Outcome, sender: str) -> None:
        if outcome.gone:  # the provider says these addresses no longer exist
            await endpoint_store.forget_addresses(conn, sender, outcome.gone)
        if outcome.status.value in ("sent", "failed"):
            await self.herald.events.emit(
                conn,
                f"message.{outcome.status.value}",
                {
                    "delivery_id": delivery.id,
                    "notification_id": delivery.notification_id,
                    "user_id": delivery.user_id,
                    "channel": delivery.channel,
                    "account": outcome.account or delivery.account,
                    "attempts": delivery.attempts,
                    "reason": outcome.reason,
                    "reason_detail": outcome.detail,
                    "error": outcome.error,
                    "code": outcome.code,
                    "provider_message_id": outcome.provider_message_id,
                },
            )

    # -- jobs -----------------------------------------------------------------------------------

    async def _claim_jobs(self, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        now = utcnow()
        async with self.herald.db.write() as conn:
            return await job_store.claim_due_jobs(
                conn,
                owner=self.owner,
                now=now,
                lease_until=now + timedelta(seconds=self.herald.settings.lease_seconds),
                limit=limit,
            )

    async def _run_job(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if job.attempts > self.policy.max_attempts:  # claimed again and again without finishing: a crash loop
            await self._finish_job(job, "failed", f"gave up after {job.attempts - 1} attempts (no outcome recorded)")
            return
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            async with asyncio.timeout(self.policy.deadline):
                await handler(job, self.owner)
        except LostLease:
            log.warning("lost the lease on job %s; another worker has it", job.id)
        except PermanentJobError as exc:
            log.warning("job %s failed for good: %s", job.id, exc)
            await self._finish_job(job, "failed", str(exc))
        except Exception as exc:
            log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)
            if job.attempts >= self.policy.max_attempts:
                await self._finish_job(job, "failed", f"{type(exc).__name__}: {exc}")
            else:
                await self._retry_job(job, f"{type(exc).__name__}: {exc}")

    async def _finish_job(self, job: Job, status: str, error: str) -> None:
        with contextlib.suppress(Exception):
            async with self.herald.db.write() as conn:
                await job_store.finish_job(conn, job.id, owner=self.owner, status=status, now=utcnow(), error=error)

    async def _retry_job(self, job: Job, error: str) -> None:
        delay = retry_delay(job.attempts, base=self.policy.retry_base_seconds, cap=self.policy.retry_max_seconds)
        with contextlib.suppress(Exception):
            async with self.herald.db.write() as conn:
                await job_store.retry_job(
                    conn, job.id, owner=self.owner, run_at=retry_at(utcnow(), delay), error=error, now=utcnow()
                )

    # -- housekeeping and shutdown ---------------------------------------------------------------

    async def _housekeeping_if_due(self) -> None:
        """Make sure the retention purge's job exists (it purges old rows and idempotency records
        in small batches: engine/retention.py), and drop delivery-rule slots past their window."""
        if time.monotonic() < self._next_housekeeping:
            return
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
        async with self.herald.db.write() as conn:
            await retention.schedule(self.herald, conn, utcnow())
        if slots := await self.herald.rule_counters.purge_expired():
            log.info("purged %d expired delivery-rule slots", slots)
        await rearm_failed_jobs(self.herald)  # a schedule whose job gave up in an outage runs again

    async def _stop_settler(self) -> None:
        """Record what is already waiting (those sends happened), then stop."""
        if self._settler is not None and not self._settler.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._to_settle.join()
        if self._settler is not None:
            self._settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._settler
            self._settler = None
        while not self._to_settle.empty():  # not recorded in time: those rows stay leased (handed back)
            self._to_settle.get_nowait()
            self._to_settle.task_done()

    async def _hand_back(self) -> None:
        """Cancelled (hard shutdown): stop what is in flight and release unsettled deliveries at once."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stop_settler()
        ids = list(self._leased)
        if not ids:
            return
        try:
            async with self.herald.db.write() as conn:
                n = await delivery_store.release_deliveries(conn, ids, owner=self.owner, now=utcnow())
            self._leased.difference_update(ids)
            if n:
                log.info("released %d in-flight deliveries", n)
        except Exception:
            log.exception("could not release %d deliveries; their lease will expire", len(ids))
