"""`backup_now` (one backup per settings) and where archives land: never overwritten, never colliding."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core import backup
from core.backup import (
    archive_name,
    archive_time,
    backup_destination,
    backup_now,
    create_backup,
    extract_verified,
    list_backups,
    sweep_staging,
)
from core.config import Settings
from tests.core.test_backup import MODEL, _index


def _verify(archive: Path, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    staging = tmp_path / f"verify-{archive.name}"
    staging.mkdir()
    return extract_verified(archive, staging)


async def test_backups_at_the_same_moment_into_one_folder_all_survive(settings, embedder, example_spec, tmp_path):
    await _index(settings, embedder, example_spec)
    dest = tmp_path / "backups"
    moment = datetime(2026, 11, 27, 15, 5, 1, tzinfo=UTC)

    # Eight at once, in threads, all claiming the same instant: eight archives, each whole.
    infos = await asyncio.gather(
        *(asyncio.to_thread(create_backup, settings.data_dir, dest, MODEL, 30, moment) for _ in range(8))
    )
    names = {info.path.name for info in infos}
    assert len(names) == 8 and {p.name for p in dest.iterdir() if p.is_file()} == names
    for info in infos:
        assert archive_time(info.path.name) == moment
        assert _verify(info.path, tmp_path)["counts"] == info.counts


async def test_an_existing_archive_is_never_overwritten(settings, embedder, example_spec, tmp_path, monkeypatch):
    await _index(settings, embedder, example_spec)
    dest = tmp_path / "backups"
    dest.mkdir()
    moment = datetime(2026, 11, 27, 15, 5, 1, tzinfo=UTC)
    taken = dest / archive_name(moment, "aaaaaaaa")
    taken.write_bytes(b"an archive someone else wrote at the same instant")
    tags = iter(["aaaaaaaa", "bbbbbbbb"])  # the first name drawn is the one already there
    monkeypatch.setattr(backup.secrets, "token_hex", lambda _n: next(tags))

    info = create_backup(settings.data_dir, dest, MODEL, 30, moment=moment)
    assert info.path == dest / archive_name(moment, "bbbbbbbb")
    assert taken.read_bytes() == b"an archive someone else wrote at the same instant"
    assert _verify(info.path, tmp_path)["counts"] == info.counts


async def test_the_destination_is_the_argument_then_backup_dest_then_data_dir(
    settings, embedder, example_spec, tmp_path
):
    await _index(settings, embedder, example_spec)
    assert backup_destination(settings) == str(settings.data_dir / "backups")
    default = backup_now(settings)
    assert default.path.parent == settings.data_dir / "backups" and default.where == str(default.path)

    configured = settings.model_copy(update={"backup_dest": str(tmp_path / "configured")})
    assert backup_now(configured).path.parent == tmp_path / "configured"
    explicit = backup_now(configured, str(tmp_path / "explicit"))
    assert explicit.path.parent == tmp_path / "explicit"
    assert [b.path for b in list_backups(tmp_path / "explicit")] == [explicit.path]


async def test_listing_is_oldest_first_across_old_and_new_names(settings, embedder, example_spec, tmp_path):
    await _index(settings, embedder, example_spec)
    dest = tmp_path / "backups"
    dest.mkdir()
    # A whole-second name from before tags, and a tagged one earlier within that same second.
    old_style = dest / "api-assistant-backup-20261127T150501Z.tar.gz"
    old_style.write_bytes(b"x")
    earlier = dest / archive_name(datetime(2026, 11, 27, 15, 5, 0, 900_000, tzinfo=UTC))
    earlier.write_bytes(b"x")
    info = create_backup(settings.data_dir, dest, MODEL, 3650, moment=datetime(2026, 11, 27, 15, 5, 1, 5, tzinfo=UTC))
    assert [b.path for b in list_backups(dest)] == [earlier, old_style, info.path]


async def test_a_killed_backups_staging_is_swept_by_the_next_one(settings, embedder, example_spec, tmp_path):
    await _index(settings, embedder, example_spec)
    dest = tmp_path / "backups"
    stale = dest / ".backup-killed"
    fresh = dest / ".backup-running-elsewhere"
    for folder in (stale, fresh):
        (folder / "originals").mkdir(parents=True)
        (folder / "registry.sqlite3").write_bytes(b"half a copy")
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))

    info = backup_now(settings.model_copy(update={"backup_dest": str(dest)}))
    assert info.path.is_file()
    assert not stale.exists() and fresh.exists()  # a young one may be another process's backup in progress
    assert sweep_staging(dest, ".backup-", older_than=0) == [fresh]


def test_a_backup_with_nothing_indexed_fails_with_one_line(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(backup.BackupError, match="nothing indexed yet"):
        backup_now(settings)
