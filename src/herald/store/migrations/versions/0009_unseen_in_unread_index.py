"""seen_at joins the unread partial index, so the counts' unseen figure needs no table access

Revision ID: 0009
Revises: 0008

``GET /v1/me/inbox/counts`` answers unread and unseen by category in one statement. With ``seen_at``
outside ``ix_inbox_items_user_unread`` that statement visited the table once per unread item (2.5 ms
for a user with 3,600 unread items, against 0.5 ms for the index alone). The index is rebuilt with
``seen_at`` as its last column; its WHERE is unchanged. On PostgreSQL the rebuild locks writes to
``inbox_items`` for as long as it takes (about a second per million unread items).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "read_at IS NULL AND archived_at IS NULL"


def _rebuild(columns: list[str]) -> None:
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_user_unread", sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))
        batch_op.create_index(
            "ix_inbox_items_user_unread",
            columns,
            unique=False,
            sqlite_where=sa.text(WHERE),
            postgresql_where=sa.text(WHERE),
        )


def upgrade() -> None:
    _rebuild(["user_id", "category", "expires_at", "seen_at"])


def downgrade() -> None:
    _rebuild(["user_id", "category", "expires_at"])
