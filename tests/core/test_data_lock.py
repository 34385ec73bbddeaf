"""DATA_DIR's lock: bots share it, a restore needs it alone (real processes: tests/bot/test_backup_run.py)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from core.data_lock import LOCK_FILE, data_dir_lock
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
