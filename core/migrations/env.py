"""Alembic's entry point: migrations always run on the connection `core.database.migrate` hands over.

To add a revision: `alembic -c core/migrations/alembic.ini revision -m "what changes"`, then write its
`upgrade()` with `op` calls that work on both SQLite and PostgreSQL (`op.batch_alter_table` for SQLite).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through core.database.migrate, which supplies the connection")
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
