"""Work in progress, so that a shutdown can stop taking new work and let what is running finish.

Adapters wrap each unit of work (an event, a command) in `InFlightWork.running`. On SIGTERM
(`shutdown_on_signals`) the work stops being accepted and the runners' `stop` is set: each closes its platform
connection's intake, waits with `drain(grace)` for running work to finish, and only then closes its clients.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import structlog

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.05
CANCEL_WAIT_SECONDS = 2.0
"""After the grace period, how long cancelled work gets to unwind (its `finally` blocks) before clients close."""


class InFlightWork:
    """Counts the work running in this process; refuses new work once a shutdown has begun."""

    def __init__(self) -> None:
        self.accepting = True
        self._active: dict[int, tuple[str, asyncio.Task[Any] | None]] = {}
        self._ids = itertools.count()
        self._hurry = False

    @property
    def active(self) -> int:
        """How many units of work are running."""
        return len(self._active)

    @asynccontextmanager
    async def running(self, kind: str, *, essential: bool = False) -> AsyncIterator[bool]:
        """Track one unit of work: `async with work.running("slack_event") as admitted: if admitted: ...`.

        After `stop_accepting()`, new work is refused (`admitted` is False and a line is logged) unless it is
        `essential`: something the platform will never send again, such as an uninstall to purge.
        """
        if not self.accepting and not essential:
            log.info("work_refused_shutting_down", kind=kind)
            yield False
            return
        job = next(self._ids)
        self._active[job] = (kind, asyncio.current_task())
        try:
            yield True
        finally:
            del self._active[job]

    def stop_accepting(self) -> None:
        """Refuse new work from now on (idempotent)."""
        if self.accepting:
            self.accepting = False
            log.info("shutdown_started", in_flight=self.active)

    def hurry(self) -> None:
        """Stop waiting for running work (a second signal): `drain` cancels it at once."""
        self._hurry = True

    async def drain(self, grace: float) -> int:
        """Wait up to `grace` seconds for running work to finish; cancel what is still running after that.

        Returns how many units of work were cancelled (0 when everything finished in time). Several callers
        may drain at once (one per platform); each waits for the same work.
        """
        started = time.monotonic()
        deadline = started + grace
        while self._active and not self._hurry and time.monotonic() < deadline:
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        if not self._active:
            log.info("shutdown_drained", seconds=round(time.monotonic() - started, 2))
            return 0
        current = asyncio.current_task()
        left = list(self._active.values())
        tasks = {task for _, task in left if task is not None and task is not current and not task.done()}
        log.warning("shutdown_grace_expired", cancelled=len(left), kinds=sorted({kind for kind, _ in left}))
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
        return len(left)


async def wait_until_stopped(stop: asyncio.Event | None) -> None:
    """Wait until `stop` is set; forever (until cancelled) when there is none."""
    if stop is None:
        await asyncio.Future()
    else:
        await stop.wait()


async def repeat_until_stopped(stop: asyncio.Event, interval: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run `job` every `interval` seconds (the first time one interval from now) until `stop` is set.

    For housekeeping that must not wait for the next restart (e.g. the sweep of what a replica that died on
    another host left behind). `job` is expected to log its own failures; one that raises is logged here
    and tried again at the next tick.
    """
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
            return
        except TimeoutError:
            pass
        try:
            await job()
        except Exception:
            log.exception("periodic_job_failed", job=getattr(job, "__name__", repr(job)))


@contextmanager
def shutdown_on_signals(stop: asyncio.Event, work: InFlightWork, grace: float) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` (and stop taking work); a second one makes the shutdown stop waiting."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("shutdown_hurried", signal=sig.name, in_flight=work.active)
            work.hurry()
            return
        log.info("shutdown_requested", signal=sig.name, in_flight=work.active, grace_seconds=grace)
        work.stop_accepting()
        stop.set()

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # no signal support (Windows, or not the main thread)
            continue
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
