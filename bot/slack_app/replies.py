"""Sending replies to Slack: the transports behind every reply the handlers give.

- `ThreadReply`: a thread (or DM) message posted (after `delay`, so a quick reply is simply posted) and then
  edited in place (progress, the answer as it is written), with more messages below it for long answers. It is
  the core's `ReplySink` for events where Slack cannot stream (a DM's top level, a workspace without streaming).
- `StreamingReply`: in a thread, the answer is streamed as it is written with Slack's own streaming messages
  (`chat.startStream` / `chat.appendStream` / `chat.stopStream`) and the wait is shown as the thread's status
  (`assistant.threads.setStatus`), instead of a "Working on it…" message edited over and over. When the
  stream is finished it is edited into the answer in Block Kit (sources, snippet, 👍/👎), exactly as a
  `ThreadReply` would show it. Whether Slack streams is learnt from the first `chat.startStream` and remembered
  (`StreamSupport`): without it, replies post and edit as `ThreadReply` does.
- `SlashReply`: a slash command's `response_url`, visible only to the person who typed it.
- `ActionReply`: an ephemeral reply to a button click.

Link parsing is off and nothing unfurls; when Slack refuses a message's blocks it is sent again as text.

Slack's own failures (5xx, lost connections) are tried again by the client (`bot.slack_app.retries`), except
posts whose outcome is unknown: every message the bot posts or edits carries a reply id in its metadata, and
after such a failure `Poster` looks for that id in the thread before posting again, so a reply lands once. When
the "Working on it…" message cannot be edited into the answer, the answer is posted below it instead; when even
that fails, the placeholder is edited (best effort) into a short apology.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack_app import messages as slack_messages
from bot.slack_app import retries
from bot.slack_app.render import (
    MAX_MESSAGE_CHARS,
    SlackMessage,
    render_markdown,
    render_partial,
    render_status,
    slack_markup,
)
from core import messages
from core.actions import Origin
from core.diffs.report import ReportFile
from core.live import LiveMessage, LiveReply, ProgressLook
from core.mentions import ZERO_WIDTH_JOINER, MentionGuard
from core.replies import Delivery, Transport

log = structlog.get_logger(__name__)

MAX_SLASH_RESPONSES = 5  # Slack accepts five messages per response_url
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long"})


def slack_error(exc: SlackApiError) -> str:
    """The `error` code of a failed Slack API call (`http_502` etc. when the body was not JSON)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http_{getattr(exc.response, 'status_code', 'unknown')}"


class ReplyNotDelivered(Exception):
    """Slack took neither the reply nor a new message in its place (an apology was tried); nothing more to send."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _describe(exc: Exception) -> dict[str, Any] | None:
    if isinstance(exc, SlackApiError):
        return {"error": slack_error(exc)}
    if isinstance(exc, ReplyNotDelivered):
        return {"error": exc.error, "delivered": False}
    return None


def _fields(exc: Exception) -> dict[str, Any]:
    """Log fields naming a failed call's error (an API error's code, else the exception's type)."""
    return _describe(exc) or {"error": type(exc).__name__}


def _is_undelivered(exc: Exception) -> bool:
    return isinstance(exc, ReplyNotDelivered)


SLACK = Transport("slack", describe=_describe, mute=_is_undelivered)
"""Slack's API errors for `core.replies.guarded`: logged as `slack_api_error` / `slack_reply_failed`; after a
`ReplyNotDelivered` no error reply is tried (it would fail the same way)."""
REPLY_EVENT_TYPE = "api_assistant_reply"  # the metadata every posted or edited message carries
LOOKUP_PAGES = 5  # a thread is searched this many pages deep (200 replies each) for a message's reply id
THREAD_MARKUP = slack_markup()
SLASH_MARKUP = slack_markup(echo=True)
THREAD_LOOK = ProgressLook(partial=render_partial, progress=render_status, status=render_status)
MAX_STREAM_CHUNK_CHARS = 12_000  # Slack: markdown_text of one chat.startStream / appendStream
MAX_STREAMED_CHARS = MAX_MESSAGE_CHARS  # one streamed message shows at most this much; the answer has the rest
STREAM_INTERVAL = 0.5  # seconds between appends to a stream: at most two a second
STATUS_INTERVAL = 1.0  # seconds between status changes
# Slack's answers to chat.startStream meaning it cannot stream here at all: remembered, never asked again.
STREAMING_UNAVAILABLE = frozenset({
    "unknown_method", "not_allowed", "not_allowed_token_type", "missing_scope", "feature_not_enabled",
    "method_deprecated", "not_enabled",
})


