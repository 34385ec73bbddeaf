"""Sending replies to Slack: the transports behind every reply the handlers give.

- `ThreadReply`: a thread (or DM) message posted at once and then edited in place (progress, the answer as it
  is written), with more messages below it for long answers. It is the core's `ReplySink` for events.
- `SlashReply`: a slash command's `response_url`, visible only to the person who typed it.
- `ActionReply`: an ephemeral reply to a button click.

Link parsing is off and nothing unfurls; when Slack refuses a message's blocks it is sent again as text.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack_app import messages as slack_messages
from bot.slack_app.render import SlackMessage, render_markdown, render_partial, render_status, slack_markup
from core.actions import Origin
from core.library import IngestProgress
from core.replies import QuietSink, Reply, ReplyMarkup, Transport, render_reply

log = structlog.get_logger(__name__)

MAX_SLASH_RESPONSES = 5  # Slack accepts five messages per response_url
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long"})


def slack_error(exc: SlackApiError) -> str:
    """The `error` code of a failed Slack API call (`http_502` etc. when the body was not JSON)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http_{getattr(exc.response, 'status_code', 'unknown')}"


def _describe(exc: Exception) -> dict[str, Any] | None:
    return {"error": slack_error(exc)} if isinstance(exc, SlackApiError) else None


SLACK = Transport("slack", describe=_describe)
THREAD_MARKUP = slack_markup()
SLASH_MARKUP = slack_markup(echo=True)
"""Slack's API errors for `core.replies.guarded`: logged as `slack_api_error` / `slack_reply_failed`."""


