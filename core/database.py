"""The registry's database: SQLite under `DATA_DIR` by default, PostgreSQL when `DATABASE_URL` is set.

One SQLAlchemy Core code path serves both engines; the schema lives in `TABLES` and is created and migrated
by Alembic (`core/migrations`) when the database is opened, under a lock so replicas starting together
migrate once. Cross-process locks (`named_lock`) are PostgreSQL advisory locks, or `flock` on files under
`DATA_DIR` for SQLite, so an upload of one spec name is serialised across every process sharing the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

SQLITE_FILE = "registry.sqlite3"
BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite write waits for another connection's (or process's) write lock before failing."""
CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 60_000
"""No registry statement may run longer than this on PostgreSQL (a stuck one fails instead of hanging)."""
LOCK_POLL_SECONDS = 0.05
KEEPALIVE_IDLE_SECONDS = 30
KEEPALIVE_INTERVAL_SECONDS = 10
KEEPALIVE_COUNT = 3
MIGRATION_LOCK = "api-assistant:migrations"
_MIGRATIONS_IN_THIS_PROCESS = threading.Lock()

metadata = sa.MetaData()

specs = sa.Table(
    "specs",
    metadata,
    sa.Column("workspace", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("index_version", sa.Text, nullable=False),
    sa.Column("operation_count", sa.Integer, nullable=False),
    sa.Column("scheme_count", sa.Integer, nullable=False),
    sa.Column("uploaded_by", sa.Text, nullable=False),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("indexed_at", sa.Float, nullable=False),
    sa.Column("original_path", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("header", sa.Text, nullable=False),
    sa.Column("uploader_name", sa.Text, nullable=False, server_default=""),
    sa.Column("destinations", sa.Text, nullable=False, server_default="[]"),
    sa.Column("embedding_model", sa.Text, nullable=False, server_default=""),
    sa.Column("channel", sa.Text, nullable=False, server_default=""),  # "": the whole workspace sees it
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("workspace", sa.Text, primary_key=True),
    sa.Column("index_version", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
)

index_versions = sa.Table(
    "index_versions",
    metadata,
    sa.Column("workspace", sa.Text, primary_key=True),
    sa.Column("index_version", sa.Text, primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

originals = sa.Table(
    "originals",
    metadata,
    sa.Column("workspace", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("touched_at", sa.Float, nullable=False),
)

spec_versions = sa.Table(
    "spec_versions",
    metadata,
    sa.Column("workspace", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),  # 1, 2, 3, ... per spec name; the highest is live
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("original_path", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("operation_count", sa.Integer, nullable=False),
    sa.Column("uploaded_by", sa.Text, nullable=False),
    sa.Column("uploader_name", sa.Text, nullable=False, server_default=""),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("indexed_at", sa.Float, nullable=False),
)

channel_defaults = sa.Table(
    "channel_defaults",
    metadata,
    sa.Column("workspace", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),  # the spec `/api use NAME` chose for the channel
    sa.Column("set_by", sa.Text, nullable=False),
    sa.Column("set_at", sa.Float, nullable=False),
)

TABLES = (specs, documents, index_versions, originals, spec_versions, channel_defaults)
"""Every table, in the order a copy must insert them (no foreign keys, so any order works)."""


def open_database(data_dir: Path, database_url: str | None) -> Engine:
    """An engine on `DATABASE_URL` (PostgreSQL) or on `DATA_DIR/registry.sqlite3`, migrated to the newest schema."""
    engine = create_engine(data_dir, database_url)
    try:
        migrate(engine, data_dir)
    except BaseException:
        engine.dispose()
        raise
    return engine


def create_engine(data_dir: Path, database_url: str | None) -> Engine:
    """The engine alone, unmigrated (backups copy into a fresh SQLite file with it)."""
    if database_url:
        return sa.create_engine(
            postgres_url(database_url),
            pool_pre_ping=True,  # a replica outlives database restarts: stale pooled connections are replaced
            pool_size=5,
            max_overflow=10,
            pool_timeout=30,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                # The server drops a vanished replica's session (and its advisory locks) within about a minute
                # instead of the kernel's two hours; the client side likewise notices a vanished server.
                "options": (
                    f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c tcp_keepalives_idle={KEEPALIVE_IDLE_SECONDS} "
                    f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL_SECONDS} -c tcp_keepalives_count={KEEPALIVE_COUNT}"
                ),
                "keepalives": 1,
                "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
                "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
                "keepalives_count": KEEPALIVE_COUNT,
                "application_name": "api-assistant",
            },
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    return sqlite_engine(data_dir / SQLITE_FILE)


def postgres_url(url: str) -> str:
    """`postgresql://…` (what people paste) with psycopg 3 as the driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql:// (only PostgreSQL is supported)")


def describe(data_dir: Path, database_url: str | None) -> str:
    """Where the registry lives, for messages: the URL without its password, or the SQLite file."""
    if not database_url:
        return str(data_dir / SQLITE_FILE)
    try:
        return sa.engine.make_url(postgres_url(database_url)).render_as_string(hide_password=True)
    except (ValueError, sa.exc.ArgumentError):
        return "DATABASE_URL (not a valid URL)"


def failure_reason(exc: BaseException) -> str:
    """The first line of a driver's complaint, without SQLAlchemy's statement echo and links."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return (lines[0] if lines else type(cause).__name__)[:300]


def sqlite_engine(path: Path) -> Engine:
    """A SQLite engine in WAL mode whose write transactions take the write lock up front (`BEGIN IMMEDIATE`).

    pysqlite's own transaction handling is switched off so SQLAlchemy's `begin()` is the only BEGIN: reads
    run in a deferred transaction (a snapshot that never blocks writers), writes through `write()` in an
    immediate one (a busy database is waited for up to the busy timeout instead of failing half-way).
    """
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def is_postgres(engine: Engine | Connection) -> bool:
    """Whether this is the PostgreSQL engine (else SQLite)."""
    return engine.dialect.name == "postgresql"


@contextlib.contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction: commits when the block ends, rolls back if it raises (anything, even a cancel)."""
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        yield connection


@contextlib.contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: every statement in the block sees the same snapshot."""
    with engine.connect() as connection:
        if is_postgres(engine):
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def upsert(connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows, replacing any with the same primary key (both engines spell it `ON CONFLICT … DO UPDATE`)."""
    if not rows:
        return
    dialect = postgresql if is_postgres(connection) else sqlite
    statement = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), list(rows))


# ---- migrations --------------------------------------------------------------------------------------


def migrate(engine: Engine, data_dir: Path) -> None:
    """Bring the schema to the newest Alembic revision (creating it in an empty database).

    On PostgreSQL the whole upgrade runs in one transaction under an advisory lock, so replicas starting at
    once wait for the first and then find nothing to do. A pre-Alembic SQLite registry is adopted in place.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["data_dir"] = data_dir
    # Alembic's `context` and `op` are module-level proxies: two upgrades in one process at once (backups
    # in threads, each migrating its own copy) would tear each other's down. One at a time per process.
    with _MIGRATIONS_IN_THIS_PROCESS, write(engine) as connection:
        if is_postgres(connection):
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(MIGRATION_LOCK)})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    adopted = config.attributes.get("adopted_originals")
    if isinstance(adopted, Path):  # its files are in the database now, committed
        shutil.rmtree(adopted, ignore_errors=True)


# ---- locks shared by every process using the database ------------------------------------------------


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def named_lock(
    engine: Engine, data_dir: Path, name: str, *, shared: bool = False, timeout: float | None = None
) -> AsyncIterator[None]:
    """Hold a lock called `name` across every process using this database until the block ends.

    Exclusive by default; `shared` holders exclude only exclusive ones. Waits without blocking the event
    loop, at most `timeout` seconds (then `TimeoutError`). A holder that dies (even `kill -9`) releases it:
    the database drops the session's advisory locks, the kernel drops the file lock.
    """
    if is_postgres(engine):
        async with _advisory_lock(engine, name, shared, timeout):
            yield
    else:
        async with _file_lock(data_dir, name, shared, timeout):
            yield


def _deadline(timeout: float | None) -> float:
    return float("inf") if timeout is None else time.monotonic() + timeout


async def _wait_or_give_up(deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise TimeoutError
    await asyncio.sleep(LOCK_POLL_SECONDS)


@contextlib.asynccontextmanager
async def _advisory_lock(engine: Engine, name: str, shared: bool, timeout: float | None) -> AsyncIterator[None]:
    deadline = _deadline(timeout)
    connection = await asyncio.to_thread(lock_connection, engine)
    try:
        while not await asyncio.to_thread(try_advisory_lock, connection, name, shared):
            await _wait_or_give_up(deadline)
        try:
            yield
        finally:
            await asyncio.to_thread(advisory_unlock, connection, name, shared)
    finally:
        await asyncio.to_thread(connection.close)


def lock_connection(engine: Engine) -> Connection:
    """A connection of its own, outside any transaction: session-level advisory locks live as long as it does."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def try_advisory_lock(connection: Connection, name: str, shared: bool) -> bool:
    """Take the PostgreSQL advisory lock called `name` on `connection` if it is free (never waits)."""
    mode = "_shared" if shared else ""
    taken = connection.execute(sa.text(f"SELECT pg_try_advisory_lock{mode}(:key)"), {"key": lock_key(name)}).scalar()
    return bool(taken)


def advisory_unlock(connection: Connection, name: str, shared: bool) -> None:
    """Release what `try_advisory_lock` took."""
    mode = "_shared" if shared else ""
    connection.execute(sa.text(f"SELECT pg_advisory_unlock{mode}(:key)"), {"key": lock_key(name)})


@contextlib.asynccontextmanager
async def _file_lock(data_dir: Path, name: str, shared: bool, timeout: float | None) -> AsyncIterator[None]:
    deadline = _deadline(timeout)
    folder = data_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(name.encode('utf-8')).hexdigest()[:32]}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    try:
        while True:
            try:
                fcntl.flock(descriptor, operation)
                break
            except BlockingIOError:
                await _wait_or_give_up(deadline)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
