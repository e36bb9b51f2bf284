"""console: accounts, sessions, login failures and the audit log of the admin console (issue 10)

Revision ID: 0019
Revises: 0018

Console accounts are people who log in to ``/console`` with a username and password: neither API
keys nor recipients. Sessions are kept in the database (the cookie holds a random token, the row
its SHA-256) so that every API process behind a load balancer knows them. Failed logins are kept
for the throttle, each row keyed by the username or the client address it counts against. The
audit log is append-only; it is listed newest first by time (``at``, then ``id``).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import herald.store.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, herald.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _time("created_at", nullable=False),
        _time("last_login_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_console_accounts_username")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _time("created_at", nullable=False),
        _time("last_seen_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["console_accounts.id"],
            name=op.f("fk_console_sessions_account_id_console_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_console_sessions_account_id", ["account_id"], unique=False)
    op.create_table(
        "console_login_failures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        _time("failed_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_failures")),
    )
    with op.batch_alter_table("console_login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_console_login_failures_key", ["key", "failed_at"], unique=False)
    op.create_table(
        "console_audit",
        sa.Column("id", sa.String(length=40), nullable=False),
        _time("at", nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("details", herald.store.types.JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_audit")),
    )
    with op.batch_alter_table("console_audit", schema=None) as batch_op:
        batch_op.create_index("ix_console_audit_at", ["at", "id"], unique=False)
        batch_op.create_index("ix_console_audit_actor", ["actor", "at", "id"], unique=False)
        batch_op.create_index("ix_console_audit_action", ["action", "at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_console_audit_action")
        batch_op.drop_index("ix_console_audit_actor")
        batch_op.drop_index("ix_console_audit_at")
    op.drop_table("console_audit")
    with op.batch_alter_table("console_login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_console_login_failures_key")
    op.drop_table("console_login_failures")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_account_id")
    op.drop_table("console_sessions")
    op.drop_table("console_accounts")
