"""digests

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status = 'open'"


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("type_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("max_items", sa.Integer(), nullable=False),
        sa.Column("opened_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("flush_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("flushed_at", herald.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
    )
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.create_index(
            "uq_digests_open",
            ["user_id", "type_key", "channel"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )
        batch_op.create_index("ix_digests_notification_id", ["notification_id"], unique=True)
        batch_op.create_index("ix_digests_user_id", ["user_id"], unique=False)
    op.create_table(
        "digest_events",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("digest_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["digests.id"], name=op.f("fk_digest_events_digest_id_digests"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_digest_events")),
    )
    with op.batch_alter_table("digest_events", schema=None) as batch_op:
        batch_op.create_index("ix_digest_events_digest_id", ["digest_id", "position"], unique=False)
        batch_op.create_index("ix_digest_events_notification_id", ["notification_id"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("digest_id")
    with op.batch_alter_table("digest_events", schema=None) as batch_op:
        batch_op.drop_index("ix_digest_events_notification_id")
        batch_op.drop_index("ix_digest_events_digest_id")
    op.drop_table("digest_events")
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.drop_index("ix_digests_user_id")
        batch_op.drop_index("ix_digests_notification_id")
        batch_op.drop_index("uq_digests_open", sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.drop_table("digests")
