"""The spec registry: which specs each workspace has, which index version is live, and the originals.

The registry is the source of truth for what is visible: documents in the vector store only count when
the registry points at their index version. Uploaded originals are kept so the index can be rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.documents import Document
from core.models import ApiSpec, SpecFormat, from_dict, to_dict
from core.sqlite import connect, transaction

PART_SUFFIX = ".part"


class OriginalMissingError(FileNotFoundError):
    """A record's uploaded original is not in the store, so its spec cannot be rebuilt from it."""


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
    embedding_model: str = ""  # the model whose vectors this index version holds (`ModelIdentity.text`)

    @property
    def label(self) -> str:
        """`Stripe API 2023-08-16`-style display name."""
        return f"{self.title} {self.version}".strip()


_URL_ORIGIN = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]{0,20}://[^/?#\s]{0,255}|\{\{[^{}\s]{1,100}\}\})")


@dataclass(frozen=True)
class RegistryTotals:
    """What the registry holds across all workspaces."""

    workspaces: int
    specs: int
    documents: int
    operations: int


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
        # Originals saved by an ingest whose record is not written yet: never released meanwhile.
        self._pinned: Counter[tuple[str, str]] = Counter()
        self._db = connect(data_dir / "registry.sqlite3")
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
        self._create_version_ledger()

    def save_original(self, workspace: str, content_hash: str, filename: str, data: bytes) -> Path:
        """Keep the uploaded file (content-addressed, so re-uploads share one copy)."""
        folder = self._originals / hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:32]
        folder.mkdir(parents=True, exist_ok=True)
        suffix = Path(filename).suffix.lower()[:12]
        path = folder / f"{content_hash}{suffix}"
        pin = (workspace, path.name)
        with self._lock:
            self._pinned[pin] += 1  # until `put` writes the record that references it
            if path.exists():
                # Fresh mtime too: the start-up sweep only removes unreferenced originals that are old.
                os.utime(path)
                return path
        # A name of its own per write, so two uploads of the same content never write into one temp file.
        partial = folder / f"{path.name}.{uuid.uuid4().hex}{PART_SUFFIX}"
        try:
            partial.write_bytes(data)
            partial.replace(path)
        except BaseException:
            self._unpin(pin)
            raise
        finally:
            partial.unlink(missing_ok=True)
        return path

    def _unpin(self, pin: tuple[str, str]) -> None:
        with self._lock:
            self._pinned[pin] -= 1
            if self._pinned[pin] <= 0:
                del self._pinned[pin]

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
        if (record.workspace, Path(record.original_path).name) in self._pinned:
            self._unpin((record.workspace, Path(record.original_path).name))  # the record now holds it
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
            record.embedding_model,
        )
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO specs ({_COLUMNS}) VALUES ({','.join('?' * len(values))})", values
            )

    def put_documents(self, workspace: str, index_version: str, documents: Sequence[Document]) -> None:
        """Store the documents of one spec version (not visible until `put` points a record at it)."""
        rows = ((workspace, index_version, i, d.to_payload()) for i, d in enumerate(documents))
        with self._lock, transaction(self._db):
            self._db.executemany("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)", rows)

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

    def workspaces(self) -> list[str]:
        """Every workspace that has at least one spec, sorted."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT workspace FROM specs ORDER BY workspace").fetchall()
        return [r[0] for r in rows]

    def live_versions(self, workspace: str) -> set[str]:
        """Index versions the registry points at in a workspace."""
        with self._lock:
            rows = self._db.execute("SELECT index_version FROM specs WHERE workspace = ?", (workspace,)).fetchall()
        return {r[0] for r in rows}

    def totals(self) -> RegistryTotals:
        """How much is indexed across all workspaces (for metrics): live specs, their documents and operations."""
        with self._lock:
            workspaces, specs, operations = self._db.execute(
                "SELECT COUNT(DISTINCT workspace), COUNT(*), COALESCE(SUM(operation_count), 0) FROM specs"
            ).fetchone()
            (documents,) = self._db.execute(
                "SELECT COUNT(*) FROM documents d JOIN specs s "
                "ON d.workspace = s.workspace AND d.index_version = s.index_version"
            ).fetchone()
        return RegistryTotals(int(workspaces), int(specs), int(documents), int(operations))

    # ---- index versions being written (the ledger the start-up sweep reads) ---------------------------

    def _create_version_ledger(self) -> None:
        """Create the ledger of index versions; a registry from before it gets a row per stored version."""
        existed = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'index_versions'"
        ).fetchone()
        with transaction(self._db):
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS index_versions (
                    workspace TEXT NOT NULL, index_version TEXT NOT NULL, spec TEXT NOT NULL,
                    owner TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (workspace, index_version))"""
            )
            if not existed:  # unknown writer, created long ago: swept at once unless live
                self._db.execute(
                    "INSERT OR IGNORE INTO index_versions "
                    "SELECT DISTINCT workspace, index_version, '', '', 0 FROM documents"
                )

    def begin_version(self, workspace: str, spec: str, index_version: str) -> None:
        """Note that this process starts writing an index version (before any of its documents or vectors)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO index_versions VALUES (?, ?, ?, ?, ?)",
                (workspace, index_version, spec, process_owner(), now()),
            )

    def end_version(self, workspace: str, index_version: str) -> None:
        """Drop the ledger entry of a version whose documents and vectors are gone."""
        with self._lock:
            self._db.execute(
                "DELETE FROM index_versions WHERE workspace = ? AND index_version = ?", (workspace, index_version)
            )

    def stale_versions(self, older_than: float) -> list[tuple[str, str]]:
        """(workspace, index_version) of versions no record points at that nobody is still writing.

        A version is abandoned when its writer ran on this host and has exited (a crash, `kill -9`), or, for
        writers elsewhere (replicas sharing the data), when it was started more than `older_than` seconds ago.
        """
        with self._lock:
            rows = self._db.execute(
                """SELECT v.workspace, v.index_version, v.owner, v.created_at FROM index_versions v
                   WHERE NOT EXISTS (SELECT 1 FROM specs s
                                     WHERE s.workspace = v.workspace AND s.index_version = v.index_version)"""
            ).fetchall()
        cutoff = now() - older_than
        return [(ws, version) for ws, version, owner, created in rows if created < cutoff or _writer_gone(owner)]

    def count_documents(self, workspace: str, index_version: str) -> int:
        """How many documents one spec version has stored."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM documents WHERE workspace = ? AND index_version = ?", (workspace, index_version)
            ).fetchone()
        return int(row[0])

    # ---- originals ---------------------------------------------------------------------------------

    def _originals_folder(self, workspace: str) -> Path:
        return self._originals / hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:32]

    def read_original(self, workspace: str, original_path: str) -> bytes:
        """The bytes of a workspace's stored original, found by name in its folder (never by the stored path).

        Raises `OriginalMissingError` when the file is not there (deleted by hand, or a partial restore).
        """
        name = Path(original_path).name
        try:
            if name not in {"", ".", ".."}:
                return (self._originals_folder(workspace) / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            pass
        raise OriginalMissingError(f"the stored original {name!r} of workspace {workspace!r} is missing")

    def release_original(self, workspace: str, original_path: str) -> bool:
        """Delete a workspace's original file unless one of its records still uses it; True if deleted.

        Originals are content-addressed per workspace, so two specs uploaded from the same file share one.
        The file is found by name inside the workspace's folder, never by trusting the stored path.
        """
        name = Path(original_path).name
        with self._lock:
            if (workspace, name) in self._pinned:
                return False  # an ingest just saved this very content and is about to reference it
            rows = self._db.execute("SELECT original_path FROM specs WHERE workspace = ?", (workspace,)).fetchall()
            if name in {Path(r[0]).name for r in rows}:
                return False
            path = self._originals_folder(workspace) / name
            existed = path.exists()
            path.unlink(missing_ok=True)
        return existed

    def sweep_originals(self, older_than: float) -> tuple[int, int]:
        """Delete `.part` files and originals no record references, if untouched for `older_than` seconds.

        Returns (part files, orphan originals) deleted. Young files are kept: another process may be writing
        one, or be about to point a record at it.
        """
        if not self._originals.is_dir():
            return 0, 0
        with self._lock:
            rows = self._db.execute("SELECT original_path FROM specs").fetchall()
        referenced = {Path(r[0]).parts[-2:] for r in rows}
        cutoff = now() - older_than
        parts = orphans = 0
        for path in _files_in_subfolders(self._originals):
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
                if path.name.endswith(PART_SUFFIX):
                    path.unlink(missing_ok=True)
                    parts += 1
                elif path.parts[-2:] not in referenced:
                    path.unlink(missing_ok=True)
                    orphans += 1
            except OSError:  # gone meanwhile, or unreadable: leave it for the next sweep
                continue
        return parts, orphans

    # ---- purging a workspace -----------------------------------------------------------------------

    def delete_specs(self, workspace: str) -> int:
        """Remove every record of a workspace at once (its specs stop being visible); returns how many."""
        with self._lock:
            return self._db.execute("DELETE FROM specs WHERE workspace = ?", (workspace,)).rowcount

    def versions_of(self, workspace: str) -> set[str]:
        """Every index version the registry knows of in a workspace: live, being written or abandoned."""
        with self._lock:
            rows = self._db.execute(
                "SELECT index_version FROM index_versions WHERE workspace = ? "
                "UNION SELECT DISTINCT index_version FROM documents WHERE workspace = ?",
                (workspace, workspace),
            ).fetchall()
        return {r[0] for r in rows}

    def delete_workspace_data(self, workspace: str) -> int:
        """Remove every stored document and ledger entry of a workspace (one transaction); returns documents."""
        with self._lock, transaction(self._db):
            documents = self._db.execute("DELETE FROM documents WHERE workspace = ?", (workspace,)).rowcount
            self._db.execute("DELETE FROM index_versions WHERE workspace = ?", (workspace,))
        return documents

    def delete_originals(self, workspace: str) -> int:
        """Remove a workspace's originals folder; returns how many files it held."""
        folder = self._originals_folder(workspace)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.iterdir() if not p.name.endswith(PART_SUFFIX))
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


