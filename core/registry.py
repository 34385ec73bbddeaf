"""The spec registry: which specs each workspace has, which index version is live, and the originals.

The registry is the source of truth for what is visible: documents in the vector store only count when
the registry points at their index version. Uploaded originals are kept so the index can be rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.documents import Document
from core.models import ApiSpec, SpecFormat, from_dict, to_dict


@dataclass(frozen=True)
class SpecRecord:
    """One indexed spec in one workspace."""

    workspace: str
    name: str
    format: SpecFormat
    title: str
    version: str
    content_hash: str
    index_version: str
    operation_count: int
    scheme_count: int
    uploaded_by: str
    platform: str
    indexed_at: float
    original_path: str
    filename: str
    header: ApiSpec  # the spec without operations: servers, schemes and default security, for snippets
    uploader_name: str = ""  # the uploader as the platform displayed them, for "only X can replace it"
    destinations: tuple[str, ...] = ()  # every base URL requests go to (see `destinations`)

    @property
    def label(self) -> str:
        """`Stripe API 2023-08-16`-style display name."""
        return f"{self.title} {self.version}".strip()


_URL_ORIGIN = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]{0,20}://[^/?#\s]{0,255}|\{\{[^{}\s]{1,100}\}\})")


def destinations(spec: ApiSpec) -> tuple[str, ...]:
    """Where the spec sends requests: its servers, operation-level servers and the hosts of Postman URLs.

    Compared across versions so a replacement that swaps the host is announced to the team.
    """
    found = {server.rstrip("/") for server in spec.servers}
    for operation in spec.operations:
        found.update(server.rstrip("/") for server in operation.servers)
        if operation.url:
            match = _URL_ORIGIN.match(operation.url)
            if match:
                found.add(match.group(0))
    return tuple(sorted(d for d in found if d))


def spec_header(spec: ApiSpec) -> ApiSpec:
    """The parts of a spec that answers need besides the operation itself."""
    return replace(spec, operations=(), description=spec.description[:2000])


class SpecRegistry:
    """SQLite-backed registry plus an originals folder, both under `DATA_DIR`."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._originals = data_dir / "originals"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(data_dir / "registry.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS specs (
                workspace TEXT NOT NULL, name TEXT NOT NULL, format TEXT NOT NULL, title TEXT NOT NULL,
                version TEXT NOT NULL, content_hash TEXT NOT NULL, index_version TEXT NOT NULL,
                operation_count INTEGER NOT NULL, scheme_count INTEGER NOT NULL, uploaded_by TEXT NOT NULL,
                platform TEXT NOT NULL, indexed_at REAL NOT NULL, original_path TEXT NOT NULL,
                filename TEXT NOT NULL, header TEXT NOT NULL, PRIMARY KEY (workspace, name))"""
        )
        # Columns added after the first release: registries created before them get them with defaults.
        existing = {row[1] for row in self._db.execute("PRAGMA table_info(specs)")}
        for column, definition in _ADDED_COLUMNS.items():
            if column not in existing:
                self._db.execute(f"ALTER TABLE specs ADD COLUMN {column} {definition}")
        # The full documents (operation detail for answers and snippets) live here, next to the registry;
        # the vector store keeps only vectors and the keys that point back at these rows.
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS documents (
                workspace TEXT NOT NULL, index_version TEXT NOT NULL, position INTEGER NOT NULL,
                payload TEXT NOT NULL, PRIMARY KEY (workspace, index_version, position))"""
        )

    def save_original(self, workspace: str, content_hash: str, filename: str, data: bytes) -> Path:
        """Keep the uploaded file (content-addressed, so re-uploads share one copy)."""
        folder = self._originals / hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:32]
        folder.mkdir(parents=True, exist_ok=True)
        suffix = Path(filename).suffix.lower()[:12]
        path = folder / f"{content_hash}{suffix}"
        if not path.exists():
            partial = path.with_suffix(path.suffix + ".part")
            partial.write_bytes(data)
            partial.replace(path)
        return path

    def get(self, workspace: str, name: str) -> SpecRecord | None:
        """The record for one spec, if indexed."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM specs WHERE workspace = ? AND name = ?", (workspace, name)
            ).fetchone()
        return _record(row) if row else None

    def list_records(self, workspace: str) -> list[SpecRecord]:
        """Every spec of a workspace, by name."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM specs WHERE workspace = ? ORDER BY name", (workspace,)
            ).fetchall()
        return [_record(r) for r in rows]

    def put(self, record: SpecRecord) -> None:
        """Insert or replace a spec record atomically: the moment a new index version goes live."""
        values = (
            record.workspace,
            record.name,
            record.format.value,
            record.title,
            record.version,
            record.content_hash,
            record.index_version,
            record.operation_count,
            record.scheme_count,
            record.uploaded_by,
            record.platform,
            record.indexed_at,
            record.original_path,
            record.filename,
            json.dumps(to_dict(record.header)),
            record.uploader_name,
            json.dumps(list(record.destinations)),
        )
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO specs ({_COLUMNS}) VALUES ({','.join('?' * len(values))})", values
            )

    def put_documents(self, workspace: str, index_version: str, documents: Sequence[Document]) -> None:
        """Store the documents of one spec version (not visible until `put` points a record at it)."""
        rows = [(workspace, index_version, i, d.to_payload()) for i, d in enumerate(documents)]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def documents(self, workspace: str, index_version: str) -> list[Document]:
        """The documents of one spec version, in the order they were stored."""
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM documents WHERE workspace = ? AND index_version = ? ORDER BY position",
                (workspace, index_version),
            ).fetchall()
        return [Document.from_payload(r[0]) for r in rows]

    def delete_documents(self, workspace: str, index_version: str) -> None:
        """Remove the documents of one spec version."""
        with self._lock:
            self._db.execute(
                "DELETE FROM documents WHERE workspace = ? AND index_version = ?", (workspace, index_version)
            )

    def delete(self, workspace: str, name: str) -> None:
        """Forget a spec."""
        with self._lock:
            self._db.execute("DELETE FROM specs WHERE workspace = ? AND name = ?", (workspace, name))

    def live_versions(self, workspace: str) -> set[str]:
        """Index versions the registry points at in a workspace."""
        with self._lock:
            rows = self._db.execute("SELECT index_version FROM specs WHERE workspace = ?", (workspace,)).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


