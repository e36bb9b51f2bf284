"""The work queue's conformance suite (River's driver tests): every backend must pass it.

Runs at the store API, below HTTP and the worker, on SQLite and on PostgreSQL (the
``database_url`` fixture of tests/conftest.py). Time is passed in explicitly (``now``), so a lease
"expires" by claiming with a later ``now``, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from herald.core.enums import DeliveryStatus
from herald.core.ids import new_id
from herald.core.outcomes import Outcome
from herald.core.rules import SkipReason
from herald.store.db import Database
from herald.store.deliveries import (
    _PG_SETTLE,
    Settlement,
    claim_due_deliveries,
    insert_deliveries,
    release_deliveries,
    settle_deliveries,
    settle_delivery,
)
from herald.store.jobs import claim_due_jobs, enqueue_job, finish_job, retry_job, save_job_progress
from herald.store.records import Delivery, Job
from herald.store.tables import deliveries, delivery_attempts, jobs

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
HIGH, NORMAL, LOW = 0, 1, 2
FINAL_STATUSES = [s.value for s in DeliveryStatus if s.is_final]


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


def delivery_row(
    *,
    priority: int = NORMAL,
    due: datetime | None = T0,
    status: str = "pending",
    created_at: datetime = T0 - timedelta(minutes=5),
    user_id: str = "u",
) -> dict[str, Any]:
    return {
        "id": new_id("dlv"),
        "notification_id": "ntf_conformance",
        "user_id": user_id,
        "channel": "webhook",
        "account": None,
        "status": status,
        "reason": None,
        "priority": priority,
        "attempts": 0,
        "last_error": None,
        "provider_message_id": None,
        "next_attempt_at": due,
        "lease_until": None,
        "lease_owner": None,
        "expires_at": None,
        "created_at": created_at,
        "updated_at": created_at,
    }


async def add_deliveries(db: Database, rows: Sequence[dict[str, Any]]) -> list[str]:
    async with db.write() as conn:
        await insert_deliveries(conn, rows)
    return [r["id"] for r in rows]


async def claim(
    db: Database, owner: str, *, now: datetime = T0, limit: int = 100, lease: timedelta = LEASE
) -> list[Delivery]:
    async with db.write() as conn:
        return await claim_due_deliveries(conn, owner=owner, now=now, lease_until=now + lease, limit=limit)


async def settle(db: Database, delivery: Delivery, outcome: Outcome, *, owner: str, now: datetime) -> bool:
    async with db.write() as conn:
        return await settle_delivery(conn, delivery, outcome, owner=owner, started_at=now, now=now)


async def delivery_state(db: Database, delivery_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))).mappings().one()
    return dict(row)


async def attempt_log(db: Database, delivery_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.attempt)
        )
        return [dict(r) for r in rows.mappings()]


async def add_jobs(db: Database, specs: Sequence[tuple[int, datetime]]) -> list[str]:
    """One job per ``(priority, run_at)``, payload ``{"n": index}``."""
    async with db.write() as conn:
        return [
            await enqueue_job(conn, "conformance", {"n": n}, run_at=run_at, now=T0 - timedelta(minutes=5), priority=p)
            for n, (p, run_at) in enumerate(specs)
        ]


async def claim_jobs(db: Database, owner: str, *, now: datetime = T0, limit: int = 100) -> list[Job]:
    async with db.write() as conn:
        return await claim_due_jobs(conn, owner=owner, now=now, lease_until=now + LEASE, limit=limit)


async def job_state(db: Database, job_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one()
    return dict(row)


async def drain_concurrently(
    claimers: Sequence[tuple[Database, str]], claim_batch: Any, *, limit: int
) -> dict[str, list[str]]:
    """Every claimer claims at the same time, round after round, until a round finds nothing."""
    claimed: dict[str, list[str]] = {owner: [] for _, owner in claimers}
    while True:
        rounds = await asyncio.gather(*(claim_batch(database, owner, limit=limit) for database, owner in claimers))
        for (_, owner), got in zip(claimers, rounds, strict=True):
            assert len(got) <= limit, f"{owner} claimed {len(got)} rows with limit {limit}"
            assert all(item.lease_owner == owner for item in got)
            claimed[owner].extend(item.id for item in got)
        if not any(rounds):
            return claimed


def assert_partition(claimed: dict[str, list[str]], expected: Sequence[str]) -> None:
    everything = Counter(i for ids in claimed.values() for i in ids)
    twice = sorted(i for i, n in everything.items() if n > 1)
    assert not twice, f"{len(twice)} rows claimed more than once, e.g. {twice[:3]}"
    assert set(everything) == set(expected), "some rows were never claimed"


# -- deliveries: concurrent claimers --------------------------------------------------------------


async def test_concurrent_claimers_never_share_a_delivery(database_url: str) -> None:
    """Two engines (two pools, as two processes would have), three claims in flight on each."""
    first, second = Database(database_url), Database(database_url)
    try:
        ids = await add_deliveries(
            first, [delivery_row(priority=i % 3, due=T0 - timedelta(seconds=i)) for i in range(600)]
        )
        claimers = [(first, "a1"), (first, "a2"), (first, "a3"), (second, "b1"), (second, "b2"), (second, "b3")]
        claimed = await drain_concurrently(claimers, claim, limit=17)
        assert_partition(claimed, ids)
        async with first.read() as conn:
            counts = dict(
                (await conn.execute(select(deliveries.c.attempts, func.count()).group_by(deliveries.c.attempts))).all()
            )
        assert counts == {1: 600}, "each row's attempts counted exactly once"
    finally:
        await first.dispose()
        await second.dispose()


CLAIMER_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys
    from datetime import datetime, timedelta
    from herald.store.db import Database
    from herald.store.deliveries import claim_due_deliveries

    async def main(url, owner, now):
        db = Database(url)
        print("ready", flush=True)
        sys.stdin.readline()  # the test says go once both processes are ready
        claimed = []
        while True:
            async with db.write() as conn:
                got = await claim_due_deliveries(
                    conn, owner=owner, now=now, lease_until=now + timedelta(seconds=60), limit=7
                )
            if not got:
                break
            claimed.extend(d.id for d in got)
            await asyncio.sleep(0.001)
        await db.dispose()
        print(json.dumps(claimed), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])))
    """
)


