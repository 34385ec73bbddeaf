"""Start a throwaway real redis-server on 127.0.0.1 for tests, and stop/restart it to simulate outages.

    with start_redis() as server:
        server.url            # redis://127.0.0.1:<port>/0
        server.stop()         # SIGKILL by PID: an outage
        server.start()        # same port again: recovery
        server.flush()        # FLUSHALL between tests

    with start_redis(args=["--requirepass", "s3cret"]) as server: ...   # extra redis-server options

No persistence (`--save "" --appendonly no`), working files in a temp dir, stopped by PID on exit.
Uses a raw socket for PING/FLUSHALL so the helper doesn't depend on the client under test.
`REDIS_SERVER` overrides the binary (default: `redis-server` on PATH, else /usr/bin/redis-server).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.waiting import end_process

START_TIMEOUT_SECONDS = 10.0


def redis_server_binary() -> str | None:
    """The redis-server executable, or None when it isn't installed."""
    configured = os.environ.get("REDIS_SERVER")
    if configured:
        return configured
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _encode(args: Sequence[str]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(parts)


def _commands(port: int, *commands: Sequence[str], timeout: float = 0.5) -> list[bytes]:
    """Send RESP commands on one connection; return each simple reply line (no bulk replies expected)."""
    replies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        buffer = b""
        for command in commands:
            sock.sendall(_encode(command))
            while b"\r\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("redis-server closed the connection")
                buffer += chunk
            line, buffer = buffer.split(b"\r\n", 1)
            replies.append(line)
    return replies


class RedisServer:
    """One redis-server process on a fixed port, which can be stopped and started again on that port."""

    def __init__(self, port: int | None = None, binary: str | None = None, args: Sequence[str] = ()) -> None:
        self.args = list(args)
        self.binary = binary or redis_server_binary()
        if self.binary is None:
            raise FileNotFoundError("redis-server is not installed (set REDIS_SERVER to its path)")
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="redis-test-")

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server on `self.port` and wait until it answers PING."""
        if self.running:
            return
        assert self.binary is not None
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
                "--loglevel", "warning",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {err[-500:]}")
            with contextlib.suppress(OSError):
                reply = _commands(self.port, ["PING"])[0]
                if reply == b"+PONG" or reply.startswith(b"-NOAUTH"):
                    return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server did not answer PING on port {self.port}")

    def stop(self, *, kill: bool = True) -> None:
        """Stop the process by PID (SIGKILL by default, like a crash; SIGTERM with kill=False)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        end_process(process, signal.SIGKILL if kill else signal.SIGTERM, timeout=5, then_wait=5)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port (all data lost: nothing is persisted)."""
        self.stop()
        self.start()

    def flush(self, password: str | None = None) -> None:
        """Delete every key in every database."""
        auth = [["AUTH", password]] if password is not None else []
        assert _commands(self.port, *auth, ["FLUSHALL"])[-1] == b"+OK"

    def close(self) -> None:
        """Stop the server and remove its working directory."""
        self.stop(kill=False)
        self._dir.cleanup()


@contextlib.contextmanager
def start_redis(port: int | None = None, args: Sequence[str] = ()) -> Iterator[RedisServer]:
    """Run a redis-server for the duration of the block (skipping the test if redis-server is missing)."""
    if redis_server_binary() is None:
        reason = "redis-server is not installed (apt-get install redis-server, or set REDIS_SERVER)"
        if os.environ.get("CI"):  # CI installs it (make test); a missing server there is a broken set-up
            pytest.fail(reason)
        pytest.skip(reason)
    server = RedisServer(port, args=args)
    try:
        server.start()
        yield server
    finally:
        server.close()
