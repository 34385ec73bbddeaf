"""The PostgreSQL the tests start: real logins, a database per test, and no server left behind, however it ends."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.postgres_server import PostgresServer, require_postgres, start_postgres

psycopg = pytest.importorskip("psycopg")

REPO_ROOT = Path(__file__).resolve().parents[1]
GONE_TIMEOUT_SECONDS = 15.0


@pytest.fixture(autouse=True)
def _postgres_installed() -> None:
    # The tests that start servers in other processes need it too, not only those using the fixtures.
    require_postgres()


def children(pid: int) -> set[int]:
    """PIDs whose parent is `pid` (the postmaster's checkpointer, walwriter, backends ...)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: set[int]) -> set[int]:
    """The PIDs still alive after waiting up to GONE_TIMEOUT_SECONDS for all of them to exit."""
    deadline = time.monotonic() + GONE_TIMEOUT_SECONDS
    while (left := {pid for pid in pids if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def process_uid(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])


def refused(port: int) -> bool:
    """Whether nothing listens on `port` any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}"))


def test_the_url_looks_like_production(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    assert parts.scheme == "postgresql"
    assert (parts.hostname, parts.username) == ("127.0.0.1", "api_assistant")
    assert parts.port and parts.password and len(parts.password) >= 20
    assert parts.path.strip("/").startswith("test_")


def test_the_password_logs_in_and_a_wrong_one_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        user, superuser, method = connection.execute(
            "SELECT current_user, rolsuper, current_setting('password_encryption')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert (user, superuser, method) == ("api_assistant", False, "scram-sha-256")

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(with_password(postgres_url, "wrong-password"), connect_timeout=5)
    parts = urlsplit(postgres_url)
    without_password = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}"))
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without_password, connect_timeout=5)


def test_a_test_database_starts_empty_and_the_app_role_owns_it(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables.fetchall() == []
        connection.execute("CREATE TABLE specs (name text PRIMARY KEY)")
        connection.execute("INSERT INTO specs VALUES ('stripe')")
        assert connection.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)


def test_databases_are_separate_and_dropped_afterwards(postgres_server: PostgresServer) -> None:
    with postgres_server.database() as first, postgres_server.database() as second:
        assert first != second
        with psycopg.connect(first) as connection:
            connection.execute("CREATE TABLE specs (name text)")
            connection.execute("INSERT INTO specs VALUES ('stripe')")
        with psycopg.connect(second) as connection:
            assert connection.execute("SELECT to_regclass('public.specs')").fetchone() == (None,)
        names = {urlsplit(url).path.strip("/") for url in (first, second)}
        assert names <= set(postgres_server.databases())
        left_open = psycopg.connect(first)  # a test that forgets to close must not block the drop
    assert not names & set(postgres_server.databases())
    with pytest.raises(psycopg.OperationalError):
        left_open.execute("SELECT 1")
    left_open.close()


def test_the_server_runs_as_the_postgres_user_when_we_are_root(postgres_server: PostgresServer) -> None:
    assert postgres_server.process is not None
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert process_uid(postgres_server.process.pid) == expected
    assert postgres_server.dir.stat().st_uid == expected
    assert postgres_server.dir.stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="not root: the session's own server covers the non-root case")
def test_it_also_starts_for_a_user_who_is_not_root() -> None:
    # A forked child that gives up root runs the non-root path (no user switch) for real. Not a new
    # interpreter under runuser: this one may live where only root can read (here: under /root).
    account = pwd.getpwnam("postgres")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe and never returns)
        code = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            with start_postgres() as server, server.database() as url, psycopg.connect(url) as connection:
                assert server.process is not None
                report = f"{process_uid(server.process.pid)} {connection.execute('SELECT 1').fetchone()[0]}"
            os.write(writer, report.encode())
            code = 0
        except BaseException as problem:
            os.write(writer, repr(problem).encode()[:2000])
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        report = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    assert report.split() == [str(account.pw_uid), "1"]


@pytest.mark.parametrize("immediate", [False, True], ids=["fast", "immediate"])
def test_after_stop_nothing_of_the_server_is_left(immediate: bool) -> None:
    with start_postgres() as server:
        assert server.process is not None
        postmaster = server.process.pid
        with server.database() as url:
            connection = psycopg.connect(url)
            helpers = children(postmaster)
            assert len(helpers) >= 3  # checkpointer, walwriter, this connection's backend ...
            server.stop(immediate=immediate)
            assert not server.running
            assert wait_gone({postmaster, *helpers}) == set()
            assert refused(server.port)
            with pytest.raises(psycopg.OperationalError):
                connection.execute("SELECT 1")
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(url, connect_timeout=2)
            connection.close()
        folder = server.dir
    assert not folder.exists()


def test_a_restart_keeps_the_port_and_the_data() -> None:
    with start_postgres() as server:
        name = server.create_database()
        with psycopg.connect(server.url_for(name)) as connection:
            connection.execute("CREATE TABLE specs (name text)")
            connection.execute("INSERT INTO specs VALUES ('stripe')")
        port = server.port
        server.restart()
        assert server.port == port
        with psycopg.connect(server.url_for(name)) as connection:
            assert connection.execute("SELECT name FROM specs").fetchall() == [("stripe",)]


def run_until_ready(script: str, tmp_path: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Run `script` in a new Python; it writes the server's pid and dir to `ready`, then blocks."""
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(ready)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text().endswith("\n"):
        if process.poll() is not None:
            assert process.stderr is not None
            error = process.stderr.read()
            raise AssertionError(f"exited with {process.returncode} before its server was ready: {error}")
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    found = dict(line.split("=", 1) for line in ready.read_text().splitlines())
    return process, found


def test_a_killed_session_leaves_no_server_behind(tmp_path: Path) -> None:
    # SIGKILL runs no clean-up at all: the postmaster is told by the kernel (parent-death signal).
    process, found = run_until_ready(
        """
        import sys, time
        from tests.postgres_server import start_postgres
        with start_postgres() as server:
            with open(sys.argv[1] + ".tmp", "w") as ready:
                ready.write(f"pid={server.process.pid}\\ndir={server.dir}\\n")
            __import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
            time.sleep(120)
        """,
        tmp_path,
    )
    postmaster = int(found["pid"])
    helpers = children(postmaster)
    process.kill()
    process.wait(timeout=10)
    try:
        assert wait_gone({postmaster, *helpers}) == set()
    finally:
        shutil.rmtree(found["dir"], ignore_errors=True)  # what a killed session cannot do


def test_an_interrupted_pytest_session_stops_its_server_and_cleans_up(tmp_path: Path) -> None:
    # Ctrl-C: pytest stops at once but still tears the fixtures down, so the server is stopped in order
    # and its temp dir removed (the parent-death signal alone would leave the dir).
    (tmp_path / "test_interrupted.py").write_text(
        textwrap.dedent(
            """
            import os, signal, sys, time

            def test_interrupted(postgres_server, postgres_url):
                with open(os.environ["READY_FILE"], "w") as ready:
                    ready.write(f"pid={postgres_server.process.pid}\\ndir={postgres_server.dir}\\n")
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            """
        )
    )
    ready = tmp_path / "ready"
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
            "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_interrupted.py"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "READY_FILE": str(ready)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert "KeyboardInterrupt" in result.stdout + result.stderr, result.stdout[-2000:]
    found = dict(line.split("=", 1) for line in ready.read_text().splitlines())
    assert not alive(int(found["pid"]))
    assert not Path(found["dir"]).exists()