@pytest.mark.slow
async def test_two_processes_never_share_a_delivery(db: Database) -> None:
    ids = await add_deliveries(db, [delivery_row(due=T0 - timedelta(seconds=i)) for i in range(500)])
    owners = ("proc-a", "proc-b")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIMER_PROCESS,
            db.url,
            owner,
            T0.isoformat(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for owner in owners
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), timeout=60) == b"ready\n"
        results = await asyncio.wait_for(asyncio.gather(*(proc.communicate(b"go\n") for proc in procs)), timeout=120)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
    claimed: dict[str, list[str]] = {}
    for owner, proc, (out, err) in zip(owners, procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        claimed[owner] = json.loads(out)
    assert_partition(claimed, ids)


# -- deliveries: leases ---------------------------------------------------------------------------


async def test_an_expired_lease_makes_rows_claimable_again(db: Database) -> None:
    ids = await add_deliveries(db, [delivery_row() for _ in range(3)])
    first = await claim(db, "worker-a")
    assert sorted(d.id for d in first) == sorted(ids)
    assert all(d.status is DeliveryStatus.SENDING and d.attempts == 1 for d in first)

    assert await claim(db, "worker-b", now=T0 + LEASE - timedelta(seconds=1)) == [], "the lease still holds"
    later = T0 + LEASE + timedelta(seconds=1)
    second = await claim(db, "worker-b", now=later)
    assert sorted(d.id for d in second) == sorted(ids)
    assert all(d.lease_owner == "worker-b" and d.attempts == 2 for d in second), "the lost attempt still counts"
    assert all(d.lease_until == later + LEASE for d in second)


async def test_a_lease_ending_in_the_past_is_due_at_once(db: Database) -> None:
    [delivery_id] = await add_deliveries(db, [delivery_row()])
    [mine] = await claim(db, "worker-a", lease=-timedelta(seconds=1))
    [theirs] = await claim(db, "worker-b")
    assert (mine.id, theirs.id) == (delivery_id, delivery_id)
    assert (theirs.lease_owner, theirs.attempts) == ("worker-b", 2)


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.sent("msg-from-a"),
        Outcome.failed("boom", reason="provider_refused", detail="provider said no", code="E1"),
        Outcome.retry(T0 + timedelta(minutes=5), "timeout", code="504"),
        Outcome.skipped(SkipReason.NO_ADDRESS, "no address"),
        Outcome.deferred(T0 + timedelta(minutes=5), SkipReason.RATE_LIMITED, "no budget"),
    ],
    ids=["sent", "failed", "retry", "skipped", "deferred"],
)
async def test_a_stolen_lease_cannot_settle(db: Database, outcome: Outcome) -> None:
    [delivery_id] = await add_deliveries(db, [delivery_row()])
    [as_a] = await claim(db, "worker-a")
    later = T0 + LEASE + timedelta(seconds=1)
    [as_b] = await claim(db, "worker-b", now=later)
    before = await delivery_state(db, delivery_id)

    assert await settle(db, as_a, outcome, owner="worker-a", now=later + timedelta(seconds=1)) is False
    assert await delivery_state(db, delivery_id) == before, "a lost lease changes nothing"
    assert before["status"] == "sending" and before["attempts"] == 2 and before["lease_owner"] == "worker-b"
    assert await attempt_log(db, delivery_id) == []

    assert await settle(db, as_b, Outcome.sent("msg-from-b"), owner="worker-b", now=later + timedelta(seconds=2))
    after = await delivery_state(db, delivery_id)
    assert (after["status"], after["provider_message_id"], after["lease_owner"]) == ("sent", "msg-from-b", None)
    [attempt] = await attempt_log(db, delivery_id)
    assert (attempt["attempt"], attempt["worker"], attempt["outcome"]) == (2, "worker-b", "sent")
    # settled once: the same owner cannot settle it a second time either
    assert await settle(db, as_b, Outcome.failed("late"), owner="worker-b", now=later + timedelta(seconds=3)) is False
    assert (await delivery_state(db, delivery_id))["status"] == "sent"


