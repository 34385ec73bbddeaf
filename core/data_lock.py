"""Who may use `DATA_DIR` at the same time: the bot and other commands share it, a restore needs it alone.

Every command that opens the data (`api-assistant run` for its whole life, and `console`, `ingest`, `ask`, ...
while they run) holds a shared `flock` on `DATA_DIR/.run.lock`; `api-assistant restore` takes the same lock
exclusively before it changes anything and keeps it until the vectors are rebuilt. So a restore refuses while
a bot runs on that folder (swapping the registry under an open connection would lose that bot's writes without
a word), and a bot refuses to start while a restore runs. Several processes may still share one folder (e.g.
Slack and Discord as two processes beside a Chroma server, or an `ingest` while the bot runs).

The kernel drops an `flock` when its holder's last descriptor closes, so the lock is released however the
process ends, `kill -9` included: there is never a stale lock to clean up, and so no `--force`. The file stays
(deleting a lock file while someone waits on it is a race) and holds nothing. Child processes never inherit it:
Python opens it close-on-exec and the parse workers are fresh interpreters, never forks.

With `DATABASE_URL` the registry is shared by replicas on other machines, where a local file lock means
nothing: the same lock is then a PostgreSQL advisory lock (`database_lock`), shared by every running
replica and command, exclusive for a restore, and dropped by the server with the holder's connection.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core import database
from core.errors import DataDirBusyError

if TYPE_CHECKING:
    from core.config import Settings

LOCK_FILE = ".run.lock"
DATABASE_LOCK = "api-assistant:data"


@contextmanager
def data_dir_lock(data_dir: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold `DATA_DIR`'s lock (shared for a bot, `exclusive` for a restore) for the block.

    Never waits: raises `DataDirBusyError` at once when the other kind of holder has it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DataDirBusyError(str(data_dir)) from exc
        yield
    finally:
        os.close(fd)  # releases the lock (the kernel does the same if the process dies first)


@contextmanager
def database_lock(database_url: str, *, exclusive: bool) -> Iterator[None]:
    """The same lock for a registry in PostgreSQL: a session advisory lock on a connection of its own.

    Never waits: raises `DataDirBusyError` at once when the other kind of holder has it. An unreachable
    database is not this lock's business: the registry reports it when it opens.
    """
    engine = database.create_engine(Path("."), database_url)
    try:
        with database.lock_connection(engine) as connection:
            if not database.try_advisory_lock(connection, DATABASE_LOCK, shared=not exclusive):
                raise DataDirBusyError(database.describe(Path("."), database_url))
            try:
                yield
            finally:
                database.advisory_unlock(connection, DATABASE_LOCK, shared=not exclusive)
    finally:
        engine.dispose()


def describe(data_dir: Path, database_url: str | None) -> str:
    """What the lock guards, for messages: DATA_DIR, or the registry database without its password."""
    if database_url:
        return f"the registry database `{database.describe(data_dir, database_url)}`"
    return f"DATA_DIR `{data_dir}`"


def data_lock(settings: Settings, *, exclusive: bool) -> AbstractContextManager[None]:
    """The lock of this configuration's data: in its PostgreSQL registry (shared by replicas), else on DATA_DIR."""
    url = settings.registry_database_url
    if url is not None:
        return database_lock(url, exclusive=exclusive)
    return data_dir_lock(settings.data_dir, exclusive=exclusive)


def describe_data(settings: Settings) -> str:
    """What `data_lock(settings, ...)` guards, for messages (see `describe`)."""
    return describe(settings.data_dir, settings.registry_database_url)
