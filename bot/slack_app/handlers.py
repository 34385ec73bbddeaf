"""What the bot does with each Slack event, command and button click.

Listeners classify the payload (`translate`), call the core, and hand `render`ed messages to a reply
channel: a thread (or DM) message that is posted once and then edited in place, or a slash command's
`response_url`. `guarded` is the one place where errors become replies. Each event, command or click is one
action: its request id is bound to every log line it causes and shown in the generic error reply.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from structlog.contextvars import bound_contextvars

from bot.slack_app import messages as slack_messages
from bot.slack_app.files import SlackFileAttachment, allowed_file_origins
from bot.slack_app.render import (
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    WORKING_EMOJI,
    SlackMessage,
    ingest_summary,
    render_answer,
    render_markdown,
    render_partial,
    render_specs,
    render_status,
)
from bot.slack_app.translate import (
    PLATFORM,
    Incoming,
    Kind,
    SlackFile,
    SlashCommand,
    ThreadTracker,
    action_origin,
    classify_mention,
    classify_message,
    file_from_payload,
    parse_command,
    team_of,
)
from bot.slack_app.users import UserDirectory
from core import messages
from core.answers import Answer, FinalAnswer, StatusUpdate, TextDelta
from core.config import Settings
from core.errors import UserFacingError
from core.parsing.loader import check_upload
from core.requests import AskQuestion, ForgetSpec, ListSpecs, Origin, PurgeWorkspace, UploadSpec
from core.service import Assistant, IngestProgress

log = structlog.get_logger(__name__)

ANSWER_UPDATE_INTERVAL = 1.0  # seconds between edits of an answer being written
INGEST_UPDATE_INTERVAL = 2.0  # seconds between edits of an indexing progress message
MAX_SLASH_RESPONSES = 5  # Slack accepts five messages per response_url
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long"})
_ANSWER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def slack_error(exc: SlackApiError) -> str:
    """The `error` code of a failed Slack API call (`http_502` etc. when the body was not JSON)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http_{getattr(exc.response, 'status_code', 'unknown')}"


class Reply(Protocol):
    """Where the result of one user action goes."""

    async def send(self, messages: Sequence[SlackMessage]) -> None:
        """Deliver the final messages (an answer, a confirmation or an error)."""
        ...


async def guarded(reply: Reply, action: Awaitable[None], *, ref: str, **context: Any) -> None:
    """Run one user action, turning any error into the reply the user sees: the one place that does.

    `UserFacingError`s show their message; anything else is logged with its traceback and the user gets
    the generic `core.messages.unexpected_error(ref)` (`ref`: the action's request id), never exception
    text. If even that reply fails (Slack down, `not_in_channel`), it is logged and dropped: nothing here
    ever raises.
    """
    try:
        await action
        return
    except UserFacingError as exc:
        log.info("user_error", error=type(exc).__name__, **context)
        text = exc.user_message
    except SlackApiError as exc:
        log.warning("slack_api_error", error=slack_error(exc), **context)
        text = messages.unexpected_error(ref)
    except Exception:
        log.exception("unexpected_error", **context)
        text = messages.unexpected_error(ref)
    try:
        await reply.send([render_markdown(text)])
    except SlackApiError as exc:
        log.warning("slack_reply_failed", error=slack_error(exc), **context)
    except Exception:
        log.exception("slack_reply_failed", **context)


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


class ThreadReply:
    """Replies in a thread (or at the top level of a DM): one live message, extra messages for long answers."""

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, threads: ThreadTracker, interval: float
    ) -> None:
        self.poster = Poster(client, channel, thread_ts)
        self.live = LiveMessage(self.poster, interval)
        self.threads = threads

    async def status(self, text: str) -> None:
        """Show a progress line."""
        await self.live.show(render_status(text))

    def status_soon(self, text: str) -> None:
        """Schedule a progress line (from synchronous code running on the event loop)."""
        self.live.request(render_status(text))

    async def partial(self, markdown: str) -> None:
        """Show the text written so far."""
        await self.live.show(render_partial(markdown))

    async def send(self, messages: Sequence[SlackMessage]) -> None:
        """Replace the live message with the first message and post the rest below it."""
        if self.poster.thread_ts:
            self.threads.add(self.poster.channel, self.poster.thread_ts)
        if self.live.finished:  # e.g. an error after the answer was shown: never overwrite the answer
            rest = list(messages)
        else:
            first, *rest = messages
            await self.live.finish(first)
        for message in rest:
            await self.poster.post(message)


