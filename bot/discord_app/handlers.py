"""The Discord flows: answer a mention/reply/DM, index attached specs, and run the `/api` slash commands.

`guarded` is the one place where errors become replies: user-facing errors are shown as written by the core,
anything else is logged with a traceback and replaced by a short generic message naming the action's request
id, which is bound to every log line of that message or command.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, Concatenate, ParamSpec

import aiohttp
import discord
import structlog
from discord import app_commands
from structlog.contextvars import bound_contextvars

from bot.discord_app import messages as discord_messages
from bot.discord_app.attachments import CdnPolicy
from bot.discord_app.render import render_answer, render_ingest, render_partial, render_specs, render_text
from bot.discord_app.replies import ChannelReply, InteractionReply, MessageSeries
from bot.discord_app.translate import (
    Addressed,
    Conversations,
    addressed_to_bot,
    guild_origin,
    interaction_origin,
    message_origin,
    to_attachment,
    upload_name,
)
from core import messages
from core.answers import FinalAnswer, StatusUpdate, TextDelta
from core.config import Settings
from core.errors import RateLimitedError, UserFacingError
from core.parsing.loader import check_upload
from core.requests import AskQuestion, ForgetSpec, ListSpecs, Origin, PurgeWorkspace, UploadSpec
from core.service import Assistant, IngestProgress

log = structlog.get_logger(__name__)
Logger = structlog.typing.FilteringBoundLogger

EDIT_INTERVAL_SECONDS = 1.5  # at most one edit of a streaming answer per this many seconds
PROGRESS_INTERVAL_SECONDS = 2.0  # how often a long indexing job's progress message is updated
TYPING_REFRESH_SECONDS = 8.0  # Discord shows "typing" for about 10 s per trigger
MAX_ATTACHMENTS_PER_MESSAGE = 3
MAX_AUTOCOMPLETE_CHOICES = 25


P = ParamSpec("P")
Handler = Callable[Concatenate["DiscordHandlers", P], Coroutine[Any, Any, None]]
CommandAction = Callable[[Origin, InteractionReply, Logger], Awaitable[None]]
"""What a slash command does once claimed and deferred: (origin, reply, logger) -> the work."""


def in_flight(kind: str) -> Callable[[Handler[P]], Handler[P]]:
    """Run a handler as tracked work (a graceful shutdown waits for it); skip it once a shutdown has begun."""

    def decorate(method: Handler[P]) -> Handler[P]:
        @functools.wraps(method)
        async def tracked(self: DiscordHandlers, *args: P.args, **kwargs: P.kwargs) -> None:
            async with self.assistant.work.running(kind) as admitted:
                if admitted:
                    await method(self, *args, **kwargs)

        return tracked

    return decorate


def _context(origin: Origin) -> Logger:
    return log.bind(
        platform=origin.platform, workspace=origin.workspace, channel=origin.channel, user=origin.user,
        event_id=origin.event_id,
    )


async def guarded(reply: MessageSeries, action: Awaitable[None], bound: Logger, ref: str) -> None:
    """Run one user action, turning any error into the reply the user sees (the one place that does).

    `ref` is the action's request id, shown in the generic reply to an unexpected error.
    """
    try:
        await action
    except discord.Forbidden as exc:
        # Missing permissions in this channel: an error reply would be refused too.
        bound.warning("discord_forbidden", status=exc.status, code=exc.code)
    except RateLimitedError as exc:
        bound.info("user_error", error=type(exc).__name__, retry_after=round(exc.retry_after, 1))
        await _report(reply, exc.user_message, bound)
    except UserFacingError as exc:
        bound.info("user_error", error=type(exc).__name__)
        await _report(reply, exc.user_message, bound)
    except Exception:
        bound.exception("unexpected_error")
        await _report(reply, messages.unexpected_error(ref), bound)


async def _report(reply: MessageSeries, text: str, bound: Logger) -> None:
    try:
        await reply.fail(text)
    except discord.HTTPException as exc:
        bound.warning("error_reply_failed", status=exc.status, code=exc.code)


@asynccontextmanager
async def typing_indicator(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the body runs; a failure to show it never blocks the reply."""

    async def keep_typing() -> None:
        while True:
            try:
                await channel.typing()
            except discord.HTTPException as exc:
                log.debug("typing_failed", status=exc.status)
                return
            await asyncio.sleep(TYPING_REFRESH_SECONDS)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


