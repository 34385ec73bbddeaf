"""Start a throwaway real PostgreSQL cluster on 127.0.0.1 for tests (Debian's `postgresql` package binaries).

    with start_postgres() as server:
        with server.database() as url:  # postgresql://api_assistant:<password>@127.0.0.1:<port>/test_1
            ...                         # a fresh empty database, dropped (WITH FORCE) at the end of the block
        server.admin_url                # the superuser, database `postgres`
        server.stop()                   # fast shutdown (SIGINT); stop(immediate=True): SIGQUIT, like a crash
        server.start()                  # same port and data again

`initdb` into a temp dir, then `postgres` on 127.0.0.1 with a free port and its unix socket in that dir.
Durability is off (fsync, synchronous_commit, full_page_writes): nothing needs to survive a power cut.
TCP logins use scram-sha-256 with generated passwords, so URLs look like production's; the app's role owns
each test database but is not a superuser, so code that would need one fails here as it would there.

PostgreSQL refuses to run as root: as root the cluster runs as Debian's `postgres` system user, started
with Popen(user=...) rather than `runuser`, which would sit between us and the postmaster, ignore SIGINT
and answer SIGTERM with a SIGKILL two seconds later. The postmaster gets SIGQUIT when the thread that
started it dies (PR_SET_PDEATHSIG), so a killed test session leaves no server behind.
Binaries: POSTGRES_BIN_DIR, else `pg_config --bindir`, /usr/lib/postgresql/<newest>/bin, or initdb on PATH.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import end_process

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
SUPERUSER = "postgres"
APP_USER = "api_assistant"
INSTALL_HINT = "apt-get install postgresql, or set POSTGRES_BIN_DIR to the folder holding initdb and postgres"

# Nothing here must survive a crash, so the settings trade durability for speed.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",  # no WAL for tables created and filled in one transaction
    "max_wal_senders": "0",  # required by wal_level=minimal
    "shared_buffers": "32MB",
    "jit": "off",  # compiling a plan costs more than the tiny test queries it would speed up
    "log_min_messages": "warning",
}

PR_SET_PDEATHSIG = 1


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in ("initdb", "postgres"))


def _version_key(folder: Path) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, so 10 sorts above 9."""
    return tuple(int(part) for part in folder.parent.name.split(".") if part.isdigit())