_ADDED_COLUMNS = {"uploader_name": "TEXT NOT NULL DEFAULT ''", "destinations": "TEXT NOT NULL DEFAULT '[]'"}
_COLUMNS = (
    "workspace, name, format, title, version, content_hash, index_version, operation_count, scheme_count, "
    "uploaded_by, platform, indexed_at, original_path, filename, header, uploader_name, destinations"
)


def _record(row: tuple[Any, ...]) -> SpecRecord:
    (
        workspace,
        name,
        fmt,
        title,
        version,
        content_hash,
        index_version,
        ops,
        schemes,
        uploaded_by,
        platform,
        indexed_at,
        original_path,
        filename,
        header,
        uploader_name,
        destinations_json,
    ) = row
    return SpecRecord(
        workspace=workspace,
        name=name,
        format=SpecFormat(fmt),
        title=title,
        version=version,
        content_hash=content_hash,
        index_version=index_version,
        operation_count=ops,
        scheme_count=schemes,
        uploaded_by=uploaded_by,
        platform=platform,
        indexed_at=indexed_at,
        original_path=original_path,
        filename=filename,
        header=from_dict(ApiSpec, json.loads(header)),
        uploader_name=uploader_name,
        destinations=tuple(json.loads(destinations_json)),
    )


def now() -> float:
    """Wall-clock time for `indexed_at`."""
    return time.time()