async def respond_privately(respond: AsyncRespond, message: SlackMessage) -> None:
    """Send a message through `response_url`, visible only to the person who acted; a refusal is logged."""
    response = await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
    if response.status_code != 200:
        log.warning("slack_respond_failed", status=response.status_code, error=str(response.body)[:100])


async def upload_file(
    client: AsyncWebClient, report: ReportFile, *, channel: str = "", thread_ts: str | None = None, user: str = ""
) -> None:
    """Share a file in `channel` (in the thread `thread_ts`), or in the app's DM with `user`, with a caption."""
    target: dict[str, Any] = {"channel": channel, "thread_ts": thread_ts} if channel else {"channels": [user]}
    await client.files_upload_v2(
        content=report.content, filename=report.filename, title=report.filename,
        initial_comment=report.caption or messages.report_caption(), **target,
    )


def _reply_metadata(reply_id: str) -> dict[str, Any]:
    return {"event_type": REPLY_EVENT_TYPE, "event_payload": {"reply_id": reply_id}}


def _reply_id(message: dict[str, Any]) -> str:
    metadata = message.get("metadata") or {}
    if not isinstance(metadata, dict) or metadata.get("event_type") != REPLY_EVENT_TYPE:
        return ""
    payload = metadata.get("event_payload") or {}
    return str(payload.get("reply_id") or "") if isinstance(payload, dict) else ""


class Poster:
    """Posts and edits messages in one channel (and thread), with link parsing off and no unfurls.

    Each post or edit carries a new reply id in its metadata (`last_reply_id`), so that after a failure whose
    outcome is unknown `find` can tell whether it landed.
    """

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.ts: str | None = None  # the live message, once posted
        self.last_reply_id = ""  # the reply id of the latest post or edit

    async def write(self, message: SlackMessage) -> None:
        """Post the live message the first time, then edit it."""
        if self.ts is None:
            self.ts = await self.post(message)
        else:
            await self.update(self.ts, message)

    async def post(self, message: SlackMessage) -> str:
        """Post a message once; returns its ts.

        After a failure that may have posted it (`retries.may_have_happened`) it waits, looks for it in the
        thread, and posts again only if it is not there, until `retries.RETRY_SECONDS` have passed. If the
        thread cannot be read it gives up (raises) rather than risk posting twice.

        The risk that remains, accepted: a post that Slack stored but does not show in the thread yet when it is
        looked for (after a wait of `retries.backoff`) is posted a second time. Slack documents no idempotency
        key for `chat.postMessage`, so nothing closes that window; without the lookup every uncertain failure
        would risk it, and without retrying every such failure would lose the reply.
        """
        reply_id = self.last_reply_id = uuid.uuid4().hex
        extra: dict[str, Any] = {"thread_ts": self.thread_ts} if self.thread_ts else {}
        give_up_at = time.monotonic() + retries.RETRY_SECONDS
        attempt = 0
        while True:
            try:
                response = await self._call(
                    self.client.chat_postMessage, message, channel=self.channel, unfurl_links=False,
                    unfurl_media=False, link_names=False, metadata=_reply_metadata(reply_id), **extra,
                )
                return str(response["ts"])
            except Exception as exc:
                delay = retries.backoff(attempt)
                if not retries.may_have_happened(exc) or time.monotonic() + delay > give_up_at:
                    raise
                attempt += 1
                log.warning("slack_post_uncertain", attempt=attempt, channel=self.channel, **_fields(exc))
                await asyncio.sleep(delay)
                try:
                    found = await self.find(reply_id)
                except Exception as lookup_failure:
                    log.warning("slack_post_lookup_failed", channel=self.channel, **_fields(lookup_failure))
                    raise exc from lookup_failure  # not knowing whether it landed, never post it again
                if found is not None:
                    log.info("slack_post_landed_after_all", attempt=attempt, channel=self.channel)
                    return found

    async def update(self, ts: str, message: SlackMessage) -> None:
        """Replace a message the bot posted (Slack's client tries it again after server errors: editing is safe)."""
        reply_id = self.last_reply_id = uuid.uuid4().hex
        await self._call(self.client.chat_update, message, channel=self.channel, ts=ts, link_names=False,
                         metadata=_reply_metadata(reply_id))

    async def find(self, reply_id: str) -> str | None:
        """The ts of the message that carries `reply_id` (as posted or last edited), None if Slack shows none.

        A thread is read oldest first, up to `LOOKUP_PAGES` pages; a channel's history (a DM's top level)
        newest first, one page. Failures to read raise.
        """
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            if self.thread_ts:
                response = await self.client.conversations_replies(
                    channel=self.channel, ts=self.thread_ts, include_all_metadata=True, limit=200, cursor=cursor
                )
            else:
                response = await self.client.conversations_history(
                    channel=self.channel, include_all_metadata=True, limit=100
                )
            for message in response.get("messages") or []:
                if isinstance(message, dict) and _reply_id(message) == reply_id:
                    return str(message.get("ts"))
            cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "") or None
            if cursor is None or not self.thread_ts:
                return None
        return None

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


