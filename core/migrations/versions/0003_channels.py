"""Channel settings: a spec visible in one channel only, and each channel's default spec.

`specs.channel` is "" for a spec the whole workspace sees (every spec before this revision) or the id of the
one channel (or DM) it was uploaded to as private. `channel_defaults` holds the spec `/api use NAME` chose for
a channel; it lives in the registry, beside the specs it names, so it survives restarts, is shared by every
replica, goes with a forgotten spec in the same transaction, and is in backups.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `specs.channel` and create `channel_defaults`.

    Each only if missing: a registry put back to an earlier revision by hand keeps what it has.
    """
    inspector = sa.inspect(op.get_bind())
    if "channel" not in {c["name"] for c in inspector.get_columns("specs")}:
        with op.batch_alter_table("specs") as batch:
            batch.add_column(sa.Column("channel", sa.Text, nullable=False, server_default=""))
    if "channel_defaults" in inspector.get_table_names():
        return
    op.create_table(
        "channel_defaults",
        sa.Column("workspace", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("set_by", sa.Text, nullable=False),
        sa.Column("set_at", sa.Float, nullable=False),
    )
