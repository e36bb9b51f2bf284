"""One delivery, in named stages: gate → route → build → address → budget → grant → send.

Each stage takes typed input and returns either what the next stage needs or an ``Outcome``
that ends the delivery there; ``handle_delivery`` runs them in order and turns anything a stage
raises into an outcome for this delivery alone. A new rule (preferences, quiet hours, dedup, …)
is one more stage in ``STAGES`` order, written like these.

Settling (the store write) is the worker's; nothing here writes except the grant stage's
consumable quota, which must be taken before a send and given back after a failed one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from herald.channels.base import Channel, OutboundMessage, Recipient
from herald.core.backoff import retry_at, retry_delay
from herald.core.enums import DeliveryStatus, NotificationStatus
from herald.core.errors import DeliveryError, RetryableError, SkipDelivery, TerminalError
from herald.core.frequency import Window, windows_for
from herald.core.locales import pick_locale
from herald.core.outcomes import FailReason, Outcome
from herald.core.preferences import Preferences, delivery_outcome, quiet_timezone
from herald.core.records import Endpoint, Profile
from herald.core.routing import Candidate, choose_account
from herald.core.rules import SkipReason, TypeRules
from herald.core.templates import RECIPIENT_RENDER_SECONDS, has_recipient_fields, render_for_recipient
from herald.engine import digests, metrics
from herald.engine.ratelimit import RateLimiter
from herald.engine.rule_counters import RuleCounters
from herald.engine.unsubscribe import UnsubscribeLinks
from herald.store import quotas as quota_store
from herald.store.db import Database
from herald.store.records import Account, Delivery, Notification
from herald.store.types import utcnow

log = logging.getLogger(__name__)
NO_RULES = TypeRules()


@dataclass(frozen=True)
class Policy:
    """The settings the stages follow."""

    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    send_timeout: float
    """The longest one channel.send may take."""
    deadline: float
    """The longest one delivery may take, all stages together (inside the lease)."""
    default_locale: str
    default_timezone: str = "UTC"
    """Of quiet hours, when neither the user's preferences nor their profile name one."""
    unsubscribe: UnsubscribeLinks | None = None
    """Makes the one-click unsubscribe link of each message (None: HERALD_PUBLIC_URL is unset)."""


@dataclass(frozen=True)
class Context:
    """What the worker loaded for a claimed batch; each delivery takes its own part."""

    notifications: Mapping[str, Notification]
    users: Mapping[str, Profile]
    accounts: Sequence[Account]
    endpoints: Mapping[tuple[str, str], Sequence[Endpoint]] = field(default_factory=dict)
    """``{(channel, user_id): [Endpoint]}`` for channels that use endpoints."""
    rules: Mapping[str, TypeRules] = field(default_factory=dict)
    """``{type key: TypeRules}``: the delivery rules of each notification's type (absent: none)."""
    preferences: Mapping[str, Preferences] = field(default_factory=dict)
    """``{user_id: Preferences}`` of the batch's users who saved any (absent: none)."""


@dataclass(frozen=True)
class Route:
    """The channel that really sends (a provider, for a logical channel) and its account."""

    channel: Channel
    account: Account | None
    settings: Any


@dataclass(frozen=True)
class Services:
    """The I/O the stages may use, passed in (not the whole Herald)."""

    db: Database
    rate_limiter: RateLimiter
    channels: Mapping[str, Channel]
    rule_counters: RuleCounters
    """Slots of dedup, frequency caps and throttle (the database, or Redis)."""
    clock: Callable[[], datetime] = utcnow
    """The stages' "now" (tests move it to the end of a quiet window)."""


# -- stages ---------------------------------------------------------------------------------------


