"""Backups of `DATA_DIR` and verified restores.

An archive (`api-assistant-backup-<UTC time to the microsecond>-<random tag>.tar.gz`, sortable by name, never
overwriting another) holds:
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
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

import structlog

from core import database, messages
from core.errors import BackupError
from core.registry import SpecRegistry

if TYPE_CHECKING:
    from core.assistant import Assistant
    from core.config import Settings
    from core.embedding import Embedder

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
"""Whole seconds: the manifest's `created`, and the names of archives written before names had a tag."""
NAME_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
TAG_CHARS = 8
MAX_NAME_CHARS = 255
PLACE_ATTEMPTS = 5
STALE_STAGING_SECONDS = 24 * 3600
"""A backup's staging folder this old was left by a killed process (no backup takes a day): the next one removes it."""
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BackupInfo:
    """One archive: where it is, when it was taken, how big it is and what it holds.

    In a bucket, `path` is the object key and `url` is `s3://bucket/key`.
    """

    path: Path
    created: datetime
    size: int
    counts: dict[str, int]
    url: str | None = None

    @property
    def where(self) -> str:
        """The archive's file path, or its `s3://` URL."""
        return self.url or str(self.path)


def app_version() -> str:
    """The installed package's version (recorded in every manifest)."""
    try:
        return metadata.version("api-assistant")
    except metadata.PackageNotFoundError:
        return "unknown"