class SlashReply:
    """Replies to a slash command through its `response_url`, visible only to the person who typed it."""

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


class ProgressRelay:
    """Turns the core's synchronous ingest progress callbacks into throttled Slack edits, from any thread."""

    def __init__(self, reply: ThreadReply) -> None:
        self.reply = reply
        self.loop = asyncio.get_running_loop()

    def __call__(self, progress: IngestProgress) -> None:
        """Called by the core (maybe from a worker thread)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.reply.status_soon(progress.message)
        else:
            self.loop.call_soon_threadsafe(self.reply.status_soon, progress.message)


class SlackBot:
    """The Slack listeners, sharing one `Assistant`."""

    def __init__(
        self,
        assistant: Assistant,
        settings: Settings,
        *,
        answer_interval: float = ANSWER_UPDATE_INTERVAL,
        ingest_interval: float = INGEST_UPDATE_INTERVAL,
    ) -> None:
        self.assistant = assistant
        self.settings = settings
        self.threads = ThreadTracker()
        self.answer_interval = answer_interval
        self.ingest_interval = ingest_interval
        self.file_origins = allowed_file_origins(settings.slack_api_url)
        self._votes: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.users = UserDirectory()

    def register(self, app: AsyncApp) -> None:
        """Attach the listeners to a Bolt app."""
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
            incoming = classify_message(body, context.bot_user_id, self.threads)
            if incoming.reason == "not_addressed" and await self._answered_elsewhere(body):
                incoming = classify_message(body, context.bot_user_id, self.threads)
            await self._dispatch(incoming, client, context, request)

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
        origin = Origin(platform=PLATFORM, workspace=team, event_id=str(body.get("event_id") or ""))
        # Essential: Slack never sends an uninstall again, so it is purged even while shutting down.
        with bound_contextvars(request_id=origin.request_id):
            async with self.assistant.work.running("slack_purge", essential=True):
                try:
                    if await self.assistant.claim_event(origin):
                        await self.assistant.purge_workspace(PurgeWorkspace(origin, reason))
                except Exception:
                    log.exception("slack_purge_failed", workspace=team, reason=reason)

    async def _answered_elsewhere(self, body: dict[str, Any]) -> bool:
        """A thread another instance (or this one before a restart) answered in counts as the bot's thread."""
        event = body.get("event") or {}
        channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
        if not thread_ts:
            return False
        origin = Origin(platform=PLATFORM, workspace=team_of(body), channel=channel, thread=thread_ts)
        if not await self.assistant.knows_thread(origin):
            return False
        self.threads.add(channel, thread_ts)
        return True

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
            log.debug("slack_event_ignored", reason=incoming.reason, **fields)
            return
        retry_values = request.headers.get("x-slack-retry-num") or ()
        retry = retry_values[0] if retry_values else None
        try:
            first_delivery = await self.assistant.claim_event(origin)
        except Exception:
            log.exception("claim_event_failed", **fields)
            first_delivery = True
        if not first_delivery:
            log.info("slack_event_duplicate", retry_num=retry, **fields)
            return
        log.info("slack_event", kind=incoming.kind.value, retry_num=retry, addressed=incoming.addressed, **fields)
        if incoming.kind is Kind.QUESTION:
            await self._answer(incoming, client, fields)
        else:
            token = context.bot_token or client.token or ""
            for slack_file in incoming.files:
                reply = ThreadReply(client, origin.channel, incoming.reply_thread, self.threads, self.ingest_interval)
                await guarded(reply, self._ingest(incoming, slack_file, client, token, reply),
                              ref=origin.request_id, file_id=slack_file.id, **fields)

    async def _answer(self, incoming: Incoming, client: AsyncWebClient, fields: dict[str, Any]) -> None:
        channel = incoming.origin.channel
        reply = ThreadReply(client, channel, incoming.reply_thread, self.threads, self.answer_interval)
        reacted = await self._reaction(client, "add", channel, incoming.message_ts)
        try:
            await guarded(reply, self._stream_answer(incoming, reply), ref=incoming.origin.request_id, **fields)
        finally:
            if reacted:
                await self._reaction(client, "remove", channel, incoming.message_ts)

    async def _stream_answer(self, incoming: Incoming, reply: ThreadReply) -> None:
        await reply.status(slack_messages.WORKING)
        text = ""
        async for event in self.assistant.stream_answer(AskQuestion(incoming.origin, incoming.question)):
            if isinstance(event, StatusUpdate):
                await reply.status(event.text)
            elif isinstance(event, TextDelta):
                text += event.text
                await reply.partial(text)
            elif isinstance(event, FinalAnswer):
                await reply.send(render_answer(event.answer))
                return
        raise RuntimeError("the answer stream ended without a final answer")

    async def _reaction(self, client: AsyncWebClient, verb: str, channel: str, ts: str) -> bool:
        """Add or remove the working emoji on the user's message; failures only log."""
        if not ts:
            return False
        method = client.reactions_add if verb == "add" else client.reactions_remove
        try:
            await method(channel=channel, timestamp=ts, name=WORKING_EMOJI)
            return True
        except SlackApiError as exc:
            log.info("slack_reaction_failed", verb=verb, error=slack_error(exc), channel=channel)
        except Exception:
            log.warning("slack_reaction_failed", verb=verb, channel=channel, exc_info=True)
        return False

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
        await reply.status(slack_messages.indexing(slack_file.name))
        origin = await self.users.identify(client, incoming.origin)
        report = await self.assistant.ingest(UploadSpec(origin, attachment), ProgressRelay(reply))
        await reply.send([render_markdown(ingest_summary(report))])

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
        """`/api ask|specs|forget|help`: acknowledge at once, then answer through `response_url`."""
        await ack()
        async with self.assistant.work.running("slack_command") as admitted:
            if not admitted:
                return
            command = parse_command(body)
            origin = command.origin
            with bound_contextvars(request_id=origin.request_id):
                log.info("slack_command", subcommand=command.name, workspace=origin.workspace,
                         channel=origin.channel, user=origin.user)
                reply = SlashReply(respond)
                await guarded(reply, self._run_command(command, reply, client), ref=origin.request_id,
                              subcommand=command.name, workspace=origin.workspace, user=origin.user)

    async def _run_command(self, command: SlashCommand, reply: SlashReply, client: AsyncWebClient) -> None:
        origin = command.origin
        if command.name == "help":
            await reply.send([render_markdown(slack_messages.HELP)])
        elif command.name == "specs":
            records = await self.assistant.list_specs(ListSpecs(origin))
            await reply.send([render_specs(records, self.assistant.stale_specs(origin.scope))])
        elif command.name == "forget":
            if not command.argument:
                await reply.send([render_markdown(slack_messages.forget_usage())])
                return
            origin = await self.users.identify(client, origin)
            record = await self.assistant.forget(ForgetSpec(origin, command.argument))
            await reply.send([render_markdown(slack_messages.forgot(record.name))])
        else:
            answer = await self._final_answer(AskQuestion(origin, command.argument))
            await reply.send(render_answer(answer, echo=command.argument))

    async def _final_answer(self, request: AskQuestion) -> Answer:
        async for event in self.assistant.stream_answer(request):
            if isinstance(event, FinalAnswer):
                return event.answer
        raise RuntimeError("the answer stream ended without a final answer")

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
                    await guarded(reply, self._feedback(origin, answer_id, helpful, reply), ref=origin.request_id,
                                  answer_id=answer_id, workspace=origin.workspace, user=origin.user)

    async def _feedback(self, origin: Origin, answer_id: str, helpful: bool, reply: ActionReply) -> None:
        key = (origin.workspace, origin.user, answer_id)
        if key in self._votes:
            await reply.send([render_markdown(slack_messages.feedback_already(helpful))])
            return
        self._votes[key] = None
        while len(self._votes) > 10_000:
            self._votes.popitem(last=False)
        await self.assistant.record_feedback(origin, answer_id, helpful)
        await reply.send([render_markdown(slack_messages.feedback_thanks(helpful))])

    async def on_error(self, error: Exception) -> None:
        """Errors that escaped a listener (a bug: `guarded` should have caught them)."""
        log.error("slack_listener_error", error=type(error).__name__, exc_info=error)


class ActionReply:
    """Ephemeral replies to a button click: through `response_url`, else `chat.postEphemeral`."""

    def __init__(self, respond: AsyncRespond, client: AsyncWebClient, origin: Origin) -> None:
        self.respond = respond
        self.client = client
        self.origin = origin

    async def send(self, messages: Sequence[SlackMessage]) -> None:
        """Send the messages to the clicker only."""
        for message in messages:
            if self.respond.response_url:
                response = await self.respond(response_type="ephemeral", replace_original=False,
                                              **message.as_kwargs())
                if response.status_code != 200:
                    log.warning("slack_respond_failed", status=response.status_code)
            elif self.origin.channel and self.origin.user:
                await self.client.chat_postEphemeral(channel=self.origin.channel, user=self.origin.user,
                                                     **message.as_kwargs())
