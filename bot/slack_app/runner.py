"""Running the Slack adapter: Socket Mode when `SLACK_APP_TOKEN` is set, else the HTTP Events API.

HTTP mode serves events, interactivity (👍/👎) and the `/api` command at `POST /slack/events` on the process's
HTTP server (`bot.http_server`, `HOST:PORT`, beside `/health`, `/ready` and `/metrics`); Bolt checks every
request's signature with `SLACK_SIGNING_SECRET`.

Readiness ("slack"): Socket Mode is ready while its WebSocket is connected; HTTP mode once the server listens
and `auth.test` has accepted the bot token.

When `stop` is set (SIGTERM), it stops taking new work (Socket Mode: the connection is closed, so Slack sends
events to the app's other connections; HTTP: events still arriving get a 503, which Slack retries, and
`/ready` turns 503 so load balancers move on), waits up to `SHUTDOWN_GRACE_SECONDS` for answers and uploads in
progress, then closes.

Before connecting, the bot token is checked with `auth.test` and the app token by opening the Socket Mode
URL: a wrong or revoked token ends start-up with a `ConfigError` naming the variable (exit code 2), instead of
an app that connects but fails every event, or a Socket Mode client that retries a rejected token forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.http_server import HttpServer
from bot.slack_app.app import build_slack_app
from bot.slack_app.replies import slack_error
from core.assistant import Assistant
from core.config import Settings, secret_value
from core.errors import ConfigError
from core.health import READY, RememberedCheck, Verdict, not_ready
from core.lifecycle import wait_until_stopped

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
AUTH_RETRY_SECONDS = 10.0
"""In HTTP mode, how long a failed `auth.test` stands before a readiness check asks Slack again."""
# Slack's answers meaning the token itself is wrong, revoked or of the wrong kind: retrying cannot help.
TOKEN_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type",
    "team_access_not_granted", "ekm_access_denied", "org_login_required", "no_permission", "missing_scope",
})


async def check_bot_token(client: AsyncWebClient) -> None:
    """`auth.test` with `SLACK_BOT_TOKEN`; a rejected token is a `ConfigError` naming it.

    Slack being out of reach is not a configuration error: it is logged, start-up goes on, and `/ready`
    says "slack" until `auth.test` succeeds.
    """
    try:
        identity = await client.auth_test()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("slack_unreachable_at_start", error=type(exc).__name__)
        return
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


def events_handler(
    app: AsyncApp, accepting: Callable[[], bool] = lambda: True
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Bolt's handler for `POST /slack/events`, answering 503 while `accepting()` is False (shutting down).

    Slack retries an event that got a 503 later, so it reaches another instance (or this one, restarted).
    """
    bolt = AsyncSlackAppServer(port=0, path=EVENTS_PATH, app=app)

    async def handle(request: web.Request) -> web.StreamResponse:
        if not accepting():
            return web.Response(status=503, text="shutting down", headers={"Retry-After": "5"})
        return await bolt.handle_post_requests(request)

    return handle


async def serve_slack(
    settings: Settings, assistant: Assistant, stop: asyncio.Event | None = None, server: HttpServer | None = None
) -> None:
    """Run the Slack adapter until `stop` is set (then shut down gracefully) or the task is cancelled.

    HTTP mode adds its webhook to `server` (the process's HTTP server, which `api-assistant run` starts); without
    one it starts its own on `HOST:PORT`.
    """
    app = build_slack_app(settings, assistant)
    work = assistant.work
    readiness = assistant.readiness
    app_token = secret_value(settings.slack_app_token)
    if not app_token and not secret_value(settings.slack_signing_secret):
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it (or set SLACK_APP_TOKEN for Socket Mode)."
        )
    await check_bot_token(app.client)
    if app_token:
        handler = AsyncSocketModeHandler(app, app_token=app_token)
        readiness.register("slack", lambda: _socket_connected(handler))
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
            readiness.set("slack", not_ready("stopped"))
            log.info("slack_stopped", mode="socket")
        return
    if server is None:
        own = HttpServer(assistant)
        async with own.serving(settings.host, settings.port):
            await _serve_http(settings, assistant, app, own, stop)
    else:
        await _serve_http(settings, assistant, app, server, stop)


async def _serve_http(
    settings: Settings, assistant: Assistant, app: AsyncApp, server: HttpServer, stop: asyncio.Event | None
) -> None:
    work = assistant.work
    auth = RememberedCheck(lambda: _auth_verdict(app), AUTH_RETRY_SECONDS, "auth.test did not answer")
    listening = not_ready("HTTP server not listening")
    assistant.readiness.register("slack", lambda: auth() if server.listening else listening)
    server.add_webhook(EVENTS_PATH, events_handler(app, accepting=lambda: work.accepting))
    log.info("slack_started", mode="http", host=settings.host, port=server.port, path=EVENTS_PATH)
    try:
        await wait_until_stopped(stop)
        work.stop_accepting()
        await work.drain(settings.shutdown_grace_seconds)
    finally:
        server.remove_webhook(EVENTS_PATH)
        assistant.readiness.set("slack", not_ready("stopped"))
        log.info("slack_stopped", mode="http")


async def _socket_connected(handler: AsyncSocketModeHandler) -> Verdict:
    return READY if await handler.client.is_connected() else not_ready("Socket Mode not connected")


async def _auth_verdict(app: AsyncApp) -> Verdict:
    """HTTP mode's readiness: `auth.test` accepts the bot token (asked until it does, see `RememberedCheck`).

    Asked once, without the client's retries: a probe must answer within the readiness timeout, and the next
    probe asks again anyway.
    """
    once = AsyncWebClient(token=app.client.token, base_url=app.client.base_url, timeout=app.client.timeout,
                          retry_handlers=[])
    try:
        await once.auth_test()
    except SlackApiError as exc:  # e.g. invalid_auth, token_revoked
        return not_ready(f"auth.test failed: {exc.response.get('error', 'error')}")
    except Exception as exc:  # network: the class only, its message may name hosts
        return not_ready(f"auth.test failed: {type(exc).__name__}")
    return READY
