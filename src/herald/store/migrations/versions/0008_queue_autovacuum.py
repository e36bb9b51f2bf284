"""autovacuum settings for the two work queues (deliveries, jobs) on PostgreSQL

Revision ID: 0008
Revises: 0007

Every delivery updates its row at least twice (claimed, then settled), each time with a new entry
in the claim's partial index ``ix_deliveries_due``. The old entries stay until the claim's own scans
mark them dead or VACUUM removes them; the default thresholds (20 % of the table) mean that on a
table of ten million rows VACUUM waits for two million dead tuples, and the claim's walk to the
first due row grows meanwhile. Here both queues are vacuumed after a fixed number of changes,
whatever their size, without the cost-based pauses, and analyzed as often (their statistics are
stale by nature). A no-op on SQLite. Autovacuum itself must be on (``autovacuum = on``, the
PostgreSQL default): these are per-table storage parameters and cannot turn it on.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUES = ("deliveries", "jobs")
SETTINGS = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "5000",
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "20000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "20000",
    "autovacuum_vacuum_cost_delay": "0",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    options = ", ".join(f"{k} = {v}" for k, v in SETTINGS.items())
    for table in QUEUES:
        op.execute(f"ALTER TABLE {table} SET ({options})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in QUEUES:
        op.execute(f"ALTER TABLE {table} RESET ({', '.join(SETTINGS)})")