class ThreadReply(LiveReply[SlackMessage, list[SlackMessage]]):
    """Replies in a thread (or at the top level of a DM): one live message, extra messages for long answers.

    Nothing is posted before `delay` seconds have passed, so work done by then shows only its reply. `on_sent`
    is called after each reply delivered in a thread (the bot then takes part in it).
    """

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, interval: float,
        on_sent: Callable[[], Awaitable[None]] | None = None, *, delay: float = 0.0,
    ) -> None:
        self.poster = Poster(client, channel, thread_ts)
        live = LiveMessage(self.poster.write, interval, delay=delay, transport=SLACK)
        super().__init__(live, THREAD_LOOK, THREAD_MARKUP)
        self.on_sent = on_sent

    async def placeholder(self, text: str) -> None:
        """Show the "working on it" status (after the reply's `delay`, in the background, if it has one).

        If Slack fails to take a status posted at once (5xx, lost connection), it carries on without it: the reply
        is then posted as a new message when it is ready. Other errors (`not_in_channel`, ...) raise, as the reply
        would fail the same way.
        """
        try:
            await self.status(text)
        except Exception as exc:
            if not retries.transient(exc):
                raise
            log.warning("slack_placeholder_failed", channel=self.poster.channel, **_fields(exc))

    async def deliver(self, rendered: list[SlackMessage]) -> None:
        """Replace the live message with the first message and post the rest below it.

        If the live message cannot be edited, the first message is posted below it instead (`ReplyNotDelivered`
        when that fails too).
        """
        if self.poster.thread_ts and self.on_sent is not None:
            await self.on_sent()
        rest = list(rendered)
        if not self.live.done:  # else (an error after the answer was shown): never overwrite the answer
            first = rest.pop(0)
            try:
                await self.live.finish(first)
            except Exception as exc:
                if self.poster.ts is None:
                    raise  # nothing is shown yet: the post itself failed, after its own retries
                await self._post_instead(first, exc)
        for message in rest:
            await self.poster.post(message)

    async def attach(self, report: ReportFile) -> bool:
        """Upload a reply's file into its thread (or DM) with `files_upload_v2`.

        That is `files.getUploadURLExternal`, the bytes POSTed to the URL it returns, then
        `files.completeUploadExternal` (a posting method: never tried again after an unknown outcome,
        `bot.slack_app.retries`).
        """
        await upload_file(self.poster.client, report, channel=self.poster.channel, thread_ts=self.poster.thread_ts)
        return True

    async def add(self, rendered: list[SlackMessage]) -> None:
        """Post messages below the delivered reply."""
        for message in rendered:
            await self.poster.post(message)

    async def _post_instead(self, message: SlackMessage, failure: Exception) -> None:
        """The live message (`poster.ts`) could not be edited into `message`: post `message` below it."""
        placeholder = self.poster.ts
        assert placeholder is not None
        fields = {"channel": self.poster.channel, **_fields(failure)}
        if retries.may_have_happened(failure):
            try:
                landed = await self.poster.find(self.poster.last_reply_id) is not None
            except Exception as exc:
                # Unknowable: posting could show the answer twice, an apology could overwrite it.
                log.warning("slack_reply_unknown", lookup_error=_fields(exc)["error"], **fields)
                raise ReplyNotDelivered(fields["error"]) from failure
            if landed:
                log.info("slack_update_landed_after_all", **fields)
                self.live.done = True
                return
        log.warning("slack_update_failed_posting_new", **fields)
        try:
            await self.poster.post(message)
        except Exception as exc:
            log.warning("slack_reply_failed_apologising", post_error=_fields(exc)["error"], **fields)
            await self._apologise(placeholder)
            raise ReplyNotDelivered(fields["error"]) from exc
        self.live.done = True  # the reply is shown: anything after it is a new message

    async def _apologise(self, ts: str) -> None:
        try:
            await self.poster.update(ts, render_markdown(slack_messages.reply_failed()))
        except Exception as exc:
            log.warning("slack_apology_failed", channel=self.poster.channel, **_fields(exc))


