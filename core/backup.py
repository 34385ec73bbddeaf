"""Backups of `DATA_DIR` and verified restores.

An archive (`api-assistant-backup-<UTC time>.tar.gz`, sortable by name) holds:
- `manifest.json` first: format version, app version, embedding model, counts and a SHA-256 per member;
- `registry.sqlite3`: the registry (spec records, stored documents, the version ledger and every uploaded
  original) copied from one consistent snapshot while the bot may be writing, from whichever engine holds it
  (SQLite under DATA_DIR or PostgreSQL), always as a SQLite file so an archive restores into either.

Format 1 archives (the first release) held the originals as `originals/<workspace folder>/<file>` members
beside the registry; they still restore. Vectors are not archived: a restore rebuilds them from the restored
documents. A restore verifies the whole archive (manifest, format, every checksum, no extra or missing
members, no unsafe names) while extracting it into a staging folder, and only then replaces the current
registry with it in one transaction, so a bad archive leaves the current data untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr

from core import database, messages
from core.errors import BackupError
from core.registry import SpecRegistry

if TYPE_CHECKING:
    from core.config import Settings
    from core.embedding import Embedder
    from core.service import Assistant

log = structlog.get_logger(__name__)

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
APP = "api-assistant"
MANIFEST = "manifest.json"
REGISTRY = "registry.sqlite3"
ORIGINALS = "originals"
PREFIX = "api-assistant-backup-"
SUFFIX = ".tar.gz"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BackupInfo:
    """One archive: where it is, when it was taken, how big it is and what it holds."""

    path: Path
    created: datetime
    size: int
    counts: dict[str, int]


def app_version() -> str:
    """The installed package's version (recorded in every manifest)."""
    try:
        return metadata.version("api-assistant")
    except metadata.PackageNotFoundError:
        return "unknown"


def archive_name(moment: datetime) -> str:
    """`api-assistant-backup-20261127T150501Z.tar.gz`: names sort by time."""
    return f"{PREFIX}{moment.astimezone(UTC).strftime(TIME_FORMAT)}{SUFFIX}"


def archive_time(name: str) -> datetime | None:
    """When an archive was taken, from its name; None for files that are not backups."""
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    try:
        return datetime.strptime(name[len(PREFIX) : -len(SUFFIX)], TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def describe_counts(counts: dict[str, int]) -> str:
    """`2 workspaces, 3 specs, 22 documents, 3 originals` (always in that order)."""
    order = ["workspaces", "specs", "documents", "originals"]
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    return ", ".join(f"{counts[k]} {k}" for k in keys)


# ---- backup -----------------------------------------------------------------------------------------


def create_backup(
    data_dir: Path,
    dest: Path,
    embedding_model: str,
    retention_days: int,
    moment: datetime | None = None,
    *,
    database_url: str | None = None,
) -> BackupInfo:
    """Write one archive of the registry (at `database_url`, or under `data_dir`) into `dest`; then prune.

    Archives older than `retention_days` are pruned only after the new archive is complete and in place.
    """
    if not database_url and not (data_dir / REGISTRY).is_file():
        raise BackupError(messages.backup_failed(f"there is no registry in `{data_dir}` (nothing indexed yet)"))
    moment = moment or datetime.now(UTC)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=dest) as tmp:
        staging = Path(tmp)
        members = _snapshot(data_dir, database_url, staging)
        counts = _counts(staging / REGISTRY)
        checksums = {name: _sha256_file(path) for name, path in members.items()}
        manifest = {
            "format_version": FORMAT_VERSION,
            "app": APP,
            "app_version": app_version(),
            "embedding_model": embedding_model,
            "created": moment.astimezone(UTC).strftime(TIME_FORMAT),
            "counts": counts,
            "members": checksums,
            "sizes": {name: path.stat().st_size for name, path in members.items()},
        }
        final = dest / archive_name(moment)
        partial = staging / (final.name + ".part")
        _write_archive(partial, manifest, members)
        os.replace(partial, final)
    log.info("backup_written", path=str(final), **counts)
    pruned = prune_backups(dest, retention_days, keep=final, now=moment)
    if pruned:
        log.info("backups_pruned", count=len(pruned), names=[p.name for p in pruned])
    return BackupInfo(final, moment, final.stat().st_size, counts)