_ADDED_COLUMNS = {
    "uploader_name": "TEXT NOT NULL DEFAULT ''",
    "destinations": "TEXT NOT NULL DEFAULT '[]'",
    "embedding_model": "TEXT NOT NULL DEFAULT ''",  # '': indexed before models were recorded
}
_COLUMNS = (
    "workspace, name, format, title, version, content_hash, index_version, operation_count, scheme_count, "
    "uploaded_by, platform, indexed_at, original_path, filename, header, uploader_name, destinations, "
    "embedding_model"
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
        embedding_model,
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
        embedding_model=embedding_model,
    )


def now() -> float:
    """Wall-clock time for `indexed_at`."""
    return time.time()


_HOST = socket.gethostname()
_PROCESS_TOKEN = uuid.uuid4().hex


def process_owner() -> str:
    """Who is writing: `host|pid|token`; the token tells this process from an earlier one with the same pid."""
    return f"{_HOST}|{os.getpid()}|{_PROCESS_TOKEN}"


def _writer_gone(owner: str) -> bool:
    """Whether the process that wrote a ledger entry has certainly exited (only knowable on this host)."""
    host, _, rest = owner.partition("|")
    pid_text, _, token = rest.partition("|")
    if host != _HOST or not pid_text.isdigit():
        return False
    if token == _PROCESS_TOKEN:
        return False  # still being written by this very process
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier process that had our pid (a restarted container): it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def _files_in_subfolders(root: Path) -> Iterator[Path]:
    """The files one level below `root`'s subfolders (the originals layout: one folder per workspace)."""
    for folder in root.iterdir():
        if folder.is_dir():
            yield from (p for p in folder.iterdir() if p.is_file())
