"""merged inbox items

Revision ID: 0013
Revises: 0012

An inbox item may stand for several events of a type that merges (issue 8, rule 4): ``count`` and
``actors`` say how many and whose; while it is a merge target it carries the digest of its rendered
merge key (``merge_key``) and the end of its window (``merge_until``), and a partial unique index
keeps one target per user, type and key. Existing items get ``count`` 1 and no key: PostgreSQL adds
a NOT NULL column with a constant default without rewriting the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "merge_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("count", sa.Integer(), server_default=sa.text("1"), nullable=False))
        batch_op.add_column(sa.Column("actors", herald.store.types.JSONType, nullable=True))
        batch_op.add_column(sa.Column("merge_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("merge_until", herald.store.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_items_merge_target",
            ["user_id", "type_key", "merge_key"],
            unique=True,
            sqlite_where=sa.text(WHERE),
            postgresql_where=sa.text(WHERE),
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_merge_target", sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_column("merge_until")
        batch_op.drop_column("merge_key")
        batch_op.drop_column("actors")
        batch_op.drop_column("count")