def postgres_bin_dir() -> Path | None:
    """The folder holding initdb and postgres, or None when PostgreSQL isn't installed."""
    configured = os.environ.get("POSTGRES_BIN_DIR")
    if configured:
        return Path(configured) if _has_binaries(Path(configured)) else None
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        # libpq-dev's pg_config names the bin dir even when no server is installed: checked below.
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return next((folder for folder in candidates if _has_binaries(folder)), None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent_thread() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGQUIT the child (immediate shutdown) when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child must not load libraries
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)
        if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
            os._exit(1)

    return arm


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, on a fixed port; it can be stopped and started again there."""

    def __init__(self, port: int | None = None, bin_dir: Path | None = None) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise FileNotFoundError(f"PostgreSQL is not installed ({INSTALL_HINT})")
        self.bin_dir = found
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = APP_USER
        self.password = secrets.token_urlsafe(18)
        self._superuser_password = secrets.token_urlsafe(18)
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "PostgreSQL refuses to run as root and there is no `postgres` user to run it as "
                    "(Debian's postgresql package creates it)"
                ) from None
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self.dir = Path(tempfile.mkdtemp(prefix="postgres-test-"))
        if self._run_as:
            os.chown(self.dir, self._run_as["user"], self._run_as["group"])
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _initdb(self) -> None:
        password_file = self.dir / "superuser-password"
        password_file.write_text(self._superuser_password)
        if self._run_as:
            os.chown(password_file, self._run_as["user"], self._run_as["group"])
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata", str(self.data_dir),
                "--username", SUPERUSER,
                "--pwfile", str(password_file),
                "--auth-host", "scram-sha-256",
                "--auth-local", "trust",  # the socket lives in our private temp dir
                "--encoding", "UTF8",
                "--locale", "C",  # byte order, like SQLite's BINARY collation; exists on every machine
                "--no-sync",
            ],
            cwd=self.dir,  # the caller's may be closed to the postgres user (e.g. /root)
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_SECONDS,
            **self._run_as,
        )  # fmt: skip
        password_file.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb exited with {result.returncode}: {result.stderr[-1000:]}")

    @property
    def admin_url(self) -> str:
        """The superuser's URL, database `postgres`."""
        return f"postgresql://{SUPERUSER}:{self._superuser_password}@{self.host}:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        """The app role's URL for `database`."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the postmaster on `self.port` and wait until it accepts the superuser's login."""
        import psycopg

        if self.running:
            return
        settings = {
            **FAST_SETTINGS,
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.dir),
        }
        options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with self.log_path.open("ab") as log:  # a file, not a pipe nobody reads that could fill up and block it
            self.process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), *options],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which stops us in order
                preexec_fn=_die_with_parent_thread(),  # only a prctl and a getppid run in the child
                **self._run_as,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"postgres exited with {code}: {self._log_tail()}")
            try:
                self._admin("SELECT 1")
                break
            except psycopg.OperationalError:  # until it listens and has finished starting up
                if time.monotonic() > deadline:
                    self.stop(immediate=True)
                    raise TimeoutError(f"postgres did not accept connections on port {self.port}") from None
                time.sleep(0.02)
        self._ensure_app_role()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1000:]
        except OSError:
            return "(no log)"

    def _admin(self, statement: Any, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser, outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        url = f"postgresql://{SUPERUSER}:{self._superuser_password}@{self.host}:{self.port}/{database}"
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def _ensure_app_role(self) -> None:
        from psycopg import sql

        if self._admin(sql.SQL("SELECT 1 FROM pg_roles WHERE rolname = {}").format(sql.Literal(self.user))):
            return
        self._admin(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(self.user), sql.Literal(self.password))
        )

    def create_database(self) -> str:
        """Create a new empty database owned by the app role; returns its name."""
        from psycopg import sql

        name = f"test_{next(self._names)}"
        self._admin(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(self.user)
            )
        )
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, closing whatever connections a test left open to it."""
        from psycopg import sql

        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def databases(self) -> list[str]:
        """Names of the databases that exist, templates excluded."""
        return [row[0] for row in self._admin("SELECT datname FROM pg_database WHERE NOT datistemplate")]

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh empty database for the block; yields its URL and drops it afterwards."""
        name = self.create_database()
        try:
            yield self.url_for(name)
        finally:
            if self.running:  # a stopped server's databases go with its temp dir
                self.drop_database(name)

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the postmaster by PID: fast shutdown (SIGINT), or SIGQUIT (immediate=True), like a crash.

        Either way it waits for the postmaster, which exits only after all its child processes have.
        """
        if self.process is None:
            return
        process, self.process = self.process, None
        end_process(process, signal.SIGQUIT if immediate else signal.SIGINT, timeout=STOP_TIMEOUT_SECONDS, then_wait=5)

    def restart(self) -> None:
        """Stop and start again on the same port; the data is kept."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def unavailable() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    if postgres_bin_dir() is None:
        return f"no initdb/postgres found ({INSTALL_HINT}; `make postgres` does it as root)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]>=3.2')"
    return None


def require_postgres() -> None:
    """Skip the test when PostgreSQL can't be started here; fail it in CI, where `make test` installs it."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):  # a missing server there is a broken set-up, not a reason to skip
        pytest.fail(f"PostgreSQL is needed in CI: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@contextlib.contextmanager
def start_postgres(port: int | None = None) -> Iterator[PostgresServer]:
    """Run a PostgreSQL cluster for the duration of the block (skipping the test if PostgreSQL is missing)."""
    require_postgres()
    server = PostgresServer(port)
    try:
        server.start()
        yield server
    finally:
        server.close()