async def test_the_owner_settles_within_its_lease(db: Database) -> None:
    retry_at = T0 + timedelta(minutes=2)
    deferred_to = T0 + timedelta(minutes=3)
    sent_id, retry_id, deferred_id, failed_id = await add_deliveries(db, [delivery_row() for _ in range(4)])
    claimed = {d.id: d for d in await claim(db, "w")}
    now = T0 + timedelta(seconds=5)

    assert await settle(db, claimed[sent_id], Outcome.sent("m1"), owner="w", now=now)
    assert await settle(db, claimed[retry_id], Outcome.retry(retry_at, "HTTP 503", code="503"), owner="w", now=now)
    assert await settle(
        db,
        claimed[deferred_id],
        Outcome.deferred(deferred_to, SkipReason.RATE_LIMITED, "budget spent"),
        owner="w",
        now=now,
    )
    assert await settle(db, claimed[failed_id], Outcome.failed("HTTP 400", code="400"), owner="w", now=now)

    sent, retried, deferred, failed = [await delivery_state(db, i) for i in (sent_id, retry_id, deferred_id, failed_id)]
    assert (sent["status"], sent["attempts"], sent["lease_owner"]) == ("sent", 1, None)
    assert (retried["status"], retried["attempts"], retried["next_attempt_at"]) == ("pending", 1, retry_at)
    assert retried["last_error"] == "[503] HTTP 503"
    assert (deferred["status"], deferred["attempts"], deferred["next_attempt_at"]) == ("pending", 0, deferred_to)
    assert (failed["status"], failed["attempts"], failed["next_attempt_at"]) == ("failed", 1, None)
    assert [a["outcome"] for a in await attempt_log(db, retry_id)] == ["retry"]
    assert await attempt_log(db, deferred_id) == [], "a deferral is not an attempt"

    # the retried row comes back at its time, the deferred one at its own; settled rows never
    assert await claim(db, "w2", now=retry_at - timedelta(seconds=1)) == []
    [retried_again] = await claim(db, "w2", now=retry_at)
    assert (retried_again.id, retried_again.attempts) == (retry_id, 2)
    assert await settle(db, retried_again, Outcome.sent(), owner="w2", now=retry_at)
    [again] = await claim(db, "w2", now=deferred_to)
    assert (again.id, again.attempts) == (deferred_id, 1)


