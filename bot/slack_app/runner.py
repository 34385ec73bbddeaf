"""Running the Slack adapter: Socket Mode when `SLACK_APP_TOKEN` is set, else the HTTP Events API.

HTTP mode serves events, interactivity (👍/👎) and the `/api` command at `POST /slack/events`, plus
`GET /healthz`, on `HOST:PORT`; Bolt checks every request's signature with `SLACK_SIGNING_SECRET`.

When `stop` is set (SIGTERM), it stops taking new work (Socket Mode: the connection is closed, so Slack sends
events to the app's other connections; HTTP: the port stops listening and requests still arriving get a 503,
which Slack retries), waits up to `SHUTDOWN_GRACE_SECONDS` for answers and uploads in progress, then closes.

Before connecting, the bot token is checked with `auth.test` and the app token by opening the Socket Mode
URL: a wrong or revoked token ends start-up with a `ConfigError` naming the variable (exit code 2), instead of
an app that connects but fails every event, or a Socket Mode client that retries a rejected token forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_app.app import build_slack_app
from bot.slack_app.handlers import slack_error
from core.config import Settings
from core.errors import ConfigError
from core.lifecycle import wait_until_stopped
from core.service import Assistant

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Slack's answers meaning the token itself is wrong, revoked or of the wrong kind: retrying cannot help.
TOKEN_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type",
    "team_access_not_granted", "ekm_access_denied", "org_login_required", "no_permission", "missing_scope",
})


async def check_bot_token(client: AsyncWebClient) -> None:
    """`auth.test` with `SLACK_BOT_TOKEN`; a rejected token is a `ConfigError` naming it."""
    try:
        identity = await client.auth_test()
    except SlackApiError as exc:
        error = slack_error(exc)
        if error not in TOKEN_ERRORS:
            raise
        raise ConfigError(
            f"Slack rejected SLACK_BOT_TOKEN ({error}): it is wrong or was revoked (or the app was uninstalled). "
            "Copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page, reinstalling the "
            "app if there is none."
        ) from None
    log.info("slack_authenticated", team_id=identity.get("team_id"), bot_user_id=identity.get("user_id"))


async def connect_socket(handler: AsyncSocketModeHandler) -> None:
    """Open the Socket Mode connection; a rejected `SLACK_APP_TOKEN` is a `ConfigError` naming it.

    The URL is fetched here rather than inside `connect_async`, which logs the failure and tries again
    every few seconds forever.
    """
    try:
        handler.client.wss_uri = await handler.client.issue_new_wss_url()
    except SlackApiError as exc:
        error = slack_error(exc)
        if error not in TOKEN_ERRORS:
            raise
        raise ConfigError(
            f"Slack rejected SLACK_APP_TOKEN ({error}): create an app-level token (xapp-...) with the "
            "connections:write scope under Basic Information > App-Level Tokens, or unset SLACK_APP_TOKEN to "
            "use the HTTP Events API."
        ) from None
    await handler.connect_async()


async def healthz(_: web.Request) -> web.Response:
    """Liveness probe."""
    return web.Response(text="ok")


def build_web_app(app: AsyncApp, accepting: Callable[[], bool] = lambda: True) -> web.Application:
    """The aiohttp application: Bolt's `POST /slack/events` plus `GET /healthz`.

    While `accepting()` is False (shutting down), both answer 503: Slack retries the event later (reaching
    another instance) and load balancers stop sending traffic here.
    """

    @web.middleware
    async def refuse_when_stopping(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not accepting():
            return web.Response(status=503, text="shutting down", headers={"Retry-After": "5"})
        return await handler(request)

    web_app = app.web_app(path=EVENTS_PATH)
    web_app.middlewares.append(refuse_when_stopping)
    web_app.router.add_get(HEALTH_PATH, healthz)
    return web_app


async def start_http(
    app: AsyncApp, host: str, port: int, accepting: Callable[[], bool] = lambda: True
) -> tuple[web.AppRunner, int]:
    """Start serving `app` over HTTP; returns the runner (call `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(build_web_app(app, accepting), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


async def serve_slack(settings: Settings, assistant: Assistant, stop: asyncio.Event | None = None) -> None:
    """Run the Slack adapter until `stop` is set (then shut down gracefully) or the task is cancelled."""
    app = build_slack_app(settings, assistant)
    work = assistant.work
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    if not app_token and (not settings.slack_signing_secret or not settings.slack_signing_secret.get_secret_value()):
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it (or set SLACK_APP_TOKEN for Socket Mode)."
        )
    await check_bot_token(app.client)
    if app_token:
        handler = AsyncSocketModeHandler(app, app_token=app_token)
        open_session = True  # a failed or cancelled connect still leaves a session to close
        try:
            await connect_socket(handler)
            log.info("slack_started", mode="socket")
            await wait_until_stopped(stop)
            work.stop_accepting()
            await handler.close_async()  # the answers in progress post through the Web API, not the socket
            open_session = False
            await work.drain(settings.shutdown_grace_seconds)
        finally:
            if open_session:
                await handler.close_async()
            log.info("slack_stopped", mode="socket")
        return
    runner, port = await start_http(app, settings.host, settings.port, accepting=lambda: work.accepting)
    log.info("slack_started", mode="http", host=settings.host, port=port, path=EVENTS_PATH)
    try:
        await wait_until_stopped(stop)
        work.stop_accepting()
        for site in list(runner.sites):
            await site.stop()
        await work.drain(settings.shutdown_grace_seconds)
    finally:
        await runner.cleanup()
        log.info("slack_stopped", mode="http")