class SlashReply(Delivery[list[SlackMessage]]):
    """Replies to a slash command through its `response_url`, visible only to the person who typed it.

    Every `/api` reply is ephemeral in Slack, `ask` too: a public answer is what mentioning the bot gives, in a
    thread where the conversation can go on.
    """

    markup = SLASH_MARKUP  # an answer starts with the question it answers
    transport = SLACK

    def __init__(self, respond: AsyncRespond, client: AsyncWebClient | None = None, user: str = "") -> None:
        """`client` and `user`: where a reply's file goes (the app's DM with `user`); without them it is left out."""
        self.respond = respond
        self.client = client
        self.user = user

    async def attach(self, report: ReportFile) -> bool:
        """Send a reply's file to the person's DM with the app: a slash command's reply is theirs alone.

        Shared to their user id (`files.completeUploadExternal` takes user ids in `channels`), then they are told
        where it went.
        """
        if self.client is None or not self.user:
            raise ValueError("no one to send the report to")
        await upload_file(self.client, report, user=self.user)
        await respond_privately(self.respond, render_markdown(slack_messages.REPORT_SENT_BY_DM))
        return True

    async def deliver(self, rendered: list[SlackMessage]) -> None:
        """Send up to five ephemeral messages."""
        if len(rendered) > MAX_SLASH_RESPONSES:
            rendered = [*rendered[: MAX_SLASH_RESPONSES - 1], render_markdown(slack_messages.slash_too_many_parts())]
        for message in rendered:
            await respond_privately(self.respond, message)


class ActionReply:
    """Ephemeral replies to a button click: through `response_url`, else `chat.postEphemeral`."""

    def __init__(self, respond: AsyncRespond, client: AsyncWebClient, origin: Origin) -> None:
        self.respond = respond
        self.client = client
        self.origin = origin

    async def text(self, text: str) -> None:
        """Send one Markdown message to the clicker only."""
        await self.message(render_markdown(text))

    async def message(self, message: SlackMessage) -> None:
        """Send one message to the clicker only."""
        if self.respond.response_url:
            await respond_privately(self.respond, message)
        elif self.origin.channel and self.origin.user:
            await self.client.chat_postEphemeral(channel=self.origin.channel, user=self.origin.user,
                                                 **message.as_kwargs())


