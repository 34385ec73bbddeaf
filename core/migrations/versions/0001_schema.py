"""The registry's schema, or the adoption of a SQLite registry from before Alembic.

Registries written by earlier releases have `specs` (perhaps without later columns), `documents`, perhaps
`index_versions`, and their originals as files under `DATA_DIR/originals/<workspace folder>/`. Those files
move into the `originals` table here (one transaction with the rest), `specs.original_path` becomes the
original's name, and `core.database.migrate` removes the folder once this has committed.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa
import structlog
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

log = structlog.get_logger(__name__)

LEGACY_ORIGINALS = "originals"
ADDED_SPEC_COLUMNS = {"uploader_name": "", "destinations": "[]", "embedding_model": ""}


def upgrade() -> None:
    """Create the schema, or bring a registry from before Alembic up to it."""
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    if "specs" not in existing:
        op.create_table(
            "specs",
            sa.Column("workspace", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("format", sa.Text, nullable=False),
            sa.Column("title", sa.Text, nullable=False),
            sa.Column("version", sa.Text, nullable=False),
            sa.Column("content_hash", sa.Text, nullable=False),
            sa.Column("index_version", sa.Text, nullable=False),
            sa.Column("operation_count", sa.Integer, nullable=False),
            sa.Column("scheme_count", sa.Integer, nullable=False),
            sa.Column("uploaded_by", sa.Text, nullable=False),
            sa.Column("platform", sa.Text, nullable=False),
            sa.Column("indexed_at", sa.Float, nullable=False),
            sa.Column("original_path", sa.Text, nullable=False),
            sa.Column("filename", sa.Text, nullable=False),
            sa.Column("header", sa.Text, nullable=False),
            *(sa.Column(c, sa.Text, nullable=False, server_default=d) for c, d in ADDED_SPEC_COLUMNS.items()),
        )
    else:
        columns = {c["name"] for c in sa.inspect(bind).get_columns("specs")}
        with op.batch_alter_table("specs") as batch:
            for column, default in ADDED_SPEC_COLUMNS.items():
                if column not in columns:
                    batch.add_column(sa.Column(column, sa.Text, nullable=False, server_default=default))
    if "documents" not in existing:
        op.create_table(
            "documents",
            sa.Column("workspace", sa.Text, primary_key=True),
            sa.Column("index_version", sa.Text, primary_key=True),
            sa.Column("position", sa.Integer, primary_key=True),
            sa.Column("payload", sa.Text, nullable=False),
        )
    if "index_versions" not in existing:
        op.create_table(
            "index_versions",
            sa.Column("workspace", sa.Text, primary_key=True),
            sa.Column("index_version", sa.Text, primary_key=True),
            sa.Column("spec", sa.Text, nullable=False),
            sa.Column("owner", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
        # Stored versions of unknown writers, created long ago: the start-up sweep removes them unless live.
        op.execute(
            "INSERT INTO index_versions (workspace, index_version, spec, owner, created_at) "
            "SELECT DISTINCT workspace, index_version, '', '', 0 FROM documents"
        )
    op.create_table(
        "originals",
        sa.Column("workspace", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("touched_at", sa.Float, nullable=False),
    )
    data_dir = context.config.attributes.get("data_dir")
    if "specs" in existing and isinstance(data_dir, Path):
        _adopt_original_files(bind, data_dir / LEGACY_ORIGINALS)


def _adopt_original_files(bind: sa.Connection, folder: Path) -> None:
    specs = sa.table("specs", sa.column("workspace"), sa.column("name"), sa.column("original_path"))
    originals = sa.table(
        "originals", sa.column("workspace"), sa.column("name"), sa.column("data"), sa.column("size"),
        sa.column("touched_at"),
    )
    stored: set[tuple[str, str]] = set()
    missing = 0
    for workspace, spec, original_path in bind.execute(sa.select(specs)).all():
        name = Path(original_path).name
        # Found by name in the workspace's own folder, never by trusting the stored path.
        path = folder / hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:32] / name
        if (workspace, name) not in stored:
            if path.is_file():
                data = path.read_bytes()
                bind.execute(
                    sa.insert(originals).values(
                        workspace=workspace, name=name, data=data, size=len(data), touched_at=path.stat().st_mtime
                    )
                )
                stored.add((workspace, name))
            else:
                missing += 1
                log.warning("legacy_original_missing", workspace=workspace, spec=spec)
        bind.execute(
            sa.update(specs)
            .where(specs.c.workspace == workspace, specs.c.name == spec)
            .values(original_path=name)
        )
    if folder.is_dir():
        context.config.attributes["adopted_originals"] = folder
        log.info("legacy_originals_adopted", originals=len(stored), missing=missing)
