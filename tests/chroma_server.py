"""Start a throwaway Chroma server (`chroma run`, shipped with the chromadb package) on 127.0.0.1 for tests.

    with start_chroma(tmp_path / "chroma") as port:
        Settings(chroma_host="127.0.0.1", chroma_port=port, ...)

For outage drills, `ChromaServer` can be killed and started again on the same port and data directory:

    server = ChromaServer(tmp_path / "chroma")
    server.start()
    server.stop(kill=True)   # SIGKILL by PID: a crash
    server.start()           # same port, same data: recovery

Stopped by PID on exit.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.waiting import end_process

START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """One `chroma run` process on a fixed port and data directory, which can be stopped and started again."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server and wait until its heartbeat answers."""
        if self.running:
            return
        chroma = Path(sys.executable).parent / "chroma"
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop(kill=True)
                    raise RuntimeError("chroma server did not start") from None
                time.sleep(0.2)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the process by PID: SIGTERM (then SIGKILL after 10 s), or SIGKILL at once with `kill`."""
        if self.process is None:
            return
        process, self.process = self.process, None
        end_process(process, signal.SIGKILL if kill else signal.SIGTERM, timeout=10, then_wait=None)


@contextmanager
def start_chroma(path: Path) -> Iterator[int]:
    """Run `chroma run` on a free port with its data under `path`; yields the port once it answers."""
    server = ChromaServer(path)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()
