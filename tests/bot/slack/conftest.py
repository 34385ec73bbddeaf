"""Fixtures for the Slack adapter: a mock Slack, the real core with the example spec, and the app over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from bot.http_server import HttpServer
from bot.slack_app.app import build_slack_app
from bot.slack_app.handlers import SlackBot
from bot.slack_app.runner import EVENTS_PATH, events_handler
from core.actions import Origin, PathAttachment, UploadSpec
from tests.bot.slack.mock_slack import APP_TOKEN, BOT_TOKEN, TEAM_ID, MockSlack

SIGNING_SECRET = "test-signing-secret"


@pytest.fixture
async def mock_slack() -> AsyncIterator[MockSlack]:
    mock = MockSlack()
    await mock.start()
    yield mock
    await mock.stop()


@pytest.fixture
def slack_settings(settings, mock_slack: MockSlack):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={
        "slack_bot_token": SecretStr(BOT_TOKEN),
        "slack_signing_secret": SecretStr(SIGNING_SECRET),
        "slack_api_url": mock_slack.api_url,
        "host": "127.0.0.1",
        "port": 0,
    })


@pytest.fixture
def socket_settings(slack_settings):  # type: ignore[no-untyped-def]
    return slack_settings.model_copy(update={"slack_app_token": SecretStr(APP_TOKEN)})


@pytest.fixture
async def indexed(assistant, example_spec: Path):  # type: ignore[no-untyped-def]
    """The real assistant with the bookshop example indexed as `bookshop` in workspace T1."""
    uploader = Origin("slack", TEAM_ID, user="U1", user_name="ada")
    await assistant.ingest(UploadSpec(uploader, PathAttachment(example_spec), "bookshop"))
    return assistant


def event_body(event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM_ID) -> dict[str, Any]:
    return {
        "token": "legacy", "team_id": team, "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}], "event": event,
    }


_ts_counter = [0]


def next_ts() -> str:
    _ts_counter[0] += 1
    return f"1690000000.{_ts_counter[0]:06d}"


def mention(text: str, *, channel: str = "C1", ts: str | None = None, thread_ts: str | None = None,
            user: str = "U1") -> dict[str, Any]:
    ts = ts or next_ts()
    event = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts, "channel": channel,
             "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(text: str, *, channel: str = "C1", channel_type: str = "channel", ts: str | None = None,
            thread_ts: str | None = None, user: str | None = "U1", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "message", "text": text, "ts": ts or next_ts(), "channel": channel,
                             "channel_type": channel_type, **extra}
    if user:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": str(signature)}


@dataclass
class HttpResult:
    status: int
    text: str
    seconds: float


@dataclass
class SlackHttp:
    """The Slack app served over real HTTP, and helpers to send it signed requests."""

    url: str
    bot: SlackBot

    async def _post(self, body: str, content_type: str, headers: dict[str, str] | None) -> HttpResult:
        all_headers = {"Content-Type": content_type, **sign(body), **(headers or {})}
        started = time.monotonic()
        async with aiohttp.ClientSession() as session, session.post(
            self.url + "/slack/events", data=body.encode(), headers=all_headers
        ) as response:
            return HttpResult(response.status, await response.text(), time.monotonic() - started)

    async def event(self, event: dict[str, Any], *, headers: dict[str, str] | None = None,
                    **body: Any) -> HttpResult:
        return await self.post_json(event_body(event, **body), headers=headers)

    async def post_json(self, payload: dict[str, Any], *, headers: dict[str, str] | None = None) -> HttpResult:
        return await self._post(json.dumps(payload), "application/json", headers)

    async def command(self, text: str, response_url: str, **fields: str) -> HttpResult:
        form = {"token": "legacy", "team_id": TEAM_ID, "team_domain": "test", "channel_id": "C1",
                "channel_name": "general", "user_id": "U1", "user_name": "ada", "command": "/api", "text": text,
                "api_app_id": "A1", "response_url": response_url, "trigger_id": uuid.uuid4().hex, **fields}
        return await self._post(urlencode(form), "application/x-www-form-urlencoded", None)

    async def action(self, payload: dict[str, Any]) -> HttpResult:
        return await self._post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", None)


@asynccontextmanager
async def serve_bot(settings, assistant, bot: SlackBot) -> AsyncIterator[SlackHttp]:  # type: ignore[no-untyped-def]
    """The Slack app of `bot` on the process's one HTTP server, as `serve_slack` uses it in HTTP mode."""
    app = build_slack_app(settings, assistant, bot=bot)
    server = HttpServer(assistant)
    server.add_webhook(EVENTS_PATH, events_handler(app))
    async with server.serving("127.0.0.1", 0):
        yield SlackHttp(f"http://127.0.0.1:{server.port}", bot)


@pytest.fixture
async def slack_http(slack_settings, indexed) -> AsyncIterator[SlackHttp]:  # type: ignore[no-untyped-def]
    """The bot on the post-and-edit path (no native streaming), its "Working on it…" posted at once.

    That is what a workspace without Slack's streaming methods sees; most delivery tests (placeholder, edits,
    retries, no duplicates) are about that path. `streaming_http` is the bot as it runs by default.
    """
    async with serve_bot(slack_settings, indexed, SlackBot(indexed, slack_settings, streaming=False,
                                                           quick_reply=0.0)) as http:
        yield http


@pytest.fixture
async def streaming_http(slack_settings, indexed) -> AsyncIterator[SlackHttp]:  # type: ignore[no-untyped-def]
    """The bot with its default settings: native streaming where Slack offers it, quick answers simply posted."""
    async with serve_bot(slack_settings, indexed, SlackBot(indexed, slack_settings)) as http:
        yield http