def gate(delivery: Delivery, notification: Notification | None, now: datetime, policy: Policy) -> Outcome | None:
    """Cancelled, expired, or claimed again and again without an outcome (a crash loop)."""
    if notification is None or notification.status == NotificationStatus.CANCELLED:
        return Outcome.cancelled()
    if delivery.expires_at is not None and delivery.expires_at <= now:
        return Outcome.expired()
    if delivery.attempts > policy.max_attempts:
        return Outcome.failed(
            delivery.last_error,
            reason=FailReason.ATTEMPTS_EXHAUSTED,
            detail=f"gave up after {delivery.attempts - 1} attempts (no outcome recorded)",
        )
    return None


def preferences(
    delivery: Delivery, notification: Notification, rules: TypeRules, context: Context, now: datetime, policy: Policy
) -> Outcome | None:
    """The user's preferences and quiet hours (core/preferences.py): a channel they turned off is
    suppressed; inside their quiet hours the delivery waits for the window's end as a pending
    row, or is dropped, or goes on, as the type says. Critical types pass."""
    prefs = context.preferences.get(delivery.user_id)
    if prefs is None or rules.critical:
        return None
    user = context.users.get(delivery.user_id)
    return delivery_outcome(
        prefs,
        rules,
        category=notification.category,
        type_key=notification.type_key,
        channel=delivery.channel,
        now=now,
        timezone=quiet_timezone(prefs, user.timezone if user else None, policy.default_timezone),
        expires_at=delivery.expires_at,
    )


async def digest(
    delivery: Delivery,
    notification: Notification,
    rules: TypeRules,
    context: Context,
    services: Services,
    now: datetime,
) -> Outcome | None:
    """A type with a digest on this channel: the delivery is collected into the user's digest
    (skipped, ``digested``) and sent with the others at the window's end (engine/digests.py)."""
    if rules.digest is None:
        return None
    user = context.users.get(delivery.user_id) or Profile(id=delivery.user_id)
    return await digests.collect(delivery, notification, rules, user, services.channels, services.db, now)


def route(
    delivery: Delivery, notification: Notification, services: Services, accounts: Sequence[Account]
) -> Route | Outcome:
    """Pick the account (and, for a logical channel, the provider) this attempt goes through."""
    channel = services.channels.get(delivery.channel)
    if channel is None:
        return Outcome.failed(f"channel '{delivery.channel}' is not installed", reason=FailReason.NOT_INSTALLED)
    if not channel.requires_account and not channel.routes_over:
        return Route(channel, None, None)
    # a logical channel's providers are only those with a template for this notification
    kinds = [k for k in channel.routes_over if k in notification.rendered] or [delivery.channel]
    usable = [a for a in accounts if a.channel in kinds]
    readable = [a for a in usable if a.config is not None] or usable
    by_name = {a.name: a for a in readable}
    chosen = choose_account(
        [Candidate(a.name, a.default, a.group, a.weight, a.weighted) for a in readable],
        named=notification.accounts.get(delivery.channel, ()),
        logical=bool(channel.routes_over),
        previous=delivery.account,
        failed_before=delivery.failed_before,
    )
    if chosen is None:
        return Outcome.skipped(SkipReason.NO_ACCOUNT, f"no '{delivery.channel}' channel account configured")
    account = by_name[chosen.name]
    provider = services.channels.get(account.channel) if channel.routes_over else channel
    if provider is None:
        return Outcome.failed(f"channel '{account.channel}' is not installed", reason=FailReason.NOT_INSTALLED).via(
            account.name
        )
    if account.config is None:
        return Outcome.failed(account.error, reason=FailReason.INVALID_ACCOUNT).via(account.name)
    try:
        settings = provider.Settings.model_validate(account.config)
    except ValidationError as exc:
        return Outcome.failed(f"account '{account.name}' is invalid: {exc}", reason=FailReason.INVALID_ACCOUNT).via(
            account.name
        )
    return Route(provider, account, settings)


