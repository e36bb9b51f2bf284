"""webpush_subscriptions: browsers' push subscriptions

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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


def downgrade() -> None:
    with op.batch_alter_table("webpush_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_webpush_subscriptions_user_id")
    op.drop_table("webpush_subscriptions")