MIXED = [
    Outcome.sent("m1"),
    Outcome.retry(T0 + timedelta(minutes=2), "HTTP 503", code="503"),
    Outcome.deferred(T0 + timedelta(minutes=3), SkipReason.RATE_LIMITED, "budget spent"),
    Outcome.failed("HTTP 400", code="400"),
    Outcome.skipped(SkipReason.NO_ADDRESS, "no address"),
    Outcome.sent(),
]


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "id"}


async def test_a_batch_is_settled_as_each_alone_would_be(db: Database) -> None:
    """``settle_deliveries`` (one statement on PostgreSQL) leaves every row and attempt log as the
    same outcomes settled one by one do, a stolen lease in the middle of the batch included."""
    alone_ids = await add_deliveries(db, [delivery_row(user_id=f"a{i}") for i in range(len(MIXED) + 1)])
    batch_ids = await add_deliveries(db, [delivery_row(user_id=f"b{i}") for i in range(len(MIXED) + 1)])
    claimed = {d.id: d for d in await claim(db, "w")}
    later = T0 + LEASE + timedelta(seconds=1)
    async with db.write() as conn:  # the last row of each set: its lease ran out, another worker has it
        for ids in (alone_ids, batch_ids):
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.id == ids[-1])
                .values(lease_owner="thief", lease_until=later + LEASE, next_attempt_at=later + LEASE)
            )
    outcomes = [*MIXED, Outcome.sent("not mine")]
    now = T0 + timedelta(seconds=5)

    alone = [await settle(db, claimed[i], o, owner="w", now=now) for i, o in zip(alone_ids, outcomes, strict=True)]
    async with db.write() as conn:
        together = await settle_deliveries(
            conn, [Settlement(claimed[i], o, now) for i, o in zip(batch_ids, outcomes, strict=True)], owner="w", now=now
        )
    assert alone == together == [True] * len(MIXED) + [False]
    for a, b in zip(alone_ids, batch_ids, strict=True):
        state_a, state_b = await delivery_state(db, a), await delivery_state(db, b)
        assert _comparable(state_a) == _comparable(state_b) | {"user_id": state_a["user_id"]}
        log_a = [{k: v for k, v in r.items() if k not in ("id", "delivery_id")} for r in await attempt_log(db, a)]
        log_b = [{k: v for k, v in r.items() if k not in ("id", "delivery_id")} for r in await attempt_log(db, b)]
        assert log_a == log_b
    assert (await delivery_state(db, batch_ids[-1]))["lease_owner"] == "thief"


async def test_two_outcomes_for_one_row_in_a_batch_settle_in_order(db: Database) -> None:
    """A worker that claimed a row again after its own lease ran out may hand the settler two
    outcomes for it: the first is recorded, the second finds the row settled and changes nothing."""
    [delivery_id] = await add_deliveries(db, [delivery_row()])
    [first] = await claim(db, "w")
    [second] = await claim(db, "w", now=T0 + LEASE + timedelta(seconds=1))
    now = T0 + LEASE + timedelta(seconds=2)
    async with db.write() as conn:
        kept = await settle_deliveries(
            conn,
            [Settlement(second, Outcome.sent("m2"), now), Settlement(first, Outcome.failed("late"), now)],
            owner="w",
            now=now,
        )
    assert kept == [True, False]
    state = await delivery_state(db, delivery_id)
    assert (state["status"], state["provider_message_id"], state["attempts"]) == ("sent", "m2", 2)
    assert [(a["attempt"], a["outcome"]) for a in await attempt_log(db, delivery_id)] == [(2, "sent")]


