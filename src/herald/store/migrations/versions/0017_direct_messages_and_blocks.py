"""direct messages and blocks

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, herald.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "direct_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_a", sa.String(length=200), nullable=False),
        sa.Column("user_b", sa.String(length=200), nullable=False),
        sa.Column("sender_id", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_direct_messages")),
    )
    with op.batch_alter_table("direct_messages", schema=None) as batch_op:
        batch_op.create_index("ix_direct_messages_pair", ["user_a", "user_b", "created_at", "id"], unique=False)
        batch_op.create_index("ix_direct_messages_user_b", ["user_b"], unique=False)
    op.create_table(
        "direct_conversations",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("peer_id", sa.String(length=200), nullable=False),
        sa.Column("last_message_id", sa.String(length=40), nullable=True),
        _time("last_message_at", nullable=True),
        sa.Column("unread", sa.Integer(), nullable=False),
        _time("read_at", nullable=True),
        sa.Column("inbox_item_id", sa.String(length=40), nullable=True),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "peer_id", name=op.f("pk_direct_conversations")),
    )
    with op.batch_alter_table("direct_conversations", schema=None) as batch_op:
        batch_op.create_index("ix_direct_conversations_recent", ["user_id", "last_message_at", "peer_id"], unique=False)
        batch_op.create_index("ix_direct_conversations_peer_id", ["peer_id"], unique=False)
    op.create_table(
        "direct_blocks",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("blocked_id", sa.String(length=200), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "blocked_id", name=op.f("pk_direct_blocks")),
    )
    with op.batch_alter_table("direct_blocks", schema=None) as batch_op:
        batch_op.create_index("ix_direct_blocks_blocked_id", ["blocked_id"], unique=False)
    op.create_table(
        "conversation_reads",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("key_name", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("peer_id", sa.String(length=200), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_reads")),
    )
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_reads_created_at", ["created_at", "id"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("conversation_reads", ["ix_conversation_reads_created_at"]),
        ("direct_blocks", ["ix_direct_blocks_blocked_id"]),
        ("direct_conversations", ["ix_direct_conversations_peer_id", "ix_direct_conversations_recent"]),
        ("direct_messages", ["ix_direct_messages_user_b", "ix_direct_messages_pair"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
