"""Sending replies to Slack: the transports behind every reply the handlers give.

- `ThreadReply`: a thread (or DM) message posted at once and then edited in place (progress, the answer as it
  is written), with more messages below it for long answers. It is the core's `ReplySink` for events.
- `SlashReply`: a slash command's `response_url`, visible only to the person who typed it.
- `ActionReply`: an ephemeral reply to a button click.

Link parsing is off and nothing unfurls; when Slack refuses a message's blocks it is sent again as text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack_app import messages as slack_messages
from bot.slack_app.render import SlackMessage, render_markdown, render_partial, render_status, slack_markup
from core.actions import Origin
from core.live import LiveMessage, LiveReply, ProgressLook
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


def _describe(exc: Exception) -> dict[str, Any] | None:
    return {"error": slack_error(exc)} if isinstance(exc, SlackApiError) else None


SLACK = Transport("slack", describe=_describe)
"""Slack's API errors for `core.replies.guarded`: logged as `slack_api_error` / `slack_reply_failed`."""
THREAD_MARKUP = slack_markup()
SLASH_MARKUP = slack_markup(echo=True)
THREAD_LOOK = ProgressLook(partial=render_partial, progress=render_status, status=render_status)


async def respond_privately(respond: AsyncRespond, message: SlackMessage) -> None:
    """Send a message through `response_url`, visible only to the person who acted; a refusal is logged."""
    response = await respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
    if response.status_code != 200:
        log.warning("slack_respond_failed", status=response.status_code, error=str(response.body)[:100])


class Poster:
    """Posts and edits messages in one channel (and thread), with link parsing off and no unfurls."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.ts: str | None = None  # the live message, once posted

    async def write(self, message: SlackMessage) -> None:
        """Post the live message the first time, then edit it."""
        if self.ts is None:
            self.ts = await self.post(message)
        else:
            await self.update(self.ts, message)

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


class ThreadReply(LiveReply[SlackMessage, list[SlackMessage]]):
    """Replies in a thread (or at the top level of a DM): one live message, extra messages for long answers.

    `on_sent` is called after each reply delivered in a thread (the bot then takes part in it).
    """

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, interval: float,
        on_sent: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.poster = Poster(client, channel, thread_ts)
        super().__init__(LiveMessage(self.poster.write, interval, transport=SLACK), THREAD_LOOK, THREAD_MARKUP)
        self.on_sent = on_sent

    async def deliver(self, rendered: list[SlackMessage]) -> None:
        """Replace the live message with the first message and post the rest below it."""
        if self.poster.thread_ts and self.on_sent is not None:
            await self.on_sent()
        rest = list(rendered)
        if not self.live.done:  # else (an error after the answer was shown): never overwrite the answer
            await self.live.finish(rest.pop(0))
        for message in rest:
            await self.poster.post(message)


class SlashReply(Delivery[list[SlackMessage]]):
    """Replies to a slash command through its `response_url`, visible only to the person who typed it.

    Every `/api` reply is ephemeral in Slack, `ask` too: a public answer is what mentioning the bot gives, in a
    thread where the conversation can go on.
    """

    markup = SLASH_MARKUP  # an answer starts with the question it answers

    def __init__(self, respond: AsyncRespond) -> None:
        self.respond = respond

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
        message = render_markdown(text)
        if self.respond.response_url:
            await respond_privately(self.respond, message)
        elif self.origin.channel and self.origin.user:
            await self.client.chat_postEphemeral(channel=self.origin.channel, user=self.origin.user,
                                                 **message.as_kwargs())