async def test_settling_finds_its_rows_by_primary_key(db: Database) -> None:
    """PostgreSQL: the settle never walks the claim's partial index (every live and dead entry of
    the queue) to find a batch, whatever the statistics say."""
    async with db.write() as conn:
        if conn.dialect.name != "postgresql":
            return  # SQLite settles row by row by primary key
    await add_deliveries(db, [delivery_row(user_id=f"u{i}") for i in range(2000)])
    batch = await claim(db, "w", limit=32)
    now = T0 + timedelta(seconds=5)
    rows = [{"id": d.id, "status": "sent", "undo": 0, "attempt": d.attempts, "label": "sent"} for d in batch]
    async with db.write() as conn:
        plan = await conn.execute(
            text("EXPLAIN " + _PG_SETTLE.text), {"rows": json.dumps(rows), "owner": "w", "now": now}
        )
        lines = [r[0] for r in plan]
    assert not any("ix_deliveries_due" in line for line in lines), "\n".join(lines)


# -- deliveries: order ----------------------------------------------------------------------------


async def test_priorities_order_claims_then_due_time(db: Database) -> None:
    rows = {
        "low-early": delivery_row(priority=LOW, due=T0 - timedelta(hours=3)),
        "normal-late": delivery_row(priority=NORMAL, due=T0 - timedelta(minutes=1)),
        "normal-early": delivery_row(priority=NORMAL, due=T0 - timedelta(hours=2)),
        "high-late": delivery_row(priority=HIGH, due=T0),
        "high-early": delivery_row(priority=HIGH, due=T0 - timedelta(minutes=30)),
        "high-not-yet-due": delivery_row(priority=HIGH, due=T0 + timedelta(seconds=1)),
        "pending-no-due-time": delivery_row(priority=HIGH, due=None),
    }
    for i, status in enumerate(FINAL_STATUSES):
        rows[status] = delivery_row(priority=HIGH, due=T0 - timedelta(days=1, seconds=i), status=status)
    await add_deliveries(db, list(rows.values()))
    name_of = {row["id"]: name for name, row in rows.items()}

    order = []
    while got := await claim(db, "w", limit=1):
        order.append(name_of[got[0].id])
        assert await settle(db, got[0], Outcome.sent(), owner="w", now=T0)
    assert order == ["high-early", "high-late", "normal-early", "normal-late", "low-early"]

    later = T0 + timedelta(seconds=1)  # the row falls due; final rows stay where they are
    [due_now] = await claim(db, "w", now=later)
    assert name_of[due_now.id] == "high-not-yet-due"
    assert await settle(db, due_now, Outcome.sent(), owner="w", now=later)
    assert await claim(db, "w", now=T0 + timedelta(days=365)) == []
    for status in FINAL_STATUSES:
        assert (await delivery_state(db, rows[status]["id"]))["status"] == status


async def test_a_batch_takes_the_most_urgent_rows(db: Database) -> None:
    rows = [delivery_row(priority=p, due=T0 - timedelta(seconds=s)) for p in (LOW, NORMAL, HIGH) for s in (1, 2, 3)]
    await add_deliveries(db, rows)
    batch = await claim(db, "w", limit=4)
    assert sorted(d.priority for d in batch) == [HIGH, HIGH, HIGH, NORMAL]
    [normal] = [d for d in batch if d.priority == NORMAL]
    assert normal.id == rows[5]["id"], "the normal row due first"
    assert [d.priority for d in batch] == sorted(d.priority for d in batch), "returned in priority order"


async def test_a_blast_does_not_hold_back_a_verification_code(db: Database) -> None:
    blast = [delivery_row(priority=LOW, due=T0 - timedelta(minutes=10)) for _ in range(300)]
    await add_deliveries(db, blast)
    [code_id] = await add_deliveries(db, [delivery_row(priority=HIGH, due=T0)])
    first = await claim(db, "w", limit=50)
    assert first[0].id == code_id and sum(d.id == code_id for d in first) == 1


# -- deliveries: release ---------------------------------------------------------------------------


