"""The Discord flows: answer a mention/reply/DM, index attached specs, and run the `/api` slash commands.

Every flow runs a catalogue command through the core (`core.commands.handlers.run_command`) into a `LiveReply`,
under the core's `guarded`: the one place where errors become replies (user-facing errors as written by the
core, anything else logged with a traceback and replaced by a short generic message naming the action's
request id, which is bound to every log line of that message or command).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Concatenate, ParamSpec

import aiohttp
import discord
import structlog
from discord import app_commands
from structlog.contextvars import bound_contextvars

from bot.discord_app import messages as discord_messages
from bot.discord_app.attachments import cdn_policy
from bot.discord_app.render import render_text, thread_name
from bot.discord_app.replies import DISCORD, ChannelReply, InteractionReply, LiveSeries, MessageSeries
from bot.discord_app.translate import (
    Addressed,
    Conversations,
    addressed_to_bot,
    for_other_people,
    from_a_person,
    guild_origin,
    interaction_origin,
    message_origin,
    to_attachment,
    upload_name,
)
from core.actions import Origin, ShowSnippet
from core.assistant import Assistant
from core.commands.catalogue import FLAG_ON, ArgKind, Command, Invocation, command
from core.commands.handlers import complete_spec, run_command
from core.commands.syntax import has_flag
from core.config import Settings
from core.live import working_sign
from core.replies import AnswerReply, guarded
from core.snippet_choice import parse_value

log = structlog.get_logger(__name__)
Logger = structlog.typing.FilteringBoundLogger

EDIT_INTERVAL_SECONDS = 1.5  # at most one edit of a streaming answer per this many seconds
PROGRESS_INTERVAL_SECONDS = 2.0  # how often a long indexing job's progress message is updated
TYPING_REFRESH_SECONDS = 8.0  # Discord shows "typing" for about 10 s per trigger
MAX_ATTACHMENTS_PER_MESSAGE = 3


P = ParamSpec("P")
Handler = Callable[Concatenate["DiscordHandlers", P], Coroutine[Any, Any, None]]


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
        self.cdn_policy = cdn_policy(settings.discord_api_url)
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
        in_bot_thread = await self._in_bot_thread(message, me)
        addressed = addressed_to_bot(message, me, self.conversations, in_bot_thread=in_bot_thread)
        if addressed is None or not (addressed.explicit or addressed.text):
            return  # not for us, or an unmentioned attachment-only post in a thread we answered in
        origin = message_origin(message, addressed.root)
        if not addressed.explicit and for_other_people(message, me):
            # Worth seeing: the bot chose to stay out of a thread it is in ("@Dave can you try this?").
            _context(origin).info("thread_message_skipped", reason="mentions_others")
            return
        with bound_contextvars(request_id=origin.request_id):
            await self._answer_message(message, origin, addressed)

    async def _in_bot_thread(self, message: discord.Message, me: discord.abc.User) -> bool:
        """Whether a person wrote in a thread the bot replied in (the core knows, across instances)."""
        channel = message.channel
        if not isinstance(channel, discord.Thread) or channel.owner_id == me.id or not from_a_person(message, me):
            return False
        return await self.assistant.knows_thread(message_origin(message, str(channel.id)))

    async def _answer_message(self, message: discord.Message, origin: Origin, addressed: Addressed) -> None:
        if not await self.assistant.claim_event(origin):
            return  # a re-delivery (e.g. after a RESUME) of a message we already handled
        bound = _context(origin).bind(follow_up=addressed.follow_up, thread=addressed.root)
        if addressed.thread_id is not None:  # later messages in this thread are follow-ups
            await self.assistant.note_thread(replace(origin, thread=str(addressed.thread_id)))
        uploading = bool(message.attachments) and addressed.explicit
        thread = None if uploading else await self._open_thread(message, addressed, bound)
        reply = self._channel_reply(message, addressed.root)
        typing = message.channel.typing
        if thread is not None:
            # The thread is the conversation from now on: its id is the channel and the thread of every turn.
            origin = replace(origin, channel=str(thread.id), thread=str(thread.id))
            bound = bound.bind(thread=origin.thread, opened_thread=True)
            reply = ChannelReply(message, lambda sent: self.conversations.remember_answer(sent, origin.thread),
                                 thread=thread)
            typing = thread.typing
            await self.assistant.note_thread(origin)
        async with working_sign(typing, every=TYPING_REFRESH_SECONDS, transport=DISCORD, logger=bound):
            if uploading:
                await self._upload_attached(message, origin, addressed, bound)
            else:
                ask = Invocation(command("ask"), origin, {"question": addressed.text})
                await self._run(reply, ask, bound)

    async def _open_thread(
        self, message: discord.Message, addressed: Addressed, bound: Logger
    ) -> discord.Thread | None:
        """A thread on a new question in a server's text channel, where the bot may open one and talk in it.

        Not for a follow-up (it stays where the conversation is), a DM, a message already in a thread, or an empty
        mention. Without the permission, or when Discord refuses (a 403 from a channel override, the message
        already has a thread), the answer goes in the channel as a reply: the question is answered either way.
        """
        channel = message.channel
        if addressed.follow_up or not addressed.text or message.guild is None or not isinstance(
            channel, discord.TextChannel
        ):
            return None
        allowed = channel.permissions_for(message.guild.me)
        if not (allowed.create_public_threads and allowed.send_messages_in_threads):
            bound.debug("discord_thread_not_permitted")
            return None
        try:
            thread = await message.create_thread(name=thread_name(addressed.text))
        except discord.HTTPException as exc:
            bound.warning("discord_thread_failed", status=exc.status, code=exc.code)
            return None
        bound.info("discord_thread_opened", thread_id=thread.id)
        return thread

    async def on_guild_remove(self, guild_id: int) -> None:
        """The bot was removed from a server (kicked, or the server deleted): delete everything stored for it."""
        await self.assistant.forget_workspace(guild_origin(guild_id), "guild_remove")

    def _channel_reply(self, message: discord.Message, root: str) -> ChannelReply:
        return ChannelReply(message, lambda sent_id: self.conversations.remember_answer(sent_id, root))

    async def _upload_attached(self, message: discord.Message, origin: Origin, addressed: Addressed,
                               bound: Logger) -> None:
        files = message.attachments[:MAX_ATTACHMENTS_PER_MESSAGE]
        name = upload_name(addressed.text) if len(files) == 1 else None
        private = FLAG_ON if has_flag(addressed.text, "private") else None
        for file in files:
            attachment = to_attachment(file, self.session, self.cdn_policy)
            upload = Invocation(command("upload"), origin, {"file": attachment, "name": name, "private": private})
            await self._run(self._channel_reply(message, addressed.root), upload, bound)
        if len(message.attachments) > len(files):
            bound.info("too_many_attachments", attachments=len(message.attachments))
            reply = self._channel_reply(message, addressed.root)
            notice = discord_messages.too_many_attachments(len(files), len(message.attachments))
            await guarded(reply.show(render_text(notice)), reply.fail, ref=origin.request_id, logger=bound,
                          transport=DISCORD)

    async def _run(self, reply: MessageSeries, invocation: Invocation, bound: Logger) -> None:
        """Run one command into `reply`, guarded; an upload shows its progress while it takes."""
        file = next((invocation.attachment(a.name) for a in invocation.command.arguments if a.kind is ArgKind.FILE),
                    None)
        if file is None:
            live = LiveSeries(reply, interval=self.edit_interval, logger=bound)
        else:
            placeholder = discord_messages.indexing_started(file.filename)
            live = LiveSeries(reply, interval=self.progress_interval, logger=bound, placeholder=placeholder)

        async def action() -> None:
            async with live:
                await run_command(self.assistant, invocation, live)

        await guarded(action(), live.fail, ref=invocation.origin.request_id, logger=bound, transport=DISCORD)

    # ---- slash commands ----------------------------------------------------------------------------

    @in_flight("discord_command")
    async def run_slash(self, interaction: discord.Interaction, command: Command, options: dict[str, Any]) -> None:
        """`/api <command>`: claim and defer the interaction, then run the command (privately if the catalogue says).

        A re-delivered interaction is dropped.
        """
        origin = interaction_origin(interaction)
        with bound_contextvars(request_id=origin.request_id):
            if not await self.assistant.claim_event(origin):
                return
            await interaction.response.defer(thinking=True, ephemeral=command.private)
            arguments = {
                name: to_attachment(value, self.session, self.cdn_policy) if isinstance(value, discord.Attachment)
                else FLAG_ON if value is True
                else value or None
                for name, value in options.items()
            }
            reply = InteractionReply(interaction, ephemeral=command.private)
            await self._run(reply, Invocation(command, origin, arguments), _context(origin).bind(command=command.name))

    # ---- buttons under answers ---------------------------------------------------------------------

    @in_flight("discord_feedback")
    async def on_feedback(self, interaction: discord.Interaction, answer_id: str, helpful: bool) -> None:
        """👍/👎 on an answer: recorded like every platform's (`Assistant.record_feedback`), confirmed privately."""
        origin = interaction_origin(interaction)
        with bound_contextvars(request_id=origin.request_id):
            bound = _context(origin).bind(answer_id=answer_id)
            reply = InteractionReply(interaction, ephemeral=True)

            async def vote() -> None:
                await interaction.response.defer(ephemeral=True, thinking=True)
                first = await self.assistant.record_feedback(origin, answer_id, helpful)
                thanks = discord_messages.feedback_thanks if first else discord_messages.feedback_already
                await reply.show(render_text(thanks(helpful)))

            await guarded(vote(), reply.fail, ref=origin.request_id, logger=bound, transport=DISCORD)

    @in_flight("discord_snippet")
    async def on_show_snippet(self, interaction: discord.Interaction, value: str) -> None:
        """A language chosen under an answer: that answer's snippet in it, shown only to the person who asked.

        Everything needed is in `value` (`core.snippet_choice`), so it works for answers sent before a restart.
        """
        origin = interaction_origin(interaction)
        choice = parse_value(value)
        if choice is None:
            _context(origin).warning("discord_snippet_invalid")
            return
        with bound_contextvars(request_id=origin.request_id):
            if not await self.assistant.claim_event(origin):
                return
            bound = _context(origin).bind(spec=choice.spec, language=choice.language)
            reply = InteractionReply(interaction, ephemeral=True)
            live = LiveSeries(reply, interval=self.edit_interval, logger=bound)

            async def show() -> None:
                await interaction.response.defer(ephemeral=True, thinking=True)
                async with live:
                    request = ShowSnippet(origin, choice.spec, choice.ref, choice.language)
                    await live.final(AnswerReply(await self.assistant.snippet(request), ""))

            await guarded(show(), live.fail, ref=origin.request_id, logger=bound, transport=DISCORD)

    async def spec_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete for spec names in this workspace."""
        origin = interaction_origin(interaction)
        try:
            names = await complete_spec(self.assistant, origin, current)
        except Exception:
            _context(origin).exception("autocomplete_failed")
            return []
        return [app_commands.Choice(name=n, value=n) for n in names]
