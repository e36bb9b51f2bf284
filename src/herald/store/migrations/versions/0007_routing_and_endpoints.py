"""routing groups and named accounts, the account of every attempt, user endpoints per channel

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("routing_group", sa.String(length=200), nullable=True))
    with op.batch_alter_table("notification_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accounts", herald.store.types.JSONType, nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accounts", herald.store.types.JSONType, nullable=True))
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account", sa.String(length=200), nullable=True))
    op.create_table(
        "user_endpoints",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=2048), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("data", herald.store.types.JSONType, nullable=False),
        sa.Column("created_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address", name=op.f("pk_user_endpoints")),
    )
    with op.batch_alter_table("user_endpoints", schema=None) as batch_op:
        batch_op.create_index("ix_user_endpoints_user_id", ["user_id", "channel"], unique=False)
    # Web Push subscriptions become the webpush channel's endpoints (keys kept as its data).
    conn = op.get_bind()
    old = sa.table(
        "webpush_subscriptions",
        sa.column("endpoint"),
        sa.column("user_id"),
        sa.column("p256dh"),
        sa.column("auth"),
        sa.column("created_at", herald.store.types.UTCDateTime(timezone=True)),
    )
    new = sa.table(
        "user_endpoints",
        sa.column("channel"),
        sa.column("address"),
        sa.column("user_id"),
        sa.column("data", herald.store.types.JSONType),
        sa.column("created_at", herald.store.types.UTCDateTime(timezone=True)),
    )
    rows = [
        {
            "channel": "webpush",
            "address": r.endpoint,
            "user_id": r.user_id,
            "data": {"p256dh": r.p256dh, "auth": r.auth},
            "created_at": r.created_at,
        }
        for r in conn.execute(sa.select(old))
    ]
    if rows:
        conn.execute(sa.insert(new), rows)
    with op.batch_alter_table("webpush_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_webpush_subscriptions_user_id")
    op.drop_table("webpush_subscriptions")


def downgrade() -> None:
    op.create_table(
        "webpush_subscriptions",
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=100), nullable=False),
        sa.Column("created_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_webpush_subscriptions")),
    )
    with op.batch_alter_table("webpush_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_webpush_subscriptions_user_id", ["user_id"], unique=False)
    op.execute(
        "INSERT INTO webpush_subscriptions (endpoint, user_id, p256dh, auth, created_at) "
        "SELECT address, user_id, '', '', created_at FROM user_endpoints WHERE channel = 'webpush'"
    )
    with op.batch_alter_table("user_endpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_user_endpoints_user_id")
    op.drop_table("user_endpoints")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("account")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("accounts")
    with op.batch_alter_table("notification_types", schema=None) as batch_op:
        batch_op.drop_column("accounts")
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.drop_column("routing_group")