class StreamSupport:
    """Whether Slack streams messages for this app: unknown until the first `chat.startStream`, then remembered.

    One per process (the bot's token is the same everywhere): a refusal in `STREAMING_UNAVAILABLE` turns
    streaming off for good; any other failure only makes that one reply post and edit instead.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.available: bool | None = None if enabled else False

    @property
    def usable(self) -> bool:
        """Whether to try streaming (yes while unknown)."""
        return self.available is not False

    def learn(self, failure: Exception | None) -> None:
        """Record how the first stream start went (`None`: it started)."""
        if failure is None:
            if self.available is None:
                self.available = True
                log.info("slack_streaming_available")
            return
        error = slack_error(failure) if isinstance(failure, SlackApiError) else ""
        if error in STREAMING_UNAVAILABLE and self.available is not False:
            self.available = False
            log.warning("slack_streaming_unavailable", error=error)


def inert_markdown(text: str) -> str:
    """Streamed Markdown that cannot ping or hide a link: every `<` is followed by an invisible joiner.

    Slack's `<!here>`, `<@U1>` and `<url|label>` forms all start with `<`; bare `@here` is defused by the
    `MentionGuard` the stream feeds text through.
    """
    return text.replace("<", "<" + ZERO_WIDTH_JOINER)


class NativeStream:
    """One message streamed with `chat.startStream`, `chat.appendStream` and `chat.stopStream`.

    `write` is given the whole answer written so far and sends what is new, in parts within Slack's 12,000
    characters, up to `MAX_STREAMED_CHARS` in all. It never raises: a failed start is kept in `failed` (the
    reply then posts and edits instead), a failed append ends the streaming of text (the final answer, edited
    in, shows it all anyway).
    """

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str, support: StreamSupport, *, user: str, team: str
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.support = support
        self.user = user  # Slack needs the recipient of a stream outside a DM
        self.team = team
        self.ts: str | None = None
        self.failed: Exception | None = None
        self._broken = False
        self._stopped = False
        self._consumed = ""  # the answer text already fed to the mention guard
        self._streamed = 0  # characters sent to Slack
        self._guard = MentionGuard()

    async def write(self, text: str) -> None:
        """Stream the part of `text` (the answer so far) not streamed yet."""
        if self.failed is not None or self._broken or self._stopped or not text.startswith(self._consumed):
            return
        new, self._consumed = text[len(self._consumed) :], text
        shown = inert_markdown(self._guard.feed(new))[: max(0, MAX_STREAMED_CHARS - self._streamed)]
        for start in range(0, len(shown), MAX_STREAM_CHUNK_CHARS):
            chunk = shown[start : start + MAX_STREAM_CHUNK_CHARS]
            if self.ts is None:
                await self._start(chunk)
                if self.ts is None:
                    return
            else:
                try:
                    await self.client.chat_appendStream(channel=self.channel, ts=self.ts, markdown_text=chunk)
                except Exception as exc:
                    self._broken = True
                    log.warning("slack_stream_append_failed", channel=self.channel, **_fields(exc))
                    return
            self._streamed += len(chunk)

    async def _start(self, chunk: str) -> None:
        try:
            response = await self.client.chat_startStream(
                channel=self.channel, thread_ts=self.thread_ts, markdown_text=chunk,
                recipient_user_id=self.user or None, recipient_team_id=self.team or None,
            )
        except Exception as exc:
            self.failed = exc
            self.support.learn(exc)
            log.warning("slack_stream_start_failed", channel=self.channel, **_fields(exc))
            return
        self.ts = str(response["ts"])
        self.support.learn(None)

    async def stop(self) -> None:
        """End the stream (once); a failure is logged, as the answer is edited into the message next anyway."""
        if self.ts is None or self._stopped:
            return
        self._stopped = True
        try:
            await self.client.chat_stopStream(channel=self.channel, ts=self.ts)
        except Exception as exc:
            log.warning("slack_stream_stop_failed", channel=self.channel, **_fields(exc))


class StreamingReply(ThreadReply):
    """A reply in a thread that streams the answer natively and shows the wait as the thread's status.

    Status lines go to `assistant.threads.setStatus` (after `delay`: quick work shows only its reply), never into
    a message; the answer's text is streamed (`NativeStream`, throttled to one append per `STREAM_INTERVAL`).
    The reply itself is delivered as a `ThreadReply` delivers it, into the streamed message once its stream has
    stopped, or as a new message when nothing was streamed. If the stream cannot start, the rest of the reply is
    a `ThreadReply`'s: posted, then edited.
    """

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str, interval: float, support: StreamSupport, *,
        user: str, team: str, delay: float = 0.0, on_sent: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(client, channel, thread_ts, interval, on_sent, delay=delay)
        self.thread_ts = thread_ts
        self.stream = NativeStream(client, channel, thread_ts, support, user=user, team=team)
        self.streamer = LiveMessage(self.stream.write, STREAM_INTERVAL, transport=SLACK)
        self.status_line = LiveMessage(self._set_status, STATUS_INTERVAL, delay=delay, transport=SLACK)
        self.native = support.usable

    async def __aexit__(self, *exc: object) -> None:
        await self.status_line.stop()
        await self.streamer.stop()
        await super().__aexit__(*exc)

    @property
    def streamed(self) -> bool:
        """Whether the answer was streamed, natively or by edits."""
        return self.stream.ts is not None or self.live.written

    async def status(self, text: str) -> None:
        """The thread's status while nothing is streamed yet (a status message when streaming is off)."""
        if not self.native:
            await super().status(text)
        elif self.stream.ts is None:
            await self.status_line.show(text)

    async def partial(self, text: str) -> None:
        """Stream the answer written so far."""
        if self.native:
            await self.status_line.stop()  # Slack clears the status when the streamed message appears
            await self.streamer.show(text)
            if self.stream.failed is None:
                return
            self.native = False
        await super().partial(text)

    async def deliver(self, rendered: list[SlackMessage]) -> None:
        """Stop the stream and edit the reply into it (or post the reply when nothing was streamed)."""
        await self.status_line.stop()
        await self.streamer.stop()
        if self.stream.ts is not None and self.poster.ts is None:
            await self.stream.stop()
            self.poster.ts = self.stream.ts
        await super().deliver(rendered)

    async def _set_status(self, text: str) -> None:
        try:
            await self.poster.client.assistant_threads_setStatus(
                channel_id=self.poster.channel, thread_ts=self.thread_ts, status=text
            )
        except Exception as exc:  # a status is a nicety: the answer comes all the same
            log.info("slack_status_failed", channel=self.poster.channel, **_fields(exc))
