"""DATA_DIR's lock: bots share it, a restore needs it alone (real processes: tests/bot/test_backup_run.py)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from bot.cli import main
from core.data_lock import LOCK_FILE, data_dir_lock, database_lock
from core.errors import DataDirBusyError


def test_bots_share_the_folder_and_a_restore_needs_it_alone(tmp_path):
    data = tmp_path / "data"
    with ExitStack() as bots:
        bots.enter_context(data_dir_lock(data, exclusive=False))
        bots.enter_context(data_dir_lock(data, exclusive=False))  # a second bot on the same folder is fine
        with pytest.raises(DataDirBusyError), data_dir_lock(data, exclusive=True):
            pass
    with data_dir_lock(data, exclusive=True):  # both bots gone: a restore may start
        for exclusive in (False, True):
            with pytest.raises(DataDirBusyError), data_dir_lock(data, exclusive=exclusive):
                pass
    with data_dir_lock(data, exclusive=False):  # released when the restore ends
        pass
    assert (data / LOCK_FILE).read_bytes() == b""


def test_with_postgres_the_same_rules_hold_in_the_database_for_every_replica(
    postgres_url, tmp_path, monkeypatch, capsys
):
    with ExitStack() as replicas:
        replicas.enter_context(database_lock(postgres_url, exclusive=False))
        replicas.enter_context(database_lock(postgres_url, exclusive=False))  # a second replica is fine
        with pytest.raises(DataDirBusyError), database_lock(postgres_url, exclusive=True):
            pass
    with database_lock(postgres_url, exclusive=True):  # what a restore holds
        monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DATABASE_URL", postgres_url)
        monkeypatch.chdir(tmp_path)
        assert main(["specs"]) == 2
        err = capsys.readouterr().err
        password = postgres_url.split(":")[2].split("@")[0]
        assert err.startswith("The registry database `postgresql+psycopg://") and "is being restored" in err
        assert password not in err
    with database_lock(postgres_url, exclusive=True):  # released when the restore ended
        pass


def test_an_empty_database_url_means_the_embedded_registry_everywhere(tmp_path, monkeypatch):
    """`DATABASE_URL=` (empty, as a .env template leaves it) picks SQLite for the registry and the lock alike."""
    from core.config import Settings
    from core.data_lock import data_lock, describe_data

    settings = Settings(data_dir=tmp_path / "data", database_url="", _env_file=None)  # type: ignore[call-arg]
    assert settings.registry_database_url is None
    assert describe_data(settings) == f"DATA_DIR `{tmp_path / 'data'}`"
    with data_lock(settings, exclusive=True):  # the flock on DATA_DIR, not an attempt at PostgreSQL
        assert (tmp_path / "data" / LOCK_FILE).exists()