class DiscordHandlers:
    """Everything the bot does, independent of how the client is wired."""

    def __init__(
        self,
        assistant: Assistant,
        settings: Settings,
        *,
        edit_interval: float = EDIT_INTERVAL_SECONDS,
        progress_interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self.assistant = assistant
        self.settings = settings
        self.edit_interval = edit_interval
        self.progress_interval = progress_interval
        self.conversations = Conversations()
        self.cdn_policy = CdnPolicy.with_api_url(settings.discord_api_url)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session used for attachment downloads (no credentials, no redirects)."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        """Close the download session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The download session (opened in `start`)."""
        if self._session is None:
            raise RuntimeError("DiscordHandlers.start() was not called")
        return self._session

    # ---- messages ----------------------------------------------------------------------------------

    @in_flight("discord_message")
    async def on_message(self, message: discord.Message, me: discord.abc.User) -> None:
        """Answer or index whatever a message addressed to the bot asks for; ignore everything else."""
        addressed = addressed_to_bot(message, me, self.conversations)
        if addressed is None or not (addressed.explicit or addressed.text):
            return  # not for us, or an unmentioned attachment-only post in a thread we answered in
        origin = message_origin(message, addressed.root)
        with bound_contextvars(request_id=origin.request_id):
            await self._answer_message(message, origin, addressed)

    async def _answer_message(self, message: discord.Message, origin: Origin, addressed: Addressed) -> None:
        if not await self.assistant.claim_event(origin):
            return  # a re-delivery (e.g. after a RESUME) of a message we already handled
        bound = _context(origin).bind(follow_up=addressed.follow_up, thread=addressed.root)
        if addressed.thread_id is not None:
            self.conversations.remember_thread(addressed.thread_id)
        async with typing_indicator(message.channel):
            if message.attachments and addressed.explicit:
                await self._upload_attached(message, origin, addressed, bound)
            else:
                reply = self._channel_reply(message, addressed.root)
                await guarded(reply, self._ask(reply, AskQuestion(origin, addressed.text), bound), bound,
                              origin.request_id)

    async def on_guild_remove(self, guild_id: int) -> None:
        """The bot was removed from a server (kicked, or the server deleted): delete everything stored for it."""
        origin = guild_origin(guild_id)
        # Essential: Discord never tells us again, so the purge runs even while shutting down.
        with bound_contextvars(request_id=origin.request_id):
            async with self.assistant.work.running("discord_purge", essential=True):
                try:
                    await self.assistant.purge_workspace(PurgeWorkspace(origin, "guild_remove"))
                except Exception:
                    log.exception("discord_purge_failed", workspace=origin.workspace)

    def _channel_reply(self, message: discord.Message, root: str) -> ChannelReply:
        return ChannelReply(message, lambda sent_id: self.conversations.remember_answer(sent_id, root))

    async def _upload_attached(
        self, message: discord.Message, origin: Origin, addressed: Addressed,
        bound: Logger,
    ) -> None:
        files = message.attachments[:MAX_ATTACHMENTS_PER_MESSAGE]
        name = upload_name(addressed.text) if len(files) == 1 else None
        for file in files:
            reply = self._channel_reply(message, addressed.root)
            attachment = to_attachment(file, self.session, self.cdn_policy)
            await guarded(reply, self._upload(reply, UploadSpec(origin, attachment, name), bound), bound,
                          origin.request_id)
        if len(message.attachments) > len(files):
            bound.info("too_many_attachments", attachments=len(message.attachments))
            reply = self._channel_reply(message, addressed.root)
            notice = discord_messages.too_many_attachments(len(files), len(message.attachments))
            await guarded(reply, reply.show(render_text(notice)), bound, origin.request_id)

    # ---- the shared flows --------------------------------------------------------------------------

    async def _ask(self, reply: MessageSeries, request: AskQuestion, bound: Logger) -> None:
        """Stream an answer into `reply`: text parts as throttled edits, then the final rendering with sources."""
        if not request.question.strip():
            bound.info("empty_question")
            await reply.show(render_text(messages.empty_question()))
            return
        started = time.monotonic()
        streamed = ""
        last_shown: float | None = None
        async for event in self.assistant.stream_answer(request):
            if isinstance(event, TextDelta):
                streamed += event.text
                if last_shown is None or time.monotonic() - last_shown >= self.edit_interval:
                    await reply.show(render_partial(streamed))
                    last_shown = time.monotonic()
            elif isinstance(event, FinalAnswer):
                if last_shown is not None:
                    await asyncio.sleep(max(0.0, last_shown + self.edit_interval - time.monotonic()))
                chunks = render_answer(event.answer)
                await reply.show(chunks)
                bound.info(
                    "answer_sent", answer_id=event.answer.answer_id, kind=event.answer.kind.value,
                    messages=len(chunks), streamed=last_shown is not None,
                    seconds=round(time.monotonic() - started, 2),
                )
                return
            elif isinstance(event, StatusUpdate):
                continue  # the typing indicator / "thinking…" state already says we are working
        raise RuntimeError("answer stream ended without a final answer")

    async def _upload(self, reply: MessageSeries, request: UploadSpec, bound: Logger) -> None:
        """Check, download and index one file, showing progress if it takes a while."""
        attachment = request.attachment
        # Refuse by declared size and file type before a single byte is downloaded.
        check_upload(
            attachment.filename, attachment.size,
            max_bytes=self.settings.max_file_bytes, allowed_extensions=self.settings.allowed_extensions,
        )
        latest: list[IngestProgress] = []
        stop = asyncio.Event()

        async def show_progress() -> None:
            shown = ""
            while not stop.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.progress_interval)
                    return
                text = latest[-1].message if latest else discord_messages.indexing_started(attachment.filename)
                if text != shown:
                    try:
                        await reply.show(render_text(text))
                        shown = text
                    except discord.HTTPException as exc:
                        bound.warning("progress_update_failed", status=exc.status)

        def on_progress(progress: IngestProgress) -> None:
            latest[:] = [progress]

        ticker = asyncio.create_task(show_progress())
        try:
            report = await self.assistant.ingest(request, on_progress)
        finally:
            stop.set()
            await ticker
        await reply.show(render_text(render_ingest(report)))
        bound.info(
            "spec_uploaded", spec=report.record.name, operations=report.record.operation_count,
            unchanged=report.unchanged, replaced=report.replaced, seconds=round(report.seconds, 2),
        )

    # ---- slash commands ----------------------------------------------------------------------------

    async def _command(
        self, interaction: discord.Interaction, name: str, action: CommandAction, *, ephemeral: bool
    ) -> None:
        """Claim and defer a slash command, then run `action` guarded, with its request id bound to its logs.

        A re-delivered interaction is dropped.
        """
        origin = interaction_origin(interaction)
        with bound_contextvars(request_id=origin.request_id):
            if not await self.assistant.claim_event(origin):
                return
            await interaction.response.defer(thinking=True, ephemeral=ephemeral)
            reply = InteractionReply(interaction, ephemeral=ephemeral)
            bound = _context(origin).bind(command=name)
            await guarded(reply, action(origin, reply, bound), bound, origin.request_id)

    @in_flight("discord_command")
    async def slash_ask(self, interaction: discord.Interaction, question: str, spec: str | None) -> None:
        """`/api ask`: a public answer."""
        def ask(origin: Origin, reply: InteractionReply, bound: Logger) -> Awaitable[None]:
            return self._ask(reply, AskQuestion(origin, question, spec or None), bound)

        await self._command(interaction, "ask", ask, ephemeral=False)

    @in_flight("discord_command")
    async def slash_upload(self, interaction: discord.Interaction, file: discord.Attachment, name: str | None) -> None:
        """`/api upload`: index an attached spec; the result is public so the team sees what was added."""
        def upload(origin: Origin, reply: InteractionReply, bound: Logger) -> Awaitable[None]:
            attachment = to_attachment(file, self.session, self.cdn_policy)
            return self._upload(reply, UploadSpec(origin, attachment, name or None), bound)

        await self._command(interaction, "upload", upload, ephemeral=False)

    @in_flight("discord_command")
    async def slash_specs(self, interaction: discord.Interaction) -> None:
        """`/api specs`: the workspace's specs, privately."""
        def specs(origin: Origin, reply: InteractionReply, bound: Logger) -> Awaitable[None]:
            return self._specs(reply, origin)

        await self._command(interaction, "specs", specs, ephemeral=True)

    async def _specs(self, reply: MessageSeries, origin: Origin) -> None:
        records = await self.assistant.list_specs(ListSpecs(origin))
        await reply.show(render_text(render_specs(records, self.assistant.stale_specs(origin.scope))))

    @in_flight("discord_command")
    async def slash_forget(self, interaction: discord.Interaction, name: str) -> None:
        """`/api forget`: remove a spec, privately confirmed."""
        def forget(origin: Origin, reply: InteractionReply, bound: Logger) -> Awaitable[None]:
            return self._forget(reply, ForgetSpec(origin, name), bound)

        await self._command(interaction, "forget", forget, ephemeral=True)

    async def _forget(self, reply: MessageSeries, request: ForgetSpec, bound: Logger) -> None:
        record = await self.assistant.forget(request)
        await reply.show(render_text(discord_messages.forgot(record.name)))
        bound.info("spec_forgotten", spec=record.name)

    @in_flight("discord_command")
    async def slash_help(self, interaction: discord.Interaction) -> None:
        """`/api help`: how to use the bot, privately."""
        def show_help(origin: Origin, reply: InteractionReply, bound: Logger) -> Awaitable[None]:
            return reply.show(render_text(discord_messages.HELP))

        await self._command(interaction, "help", show_help, ephemeral=True)

    async def spec_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete for spec names in this workspace."""
        origin = interaction_origin(interaction)
        try:
            records = await self.assistant.list_specs(ListSpecs(origin))
        except Exception:
            _context(origin).exception("autocomplete_failed")
            return []
        needle = current.lower().strip()
        names = [r.name for r in records if needle in r.name.lower() or needle in r.title.lower()]
        names.sort(key=lambda n: (not n.lower().startswith(needle), n))
        return [app_commands.Choice(name=n, value=n) for n in names[:MAX_AUTOCOMPLETE_CHOICES]]
