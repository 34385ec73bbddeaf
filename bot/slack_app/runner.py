"""Running the Slack adapter: Socket Mode when `SLACK_APP_TOKEN` is set, else the HTTP Events API.

HTTP mode serves events, interactivity (👍/👎) and the `/api` command at `POST /slack/events`, plus
`GET /healthz`, on `HOST:PORT`; Bolt checks every request's signature with `SLACK_SIGNING_SECRET`.

When `stop` is set (SIGTERM), it stops taking new work (Socket Mode: the connection is closed, so Slack sends
events to the app's other connections; HTTP: the port stops listening and requests still arriving get a 503,
which Slack retries), waits up to `SHUTDOWN_GRACE_SECONDS` for answers and uploads in progress, then closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.slack_app.app import build_slack_app
from core.config import Settings
from core.errors import ConfigError
from core.lifecycle import wait_until_stopped
from core.service import Assistant

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


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
    if app_token:
        handler = AsyncSocketModeHandler(app, app_token=app_token)
        await handler.connect_async()
        log.info("slack_started", mode="socket")
        connected = True
        try:
            await wait_until_stopped(stop)
            work.stop_accepting()
            await handler.close_async()  # the answers in progress post through the Web API, not the socket
            connected = False
            await work.drain(settings.shutdown_grace_seconds)
        finally:
            if connected:
                await handler.close_async()
            log.info("slack_stopped", mode="socket")
        return
    if not settings.slack_signing_secret or not settings.slack_signing_secret.get_secret_value():
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it (or set SLACK_APP_TOKEN for Socket Mode)."
        )
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