def _snapshot(data_dir: Path, database_url: str | None, staging: Path) -> dict[str, Path]:
    """Copy the whole registry, originals included, into `staging/registry.sqlite3` from one snapshot."""
    registry = SpecRegistry(data_dir, database_url)
    copy = database.sqlite_engine(staging / REGISTRY)
    try:
        database.migrate(copy, staging)
        registry.export_to(copy)
    finally:
        copy.dispose()
        registry.close()
    return {REGISTRY: staging / REGISTRY}


def _counts(db_path: Path) -> dict[str, int]:
    db = sqlite3.connect(db_path)
    try:
        workspaces, specs = db.execute("SELECT COUNT(DISTINCT workspace), COUNT(*) FROM specs").fetchone()
        (documents,) = db.execute(
            "SELECT COUNT(*) FROM documents d JOIN specs s "
            "ON d.workspace = s.workspace AND d.index_version = s.index_version"
        ).fetchone()
        (originals,) = db.execute("SELECT COUNT(*) FROM originals").fetchone()
    finally:
        db.close()
    return {"workspaces": workspaces, "specs": specs, "documents": documents, "originals": originals}


def _write_archive(path: Path, manifest: dict[str, Any], members: dict[str, Path]) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)  # first, so listing archives reads only the start of each
        info.size = len(data)
        info.mtime = int(time.time())
        with tempfile.TemporaryFile() as buffer:
            buffer.write(data)
            buffer.seek(0)
            tar.addfile(info, buffer)
        for name in sorted(members):
            tar.add(members[name], arcname=name, recursive=False)


def _sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---- retention and listing ----------------------------------------------------------------------------


def prune_backups(dest: Path, retention_days: int, keep: Path, now: datetime) -> list[Path]:
    """Delete archives in `dest` older than `retention_days` (by the time in their name), never `keep`."""
    cutoff = now.timestamp() - retention_days * 86400
    pruned = []
    for path in sorted(dest.iterdir()):
        taken = archive_time(path.name)
        if taken is None or path == keep or not path.is_file():
            continue
        if taken.timestamp() < cutoff:
            path.unlink(missing_ok=True)
            pruned.append(path)
    return pruned


def list_backups(dest: Path) -> list[BackupInfo]:
    """Every archive in `dest`, oldest first, with the counts from its manifest (empty if unreadable)."""
    found: list[BackupInfo] = []
    if not dest.is_dir():
        return found
    for path in sorted(dest.iterdir()):
        taken = archive_time(path.name)
        if taken is None or not path.is_file():
            continue
        found.append(BackupInfo(path, taken, path.stat().st_size, _manifest_counts(path)))
    return found


def _manifest_counts(path: Path) -> dict[str, int]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile() or first.size > MAX_MANIFEST_BYTES:
                return {}
            handle = tar.extractfile(first)
            if handle is None:
                return {}
            counts = json.loads(handle.read()).get("counts", {})
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, AttributeError):
        return {}
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


# ---- restore ----------------------------------------------------------------------------------------


def extract_verified(source: Path, staging: Path) -> dict[str, Any]:
    """Extract `source` into the empty folder `staging`, verifying everything; returns the manifest.

    Raises `BackupError` (one line, for the operator) on anything wrong: the caller then removes `staging`.
    """
    label = source.name

    def refuse(problem: str) -> BackupError:
        return BackupError(messages.backup_refused(label, problem))

    if not source.is_file():
        raise refuse("there is no such file")
    digests: dict[str, str] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:
                name = _safe_name(member, refuse)
                handle = tar.extractfile(member)
                if handle is None:
                    raise refuse(f"`{name}` is not a regular file")
                if manifest is None:
                    # The manifest comes first, so nothing it does not list is ever written to disk.
                    if name != MANIFEST:
                        raise refuse("it does not start with a manifest.json (not an api-assistant backup)")
                    if member.size > MAX_MANIFEST_BYTES:
                        raise refuse("its manifest is too large")
                    manifest = _parse_manifest(handle.read(), refuse)
                    _check_space(manifest, staging, refuse)
                    continue
                if name in digests or name == MANIFEST:
                    raise refuse(f"`{name}` appears twice")
                if name not in manifest["members"]:
                    raise refuse(f"it holds a member the manifest does not list: `{name}`")
                if member.size != manifest["sizes"].get(name):
                    raise refuse(f"`{name}` is not the size its manifest says (the archive is corrupt)")
                digests[name] = _extract_one(handle, staging / name)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise refuse(f"it is not a readable backup archive (corrupt or truncated: {type(exc).__name__})") from exc
    if manifest is None:
        raise refuse("it is empty (not an api-assistant backup)")
    expected = manifest["members"]
    if REGISTRY not in expected:
        raise refuse("its manifest lists no registry")
    missing = sorted(set(expected) - set(digests))
    extra = sorted(set(digests) - set(expected))
    if missing:
        raise refuse(f"members listed in the manifest are missing: {', '.join(missing[:5])}")
    if extra:
        raise refuse(f"it holds members the manifest does not list: {', '.join(extra[:5])}")
    for name, digest in sorted(digests.items()):
        if expected[name] != digest:
            raise refuse(f"`{name}` does not match its checksum (the archive is corrupt)")
    return manifest


