"""rule counters: dedup, frequency caps, throttle

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_slots",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=40), nullable=False),
        sa.Column("expires_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "holder", name=op.f("pk_rule_slots")),
    )
    with op.batch_alter_table("rule_slots", schema=None) as batch_op:
        batch_op.create_index("ix_rule_slots_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rule_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_rule_slots_expires_at")
    op.drop_table("rule_slots")
