"""Spec history: one row per uploaded version of each spec, the live one included.

Superseded versions keep only this row and their uploaded original (no documents, no vectors: they are never
searched); a diff re-parses the original. Every spec indexed before this revision starts with one version.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    "workspace, name, format, title, version, content_hash, original_path, filename, operation_count, "
    "uploaded_by, uploader_name, platform, indexed_at"
)


def upgrade() -> None:
    """Create `spec_versions` and give every live spec its first version."""
    op.create_table(
        "spec_versions",
        sa.Column("workspace", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("original_path", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("operation_count", sa.Integer, nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("uploader_name", sa.Text, nullable=False, server_default=""),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("indexed_at", sa.Float, nullable=False),
    )
    op.execute(f"INSERT INTO spec_versions (number, {COLUMNS}) SELECT 1, {COLUMNS} FROM specs")