def _safe_name(member: tarfile.TarInfo, refuse: Any) -> str:
    name = member.name
    path = PurePosixPath(name)
    if not member.isfile():
        raise refuse(f"`{name}` is not a regular file (links and devices are never restored)")
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise refuse(f"`{name}` points outside the data folder")
    # Originals were separate members in format 1 only; the manifest (checked later) says which format it is.
    if name != MANIFEST and name != REGISTRY and not (len(path.parts) == 3 and path.parts[0] == ORIGINALS):
        raise refuse(f"`{name}` is not part of an api-assistant backup")
    return str(path)


def _parse_manifest(data: bytes, refuse: Any) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise refuse("its manifest.json is not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("app") != APP:
        raise refuse("its manifest is not an api-assistant manifest")
    if manifest.get("format_version") not in READABLE_FORMATS:
        raise refuse(f"its format version {manifest.get('format_version')!r} is not one this version reads")
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(isinstance(v, str) for v in members.values()):
        raise refuse("its manifest has no member checksums")
    sizes = manifest.get("sizes")
    if (
        not isinstance(sizes, dict)
        or set(sizes) != set(members)
        or not all(isinstance(v, int) and v >= 0 for v in sizes.values())
    ):
        raise refuse("its manifest has no member sizes")
    return manifest


def _check_space(manifest: dict[str, Any], staging: Path, refuse: Any) -> None:
    """Refuse before extracting when the members would not fit on the disk (the swap itself is only renames)."""
    needed = sum(manifest["sizes"].values())
    free = shutil.disk_usage(staging).free
    if needed > free:
        raise refuse(f"it needs {needed} bytes of free disk space and there are {free}")


def _extract_one(handle: IO[bytes], target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _staged_registry(staging: Path, manifest: dict[str, Any]) -> SpecRegistry:
    """Open the verified archive's registry, migrated to this version's schema.

    A format 1 archive's originals (files beside the registry) are adopted into it by the migration that
    adopts any registry from before originals lived in the database.
    """
    if manifest["format_version"] >= 2 and any(name != REGISTRY for name in manifest["members"]):
        raise BackupError(messages.backup_refused("the archive", "it holds members its format does not have"))
    try:
        return SpecRegistry(staging)
    except Exception as exc:  # a registry file that verified but is not one this version can read
        log.warning("restore_registry_unreadable", error=type(exc).__name__)
        raise BackupError(messages.backup_refused("the archive", "its registry cannot be read")) from exc


async def restore_backup(
    settings: Settings,
    source: Path,
    confirm: Callable[[dict[str, Any]], bool],
    embedder: Embedder | None = None,
) -> dict[str, int]:
    """Verify `source`, ask `confirm` (given the manifest) when the registry has data, replace it, re-index.

    `embedder` shares an already-loaded model (tests); by default the configured one is loaded.

    Returns the manifest's counts. Nothing stored changes unless the whole archive verified and `confirm`
    agreed; the replacement itself is one transaction, on SQLite and PostgreSQL alike.
    """
    from core.bootstrap import build_assistant  # the assistant (and its model) only once the archive is good

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        manifest = extract_verified(source, staging)
        restored = _staged_registry(staging, manifest)
        target = SpecRegistry(data_dir, _secret(settings.database_url))
        try:
            previous = set(target.workspaces())
            if (previous or target.has_originals()) and not confirm(manifest):
                raise BackupError(
                    messages.backup_refused(source.name, "replacing the current data was not confirmed")
                )
            target.replace_all(restored.engine)
            now_held = set(target.workspaces())
        finally:
            target.close()
            restored.close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("backup_restored", source=str(source), **manifest["counts"])
    async with build_assistant(settings, embedder) as assistant:
        await reindex(assistant, previous | now_held)
    return {str(k): int(v) for k, v in manifest["counts"].items()}


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


async def reindex(assistant: Assistant, workspaces: set[str]) -> int:
    """Drop the vectors of `workspaces` and rebuild every live spec's from its stored documents."""
    indexed = 0
    for workspace in sorted(workspaces):
        await assistant.store.drop_workspace(workspace)
        for record in assistant.registry.list_records(workspace):
            documents = await asyncio.to_thread(assistant.registry.documents, workspace, record.index_version)
            embeddings = await assistant.embedder.embed_documents([d.embed_text for d in documents])
            await assistant.store.add(workspace, record.name, record.index_version, documents, embeddings)
            indexed += 1
            log.info("spec_reindexed", workspace=workspace, spec=record.name, documents=len(documents))
    return indexed


# ---- S3-compatible destinations ------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/prefix`: where archives go in a bucket."""

    bucket: str
    prefix: str

    def key(self, name: str) -> str:
        """The object key of an archive name."""
        return f"{self.prefix}/{name}" if self.prefix else name


def s3_location(dest: str) -> S3Location | None:
    """The bucket and prefix of an `s3://` destination; None for a local folder."""
    if not dest.startswith("s3://"):
        return None
    bucket, _, prefix = dest[len("s3://") :].partition("/")
    if not bucket:
        raise BackupError(messages.backup_failed(f"`{dest}` names no bucket"))
    return S3Location(bucket, prefix.strip("/"))


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client; credentials and region come from the standard AWS variables."""
    import boto3  # only when a bucket is used: it takes a while to import

    return boto3.client("s3", endpoint_url=endpoint_url)


def backup_to_s3(
    data_dir: Path,
    location: S3Location,
    client: Any,
    embedding_model: str,
    retention_days: int,
    *,
    database_url: str | None = None,
) -> BackupInfo:
    """Write an archive locally (inside `data_dir`), upload it, then prune old archives in the bucket."""
    with tempfile.TemporaryDirectory(prefix=".backup-upload-", dir=data_dir) as tmp:
        # Retention applies to the bucket, not to this empty scratch folder.
        local = create_backup(data_dir, Path(tmp), embedding_model, retention_days, database_url=database_url)
        client.upload_file(str(local.path), location.bucket, location.key(local.path.name))
    log.info("backup_uploaded", bucket=location.bucket, key=location.key(local.path.name))
    cutoff = local.created.timestamp() - retention_days * 86400
    for name, key, _size in _s3_archives(location, client):
        taken = archive_time(name)
        if taken is not None and taken.timestamp() < cutoff and name != local.path.name:
            client.delete_object(Bucket=location.bucket, Key=key)
            log.info("backup_pruned", bucket=location.bucket, key=key)
    return BackupInfo(Path(location.key(local.path.name)), local.created, local.size, local.counts)


def _s3_archives(location: S3Location, client: Any) -> list[tuple[str, str, int]]:
    found = []
    prefix = location.key("")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            if "/" not in name and archive_time(name) is not None:
                found.append((name, item["Key"], int(item["Size"])))
    return sorted(found)


def list_s3_backups(location: S3Location, client: Any) -> list[BackupInfo]:
    """Every archive under the prefix, oldest first, with counts read from each manifest."""
    found = []
    for name, key, size in _s3_archives(location, client):
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / name
            client.download_file(location.bucket, key, str(local))
            counts = _manifest_counts(local)
        taken = archive_time(name) or datetime.fromtimestamp(0, UTC)  # _s3_archives keeps only archive names
        found.append(BackupInfo(Path(key), taken, size, counts))
    return found


def download_from_s3(location: S3Location, client: Any, folder: Path) -> Path:
    """Fetch `s3://bucket/key` (the location's prefix is the whole key) into `folder`."""
    target = folder / PurePosixPath(location.prefix).name
    try:
        client.download_file(location.bucket, location.prefix, str(target))
    except Exception as exc:  # botocore's ClientError and connection errors: one line for the operator
        raise BackupError(
            messages.backup_refused(location.prefix, f"it could not be downloaded ({type(exc).__name__})")
        ) from exc
    return target
