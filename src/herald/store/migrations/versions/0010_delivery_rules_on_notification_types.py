"""delivery rules on notification types; reason codes on deliveries

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


RULE_COLUMNS = ("quiet_hours", "dedup_seconds", "caps", "throttle", "merge", "digest")


def upgrade() -> None:
    with op.batch_alter_table("notification_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_hours", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("dedup_seconds", sa.Integer(), nullable=True))
        for name in ("caps", "throttle", "merge", "digest"):
            batch_op.add_column(sa.Column(name, herald.store.types.JSONType, nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("reason_detail")
    with op.batch_alter_table("notification_types", schema=None) as batch_op:
        for name in reversed(RULE_COLUMNS):
            batch_op.drop_column(name)
