"""What the bot does with each Slack event, command and button click.

Listeners classify the payload (`translate`), run the catalogue's command through the core
(`core.commands.handlers.run_command`), and let a reply transport (`replies`) deliver the core's reply: an
answer streamed into its thread, a thread (or DM) message posted once and then edited in place, or a slash
command's `response_url`. The core's `guarded` is the one place where errors become replies. Each event,
command or click is one action: its request id is bound to every log line it causes and shown in the generic
error reply.

The assistant panel (Slack's split view for AI apps) goes through Bolt's `AsyncAssistant` middleware: a new
thread gets suggested prompts built from the workspace's specs (`panel`), a question there is answered as a DM
is, and the thread is titled after its first question.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncAssistant, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient
from structlog.contextvars import bound_contextvars

from bot.slack_app import messages as slack_messages
from bot.slack_app.files import SlackFileAttachment, allowed_file_origins
from bot.slack_app.panel import suggested_prompts, thread_title
from bot.slack_app.render import FEEDBACK_DOWN, FEEDBACK_UP, WORKING_EMOJI
from bot.slack_app.replies import SLACK, ActionReply, SlashReply, StreamingReply, StreamSupport, ThreadReply
from bot.slack_app.translate import (
    FOR_OTHERS,
    PLATFORM,
    Incoming,
    Kind,
    SlackFile,
    action_origin,
    classify_mention,
    classify_message,
    command_origin,
    file_from_payload,
    parse_command,
    team_of,
)
from bot.slack_app.users import UserDirectory
from core.actions import ListSpecs, Origin
from core.assistant import Assistant
from core.commands.catalogue import Access, Invocation, command
from core.commands.handlers import run_command
from core.config import Settings
from core.errors import UserFacingError
from core.live import working_sign
from core.parsing.loader import check_upload
from core.replies import guarded

log = structlog.get_logger(__name__)
Logger = structlog.typing.FilteringBoundLogger

ANSWER_UPDATE_INTERVAL = 1.0  # seconds between edits of an answer being written
QUICK_REPLY_SECONDS = 0.5  # an answer ready by then is simply posted: no "Working on it…", no status
INGEST_UPDATE_INTERVAL = 2.0  # seconds between edits of an indexing progress message
_ANSWER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SlackBot:
    """The Slack listeners, sharing one `Assistant`."""

    def __init__(
        self,
        assistant: Assistant,
        settings: Settings,
        *,
        answer_interval: float = ANSWER_UPDATE_INTERVAL,
        ingest_interval: float = INGEST_UPDATE_INTERVAL,
        streaming: bool = True,
        quick_reply: float = QUICK_REPLY_SECONDS,
    ) -> None:
        """`streaming` False: never stream natively (post and edit); `quick_reply`: see `QUICK_REPLY_SECONDS`."""
        self.assistant = assistant
        self.settings = settings
        self.answer_interval = answer_interval
        self.ingest_interval = ingest_interval
        self.quick_reply = quick_reply
        self.stream_support = StreamSupport(enabled=streaming)
        self.file_origins = allowed_file_origins(settings.slack_api_url)
        self.users = UserDirectory()

    def register(self, app: AsyncApp) -> None:
        """Attach the listeners to a Bolt app (the assistant panel's middleware first: it claims its threads)."""
        panel = AsyncAssistant()
        panel.thread_started(self.on_panel_opened)
        panel.thread_context_changed(self.on_panel_context_changed)
        panel.user_message(self.on_panel_message)
        app.use(panel)
        app.event("app_mention")(self.on_app_mention)
        app.event("message")(self.on_message)
        app.command("/api")(self.on_command)
        app.action(FEEDBACK_UP)(self.on_feedback)
        app.action(FEEDBACK_DOWN)(self.on_feedback)
        app.event("app_uninstalled")(self.on_app_uninstalled)
        app.event("tokens_revoked")(self.on_tokens_revoked)
        app.error(self.on_error)

    # ---- events ------------------------------------------------------------------------------------

    async def on_app_mention(
        self, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        """`@bot question` in a channel: answer in the thread."""
        async with self.assistant.work.running("slack_event") as admitted:
            if admitted:
                await self._dispatch(classify_mention(body, context.bot_user_id), client, context, request)

    async def on_message(
        self, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        """DMs, uploads, and follow-ups in threads the bot is part of."""
        async with self.assistant.work.running("slack_event") as admitted:
            if not admitted:
                return
            incoming = classify_message(body, context.bot_user_id)
            if incoming.reason == "not_addressed" and await self._in_bot_thread(body):
                incoming = classify_message(body, context.bot_user_id, in_bot_thread=True)
            await self._dispatch(incoming, client, context, request)

    # ---- the assistant panel ---------------------------------------------------------------------

    async def on_panel_opened(self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        """Someone opened an assistant thread: offer questions about the workspace's specs."""
        thread = event.get("assistant_thread") or {}
        channel, thread_ts = str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or "")
        origin = Origin(PLATFORM, team_of(body), channel=channel, user=str(thread.get("user_id") or ""),
                        thread=thread_ts, event_id=str(body.get("event_id") or ""))
        with bound_contextvars(request_id=origin.request_id):
            bound = log.bind(workspace=origin.workspace, channel=channel, user=origin.user)
            try:
                records = await self.assistant.list_specs(ListSpecs(origin))
                await client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel, thread_ts=thread_ts, title=slack_messages.PROMPTS_TITLE,
                    prompts=suggested_prompts(records),
                )
            except Exception as exc:  # the thread works without prompts: nobody to tell
                bound.warning("slack_panel_prompts_failed", **_error_fields(exc))
                return
            bound.info("slack_panel_opened", specs=len(records))

    async def on_panel_context_changed(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The person moved to another channel with the panel open: specs belong to the workspace, nothing changes.

        Handled so Bolt does not store the context in the thread's first message (two Web API calls each time).
        """
        thread = event.get("assistant_thread") or {}
        log.debug("slack_panel_context_changed", workspace=team_of(body), channel=thread.get("channel_id"))

    async def on_panel_message(
        self, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        """A message in an assistant thread (Bolt sends every DM thread here): answered as a DM is.

        The thread is titled after its first question (the first one the bot has not answered there yet).
        """
        async with self.assistant.work.running("slack_event") as admitted:
            if not admitted:
                return
            incoming = classify_message(body, context.bot_user_id)
            if incoming.kind is Kind.QUESTION and incoming.reply_thread:
                await self._title_thread(incoming, client)
            await self._dispatch(incoming, client, context, request)

    async def _title_thread(self, incoming: Incoming, client: AsyncWebClient) -> None:
        if await self.assistant.knows_thread(incoming.origin):
            return
        try:
            await client.assistant_threads_setTitle(channel_id=incoming.origin.channel,
                                                    thread_ts=incoming.reply_thread or "",
                                                    title=thread_title(incoming.question))
        except Exception as exc:  # an untitled thread is still a thread
            log.info("slack_panel_title_failed", channel=incoming.origin.channel, **_error_fields(exc))

    async def on_app_uninstalled(self, body: dict[str, Any]) -> None:
        """The app was removed from the workspace: delete everything it stored there."""
        await self._purge(body, "app_uninstalled")

    async def on_tokens_revoked(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """Tokens were revoked: when the bot's token is among them the workspace is gone for us, so purge it."""
        tokens = event.get("tokens") or {}
        if not tokens.get("bot"):
            log.info("slack_user_tokens_revoked", workspace=team_of(body))  # the bot still works there
            return
        await self._purge(body, "tokens_revoked")

    async def _purge(self, body: dict[str, Any], reason: str) -> None:
        team = team_of(body)
        if not team:
            log.warning("slack_purge_without_team", reason=reason)
            return
        await self.assistant.forget_workspace(Origin(PLATFORM, team, event_id=str(body.get("event_id") or "")), reason)

    async def _in_bot_thread(self, body: dict[str, Any]) -> bool:
        """Whether a thread message is in a thread the bot replied in (on any instance: the core knows)."""
        event = body.get("event") or {}
        thread_ts = str(event.get("thread_ts") or "")
        if not thread_ts:
            return False
        origin = Origin(platform=PLATFORM, workspace=team_of(body), channel=str(event.get("channel") or ""),
                        thread=thread_ts)
        return await self.assistant.knows_thread(origin)

    async def _dispatch(
        self, incoming: Incoming, client: AsyncWebClient, context: AsyncBoltContext, request: AsyncBoltRequest
    ) -> None:
        with bound_contextvars(request_id=incoming.origin.request_id):
            await self._handle(incoming, client, context, request)

    async def _handle(
        self, incoming: Incoming, client: AsyncWebClient, context: AsyncBoltContext, request: AsyncBoltRequest
    ) -> None:
        origin = incoming.origin
        fields = {"event_id": origin.event_id, "workspace": origin.workspace, "channel": origin.channel,
                  "user": origin.user}
        if incoming.kind is Kind.IGNORE:
            if incoming.reason == FOR_OTHERS:  # worth seeing: the bot chose to stay out of a thread it is in
                log.info("thread_message_skipped", platform=PLATFORM, reason=FOR_OTHERS, **fields)
            else:
                log.debug("slack_event_ignored", reason=incoming.reason, **fields)
            return
        retry_values = request.headers.get("x-slack-retry-num") or ()
        retry = retry_values[0] if retry_values else None
        if not await self.assistant.claim_event(origin) or not await self._claim_message(incoming):
            log.info("slack_event_duplicate", retry_num=retry, **fields)
            return
        log.info("slack_event", kind=incoming.kind.value, retry_num=retry, addressed=incoming.addressed, **fields)
        if incoming.kind is Kind.QUESTION:
            await self._answer(incoming, client, fields)
        else:
            token = context.bot_token or client.token or ""
            for slack_file in incoming.files:
                reply = self._thread_reply(client, incoming, self.ingest_interval)
                await guarded(self._ingest(incoming, slack_file, client, token, reply), reply.fail,
                              ref=origin.request_id, logger=log.bind(file_id=slack_file.id, **fields), transport=SLACK)

    async def _claim_message(self, incoming: Incoming) -> bool:
        """Whether this is the first event bringing this question's message (False: answered already).

        A group DM mention can come as a `message` and as an `app_mention`, with different event ids.
        """
        if incoming.kind is not Kind.QUESTION or not incoming.message_ts:
            return True
        origin = incoming.origin
        return await self.assistant.claim_event(
            replace(origin, event_id=f"message:{origin.channel}:{incoming.message_ts}"))

    def _thread_reply(
        self, client: AsyncWebClient, incoming: Incoming, interval: float, *, delay: float = 0.0
    ) -> ThreadReply:
        origin = incoming.origin
        in_thread = Origin(platform=PLATFORM, workspace=origin.workspace, channel=origin.channel,
                           thread=incoming.reply_thread or "")
        return ThreadReply(client, origin.channel, incoming.reply_thread, interval,
                           on_sent=lambda: self.assistant.note_thread(in_thread), delay=delay)

    def _answer_reply(self, client: AsyncWebClient, incoming: Incoming) -> ThreadReply:
        """Streamed in a thread while Slack streams; else posted (after `quick_reply`) and edited."""
        origin = incoming.origin
        if not (incoming.reply_thread and self.stream_support.usable):
            return self._thread_reply(client, incoming, self.answer_interval, delay=self.quick_reply)
        in_thread = Origin(platform=PLATFORM, workspace=origin.workspace, channel=origin.channel,
                           thread=incoming.reply_thread)
        return StreamingReply(client, origin.channel, incoming.reply_thread, self.answer_interval,
                              self.stream_support, user=origin.user, team=origin.workspace, delay=self.quick_reply,
                              on_sent=lambda: self.assistant.note_thread(in_thread))

    async def _answer(self, incoming: Incoming, client: AsyncWebClient, fields: dict[str, Any]) -> None:
        reply = self._answer_reply(client, incoming)
        where = {"channel": incoming.origin.channel, "timestamp": incoming.message_ts, "name": WORKING_EMOJI}
        working = working_sign(lambda: client.reactions_add(**where), lambda: client.reactions_remove(**where),
                               transport=SLACK, logger=log.bind(**fields))
        # A streamed reply shows its wait as the thread's status: no reaction to add and remove.
        signed = incoming.message_ts and not isinstance(reply, StreamingReply)
        async with working if signed else nullcontext():
            await guarded(self._ask(incoming, reply), reply.fail, ref=incoming.origin.request_id,
                          logger=log.bind(**fields), transport=SLACK)

    async def _ask(self, incoming: Incoming, reply: ThreadReply) -> None:
        async with reply:
            await reply.placeholder(slack_messages.WORKING)
            ask = Invocation(command("ask"), incoming.origin, {"question": incoming.question})
            await run_command(self.assistant, ask, reply)

    async def _ingest(
        self, incoming: Incoming, slack_file: SlackFile, client: AsyncWebClient, token: str, reply: ThreadReply
    ) -> None:
        if not slack_file.complete:
            slack_file = await self._file_info(client, slack_file)
        settings = self.settings
        check_upload(slack_file.name, slack_file.size, max_bytes=settings.max_file_bytes,
                     allowed_extensions=settings.allowed_extensions)
        attachment = SlackFileAttachment(slack_file.name, slack_file.size, slack_file.url, token,
                                         self.file_origins, slack_file.id)
        if not attachment.is_allowed():
            log.warning("slack_file_host_refused", file_id=slack_file.id)
            raise UserFacingError(slack_messages.download_not_allowed(slack_file.name))
        async with reply:
            await reply.placeholder(slack_messages.indexing(slack_file.name))
            origin = await self.users.identify(client, incoming.origin)
            await run_command(self.assistant, Invocation(command("upload"), origin, {"file": attachment}), reply)

    async def _file_info(self, client: AsyncWebClient, slack_file: SlackFile) -> SlackFile:
        if not slack_file.id:
            raise UserFacingError(slack_messages.file_details_missing())
        response = await client.files_info(file=slack_file.id)
        details = file_from_payload(response.get("file") or {})
        if not details.complete:
            raise UserFacingError(slack_messages.file_details_missing())
        return details

    # ---- slash command -----------------------------------------------------------------------------

    async def on_command(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """`/api …` (the catalogue's Slack commands): acknowledge at once, then answer through `response_url`."""
        await ack()
        async with self.assistant.work.running("slack_command") as admitted:
            if not admitted:
                return
            origin = command_origin(body)
            with bound_contextvars(request_id=origin.request_id):
                bound = log.bind(workspace=origin.workspace, user=origin.user)
                reply = SlashReply(respond, client, origin.user)
                await guarded(self._run_command(body, origin, reply, client, bound), reply.fail,
                              ref=origin.request_id, logger=bound, transport=SLACK)

    async def _run_command(
        self, body: dict[str, Any], origin: Origin, reply: SlashReply, client: AsyncWebClient, bound: Logger
    ) -> None:
        invocation = parse_command(body, origin)
        bound.info("slack_command", subcommand=invocation.command.name, channel=origin.channel)
        if invocation.command.access is Access.UPLOADER_OR_ADMIN:
            invocation = Invocation(invocation.command, await self.users.identify(client, origin),
                                    invocation.arguments)
        await run_command(self.assistant, invocation, reply)

    # ---- feedback buttons --------------------------------------------------------------------------

    async def on_feedback(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        """👍/👎 on an answer: record it and confirm to the clicker only."""
        await ack()
        origin = action_origin(body)
        answer_id = str(action.get("value") or "")
        helpful = action.get("action_id") == FEEDBACK_UP
        if not _ANSWER_ID.match(answer_id):
            log.warning("slack_feedback_invalid", workspace=origin.workspace, user=origin.user)
            return
        reply = ActionReply(respond, client, origin)
        async with self.assistant.work.running("slack_feedback") as admitted:
            if admitted:
                with bound_contextvars(request_id=origin.request_id):
                    bound = log.bind(answer_id=answer_id, workspace=origin.workspace, user=origin.user)
                    await guarded(self._feedback(origin, answer_id, helpful, reply), reply.text,
                                  ref=origin.request_id, logger=bound, transport=SLACK)

    async def _feedback(self, origin: Origin, answer_id: str, helpful: bool, reply: ActionReply) -> None:
        first = await self.assistant.record_feedback(origin, answer_id, helpful)
        await reply.text(slack_messages.feedback_thanks(helpful) if first else slack_messages.feedback_already(helpful))

    async def on_error(self, error: Exception) -> None:
        """Errors that escaped a listener (a bug: `guarded` should have caught them)."""
        log.error("slack_listener_error", error=type(error).__name__, exc_info=error)



def _error_fields(exc: Exception) -> dict[str, Any]:
    """Log fields of a failed Web API call: Slack's error code, else the exception's type (never its text)."""
    return SLACK.describe(exc) or {"error": type(exc).__name__}
