"""Sending replies: one logical reply shown as one or more Discord messages that are edited in place.

Two transports share the logic: a reply to a channel message, and the response to a (deferred) slash command.
Every send and edit goes through here with `AllowedMentions.none()` and a final length/mention safety check
(`safe_content`, the adapter's boundary), so nothing the bot says can ping anyone. `LiveSeries` is the core's
`ReplySink` for one reply (`core.live`: the answer streamed as throttled edits, indexing progress, the reply).
"""

from __future__ import annotations

import asyncio
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import discord
import structlog

from bot.discord_app.components import answer_view
from bot.discord_app.render import MARKUP, MESSAGE_LIMIT, defuse_mentions, render_partial, render_text
from core import messages
from core.diffs.report import ReportFile
from core.live import LiveMessage, LiveReply, ProgressLook
from core.replies import AnswerReply, Reply, Transport

log = structlog.get_logger(__name__)
Logger = structlog.typing.FilteringBoundLogger

NEUTRAL_PLACEHOLDER = "…"


def no_mentions() -> discord.AllowedMentions:
    """Nobody is ever pinged: not @everyone/@here, roles, users, nor the author replied to (also the client default)."""
    return discord.AllowedMentions.none()


def safe_content(text: str) -> str:
    """Last line of defence before anything is sent: defused mass mentions, within Discord's length limit."""
    text = defuse_mentions(text) or NEUTRAL_PLACEHOLDER
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


class MessageSeries(ABC):
    """A reply that may span several messages; `show` makes Discord display exactly the given chunks.

    Once `view` is set (the final answer's buttons), the last message carries it.
    """

    def __init__(self) -> None:
        self._shown: list[str] = []
        self._lock = asyncio.Lock()
        self.view: discord.ui.View | None = None
        self._view_on: int | None = None  # which message carries the view

    @property
    def started(self) -> bool:
        """Whether anything has been sent yet."""
        return bool(self._shown)

    async def show(self, chunks: Sequence[str]) -> None:
        """Edit the messages already sent, send new ones for extra chunks, delete any left over."""
        chunks = [safe_content(c) for c in chunks] or [NEUTRAL_PLACEHOLDER]
        async with self._lock:
            last = len(chunks) - 1
            for index, chunk in enumerate(chunks):
                view = self.view if index == last else None
                if index < len(self._shown):
                    moved = view is not None and self._view_on != index
                    if self._shown[index] != chunk or moved:
                        await self._edit(index, chunk, view)
                        self._shown[index] = chunk
                else:
                    await self._create(index, chunk, view)
                    self._shown.append(chunk)
                if view is not None:
                    self._view_on = index
            while len(self._shown) > len(chunks):
                await self._delete(len(self._shown) - 1)
                self._shown.pop()

    async def fail(self, text: str) -> None:
        """Show an error instead of (or in place of) the reply (without the answer's buttons)."""
        self.view = None
        await self.show(render_text(text))

    async def send_extra(self, content: str, file: discord.File | None = None) -> None:
        """Send one more message after the reply (with `file` attached), outside what `show` manages."""
        async with self._lock:
            await self._send_extra(safe_content(content), file)

    @abstractmethod
    async def _send_extra(self, content: str, file: discord.File | None) -> None: ...

    @abstractmethod
    async def _create(self, index: int, content: str, view: discord.ui.View | None = None) -> None: ...

    @abstractmethod
    async def _edit(self, index: int, content: str, view: discord.ui.View | None = None) -> None: ...

    @abstractmethod
    async def _delete(self, index: int) -> None: ...


class ChannelReply(MessageSeries):
    """A reply to a user's message: the first message references theirs (without pinging them).

    With `thread` (the thread opened on the question), the reply goes there instead, without a reference: the
    question is the thread's first message already.
    """

    def __init__(
        self, question: discord.Message, on_sent: Callable[[int], None] | None = None, *,
        thread: discord.Thread | None = None,
    ) -> None:
        super().__init__()
        self._question = question
        self._on_sent = on_sent
        self._thread = thread
        self._messages: list[discord.Message] = []

    async def _create(self, index: int, content: str, view: discord.ui.View | None = None) -> None:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if self._thread is not None:
            sent = await self._thread.send(content, allowed_mentions=no_mentions(), **extra)
        elif index == 0:
            sent = await self._question.channel.send(
                content,
                reference=self._question.to_reference(fail_if_not_exists=False),
                mention_author=False,
                allowed_mentions=no_mentions(),
                **extra,
            )
        else:
            sent = await self._question.channel.send(content, allowed_mentions=no_mentions(), **extra)
        self._messages.append(sent)
        if self._on_sent is not None:
            self._on_sent(sent.id)

    async def _edit(self, index: int, content: str, view: discord.ui.View | None = None) -> None:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        self._messages[index] = await self._messages[index].edit(
            content=content, allowed_mentions=no_mentions(), **extra
        )

    async def _send_extra(self, content: str, file: discord.File | None) -> None:
        channel = self._question.channel
        if file is None:
            sent = await channel.send(content, allowed_mentions=no_mentions())
        else:
            sent = await channel.send(content, file=file, allowed_mentions=no_mentions())
        if self._on_sent is not None:  # a reply to it is a follow-up too
            self._on_sent(sent.id)

    async def _delete(self, index: int) -> None:
        await self._messages.pop(index).delete()


