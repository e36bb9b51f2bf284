"""user preferences: one document per user, its in-app index, and per-locale type names

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("document", herald.store.types.JSONType, nullable=False),
        sa.Column("updated_at", herald.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_preferences")),
    )
    op.create_table(
        "inapp_choices",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=210), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "scope", name=op.f("pk_inapp_choices")),
    )
    with op.batch_alter_table("inapp_choices", schema=None) as batch_op:
        batch_op.create_index("ix_inapp_choices_scope", ["scope", "enabled"], unique=False)
    with op.batch_alter_table("notification_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("names", herald.store.types.JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_types", schema=None) as batch_op:
        batch_op.drop_column("names")
    with op.batch_alter_table("inapp_choices", schema=None) as batch_op:
        batch_op.drop_index("ix_inapp_choices_scope")
    op.drop_table("inapp_choices")
    op.drop_table("user_preferences")
