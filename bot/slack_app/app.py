"""Wiring the Slack SDK: the Web API client and the Bolt `AsyncApp` with this adapter's listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_app.handlers import SlackBot
from bot.slack_app.retries import retry_handlers
from core.assistant import Assistant
from core.config import Settings, secret_value
from core.errors import ConfigError

WEB_API_TIMEOUT_SECONDS = 30


def bot_token(settings: Settings) -> str:
    """`SLACK_BOT_TOKEN`, or a `ConfigError` naming it."""
    token = secret_value(settings.slack_bot_token)
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from the Slack app.")
    return token


def build_client(settings: Settings) -> AsyncWebClient:
    """An `AsyncWebClient` on `SLACK_API_URL` that tries calls again after 429s, server errors and lost connections.

    A call that posts a message is never repeated when it may have happened (`bot.slack_app.retries`).
    """
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return AsyncWebClient(
        token=bot_token(settings),
        base_url=base_url,
        timeout=WEB_API_TIMEOUT_SECONDS,
        retry_handlers=retry_handlers(),
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
