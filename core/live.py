"""Live replies: a chat message shown while the work goes on, then replaced by the reply.

The message shows status lines, the answer written so far or indexing progress. Every platform shares the
timing; each gives only a `write` (post the first time, edit afterwards) and its markup.

`LiveMessage` is the one throttle, with one policy on every platform:

- The first content is written at once (or once `delay` has passed, so quick work shows only its reply), and
  the caller waits for it: a failure there is the action's failure.
- Later contents are coalesced: only the latest one waiting is written, in the background, and never sooner
  than `interval` after the previous write. A failed background write is logged; the next one is tried.
- `finish` writes the final content in place of anything waiting, again no sooner than `interval` after the
  previous write (at once when nothing was written), and nothing is written after it.

So a message is never written twice within `interval`, and it always ends with the latest content.
`LiveReply` is the core's `ReplySink` on top of one live message; `working_sign` shows a platform's "working on
it" sign (a reaction, "typing…") meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sized
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from core.replies import LOCAL, Delivery, Logger, ReplyMarkup, Transport, attach_report, render_reply

if TYPE_CHECKING:
    from core.library import IngestProgress
    from core.replies import Reply

T = TypeVar("T")
R = TypeVar("R", bound=Sized)

log = structlog.get_logger(__name__)


class LiveMessage(Generic[T]):
    """One message written by `write` (post the first time, edit afterwards), throttled as the module says.

    Use it as an async context manager (or call `stop`) so that nothing waiting is written once the work ends.
    """

    def __init__(
        self, write: Callable[[T], Awaitable[object]], interval: float, *, delay: float = 0.0,
        transport: Transport = LOCAL, logger: Logger = log,
    ) -> None:
        self._write_content = write
        self.interval = interval
        self.transport = transport
        self.logger = logger
        self._not_before = time.monotonic() + delay
        self._last_write: float | None = None
        self._waiting: tuple[T] | None = None  # the latest content not written yet (boxed: it may be falsy)
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one write at a time, in order
        self._stopped = False
        self.done = False  # the final content was written: anything more is a new message

    @property
    def written(self) -> bool:
        """Whether anything has been written."""
        return self._last_write is not None

    async def __aenter__(self) -> LiveMessage[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def show(self, content: T) -> None:
        """Show intermediate content: the first is written now (failures raise), later ones as the throttle allows."""
        if self._stopped:
            return
        if self._last_write is None and self._idle() and time.monotonic() >= self._not_before:
            async with self._lock:
                if not self._stopped:
                    await self._write(content)
            return
        self.request(content)

    def request(self, content: T) -> None:
        """Show intermediate content from synchronous code on the event loop: always written in the background."""
        if self._stopped:
            return
        self._waiting = (content,)
        if self._idle():
            self._flusher = asyncio.create_task(self._flush())

    async def finish(self, content: T) -> None:
        """Write the final content in place of anything waiting; nothing is written after it."""
        await self.stop()
        if self._last_write is not None:
            await asyncio.sleep(max(0.0, self._last_write + self.interval - time.monotonic()))
        async with self._lock:
            await self._write(content)
        self.done = True

    async def stop(self) -> None:
        """Write nothing more that is waiting; returns once a write in flight has ended (idempotent)."""
        self._stopped = True
        self._waiting = None
        flusher, self._flusher = self._flusher, None
        if flusher is None:
            return
        if not self._lock.locked():  # waiting for its turn: cancel it; writing: let the write end
            flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)

    def _idle(self) -> bool:
        return self._flusher is None or self._flusher.done()

    def _next_write(self) -> float:
        return self._not_before if self._last_write is None else self._last_write + self.interval

    async def _flush(self) -> None:
        """Write the latest waiting content whenever the throttle allows, until nothing waits any more."""
        while True:
            await asyncio.sleep(max(0.0, self._next_write() - time.monotonic()))
            async with self._lock:
                if self._stopped or self._waiting is None:
                    return
                if time.monotonic() < self._next_write():  # another write came first
                    continue
                (content,), self._waiting = self._waiting, None
                try:
                    await self._write(content)
                except Exception as exc:
                    fields = self.transport.describe(exc)
                    event = f"{self.transport.name}_progress_update_failed"
                    if fields is None:
                        self.logger.warning(event, exc_info=True)
                    else:
                        self.logger.warning(event, **fields)

    async def _write(self, content: T) -> None:
        try:
            await self._write_content(content)
        finally:
            self._last_write = time.monotonic()  # a failed write counts too: the platform may be throttling us


@dataclass(frozen=True)
class ProgressLook(Generic[T]):
    """How progress looks on a live message on one platform."""

    partial: Callable[[str], T]  # the answer written so far
    progress: Callable[[str], T]  # an indexing progress line
    status: Callable[[str], T] | None = None  # a status line; None: not shown (the platform shows "typing…")


class LiveReply(Delivery[R], Generic[T, R]):
    """The core's `ReplySink` for one reply: progress on `live` (in `look`), then the reply in `markup`.

    Subclasses `deliver` the rendered reply (or error), normally by `live.finish`. Use it as an async context
    manager around the work, so nothing waiting is written once the work ends, however it ends.
    """

    def __init__(
        self, live: LiveMessage[T], look: ProgressLook[T], markup: ReplyMarkup[R], logger: Logger = log
    ) -> None:
        self.live = live
        self.look = look
        self.markup = markup
        self.logger = logger
        self.transport = live.transport
        self._started = time.monotonic()

    async def __aenter__(self) -> LiveReply[T, R]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.live.stop()

    async def status(self, text: str) -> None:
        """Show a status line (where the platform shows them)."""
        if self.look.status is not None:
            await self.live.show(self.look.status(text))

    async def partial(self, text: str) -> None:
        """Show the answer written so far."""
        await self.live.show(self.look.partial(text))

    def progress(self, progress: IngestProgress) -> None:
        """Show indexing progress (called on the event loop's thread)."""
        self.live.request(self.look.progress(progress.message))

    @property
    def streamed(self) -> bool:
        """Whether progress was shown before the reply (a platform streaming natively says so itself)."""
        return self.live.written

    async def final(self, reply: Reply) -> None:
        """Deliver the reply in place of the progress, then attach its file (a diff's full report) if it has one."""
        streamed = self.streamed
        rendered = render_reply(reply, self.markup)
        await self.deliver(rendered)
        self.logger.info("reply_sent", reply=type(reply).__name__, messages=len(rendered), streamed=streamed,
                         seconds=round(time.monotonic() - self._started, 2))
        await attach_report(self, reply, self.logger)

    @abstractmethod
    async def deliver(self, rendered: R) -> None:
        """Show the rendered reply (or error)."""


@asynccontextmanager
async def working_sign(
    show: Callable[[], Awaitable[object]], hide: Callable[[], Awaitable[object]] | None = None, *,
    every: float | None = None, transport: Transport = LOCAL, logger: Logger = log,
) -> AsyncIterator[None]:
    """Show the platform's "working on it" sign while the body runs; its failures never hold up the reply.

    A lasting sign (a reaction) is shown once, before the body, and removed with `hide` after it if it was shown.
    A fading sign ("typing…" lasts seconds) is shown again `every` seconds, in the background, until the body
    ends or showing it fails. Failures are logged as `<transport>_working_sign_failed`.
    """

    async def attempt(step: Callable[[], Awaitable[object]]) -> bool:
        try:
            await step()
            return True
        except Exception as exc:
            fields = transport.describe(exc)
            if fields is None:
                logger.warning(f"{transport.name}_working_sign_failed", exc_info=True)
            else:
                logger.info(f"{transport.name}_working_sign_failed", **fields)
            return False

    async def keep_showing(interval: float) -> None:
        while await attempt(show):
            await asyncio.sleep(interval)

    refresher = asyncio.create_task(keep_showing(every)) if every is not None else None
    shown = refresher is not None or await attempt(show)
    try:
        yield
    finally:
        if refresher is not None:
            refresher.cancel()
            with suppress(asyncio.CancelledError):
                await refresher
        elif shown and hide is not None:
            await attempt(hide)