class Poster:
    """Posts and edits messages in one channel (and thread), with link parsing off and no unfurls."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts

    async def post(self, message: SlackMessage) -> str:
        """Post a message; returns its ts."""
        extra: dict[str, Any] = {"thread_ts": self.thread_ts} if self.thread_ts else {}
        response = await self._call(self.client.chat_postMessage, message, channel=self.channel,
                                    unfurl_links=False, unfurl_media=False, link_names=False, **extra)
        return str(response["ts"])

    async def update(self, ts: str, message: SlackMessage) -> None:
        """Replace a message the bot posted."""
        await self._call(self.client.chat_update, message, channel=self.channel, ts=ts, link_names=False)

    async def _call(
        self, method: Callable[..., Awaitable[AsyncSlackResponse]], message: SlackMessage, **kwargs: Any
    ) -> AsyncSlackResponse:
        try:
            return await method(**kwargs, **message.as_kwargs())
        except SlackApiError as exc:
            error = slack_error(exc)
            if error not in BLOCK_ERRORS or not message.blocks:
                raise
            log.warning("slack_blocks_refused", error=error, channel=self.channel, blocks=len(message.blocks))
            return await method(**kwargs, **message.plain().as_kwargs())


class LiveMessage:
    """One bot message posted at once and then edited in place, at most once per `interval` (latest wins)."""

    def __init__(self, poster: Poster, interval: float) -> None:
        self.poster = poster
        self.interval = interval
        self.ts: str | None = None
        self._lock = asyncio.Lock()
        self._pending: SlackMessage | None = None
        self._last_write = -math.inf
        self._flusher: asyncio.Task[None] | None = None
        self._finished = False

    async def show(self, message: SlackMessage) -> None:
        """Show progress: posted right away the first time, later edits throttled."""
        if self._finished:
            return
        self._pending = message
        if self.ts is None:
            await self._flush()
        else:
            self.request(message)

    def request(self, message: SlackMessage) -> None:
        """Schedule an edit (call from the event loop's thread); only the latest pending message is shown."""
        if self._finished:
            return
        self._pending = message
        if self._flusher is None or self._flusher.done():
            delay = max(0.0, self._last_write + self.interval - time.monotonic())
            self._flusher = asyncio.create_task(self._flush_later(delay))

    @property
    def finished(self) -> bool:
        """Whether the final message has been shown (later messages must be posted separately)."""
        return self._finished

    async def finish(self, message: SlackMessage) -> None:
        """Show the final message now (never overtaken by an older edit still in flight)."""
        self._finished = True
        if self._flusher is not None and not self._lock.locked():
            self._flusher.cancel()
        async with self._lock:
            await self._write(message)

    async def _flush_later(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            await self._flush()
        except SlackApiError as exc:
            log.warning("slack_progress_update_failed", error=slack_error(exc), channel=self.poster.channel)
        except Exception:
            log.warning("slack_progress_update_failed", channel=self.poster.channel, exc_info=True)

    async def _flush(self) -> None:
        async with self._lock:
            message, self._pending = self._pending, None
            if message is not None and not self._finished:
                await self._write(message)

    async def _write(self, message: SlackMessage) -> None:
        if self.ts is None:
            self.ts = await self.poster.post(message)
        else:
            await self.poster.update(self.ts, message)
        self._last_write = time.monotonic()


class Delivery(ABC):
    """Delivers the core's reply, or an error, as Slack messages in `markup`."""

    markup: ReplyMarkup[list[SlackMessage]] = THREAD_MARKUP

    async def final(self, reply: Reply) -> None:
        """Deliver the core's reply."""
        messages: list[SlackMessage] = render_reply(reply, self.markup)
        await self.send(messages)

    async def fail(self, text: str) -> None:
        """Deliver an error."""
        await self.send([render_markdown(text)])

    @abstractmethod
    async def send(self, messages: Sequence[SlackMessage]) -> None:
        """Send the messages."""


class ThreadReply(Delivery):
    """Replies in a thread (or at the top level of a DM): one live message, extra messages for long answers.

    `on_sent` is called after each reply delivered in a thread (the bot then takes part in it).
    """

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, interval: float,
        on_sent: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.poster = Poster(client, channel, thread_ts)
        self.live = LiveMessage(self.poster, interval)
        self.on_sent = on_sent

    async def status(self, text: str) -> None:
        """Show a progress line."""
        await self.live.show(render_status(text))

    async def partial(self, text: str) -> None:
        """Show the text written so far."""
        await self.live.show(render_partial(text))

    def progress(self, progress: IngestProgress) -> None:
        """Show indexing progress (throttled; called on the event loop)."""
        self.live.request(render_status(progress.message))

    async def send(self, messages: Sequence[SlackMessage]) -> None:
        """Replace the live message with the first message and post the rest below it."""
        if self.poster.thread_ts and self.on_sent is not None:
            await self.on_sent()
        if self.live.finished:  # e.g. an error after the answer was shown: never overwrite the answer
            rest = list(messages)
        else:
            first, *rest = messages
            await self.live.finish(first)
        for message in rest:
            await self.poster.post(message)


class SlashReply(QuietSink, Delivery):
    """Replies to a slash command through its `response_url`, visible only to the person who typed it.

    Every `/api` reply is ephemeral in Slack, `ask` too: a public answer is what mentioning the bot gives, in a
    thread where the conversation can go on.
    """

    markup = SLASH_MARKUP  # an answer starts with the question it answers

    def __init__(self, respond: AsyncRespond) -> None:
        self.respond = respond

    async def send(self, messages: Sequence[SlackMessage]) -> None:
        """Send up to five ephemeral messages."""
        if len(messages) > MAX_SLASH_RESPONSES:
            messages = [*messages[: MAX_SLASH_RESPONSES - 1], render_markdown(slack_messages.slash_too_many_parts())]
        for message in messages:
            response = await self.respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
            if response.status_code != 200:
                log.warning("slack_respond_failed", status=response.status_code, error=str(response.body)[:100])


class ActionReply:
    """Ephemeral replies to a button click: through `response_url`, else `chat.postEphemeral`."""

    def __init__(self, respond: AsyncRespond, client: AsyncWebClient, origin: Origin) -> None:
        self.respond = respond
        self.client = client
        self.origin = origin

    async def text(self, text: str) -> None:
        """Send one Markdown message to the clicker only."""
        message = render_markdown(text)
        if self.respond.response_url:
            response = await self.respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
            if response.status_code != 200:
                log.warning("slack_respond_failed", status=response.status_code)
        elif self.origin.channel and self.origin.user:
            await self.client.chat_postEphemeral(channel=self.origin.channel, user=self.origin.user,
                                                 **message.as_kwargs())
