"""Persistence: SQLAlchemy Core tables, Alembic migrations, queries per aggregate."""