async def test_release_hands_rows_back_unattempted_only_for_the_owner(db: Database) -> None:
    ids = await add_deliveries(db, [delivery_row() for _ in range(3)])
    await claim(db, "worker-a")
    now = T0 + timedelta(seconds=10)

    async with db.write() as conn:
        assert await release_deliveries(conn, ids, owner="worker-b", now=now) == 0
    assert {(await delivery_state(db, i))["lease_owner"] for i in ids} == {"worker-a"}

    async with db.write() as conn:
        assert await release_deliveries(conn, ids[:2], owner="worker-a", now=now) == 2
        assert await release_deliveries(conn, [], owner="worker-a", now=now) == 0
    for i in ids[:2]:
        state = await delivery_state(db, i)
        assert (state["status"], state["attempts"], state["lease_owner"], state["lease_until"]) == (
            "pending",
            0,
            None,
            None,
        )
        assert state["next_attempt_at"] == now
    assert (await delivery_state(db, ids[2]))["status"] == "sending"

    again = await claim(db, "worker-b", now=now)
    assert sorted(d.id for d in again) == sorted(ids[:2]) and all(d.attempts == 1 for d in again)
    # settled rows are not the owner's to release any more
    assert await settle(db, again[0], Outcome.sent(), owner="worker-b", now=now)
    async with db.write() as conn:
        assert await release_deliveries(conn, [again[0].id], owner="worker-b", now=now) == 0
    assert (await delivery_state(db, again[0].id))["status"] == "sent"


# -- jobs ------------------------------------------------------------------------------------------