def archive_name(moment: datetime, tag: str | None = None) -> str:
    """`api-assistant-backup-20261127T150501.123456Z-9f86d081.tar.gz`: names sort by time.

    The random tag keeps two backups taken at the same moment (two processes, or a cron job beside the bot's
    own schedule) into the same folder or bucket from ever having the same name.
    """
    tag = tag if tag is not None else secrets.token_hex(TAG_CHARS // 2)
    return f"{PREFIX}{moment.astimezone(UTC).strftime(NAME_TIME_FORMAT)}-{tag}{SUFFIX}"


def archive_time(name: str) -> datetime | None:
    """When an archive was taken, from its name; None for files that are not backups.

    Reads both the tagged names and the whole-second names (`api-assistant-backup-20261127T150501Z.tar.gz`)
    archives had before.
    """
    if len(name) > MAX_NAME_CHARS or not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    stamp, dash, tag = name[len(PREFIX) : -len(SUFFIX)].partition("-")
    if dash and not (len(tag) == TAG_CHARS and all(c in "0123456789abcdef" for c in tag)):
        return None
    for time_format in (NAME_TIME_FORMAT, TIME_FORMAT) if dash else (TIME_FORMAT,):
        try:
            return datetime.strptime(stamp, time_format).replace(tzinfo=UTC)
        except ValueError:
            continue
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
        partial = staging / "archive.part"
        _write_archive(partial, manifest, members)
        final = _place(partial, dest, moment)
    log.info("backup_written", path=str(final), **counts)
    pruned = prune_backups(dest, retention_days, keep=final, now=moment)
    if pruned:
        log.info("backups_pruned", count=len(pruned), names=[p.name for p in pruned])
    return BackupInfo(final, moment, final.stat().st_size, counts)


def _place(partial: Path, dest: Path, moment: datetime) -> Path:
    """Give the finished archive its name in `dest`, never replacing an archive already there.

    A hard link is atomic and fails when the name exists (a rename would silently replace it); file systems
    without hard links get a rename after checking the name is free, which the random tag makes safe enough.
    """
    for _ in range(PLACE_ATTEMPTS):
        final = dest / archive_name(moment)
        try:
            os.link(partial, final)
        except FileExistsError:
            continue
        except OSError:
            if final.exists():
                continue
            os.replace(partial, final)
        return final
    raise BackupError(messages.backup_failed(f"no free archive name in `{dest}` after {PLACE_ATTEMPTS} tries"))


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
    for path in dest.iterdir():
        taken = archive_time(path.name)
        if taken is None or not path.is_file():
            continue
        found.append(BackupInfo(path, taken, path.stat().st_size, _manifest_counts(path)))
    return sorted(found, key=lambda info: (info.created, info.path.name))


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
        target = SpecRegistry(data_dir, settings.registry_database_url)
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
    # The model check is skipped: every restored spec gets the current model's vectors right here.
    async with build_assistant(settings, embedder, check_model=False) as assistant:
        await reindex(assistant, previous | now_held)
    return {str(k): int(v) for k, v in manifest["counts"].items()}


async def reindex(assistant: Assistant, workspaces: set[str]) -> int:
    """Drop the vectors of `workspaces` and rebuild every live spec's from its stored documents.

    Documents are model-independent text, so the rebuilt vectors are the current model's whatever model the
    archive was taken with: each record is stamped with the current model's identity.
    """
    identity = (await assistant.embedder.identity()).text
    indexed = 0
    for workspace in sorted(workspaces):
        await assistant.store.drop_workspace(workspace)
        for record in assistant.registry.list_records(workspace):
            documents = await asyncio.to_thread(assistant.registry.documents, workspace, record.index_version)
            embeddings = await assistant.embedder.embed_documents([d.embed_text for d in documents])
            await assistant.store.add(workspace, record.name, record.index_version, documents, embeddings)
            if record.embedding_model != identity:
                await asyncio.to_thread(assistant.registry.put, replace(record, embedding_model=identity))
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

    def url(self, key: str) -> str:
        """`s3://bucket/key`."""
        return f"s3://{self.bucket}/{key}"


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
    for taken, name, key, _size in _s3_archives(location, client):
        if taken.timestamp() < cutoff and name != local.path.name:
            client.delete_object(Bucket=location.bucket, Key=key)
            log.info("backup_pruned", bucket=location.bucket, key=key)
    key = location.key(local.path.name)
    return BackupInfo(Path(key), local.created, local.size, local.counts, url=location.url(key))


def _s3_archives(location: S3Location, client: Any) -> list[tuple[datetime, str, str, int]]:
    """(time, name, key, size) of every archive directly under the prefix, oldest first."""
    found = []
    prefix = location.key("")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            taken = archive_time(name) if "/" not in name else None
            if taken is not None:
                found.append((taken, name, item["Key"], int(item["Size"])))
    return sorted(found)


def list_s3_backups(location: S3Location, client: Any) -> list[BackupInfo]:
    """Every archive under the prefix, oldest first, with counts read from each manifest."""
    found = []
    for taken, name, key, size in _s3_archives(location, client):
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / name
            client.download_file(location.bucket, key, str(local))
            counts = _manifest_counts(local)
        found.append(BackupInfo(Path(key), taken, size, counts, url=location.url(key)))
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


# ---- one backup per settings (the `backup` command and `BACKUP_INTERVAL_HOURS`) -------------------------


def backup_destination(settings: Settings, dest: str | None = None) -> str:
    """Where backups go: `dest`, else `BACKUP_DEST`, else `DATA_DIR/backups`."""
    if dest:
        return dest
    return settings.backup_dest or str(settings.data_dir / "backups")


def backup_now(settings: Settings, dest: str | None = None) -> BackupInfo:
    """Take one backup now, into a local folder or an `s3://` bucket (see `backup_destination`).

    Blocking (SQLite copy, compression, upload): async callers run it in a worker thread. Staging folders a
    killed backup left behind in the same place are removed afterwards.
    """
    target = backup_destination(settings, dest)
    location = s3_location(target)
    if location is not None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        client = s3_client(settings.s3_endpoint_url)
        info = backup_to_s3(
            settings.data_dir,
            location,
            client,
            settings.embedding_model,
            settings.backup_retention_days,
            database_url=settings.registry_database_url,
        )
        sweep_staging(settings.data_dir, ".backup-upload-")
        return info
    folder = Path(target)
    info = create_backup(
        settings.data_dir,
        folder,
        settings.embedding_model,
        settings.backup_retention_days,
        database_url=settings.registry_database_url,
    )
    sweep_staging(folder, ".backup-")
    return info


def sweep_staging(folder: Path, prefix: str, older_than: float = STALE_STAGING_SECONDS) -> list[Path]:
    """Remove `prefix*` staging folders in `folder` untouched for `older_than` seconds (a killed backup's).

    Younger ones may belong to a backup running now in another process, and are left alone.
    """
    removed: list[Path] = []
    cutoff = time.time() - older_than
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for path in candidates:
        try:
            if path.is_dir() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path)
                removed.append(path)
        except OSError:
            continue
    if removed:
        log.info("backup_staging_swept", folder=str(folder), count=len(removed))
    return removed
