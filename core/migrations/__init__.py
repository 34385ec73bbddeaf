"""Alembic migrations of the registry's schema (run by `core.database.migrate` when the database is opened)."""
