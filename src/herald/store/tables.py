"""The schema. Alembic migrations in ``migrations/`` create exactly this on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

from herald.store.types import JSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


_PARTIAL_INDEXES: list[tuple[Index, str]] = []


def _partial_index(name: str, *columns: Any, where: str, unique: bool = False) -> Index:
    """An index over the rows ``where`` holds, on both databases (see ``use_dialect``)."""
    index = Index(name, *columns, unique=unique)
    _PARTIAL_INDEXES.append((index, where))
    return index


def use_dialect(name: str) -> None:
    """Give the partial indexes their ``<name>_where`` (``sqlite_where``, ``postgresql_where``).

    Naming a dialect's option loads that dialect, all its drivers included: ``postgresql_where``
    written in the ``Index(...)`` itself cost a server on SQLite ~2.4 MiB and ~20 ms at start. So the
    option is added here, by ``store/db.py``'s ``create_engine`` for the database it connects to
    (Alembic's ``env.py`` included), before anything emits or compares DDL for that dialect.
    Idempotent; a process using both databases has both options."""
    for index, where in _PARTIAL_INDEXES:
        index.dialect_kwargs[f"{name}_where"] = text(where)


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scopes", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

users = Table(
    "users",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(200)),
    Column("email", String(320)),
    Column("phone", String(40)),
    Column("locale", String(35)),
    Column("timezone", String(64)),
    Column("channels", JSONType, nullable=False, default=dict),
    Column("tags", JSONType, nullable=False, default=list),
    Column("data", JSONType, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

notification_types = Table(
    "notification_types",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(20), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("channels", JSONType, nullable=False),
    Column("critical", Boolean, nullable=False, default=False),
    Column("ttl_seconds", Integer),
    Column("description", Text),
    # {channel: [account name, ...]}: the accounts this type sends through (else the default)
    Column("accounts", JSONType),
    # the delivery rules (core/rules.py): "defer" | "drop" | "deliver", and JSON shaped as the API's
    Column("quiet_hours", String(10)),
    Column("dedup_seconds", Integer),
    Column("caps", JSONType),
    Column("throttle", JSONType),
    Column("merge", JSONType),
    Column("digest", JSONType),
    # 0011: {locale: name}, the type's name per locale (settings pages, the unsubscribe page)
    Column("names", JSONType),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

templates = Table(
    "templates",
    metadata,
    Column("type_key", String(200), ForeignKey("notification_types.key", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(40), primary_key=True),
    Column("locale", String(35), primary_key=True),
    Column("fields", JSONType, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type_key", String(200), nullable=False),
    Column("category", String(20), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("channels", JSONType, nullable=False),
    Column("data", JSONType, nullable=False),
    Column("actor", JSONType),
    Column("target", JSONType),
    Column("rendered", JSONType, nullable=False),
    Column("audience", JSONType),
    # {channel: [account name, ...]}, from the trigger or else its type
    Column("accounts", JSONType),
    # NULL while an audience is being expanded: the count is known only at the end.
    Column("recipients", Integer),
    Column("send_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_notifications_created_at", "created_at", "id"),  # 0018: the retention purge walks it, oldest first
    # 0015: given at trigger time, cancels all notifications that carry it (POST /v1/notifications/cancel)
    Column("cancellation_key", String(200)),
    # 0015: the schedule occurrence that wrote it (unique together: an occurrence is written once)
    Column("schedule_id", String(40)),
    Column("occurrence_at", UTCDateTime),
)

# Private inbox rows, one per recipient (fan-out on write). Sorted newest first by (created_at, id).
inbox_items = Table(
    "inbox_items",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("notification_id", String(40)),
    Column("type_key", String(200), nullable=False),
    Column("category", String(20), nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text),
    Column("body", Text),
    Column("data", JSONType),
    Column("actor", JSONType),
    Column("target", JSONType),
    Column("action_url", Text),
    Column("actions", JSONType),
    Column("read_at", UTCDateTime),
    Column("seen_at", UTCDateTime),
    Column("archived_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    # 0013 merging (engine/merge.py): how many events the item stands for and their latest actors;
    # while it is a merge target, the digest of its rendered merge key and the end of its window
    Column("count", Integer, nullable=False, server_default=text("1")),
    Column("actors", JSONType),
    Column("merge_key", String(64)),
    Column("merge_until", UTCDateTime),
    Index("ix_inbox_items_user_feed", "user_id", "created_at", "id"),
    # Unread and unseen counts come from this partial index alone, never from the user's history.
    _partial_index(
        "ix_inbox_items_user_unread",
        "user_id",
        "category",
        "expires_at",
        "seen_at",
        where="read_at IS NULL AND archived_at IS NULL",
    ),
    Index("ix_inbox_items_notification_id", "notification_id"),
    # 0013: at most one merge target per user, type and key, so concurrent events merge, never add
    _partial_index(
        "ix_inbox_items_merge_target", "user_id", "type_key", "merge_key", where="merge_key IS NOT NULL", unique=True
    ),
    Index("ix_inbox_items_created_at", "created_at"),  # 0018: the retention purge walks it, oldest first
)

# ONE row per announcement, whatever the audience size (fan-out on read).
announcements = Table(
    "announcements",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("content_type", String(20), nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text),
    Column("body", Text),
    Column("media_url", Text),
    Column("action_url", Text),
    Column("data", JSONType),
    Column("audience", JSONType, nullable=False),
    Column("starts_at", UTCDateTime),
    Column("ends_at", UTCDateTime),
    Column("feed_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_announcements_window", "ends_at", "starts_at"),
)

# Per-user state of an announcement, written only for users who touch it.
announcement_marks = Table(
    "announcement_marks",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("announcement_id", String(40), ForeignKey("announcements.id", ondelete="CASCADE"), primary_key=True),
    Column("read_at", UTCDateTime),
    Column("seen_at", UTCDateTime),
    Column("archived_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),
)

# Notification x user x channel: the trace and the unit of work.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("notification_id", String(40), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("account", String(200)),
    Column("status", String(20), nullable=False),
    # a code (core/rules.py SkipReason, or why it failed); reason_detail says it in words
    Column("reason", Text),
    Column("reason_detail", Text),
    Column("priority", SmallInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("provider_message_id", String(200)),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_deliveries_notification_id", "notification_id", "user_id"),
    Index("ix_deliveries_user_id", "user_id"),
    # delivery reports that carry only the provider's message id (Tencent's sid) find it here
    Index("ix_deliveries_provider_message_id", "channel", "provider_message_id"),
    # The claim query walks only live rows, in priority order.
    _partial_index("ix_deliveries_due", "priority", "next_attempt_at", where="status IN ('pending', 'sending')"),
    # 0018: the retention purge walks the deliveries that ended, by when they ended
    _partial_index("ix_deliveries_ended", "updated_at", where="status NOT IN ('pending', 'sending')"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("delivery_id", String(40), ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("worker", String(64)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("account", String(200)),
    Column("code", String(100)),
    Column("error", Text),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("status", String(20), nullable=False),
    Column("priority", SmallInteger, nullable=False, default=1),
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _partial_index("ix_jobs_due", "priority", "run_at", where="status IN ('pending', 'running')"),
    _partial_index("ix_jobs_finished", "updated_at", where="status IN ('done', 'failed')"),  # 0018: retention
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("response_status", Integer),
    Column("response_body", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

channel_accounts = Table(
    "channel_accounts",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("config_encrypted", Text, nullable=False),
    Column("is_default", Boolean, nullable=False, default=False),
    # Accounts of one group are interchangeable: a retry may fail over between them (and only them).
    Column("routing_group", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_channel_accounts_channel", "channel"),
)

# Small shared values with an expiry: provider access tokens, generated keys. Used when no Redis
# is configured, so that every process sees the same token (a WeChat token fetched twice
# invalidates the first).
kv_entries = Table(
    "kv_entries",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", UTCDateTime),
)

# Consumable per-user send grants, e.g. WeChat mini-program subscribe messages: each grant the
# user gives in the mini-program allows one message of that template.
send_quotas = Table(
    "send_quotas",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("remaining", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Addresses a user registers with a channel from their device (a browser's Web Push
# subscription, ...): one row per address, the channel's own data beside it.
user_endpoints = Table(
    "user_endpoints",
    metadata,
    Column("channel", String(40), primary_key=True),
    Column("address", String(2048), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("data", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_user_endpoints_user_id", "user_id", "channel"),
)

# Where Herald tells the business system what happened to its messages (message.sent, ...).
event_webhooks = Table(
    "event_webhooks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("events", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# -- issue 8: the delivery rules. Each section belongs to one migration (0011..0018). ---------------

# -- 0011 user preferences --

# One preferences document per user (core/preferences.py), as the API shows it.
user_preferences = Table(
    "user_preferences",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("document", JSONType, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The in-app index of those documents (core/preferences.py inapp_choices), for the trigger's hot
# path: rows only for users who turned the inbox off somewhere, "category:<c>" or "type:<key>".
inapp_choices = Table(
    "inapp_choices",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("scope", String(210), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    # "has anyone turned the inbox off for this type or its category?" (engine/preferences.py)
    Index("ix_inapp_choices_scope", "scope", "enabled"),
)

# -- 0012 rule counters --

# Slots of the counted delivery rules (core/frequency.py: dedup, frequency caps, throttle), when
# Redis is not configured: one row per window key and delivery holding a slot in it, live until
# expires_at (a sliding window); the worker's housekeeping deletes expired rows in small batches.
rule_slots = Table(
    "rule_slots",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("holder", String(40), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_rule_slots_expires_at", "expires_at"),
)

# -- 0013 merged inbox items --
# (columns count, actors, merge_key, merge_until and ix_inbox_items_merge_target: on inbox_items above)

# -- 0014 digests --

# A digest (rule 5): one user's events of one type on one channel, collected while its window is
# open and sent as ONE message. ``status``: open (collecting) -> closing (the window ended or
# max_items was reached: no event joins any more) -> flushed (its message written as an ordinary
# delivery of ``notification_id``, the digest's own notification). At most one open digest per
# user x type x channel (the partial unique index), so two workers appending at once append to the
# same one; the flush moves the status on with a WHERE on the old one, so a second flusher finds nothing.
_open_digest = _partial_index("uq_digests_open", "user_id", "type_key", "channel", where="status = 'open'")
_open_digest.unique = True
digests = Table(
    "digests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("type_key", String(200), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("notification_id", String(40), nullable=False),
    Column("count", Integer, nullable=False, default=0),
    Column("max_items", Integer, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("flush_at", UTCDateTime, nullable=False),
    Column("flushed_at", UTCDateTime),
    Column("delivery_id", String(40)),
    # why the type's digest template was not used (the built-in text was sent instead)
    Column("last_error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    _open_digest,
    Index("ix_digests_notification_id", "notification_id", unique=True),
    Index("ix_digests_user_id", "user_id"),
)

# The events of a digest: one per collected delivery. Keyed by the delivery, so a delivery handled
# again after a crash (its outcome not recorded) is collected once.
digest_events = Table(
    "digest_events",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("digest_id", String(40), ForeignKey("digests.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("notification_id", String(40), nullable=False),
    # when the event happened (its notification's creation): the digest lists events in this order
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_digest_events_digest_id", "digest_id", "position"),
    Index("ix_digest_events_notification_id", "notification_id"),
)

# A digest's own notification names its digest: its delivery skips the digest stage.
notifications.append_column(Column("digest_id", String(40)))

# -- 0015 cancellation keys and schedules --

# Both over the few notifications that carry the value (most carry neither).
_partial_index(
    "ix_notifications_cancellation_key", notifications.c.cancellation_key, where="cancellation_key IS NOT NULL"
)
_partial_index(
    "ix_notifications_schedule_occurrence",
    notifications.c.schedule_id,
    notifications.c.occurrence_at,
    unique=True,
    where="schedule_id IS NOT NULL",
)

# Recurring sends: a cron expression in a timezone and the trigger body each occurrence sends. The
# row's ``next_run_at`` moves on with a compare-and-set in the transaction that writes the
# occurrence's notification, so an occurrence is written once however many workers race for it.
# ``job_id``: the one ``schedule`` job that runs it (jobs table), due at ``next_run_at``.
schedules = Table(
    "schedules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200)),
    Column("cron", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("trigger", JSONType, nullable=False),
    Column("catch_up_seconds", Integer, nullable=False),
    Column("next_run_at", UTCDateTime, nullable=False),
    Column("job_id", String(40), nullable=False),
    Column("last_run_at", UTCDateTime),
    Column("last_notification_id", String(40)),
    Column("last_error", Text),
    Column("runs", Integer, nullable=False, default=0),
    Column("missed", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_schedules_created", "created_at", "id"),
)

# -- 0016 actions --

# A user's answer to an inbox item's actions (confirm / decline with a reason). The primary key
# makes "one answer per item" atomic under concurrent answers. No foreign key: the answer outlives
# the item (a user may delete the item; the notification's status still lists what they answered).
inbox_responses = Table(
    "inbox_responses",
    metadata,
    Column("item_id", String(40), primary_key=True),
    Column("notification_id", String(40)),
    Column("user_id", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_inbox_responses_notification_id", "notification_id", "user_id"),
    Index("ix_inbox_responses_user_id", "user_id"),
)

# -- 0017 direct messages --

# Messages between two users (个人私信). ``user_a`` < ``user_b`` whoever wrote: the pair names the
# conversation, so one index range holds it in order.
direct_messages = Table(
    "direct_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_a", String(200), nullable=False),
    Column("user_b", String(200), nullable=False),
    Column("sender_id", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_direct_messages_pair", "user_a", "user_b", "created_at", "id"),
    Index("ix_direct_messages_user_b", "user_b"),  # erasing a user finds their messages from both sides
)

# Each user's side of a conversation: its last message, the user's unread count (a counter kept by
# each message and each read, never counted from the messages) and the ``direct`` inbox item it keeps
# up to date. The row is also the lock that makes concurrent messages update one item.
direct_conversations = Table(
    "direct_conversations",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("peer_id", String(200), primary_key=True),
    Column("last_message_id", String(40)),
    Column("last_message_at", UTCDateTime),
    Column("unread", Integer, nullable=False, default=0),
    Column("read_at", UTCDateTime),
    Column("inbox_item_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_direct_conversations_recent", "user_id", "last_message_at", "peer_id"),
    Index("ix_direct_conversations_peer_id", "peer_id"),
)

# ``user_id`` refuses messages from ``blocked_id``. Only ``user_id`` ever sees the row.
direct_blocks = Table(
    "direct_blocks",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("blocked_id", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_direct_blocks_blocked_id", "blocked_id"),
)

# The audit of admins' reads of conversations (API keys with the conversations:read scope): who,
# which conversation, when. Never the content.
conversation_reads = Table(
    "conversation_reads",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("key_name", String(200), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("peer_id", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_conversation_reads_created_at", "created_at", "id"),
)

# -- 0018 retention --
# No table: indexes on inbox_items, deliveries, notifications and jobs (in their definitions above).

# -- 0019 console --
# People who log in to /console (issue 10): neither API keys nor recipients. ``role`` is
# viewer | operator | admin (core/console.py); the password is an argon2id hash (core/passwords.py).
console_accounts = Table(
    "console_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime),
)

# Server-side sessions: ``id`` is the SHA-256 of the cookie's random token (a leaked table grants no
# session); every process behind a load balancer reads the same rows.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(40), ForeignKey("console_accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

# Failed logins within the throttle's window, keyed ``user:<username>`` or ``addr:<client address>``.
console_login_failures = Table(
    "console_login_failures",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key", String(300), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index("ix_console_login_failures_key", "key", "failed_at"),
)

# Every change made through the console (and the ``herald admin`` commands): who, what, when; listed
# newest first by (at, id), whole or by actor or action. ``details`` never holds a secret.
console_audit = Table(
    "console_audit",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", String(40)),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(300)),
    Column("details", JSONType, nullable=False),
    Index("ix_console_audit_at", "at", "id"),
    Index("ix_console_audit_actor", "actor", "at", "id"),
    Index("ix_console_audit_action", "action", "at", "id"),
)