async def budget(routed: Route, services: Services, now: datetime) -> Outcome | None:
    """The provider's per-account rate limit: out of budget goes back to the queue, unattempted."""
    limit = routed.channel.rate_limit
    if limit is None or routed.account is None:
        return None
    wait = await services.rate_limiter.acquire(f"{routed.channel.name}:{routed.account.name}", limit)
    if wait > 0:
        return Outcome.deferred(retry_at(now, wait), SkipReason.RATE_LIMITED, "rate limited").via(routed.account.name)
    return None


def build(
    delivery: Delivery, notification: Notification, routed: Route, context: Context, policy: Policy
) -> OutboundMessage:
    """The message the channel sends: the rendered template in the recipient's locale."""
    user = context.users.get(delivery.user_id) or Profile(id=delivery.user_id)
    channel = routed.channel
    templates = notification.rendered.get(channel.name, {})
    locale = pick_locale(templates.keys(), user.locale, policy.default_locale)
    endpoints = context.endpoints.get((channel.name, user.id), ()) if channel.uses_endpoints else ()
    content = templates[locale] if locale else {}
    if has_recipient_fields(content):  # "尊敬的 ${recipient.name}": rendered for this user (bounded, short)
        content, errors = render_for_recipient(content, notification.data, vars(user), seconds=RECIPIENT_RENDER_SECONDS)
        for error in errors:
            log.warning("delivery %s: %s (left empty)", delivery.id, error.message)
    return OutboundMessage(
        delivery_id=delivery.id,
        notification_id=notification.id,
        type=notification.type_key,
        category=notification.category,
        recipient=Recipient(**vars(user), endpoints=tuple(endpoints)),
        content=content,
        data=notification.data,
        attempt=delivery.attempts,
        created_at=notification.created_at.isoformat(),
        unsubscribe_url=_unsubscribe_url(delivery, notification, context, policy),
    )


def _unsubscribe_url(delivery: Delivery, notification: Notification, context: Context, policy: Policy) -> str | None:
    """The link that turns this type off on this channel for this user; none for critical types
    (preferences do not apply to them) or without HERALD_PUBLIC_URL."""
    rules = context.rules.get(notification.type_key) or NO_RULES
    if policy.unsubscribe is None or rules.critical:
        return None
    return policy.unsubscribe.url(delivery.user_id, notification.type_key, delivery.channel)


def address(routed: Route, message: OutboundMessage) -> Outcome | None:
    """A recipient the channel cannot reach is skipped before any budget or grant is spent."""
    missing = routed.channel.missing_address(message.recipient)
    return None if missing is None else Outcome.skipped(SkipReason.NO_ADDRESS, missing, code="no_address")


async def send(routed: Route, message: OutboundMessage, delivery: Delivery, policy: Policy) -> Outcome:
    """Call the channel; every way it can end becomes an outcome."""
    channel = routed.channel
    clock = time.perf_counter()
    metrics.sends_in_flight.inc()
    try:
        result = await asyncio.wait_for(channel.send(message, routed.settings), policy.send_timeout)
    except TimeoutError:
        return retry_or_fail(delivery, RetryableError("send timed out", code="timeout"), policy)
    except SkipDelivery as exc:
        return Outcome.skipped(SkipReason(exc.reason), exc.message, code=exc.code)
    except TerminalError as exc:
        return Outcome.failed(
            exc.message,
            reason=FailReason.PROVIDER_REFUSED,
            detail=f"provider refused: {exc.message}",
            code=exc.code,
            gone=_gone(exc),
        )
    except RetryableError as exc:
        return retry_or_fail(delivery, exc, policy, gone=_gone(exc))
    except DeliveryError as exc:
        return Outcome.failed(exc.message, code=exc.code)
    except UnicodeError as exc:  # a payload that cannot be encoded will never be
        return Outcome.failed(f"payload cannot be encoded: {exc}", reason=FailReason.ENCODING, code="encoding")
    finally:
        metrics.sends_in_flight.dec()
        metrics.send_seconds.labels(channel.name).observe(time.perf_counter() - clock)
    known = {e.address for e in message.recipient.endpoints}
    if known and known <= set(result.gone):
        return Outcome.skipped(
            SkipReason.GONE, "every registered address is gone", code="gone", gone=tuple(result.gone)
        )
    return Outcome.sent(result.provider_message_id, gone=tuple(result.gone))


