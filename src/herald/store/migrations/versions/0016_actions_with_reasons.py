"""actions with reasons: one answer per inbox item (inbox_responses)

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_responses",
        sa.Column("item_id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_inbox_responses")),
    )
    with op.batch_alter_table("inbox_responses", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_responses_notification_id", ["notification_id", "user_id"], unique=False)
        batch_op.create_index("ix_inbox_responses_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbox_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_responses_user_id")
        batch_op.drop_index("ix_inbox_responses_notification_id")
    op.drop_table("inbox_responses")
