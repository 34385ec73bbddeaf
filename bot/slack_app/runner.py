"""Running the Slack adapter: Socket Mode when `SLACK_APP_TOKEN` is set, else the HTTP Events API.

HTTP mode serves events, interactivity (👍/👎) and the `/api` command at `POST /slack/events`, plus
`GET /healthz`, on `HOST:PORT`; Bolt checks every request's signature with `SLACK_SIGNING_SECRET`.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.slack_app.app import build_slack_app
from core.config import Settings
from core.errors import ConfigError
from core.service import Assistant

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


async def healthz(_: web.Request) -> web.Response:
    """Liveness probe."""
    return web.Response(text="ok")


def build_web_app(app: AsyncApp) -> web.Application:
    """The aiohttp application: Bolt's `POST /slack/events` plus `GET /healthz`."""
    web_app = app.web_app(path=EVENTS_PATH)
    web_app.router.add_get(HEALTH_PATH, healthz)
    return web_app


async def start_http(app: AsyncApp, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving `app` over HTTP; returns the runner (call `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(build_web_app(app), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


async def serve_slack(settings: Settings, assistant: Assistant) -> None:
    """Run the Slack adapter until cancelled."""
    app = build_slack_app(settings, assistant)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    if app_token:
        handler = AsyncSocketModeHandler(app, app_token=app_token)
        await handler.connect_async()
        log.info("slack_started", mode="socket")
        try:
            await asyncio.Future()
        finally:
            await handler.close_async()
            log.info("slack_stopped", mode="socket")
        return
    if not settings.slack_signing_secret or not settings.slack_signing_secret.get_secret_value():
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it (or set SLACK_APP_TOKEN for Socket Mode)."
        )
    runner, port = await start_http(app, settings.host, settings.port)
    log.info("slack_started", mode="http", host=settings.host, port=port, path=EVENTS_PATH)
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()
        log.info("slack_stopped", mode="http")