async def test_concurrent_claimers_never_share_a_job(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        ids = await add_jobs(first, [(i % 3, T0 - timedelta(seconds=i)) for i in range(510)])
        claimers = [(first, "a1"), (first, "a2"), (second, "b1"), (second, "b2")]
        claimed = await drain_concurrently(claimers, claim_jobs, limit=13)
        assert_partition(claimed, ids)
        async with first.read() as conn:
            attempts = (await conn.execute(select(func.min(jobs.c.attempts), func.max(jobs.c.attempts)))).one()
        assert tuple(attempts) == (1, 1)
    finally:
        await first.dispose()
        await second.dispose()


async def test_jobs_by_priority_then_run_at_and_never_early(db: Database) -> None:
    names = ["low", "normal-late", "normal-early", "high", "later"]
    ids = await add_jobs(
        db,
        [
            (LOW, T0 - timedelta(hours=1)),
            (NORMAL, T0),
            (NORMAL, T0 - timedelta(minutes=1)),
            (HIGH, T0 - timedelta(seconds=1)),
            (HIGH, T0 + timedelta(minutes=1)),
        ],
    )
    name_of = dict(zip(ids, names, strict=True))
    order = []
    while got := await claim_jobs(db, "w", limit=1):
        order.append(name_of[got[0].id])
        async with db.write() as conn:
            assert await finish_job(conn, got[0].id, owner="w", status="done", now=T0)
    assert order == ["high", "normal-early", "normal-late", "low"]
    [later] = await claim_jobs(db, "w", now=T0 + timedelta(minutes=1))
    assert (name_of[later.id], later.attempts, later.payload) == ("later", 1, {"n": 4})


async def test_finished_jobs_are_never_claimed(db: Database) -> None:
    done_id, failed_id = await add_jobs(db, [(HIGH, T0), (HIGH, T0)])
    claimed = {j.id: j for j in await claim_jobs(db, "w")}
    async with db.write() as conn:
        assert await finish_job(conn, done_id, owner="w", status="done", now=T0)
        assert await finish_job(conn, failed_id, owner="w", status="failed", now=T0, error="no handler")
    assert set(claimed) == {done_id, failed_id}
    assert await claim_jobs(db, "w2", now=T0 + timedelta(days=30)) == []
    assert (await job_state(db, failed_id))["last_error"] == "no handler"


async def test_a_stolen_job_lease_cannot_finish_retry_or_save(db: Database) -> None:
    [job_id] = await add_jobs(db, [(NORMAL, T0)])
    [as_a] = await claim_jobs(db, "worker-a")
    later = T0 + LEASE + timedelta(seconds=1)
    [as_b] = await claim_jobs(db, "worker-b", now=later)
    assert (as_a.id, as_b.id, as_b.attempts, as_b.lease_owner) == (job_id, job_id, 2, "worker-b")
    before = await job_state(db, job_id)

    async with db.write() as conn:
        assert not await finish_job(conn, job_id, owner="worker-a", status="done", now=later)
        assert not await retry_job(conn, job_id, owner="worker-a", run_at=later, error="x", now=later)
        assert not await save_job_progress(
            conn, job_id, owner="worker-a", payload={"n": 99}, lease_until=later + LEASE, now=later
        )
        assert not await save_job_progress(
            conn, job_id, owner="worker-a", payload={"n": 99}, lease_until=later + LEASE, now=later, release=True
        )
    assert await job_state(db, job_id) == before

    async with db.write() as conn:
        assert await save_job_progress(
            conn, job_id, owner="worker-b", payload={"n": 1}, lease_until=later + 2 * LEASE, now=later
        )
        assert await finish_job(conn, job_id, owner="worker-b", status="done", now=later)
    state = await job_state(db, job_id)
    assert (state["status"], state["payload"], state["lease_owner"]) == ("done", {"n": 1}, None)


async def test_saving_progress_extends_the_lease(db: Database) -> None:
    [job_id] = await add_jobs(db, [(NORMAL, T0)])
    await claim_jobs(db, "w")
    extended_to = T0 + 3 * LEASE
    async with db.write() as conn:
        assert await save_job_progress(
            conn, job_id, owner="w", payload={"cursor": "c1"}, lease_until=extended_to, now=T0
        )
    assert await claim_jobs(db, "other", now=T0 + 2 * LEASE) == [], "the extended lease holds past the first"
    [taken] = await claim_jobs(db, "other", now=extended_to)
    assert (taken.payload, taken.attempts) == ({"cursor": "c1"}, 2)


async def test_a_released_job_is_due_at_once_for_anyone(db: Database) -> None:
    [job_id] = await add_jobs(db, [(LOW, T0)])
    await claim_jobs(db, "w")
    now = T0 + timedelta(seconds=1)
    async with db.write() as conn:
        assert await save_job_progress(
            conn, job_id, owner="w", payload={"cursor": "c2"}, lease_until=now + LEASE, now=now, release=True
        )
    state = await job_state(db, job_id)
    assert (state["status"], state["lease_owner"], state["run_at"]) == ("pending", None, now)
    [taken] = await claim_jobs(db, "other", now=now)
    assert (taken.id, taken.payload, taken.lease_owner) == (job_id, {"cursor": "c2"}, "other")


async def test_a_released_job_is_handed_back_unattempted(db: Database) -> None:
    [job_id] = await add_jobs(db, [(LOW, T0)])
    now = T0
    for chunk in range(10):
        [job] = await claim_jobs(db, "w", now=now)
        assert job.attempts == 1, f"claim {chunk + 1} after {chunk} releases"
        async with db.write() as conn:
            assert await save_job_progress(
                conn, job_id, owner="w", payload={"chunk": chunk}, lease_until=now + LEASE, now=now, release=True
            )
        now += timedelta(seconds=1)


async def test_a_retried_job_waits_for_its_time(db: Database) -> None:
    [job_id] = await add_jobs(db, [(NORMAL, T0)])
    await claim_jobs(db, "w")
    run_at = T0 + timedelta(minutes=10)
    async with db.write() as conn:
        assert not await retry_job(conn, job_id, owner="someone-else", run_at=run_at, error="x", now=T0)
        assert await retry_job(conn, job_id, owner="w", run_at=run_at, error="HTTP 502", now=T0)
    state = await job_state(db, job_id)
    assert (state["status"], state["lease_owner"], state["last_error"], state["attempts"]) == (
        "pending",
        None,
        "HTTP 502",
        1,
    )
    assert await claim_jobs(db, "w", now=run_at - timedelta(seconds=1)) == []
    [again] = await claim_jobs(db, "w", now=run_at)
    assert (again.id, again.attempts) == (job_id, 2)


async def test_a_job_whose_worker_died_comes_back(db: Database) -> None:
    """No finish, no retry, no progress: the lease alone brings it back."""
    [job_id] = await add_jobs(db, [(HIGH, T0)])
    await claim_jobs(db, "dead-worker")
    assert await claim_jobs(db, "w", now=T0 + LEASE - timedelta(microseconds=1)) == []
    [back] = await claim_jobs(db, "w", now=T0 + LEASE)
    assert (back.id, back.attempts, back.lease_owner) == (job_id, 2, "w")