def _gone(exc: Exception) -> tuple[str, ...]:
    return tuple(getattr(exc, "gone", ()) or ())


def retry_or_fail(delivery: Delivery, exc: RetryableError, policy: Policy, *, gone: tuple[str, ...] = ()) -> Outcome:
    """Retry later (backoff, the provider's Retry-After honoured up to the ceiling) or give up."""
    if delivery.attempts >= policy.max_attempts:
        return Outcome.failed(
            exc.message,
            reason=FailReason.ATTEMPTS_EXHAUSTED,
            detail=f"gave up after {delivery.attempts} attempts: {exc.message}",
            code=exc.code,
            gone=gone,
        )
    delay = retry_delay(
        delivery.attempts,
        base=policy.retry_base_seconds,
        cap=policy.retry_max_seconds,
        retry_after=exc.retry_after,
    )
    return Outcome.retry(retry_at(utcnow(), delay), exc.message, code=exc.code, gone=gone)


# -- the consumable grant around a send ------------------------------------------------------------


async def take_grant(
    services: Services, channel: Channel, message: OutboundMessage, now: datetime
) -> str | Outcome | None:
    """Take one of the recipient's grants for this send, if the channel needs one (mini-program
    subscriptions): the grant's key, None when none is needed, or a skip when none is left."""
    key = channel.quota_key(message)
    if key is None:
        return None
    async with services.db.write() as conn:
        if not await quota_store.take_one(conn, message.recipient.id, key, now):
            return Outcome.skipped(SkipReason.NO_SUBSCRIPTION_QUOTA, f"no subscription quota for {key}")
    return key


async def settle_grant(services: Services, channel: Channel, user_id: str, key: str, outcome: Outcome) -> None:
    """After a send that did not go out: the provider's refusal zeroes the grants, anything else
    gives this one back for the retry or the next message."""
    if outcome.status is DeliveryStatus.SENT:
        return
    async with services.db.write() as conn:
        if outcome.code in channel.quota_exhausted_codes:
            await quota_store.zero(conn, user_id, key, utcnow())
        else:
            await quota_store.give_back(conn, user_id, key, utcnow())


# -- the counted rules around a send: dedup, frequency caps, throttle -------------------------------


async def take_slots(
    rules: TypeRules, delivery: Delivery, message: OutboundMessage, services: Services, policy: Policy
) -> tuple[Window, ...] | Outcome:
    """A slot in each counted window this send falls in (core/frequency.py), or the skip of the
    first one that is full. The slots are held by the delivery's id until its outcome, so a retry
    or a re-claim passes again as itself. Counters out of reach: retried later, never sent unchecked."""
    windows = windows_for(
        rules,
        type_key=message.type,
        user_id=delivery.user_id,
        channel=delivery.channel,
        content=message.content,
        data=message.data,
    )
    try:
        refused = await services.rule_counters.take(delivery.id, windows)
    except Exception as exc:
        log.warning("delivery %s: delivery rules unavailable: %s: %s", delivery.id, type(exc).__name__, exc)
        error = RetryableError(f"delivery rules unavailable: {type(exc).__name__}: {exc}"[:2000], code="rules")
        return retry_or_fail(delivery, error, policy)
    if refused is not None:
        return Outcome.suppressed(refused.reason, refused.detail)
    return windows


