"""The schema. Alembic migrations in ``migrations/`` create exactly this on SQLite and PostgreSQL."""

from __future__ import annotations

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


def _partial_index(name: str, *columns: str, where: str) -> Index:
    """An index over the rows ``where`` holds, on both databases (see ``use_dialect``)."""
    index = Index(name, *columns)
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

# -- 0014 digests --

# -- 0015 cancellation keys and schedules --

# -- 0016 actions --

# -- 0017 direct messages --

# -- 0018 retention --
