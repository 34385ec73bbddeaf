"""Backups and verified restores, with the real Assistant, model and embedded Chroma."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from pydantic import SecretStr

from core import registry as registry_module
from core.actions import BytesAttachment, Origin, PathAttachment, UploadSpec
from core.backup import (
    MANIFEST,
    archive_name,
    create_backup,
    extract_verified,
    list_backups,
    restore_backup,
)
from core.bootstrap import build_assistant
from core.config import Settings
from core.errors import BackupError
from tests.core.test_reindex import Score

TEAM_A = Origin(platform="slack", workspace="TA", user="U1", is_admin=True)
TEAM_B = Origin(platform="discord", workspace="GB", user="U2", is_admin=True)
MODEL = "packaged:all-MiniLM-L6-v2"

WEATHER = {
    "openapi": "3.0.0",
    "info": {"title": "Weather API", "version": "2.0"},
    "servers": [{"url": "https://weather.example.com/v2"}],
    "paths": {
        "/forecast": {
            "get": {
                "summary": "Get the forecast for a city",
                "parameters": [{"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The forecast"}},
            }
        },
        "/alerts": {
            "post": {
                "summary": "Subscribe to severe weather alerts",
                "responses": {"201": {"description": "Subscribed"}},
            }
        },
        "/alerts/{alertId}": {
            "delete": {
                "summary": "Cancel an alert subscription",
                "parameters": [{"name": "alertId", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "Cancelled"}},
            }
        },
    },
}

QUESTIONS = {
    TEAM_A: ["how do I delete a customer?", "list books", "create an order", "authentication"],
    TEAM_B: ["what is the forecast for Paris?", "cancel an alert", "how do I find a book?", "subscribe"],
}


async def _index(settings: Settings, embedder, example_spec: Path) -> None:  # type: ignore[no-untyped-def]
    async with build_assistant(settings, embedder) as assistant:
        await assistant.ingest(UploadSpec(TEAM_A, PathAttachment(example_spec), "bookshop"))
        await assistant.ingest(UploadSpec(TEAM_B, BytesAttachment("weather.json", json.dumps(WEATHER).encode()), None))
        await assistant.ingest(UploadSpec(TEAM_B, PathAttachment(example_spec), "shop"))


async def _results(settings: Settings, embedder) -> dict[str, list[tuple[str, str, Score]]]:  # type: ignore[no-untyped-def]
    found = {}
    async with build_assistant(settings, embedder) as assistant:
        for origin, questions in QUESTIONS.items():
            for question in questions:
                items = await assistant.search(origin, question)
                found[f"{origin.scope} {question}"] = [(i.spec, i.document.key, Score(i.score)) for i in items]
    return found


def _yes(manifest: dict) -> bool:  # type: ignore[type-arg]
    return True


def _snapshot(data_dir: Path) -> dict[str, bytes]:
    """Every file under the data dir except the vector store and caches (what a refused restore must keep)."""
    return {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and "chroma" not in p.parts and "backups" not in p.parts and "cache" not in p.name
    }


async def test_backup_wipe_restore_gives_identical_search_results(settings, embedder, example_spec, tmp_path):
    await _index(settings, embedder, example_spec)
    before = await _results(settings, embedder)
    assert all(before.values())

    info = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30)
    assert info.counts == {"workspaces": 2, "specs": 3, "documents": info.counts["documents"], "originals": 3}
    assert info.counts["documents"] > 10
    with tarfile.open(info.path) as tar:
        names = tar.getnames()
    assert names[0] == MANIFEST and "registry.sqlite3" in names
    assert not any("chroma" in n for n in names)  # vectors are rebuilt, never archived

    shutil.rmtree(settings.data_dir)
    # A fresh process after the wipe, as in real use: Chroma caches its embedded client per path per process.
    SharedSystemClient.clear_system_cache()
    counts = await restore_backup(settings, info.path, _yes, embedder)
    assert counts == info.counts
    assert await _results(settings, embedder) == before


async def test_a_sqlite_backup_restores_into_postgres_and_back(
    settings, embedder, example_spec, tmp_path, postgres_url
):
    """The archive is engine-neutral: embedded SQLite → PostgreSQL (going to replicas) → SQLite again."""
    await _index(settings, embedder, example_spec)
    before = await _results(settings, embedder)
    info = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30)
    replica = {"data_dir": tmp_path / "replica", "database_url": SecretStr(postgres_url)}
    on_postgres = settings.model_copy(update=replica)
    await restore_backup(on_postgres, info.path, _yes, embedder)
    assert await _results(on_postgres, embedder) == before
    async with build_assistant(on_postgres, embedder) as assistant:
        assert assistant.registry.engine.dialect.name == "postgresql"
        for record in assistant.registry.list_records(TEAM_B.scope):
            data = assistant.registry.read_original(TEAM_B.scope, record.original_path)
            assert hashlib.sha256(data).hexdigest() == record.content_hash

    again = create_backup(
        on_postgres.data_dir, tmp_path / "from-postgres", MODEL, 30, database_url=postgres_url
    )
    assert again.counts == info.counts
    back = Settings(data_dir=tmp_path / "back", _env_file=None)  # type: ignore[call-arg]
    await restore_backup(back, again.path, _yes, embedder)
    assert await _results(back, embedder) == before


async def test_backup_and_restore_on_postgres_while_it_holds_other_data(
    settings, embedder, example_spec, tmp_path, postgres_url
):
    on_postgres = settings.model_copy(update={"database_url": SecretStr(postgres_url)})
    await _index(on_postgres, embedder, example_spec)
    before = await _results(on_postgres, embedder)
    info = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30, database_url=postgres_url)
    async with build_assistant(on_postgres, embedder) as assistant:  # changes after the backup are undone
        await assistant.ingest(UploadSpec(TEAM_A, BytesAttachment("weather.json", json.dumps(WEATHER).encode()), None))
    shutil.rmtree(settings.data_dir)  # the local disk of a replica is disposable: vectors are rebuilt
    SharedSystemClient.clear_system_cache()
    counts = await restore_backup(on_postgres, info.path, _yes, embedder)
    assert counts == info.counts
    assert await _results(on_postgres, embedder) == before
    async with build_assistant(on_postgres, embedder) as assistant:
        assert "weather" not in [r.name for r in assistant.registry.list_records(TEAM_A.scope)]


async def test_a_first_release_archive_with_original_files_still_restores(settings, embedder, example_spec, tmp_path):
    await _index(settings, embedder, example_spec)
    before = await _results(settings, embedder)
    legacy = _as_format_1(create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30).path, tmp_path)
    shutil.rmtree(settings.data_dir)
    SharedSystemClient.clear_system_cache()
    await restore_backup(settings, legacy, _yes, embedder)
    assert await _results(settings, embedder) == before
    async with build_assistant(settings, embedder) as assistant:
        identity = (await assistant.embedder.identity()).text
        for record in assistant.registry.list_records(TEAM_A.scope):
            assert hashlib.sha256(assistant.registry.read_original(TEAM_A.scope, record.original_path)).hexdigest() == (
                record.content_hash
            )
            assert record.embedding_model == identity  # it had none: the vectors rebuilt on restore are current


def _as_format_1(archive: Path, tmp_path: Path) -> Path:
    """The layout of the first release: originals as files beside a registry without an originals table."""
    staging = tmp_path / "legacy"
    staging.mkdir()
    manifest = extract_verified(archive, staging)
    db = sqlite3.connect(staging / "registry.sqlite3")
    members = {}
    for workspace, name, data in db.execute("SELECT workspace, name, data FROM originals"):
        member = f"originals/{hashlib.sha256(workspace.encode()).hexdigest()[:32]}/{name}"
        (staging / member).parent.mkdir(parents=True, exist_ok=True)
        (staging / member).write_bytes(data)
        members[member] = staging / member
    db.execute("UPDATE specs SET original_path = '/old/data/originals/x/' || original_path")
    db.execute("ALTER TABLE specs DROP COLUMN embedding_model")  # recorded from the second release on
    db.execute("DROP TABLE originals")
    db.execute("DROP TABLE spec_versions")  # from the release that kept spec history on
    db.execute("DROP TABLE alembic_version")
    db.commit()
    db.execute("VACUUM")
    db.close()
    members["registry.sqlite3"] = staging / "registry.sqlite3"
    manifest["format_version"] = 1
    manifest["members"] = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in members.items()}
    manifest["sizes"] = {n: p.stat().st_size for n, p in members.items()}
    target = tmp_path / archive_name(datetime(2026, 1, 1, tzinfo=UTC))
    with tarfile.open(target, "w:gz") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, path in sorted(members.items()):
            tar.add(path, arcname=name)
    return target


def _rewrite(source: Path, target: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Copy an archive member by member, letting `change(info, data)` alter or drop each."""
    with tarfile.open(source) as tar_in, tarfile.open(target, "w:gz") as tar_out:
        for member in tar_in:
            handle = tar_in.extractfile(member)
            data = handle.read() if handle else b""
            member.pax_headers = {}  # long names live here and would override a changed `name` on write
            changed = change(member, data)
            if changed is None:
                continue
            info, content = changed
            info.size = len(content)
            tar_out.addfile(info, io.BytesIO(content))