async def settle_slots(services: Services, delivery: Delivery, windows: Sequence[Window], outcome: Outcome) -> None:
    """A send that went out keeps its slots, and so does a delivery that will be tried again (it
    holds them as itself); any other end did not reach the user and gives them back. Never raises:
    the outcome is recorded whatever happens here (a slot not given back ages out with its window)."""
    if outcome.status in (DeliveryStatus.SENT, DeliveryStatus.PENDING):
        return
    try:
        await services.rule_counters.give_back(delivery.id, windows)
    except Exception as exc:
        log.warning("delivery %s: rule slots not given back (%s: %s)", delivery.id, type(exc).__name__, exc)


# -- the whole ------------------------------------------------------------------------------------


async def run_stages(delivery: Delivery, context: Context, services: Services, policy: Policy) -> Outcome:
    now = services.clock()
    notification = context.notifications.get(delivery.notification_id)
    if (stop := gate(delivery, notification, now, policy)) is not None:
        return stop
    assert notification is not None
    rules = context.rules.get(notification.type_key) or NO_RULES
    # issue 8 stages, in this order (each returns an Outcome that ends the delivery, or None):
    if (stop := preferences(delivery, notification, rules, context, now, policy)) is not None:
        return stop
    if (stop := await digest(delivery, notification, rules, context, services, now)) is not None:
        return stop
    routed = route(delivery, notification, services, context.accounts)
    if isinstance(routed, Outcome):
        return routed
    account = routed.account.name if routed.account else None
    message = build(delivery, notification, routed, context, policy)
    if (stop := address(routed, message)) is not None:
        return stop.via(account)
    if not rules.limits_sends:
        return await budget_and_send(delivery, routed, message, services, policy, now)
    slots = await take_slots(rules, delivery, message, services, policy)  # dedup + frequency caps + throttle
    if isinstance(slots, Outcome):
        return slots.via(account)
    outcome = await budget_and_send(delivery, routed, message, services, policy, now)
    await settle_slots(services, delivery, slots, outcome)
    return outcome


async def budget_and_send(
    delivery: Delivery, routed: Route, message: OutboundMessage, services: Services, policy: Policy, now: datetime
) -> Outcome:
    """The provider's budget, the recipient's grant, then the send."""
    account = routed.account.name if routed.account else None
    if (stop := await budget(routed, services, now)) is not None:
        return stop
    grant = await take_grant(services, routed.channel, message, now)
    if isinstance(grant, Outcome):
        return grant.via(account)
    try:
        outcome = await send(routed, message, delivery, policy)
    except BaseException:
        if grant is not None:  # cancelled or broken mid-send: the grant was not used
            await settle_grant(services, routed.channel, message.recipient.id, grant, Outcome.cancelled())
        raise
    if grant is not None:
        await settle_grant(services, routed.channel, message.recipient.id, grant, outcome)
    return outcome.via(account)


async def handle_delivery(delivery: Delivery, context: Context, services: Services, policy: Policy) -> Outcome:
    """The stages under this delivery's own deadline; whatever goes wrong settles this one alone.
    Whatever waits (a retry, a deferral) is due again by the delivery's expiry at the latest, so
    that the gate settles it ``expired`` then and not when a long backoff or quiet window ends."""
    outcome = await _handle_within_deadline(delivery, context, services, policy)
    return outcome.due_by(delivery.expires_at)


async def _handle_within_deadline(delivery: Delivery, context: Context, services: Services, policy: Policy) -> Outcome:
    try:
        async with asyncio.timeout(policy.deadline):
            return await run_stages(delivery, context, services, policy)
    except TimeoutError:
        return retry_or_fail(delivery, RetryableError("handling timed out", code="timeout"), policy)
    except UnicodeError as exc:
        return Outcome.failed(f"payload cannot be encoded: {exc}", reason=FailReason.ENCODING, code="encoding")
    except Exception as exc:  # a channel or stage bug, Redis down in the rate limiter, …
        log.warning(
            "delivery %s: %s: %s", delivery.id, type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG)
        )
        error = RetryableError(f"{type(exc).__name__}: {exc}"[:2000], code="internal")
        return retry_or_fail(delivery, error, policy)
