"""Wiring the Slack SDK: the Web API client and the Bolt `AsyncApp` with this adapter's listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_app.handlers import SlackBot
from core.assistant import Assistant
from core.config import Settings, secret_value
from core.errors import ConfigError

WEB_API_TIMEOUT_SECONDS = 30
RATE_LIMIT_RETRIES = 3


def bot_token(settings: Settings) -> str:
    """`SLACK_BOT_TOKEN`, or a `ConfigError` naming it."""
    token = secret_value(settings.slack_bot_token)
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from the Slack app.")
    return token


def build_client(settings: Settings) -> AsyncWebClient:
    """An `AsyncWebClient` on `SLACK_API_URL` that retries connection errors and honours 429 Retry-After."""
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return AsyncWebClient(
        token=bot_token(settings),
        base_url=base_url,
        timeout=WEB_API_TIMEOUT_SECONDS,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


def build_slack_app(
    settings: Settings, assistant: Assistant, client: AsyncWebClient | None = None, *, bot: SlackBot | None = None
) -> AsyncApp:
    """The Bolt app: signed HTTP requests (or Socket Mode envelopes) -> `SlackBot` listeners -> the core.

    Bolt calls `auth.test` once, on the first request, to learn the bot's user id (used to strip the
    mention and ignore the bot's own messages).
    """
    app = AsyncApp(
        name="api-assistant",
        client=client or build_client(settings),
        signing_secret=secret_value(settings.slack_signing_secret),  # without it every HTTP request is refused
    )
    (bot or SlackBot(assistant, settings)).register(app)
    return app