def _corrupt_member(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
    if info.name == "registry.sqlite3":
        return info, data.replace(b"Bookshop", b"B00kshop")
    return info, data


def _truncate(source: Path, target: Path) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def _foreign(target: Path) -> None:
    with tarfile.open(target, "w:gz") as tar:
        content = b"hello"
        info = tarfile.TarInfo("notes.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))


def _traversal(source: Path, target: Path) -> None:
    def change(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
        if info.name == "registry.sqlite3":
            info.name = "originals/../../escaped.yaml"
        return info, data

    _rewrite(source, target, change)


def _symlink(source: Path, target: Path) -> None:
    _rewrite(source, target, lambda info, data: (info, data))
    with tarfile.open(target, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    with tarfile.open(target, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        link = tarfile.TarInfo("originals/abc/link.yaml")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)


def _unknown_format(source: Path, target: Path) -> None:
    def change(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
        if info.name == MANIFEST:
            manifest = json.loads(data)
            manifest["format_version"] = 99
            return info, json.dumps(manifest).encode()
        return info, data

    _rewrite(source, target, change)


def _missing_member(source: Path, target: Path) -> None:
    _rewrite(source, target, lambda info, data: None if info.name == "registry.sqlite3" else (info, data))


def _manifest_edit(edit):  # type: ignore[no-untyped-def]
    def make(source: Path, target: Path) -> None:
        def change(info: tarfile.TarInfo, data: bytes):  # type: ignore[no-untyped-def]
            if info.name == MANIFEST:
                manifest = json.loads(data)
                edit(manifest)
                return info, json.dumps(manifest).encode()
            return info, data

        _rewrite(source, target, change)

    return make


def _extra_member(source: Path, target: Path) -> None:
    _rewrite(source, target, lambda info, data: (info, data))
    with tarfile.open(target, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    with tarfile.open(target, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        planted = tarfile.TarInfo("originals/abc/planted.yaml")
        planted.size = 5
        tar.addfile(planted, io.BytesIO(b"owned"))


def _manifest_last(source: Path, target: Path) -> None:
    with tarfile.open(source) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    with tarfile.open(target, "w:gz") as tar:
        for member, data in members[1:] + members[:1]:
            member.pax_headers = {}
            tar.addfile(member, io.BytesIO(data))


BAD_ARCHIVES = {
    "unlisted member": (_extra_member, "does not list"),
    "manifest not first": (_manifest_last, "does not start with a manifest.json"),
    "size mismatch": (
        _manifest_edit(lambda m: m["sizes"].update({"registry.sqlite3": m["sizes"]["registry.sqlite3"] + 1})),
        "is not the size its manifest says",
    ),
    "larger than the disk": (
        _manifest_edit(lambda m: m["sizes"].update({"registry.sqlite3": 10**18})),
        "bytes of free disk space",
    ),
    "corrupt member": (lambda s, t: _rewrite(s, t, _corrupt_member), "does not match its checksum"),
    "truncated": (_truncate, "corrupt or truncated"),
    "foreign": (lambda s, t: _foreign(t), "not part of an api-assistant backup"),
    "path traversal": (_traversal, "points outside the data folder"),
    "symlink": (_symlink, "not a regular file"),
    "unknown format": (_unknown_format, "format version 99"),
    "missing member": (_missing_member, "missing"),
    "not gzip": (lambda s, t: t.write_bytes(gzip.compress(b"plain text, not a tar")), "corrupt or truncated"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ARCHIVES))
async def test_bad_archives_are_refused_and_leave_the_data_untouched(
    kind, settings, embedder, example_spec, tmp_path
):
    await _index(settings, embedder, example_spec)
    good = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30)
    make, problem = BAD_ARCHIVES[kind]
    bad = tmp_path / "bad.tar.gz"
    make(good.path, bad)
    before = _snapshot(settings.data_dir)
    results = await _results(settings, embedder)

    with pytest.raises(BackupError) as refused:
        await restore_backup(settings, bad, _yes, embedder)
    message = refused.value.user_message
    assert problem in message and "Nothing was changed" in message and "\n" not in message
    assert _snapshot(settings.data_dir) == before
    assert not (tmp_path / "escaped.yaml").exists()
    assert not list(settings.data_dir.glob(".restore-*"))  # staging removed
    assert await _results(settings, embedder) == results


async def test_restore_over_existing_data_needs_confirmation(settings, embedder, example_spec, tmp_path):
    await _index(settings, embedder, example_spec)
    good = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30)
    before = _snapshot(settings.data_dir)
    asked = []

    def refuse(manifest: dict) -> bool:  # type: ignore[type-arg]
        asked.append(manifest["counts"])
        return False

    with pytest.raises(BackupError, match="not confirmed"):
        await restore_backup(settings, good.path, refuse, embedder)
    assert asked == [good.counts]
    assert _snapshot(settings.data_dir) == before


async def test_retention_prunes_old_archives_only_after_a_successful_backup(
    settings, embedder, example_spec, tmp_path
):
    dest = tmp_path / "backups"
    dest.mkdir()
    now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    old = dest / archive_name(now - timedelta(days=31))
    recent = dest / archive_name(now - timedelta(days=29))
    unrelated = dest / "notes.txt"
    for path in (old, recent, unrelated):
        path.write_bytes(b"x")

    # No registry yet: the backup fails, and nothing is pruned.
    with pytest.raises(BackupError, match="could not be written"):
        create_backup(settings.data_dir, dest, MODEL, 30, moment=now)
    assert old.exists()

    await _index(settings, embedder, example_spec)
    info = create_backup(settings.data_dir, dest, MODEL, 30, moment=now)
    assert not old.exists() and recent.exists() and unrelated.exists() and info.path.exists()
    listed = list_backups(dest)
    assert [b.path.name for b in listed] == [recent.name, info.path.name]
    assert listed[0].counts == {} and listed[1].counts == info.counts
    assert not [p for p in dest.iterdir() if p.name.startswith(".backup-")]  # no staging left behind


async def test_a_restore_failing_half_way_leaves_the_previous_data(
    settings, embedder, example_spec, tmp_path, monkeypatch
):
    """The replacement is one transaction: rows already deleted and copied come back when a later step fails."""
    await _index(settings, embedder, example_spec)
    good = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30)
    async with build_assistant(settings, embedder) as assistant:
        await assistant.ingest(UploadSpec(TEAM_A, BytesAttachment("weather.json", json.dumps(WEATHER).encode()), None))
    results = await _results(settings, embedder)
    real_insert = registry_module.sa.insert

    def failing_insert(table):  # type: ignore[no-untyped-def]
        if table.name == "originals":  # the last table copied: specs and documents are already replaced
            raise OSError(28, "No space left on device")
        return real_insert(table)

    monkeypatch.setattr(registry_module.sa, "insert", failing_insert)
    with pytest.raises(OSError, match="No space left"):
        await restore_backup(settings, good.path, _yes, embedder)
    monkeypatch.undo()
    assert await _results(settings, embedder) == results
    async with build_assistant(settings, embedder) as assistant:
        assert "weather" in [r.name for r in assistant.registry.list_records(TEAM_A.scope)]
    assert not list(settings.data_dir.glob(".restore-*"))


WEATHER_V2 = json.loads(json.dumps(WEATHER))
WEATHER_V2["info"]["version"] = "3.0"
WEATHER_V2["paths"]["/radar"] = {
    "get": {"summary": "Get the radar image for a region", "responses": {"200": {"description": "An image"}}}
}


async def test_backups_taken_during_uploads_hold_one_whole_version(settings, embedder, tmp_path):
    settings = settings.model_copy(update={"upload_rate_limit_burst": 100, "upload_rate_limit_per_hour": 6000})
    versions = {"2.0": json.dumps(WEATHER).encode(), "3.0": json.dumps(WEATHER_V2).encode()}
    dest = tmp_path / "backups"
    async with build_assistant(settings, embedder) as assistant:
        documents = {}
        for number, data in versions.items():  # how many documents each version has, indexed on its own
            report = await assistant.ingest(UploadSpec(TEAM_A, BytesAttachment("weather.json", data), f"ref{number}"))
            documents[number] = assistant.registry.count_documents(TEAM_A.scope, report.record.index_version)
        assert documents["2.0"] != documents["3.0"]
        await assistant.ingest(UploadSpec(TEAM_B, BytesAttachment("weather.json", versions["2.0"]), "weather"))

        async def upload_alternately() -> None:
            for round_ in range(8):
                data = versions["3.0" if round_ % 2 == 0 else "2.0"]
                await assistant.ingest(UploadSpec(TEAM_B, BytesAttachment("weather.json", data), "weather"))

        def back_up_repeatedly() -> list[Path]:
            start = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
            return [
                create_backup(settings.data_dir, dest, MODEL, 30, moment=start + timedelta(seconds=i)).path
                for i in range(8)
            ]

        archives, _ = await asyncio.gather(asyncio.to_thread(back_up_repeatedly), upload_alternately())

    for archive in archives:
        staging = tmp_path / f"check-{archive.name}"
        staging.mkdir()
        extract_verified(archive, staging)
        db = sqlite3.connect(staging / "registry.sqlite3")
        version, index_version, content_hash, original_name = db.execute(
            "SELECT version, index_version, content_hash, original_path FROM specs WHERE workspace = ? AND name = ?",
            (TEAM_B.scope, "weather"),
        ).fetchone()
        (count,) = db.execute(
            "SELECT COUNT(*) FROM documents WHERE workspace = ? AND index_version = ?", (TEAM_B.scope, index_version)
        ).fetchone()
        (archived,) = db.execute(
            "SELECT data FROM originals WHERE workspace = ? AND name = ?", (TEAM_B.scope, original_name)
        ).fetchone()
        db.close()
        assert hashlib.sha256(archived).hexdigest() == content_hash  # the original of the live version
        assert archived == versions[version] and count == documents[version]  # its own documents, all of them

    # One of them, restored, answers from the version it holds.
    SharedSystemClient.clear_system_cache()
    shutil.rmtree(settings.data_dir)
    await restore_backup(settings, archives[-1], _yes, embedder)
    async with build_assistant(settings, embedder) as assistant:
        items = await assistant.search(TEAM_B, "forecast for a city", spec="weather")
        assert items and items[0].spec == "weather"


async def test_real_specs_in_two_workspaces_on_postgres_survive_backup_wipe_restore(
    settings, embedder, example_spec, specs_dir, tmp_path, postgres_url
):
    """Several real specs (OpenAPI YAML, Markdown docs) in two workspaces: identical retrieval after a restore."""
    from tests.core.test_reindex import index_specs, results

    on_postgres = settings.model_copy(update={"database_url": SecretStr(postgres_url)})
    async with build_assistant(on_postgres, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        before = await results(assistant)
    info = create_backup(settings.data_dir, tmp_path / "backups", MODEL, 30, database_url=postgres_url)
    assert (info.counts["workspaces"], info.counts["specs"], info.counts["originals"]) == (2, 4, 4)

    empty = await _results_or_nothing(on_postgres, embedder, tmp_path)  # wipe: an empty registry, no vectors
    assert empty == 0
    SharedSystemClient.clear_system_cache()
    await restore_backup(on_postgres, info.path, _yes, embedder)
    async with build_assistant(on_postgres, embedder) as assistant:
        assert await results(assistant) == before


async def _results_or_nothing(settings: Settings, embedder, tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    """Wipe everything the deployment holds (registry rows and the replica's local data); returns what is left."""
    async with build_assistant(settings, embedder) as assistant:
        for workspace in assistant.registry.workspaces():
            await assistant.store.drop_workspace(workspace)
        empty = Settings(data_dir=tmp_path / "nothing", _env_file=None)  # type: ignore[call-arg]
        async with build_assistant(empty, embedder) as nothing:
            assistant.registry.replace_all(nothing.registry.engine)
        left = len(assistant.registry.workspaces())
    shutil.rmtree(settings.data_dir)
    return left
