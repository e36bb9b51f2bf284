"""cancellation keys and recurring schedules

Revision ID: 0015
Revises: 0014

Notifications get ``cancellation_key`` (cancel by key) and ``schedule_id`` + ``occurrence_at`` (the
schedule occurrence that wrote one; unique together), each indexed only where set. ``schedules``
holds the recurring sends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_WHERE = "cancellation_key IS NOT NULL"
OCCURRENCE_WHERE = "schedule_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancellation_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("schedule_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("occurrence_at", herald.store.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_cancellation_key",
            ["cancellation_key"],
            unique=False,
            sqlite_where=sa.text(KEY_WHERE),
            postgresql_where=sa.text(KEY_WHERE),
        )
        batch_op.create_index(
            "ix_notifications_schedule_occurrence",
            ["schedule_id", "occurrence_at"],
            unique=True,
            sqlite_where=sa.text(OCCURRENCE_WHERE),
            postgresql_where=sa.text(OCCURRENCE_WHERE),
        )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("trigger", herald.store.types.JSONType, nullable=False),
        sa.Column("catch_up_seconds", sa.Integer(), nullable=False),
        sa.Column("next_run_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("last_run_at", herald.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_notification_id", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("created_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index("ix_schedules_created", ["created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_schedules_created")
    op.drop_table("schedules")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_notifications_schedule_occurrence",
            sqlite_where=sa.text(OCCURRENCE_WHERE),
            postgresql_where=sa.text(OCCURRENCE_WHERE),
        )
        batch_op.drop_index(
            "ix_notifications_cancellation_key", sqlite_where=sa.text(KEY_WHERE), postgresql_where=sa.text(KEY_WHERE)
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("occurrence_at")
        batch_op.drop_column("schedule_id")
        batch_op.drop_column("cancellation_key")
