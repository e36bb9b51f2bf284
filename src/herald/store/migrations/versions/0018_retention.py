"""retention: the indexes the background purge walks, oldest first

Revision ID: 0018
Revises: 0017

The purge (engine/retention.py) deletes old rows in small batches, each found by an index range
scan from the oldest: inbox items by ``created_at``, notifications by ``(created_at, id)`` (a batch
resumes after the last one it passed over), deliveries that ended and
finished jobs by ``updated_at`` (partial indexes: live deliveries and pending jobs, which change
all the time, are not in them). Idempotency keys use ``ix_idempotency_keys_expires_at``, which
exists. On PostgreSQL each index build locks writes to its table for as long as it takes (about a
second per million rows on a small machine).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENDED = "status NOT IN ('pending', 'sending')"
FINISHED = "status IN ('done', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_items_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_created_at", ["created_at", "id"], unique=False)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_ended",
            ["updated_at"],
            unique=False,
            sqlite_where=sa.text(ENDED),
            postgresql_where=sa.text(ENDED),
        )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jobs_finished",
            ["updated_at"],
            unique=False,
            sqlite_where=sa.text(FINISHED),
            postgresql_where=sa.text(FINISHED),
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_finished", sqlite_where=sa.text(FINISHED), postgresql_where=sa.text(FINISHED))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_ended", sqlite_where=sa.text(ENDED), postgresql_where=sa.text(ENDED))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_created_at")
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_created_at")