class InteractionReply(MessageSeries):
    """The response to a deferred slash command: the original response, then follow-up messages."""

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        super().__init__()
        self._interaction = interaction
        self._ephemeral = ephemeral
        self._followups: list[discord.WebhookMessage] = []

    async def _create(self, index: int, content: str, view: discord.ui.View | None = None) -> None:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if index == 0:
            await self._interaction.edit_original_response(content=content, allowed_mentions=no_mentions(), **extra)
            return
        sent = await self._interaction.followup.send(
            content, ephemeral=self._ephemeral, allowed_mentions=no_mentions(), wait=True, **extra
        )
        self._followups.append(sent)

    async def _edit(self, index: int, content: str, view: discord.ui.View | None = None) -> None:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if index == 0:
            await self._interaction.edit_original_response(content=content, allowed_mentions=no_mentions(), **extra)
        else:
            self._followups[index - 1] = await self._followups[index - 1].edit(
                content=content, allowed_mentions=no_mentions(), **extra
            )

    async def _delete(self, index: int) -> None:
        await self._followups.pop(index - 1).delete()

    async def _send_extra(self, content: str, file: discord.File | None) -> None:
        followup = self._interaction.followup
        if file is None:
            await followup.send(content, ephemeral=self._ephemeral, allowed_mentions=no_mentions())
        else:
            await followup.send(content, file=file, ephemeral=self._ephemeral, allowed_mentions=no_mentions())

    async def fail(self, text: str) -> None:
        """Errors are private: in a public response, hand the error over ephemerally and remove the public part."""
        if self._ephemeral:
            await super().fail(text)
            return
        async with self._lock:
            while self._followups:
                await self._followups.pop().delete()
            # Edit first: while the deferred response is still "thinking", Discord turns the first follow-up
            # into the original response and ignores its ephemeral flag.
            await self._interaction.edit_original_response(
                content=NEUTRAL_PLACEHOLDER, allowed_mentions=no_mentions()
            )
            for chunk in render_text(text):
                await self._interaction.followup.send(
                    safe_content(chunk), ephemeral=True, allowed_mentions=no_mentions()
                )
            await self._interaction.delete_original_response()
            self._shown = []


def _describe(exc: Exception) -> dict[str, Any] | None:
    return {"status": exc.status, "code": exc.code} if isinstance(exc, discord.HTTPException) else None


DISCORD = Transport("discord", describe=_describe, mute=lambda exc: isinstance(exc, discord.Forbidden))
"""Discord's API errors for `core.replies.guarded`; after a 403 (no permission here) no error reply is tried."""


LOOK = ProgressLook(partial=render_partial, progress=render_text)
"""Status lines are not shown: the typing indicator (or the command's "thinking…") says the bot is at work."""


class LiveSeries(LiveReply[list[str], list[str]]):
    """The core's sink for one reply shown as `series`: the answer as it is written, progress, then the reply.

    With a `placeholder` (an upload), nothing shows for one `interval`, so a quick upload shows only its result;
    then the placeholder, or the latest progress, as the live message.
    """

    def __init__(
        self, series: MessageSeries, *, interval: float, logger: Logger, placeholder: str | None = None
    ) -> None:
        delay = interval if placeholder is not None else 0.0
        live: LiveMessage[list[str]] = LiveMessage(series.show, interval, delay=delay, transport=DISCORD, logger=logger)
        super().__init__(live, LOOK, MARKUP, logger)
        self.series = series
        if placeholder is not None:
            live.request(render_text(placeholder))

    async def final(self, reply: Reply) -> None:
        """Deliver the reply; an answer gets its buttons (👍/👎, other languages) on its last message."""
        if isinstance(reply, AnswerReply):
            self.series.view = answer_view(reply.answer)
        await super().final(reply)

    async def deliver(self, rendered: list[str]) -> None:
        """Show the reply in place of the progress."""
        await self.live.finish(rendered)

    async def attach(self, report: ReportFile) -> bool:
        """Send a reply's file as a message attachment (multipart/form-data), right after the reply."""
        caption = report.caption or messages.report_caption()
        await self.series.send_extra(caption, discord.File(io.BytesIO(report.content), filename=report.filename))
        return True

    async def add(self, rendered: list[str]) -> None:
        """Send messages after the reply, leaving the reply as it is."""
        for chunk in rendered:
            await self.series.send_extra(chunk)

    async def fail(self, text: str) -> None:
        """Show an error the series' own way (privately, for a command), at once."""
        await self.live.stop()
        await self.series.fail(text)
