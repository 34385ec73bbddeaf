"""SQLite connections that never leave a write half-done.

Connections are in autocommit mode: a single statement commits on its own. Anything that writes more than one
statement goes through `transaction`, which commits when the block ends and rolls back when it raises, so a
failed write can never leave the connection inside an open transaction (where every later write would be
silently lost when the process exits).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a write waits for another connection's (or process's) write lock before failing."""


def connect(path: Path) -> sqlite3.Connection:
    """A connection usable from worker threads (callers serialise access), in WAL mode, with a busy timeout."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    db.execute("PRAGMA journal_mode=WAL")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` if the block raises (anything, even a cancellation).

    IMMEDIATE takes the write lock up front, so a busy database is waited for (up to the busy timeout)
    instead of failing half-way through the block.
    """
    with db:  # the connection's context manager commits on success and rolls back on an exception
        db.execute("BEGIN IMMEDIATE")
        yield db
