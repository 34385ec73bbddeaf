"""Helpers shared by tests that watch an asynchronous effect: waiting for a log line, a slow generator, and
stopping a server process the tests started."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from typing import Any


def end_process(process: subprocess.Popen[bytes], how: signal.Signals, timeout: float, then_wait: float | None) -> None:
    """Send `how` to a still-running process and reap it; SIGKILL if it outlives `timeout` seconds.

    `then_wait` bounds the wait after SIGKILL (None: as long as it takes).
    """
    if process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=then_wait)


async def wait_for_log(logs: list[dict[str, Any]], event: str, timeout: float = 15) -> dict[str, Any]:
    """The first captured log entry named `event`, waiting up to `timeout` seconds for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in logs:
            if entry["event"] == event:
                return entry
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {event} logged; saw {[e['event'] for e in logs]}")


class SlowGenerator:
    """An answer generator that takes its time, so an answer is in flight when the shutdown starts."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.started = asyncio.Event()

    async def stream(self, question: str, evidence: Any, history: Any = ()) -> Any:
        self.started.set()
        for part in ("Refund it with ", "the refund endpoint [1]."):
            await asyncio.sleep(self.delay)
            yield part

    async def aclose(self) -> None:
        pass
