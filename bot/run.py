"""`api-assistant run`: start every platform that has credentials configured, sharing one core.

In every mode the process also serves `/health`, `/ready` and `/metrics` on `HOST:PORT` (`bot.http_server`);
Slack's HTTP mode adds `/slack/events` to that same server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import structlog

from bot.http_server import HttpServer
from core.assistant import Assistant
from core.backup_schedule import BackupSchedule
from core.config import Settings
from core.errors import ConfigError
from core.library import STALE_AFTER_SECONDS
from core.lifecycle import repeat_until_stopped, shutdown_on_signals

log = structlog.get_logger(__name__)

NO_PLATFORM = (
    "No chat platform is configured. Set SLACK_BOT_TOKEN (with SLACK_APP_TOKEN for Socket Mode, or "
    "SLACK_SIGNING_SECRET for the HTTP Events API) and/or DISCORD_BOT_TOKEN. To try the assistant without "
    "an account, run `api-assistant demo` or `api-assistant console`."
)


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms whose credentials are set."""
    platforms = []
    if settings.slack_bot_token:
        platforms.append("slack")
    if settings.discord_bot_token:
        platforms.append("discord")
    return platforms


async def run_platforms(settings: Settings, assistant: Assistant, stop: asyncio.Event | None = None) -> None:
    """Serve every configured platform until SIGTERM/SIGINT (or `stop`), then shut down gracefully.

    On the first signal: no new work is taken, work in progress gets `SHUTDOWN_GRACE_SECONDS` to finish, then
    the platform clients close. A second signal stops waiting. Returns normally, so the process exits 0.
    With `BACKUP_INTERVAL_HOURS` set, backups are also taken on schedule (`core.backup_schedule`); one that is
    running when the signal comes is finished before this returns.
    """
    platforms = configured_platforms(settings)
    if not platforms:
        raise ConfigError(NO_PLATFORM)
    stop = stop or asyncio.Event()
    server = HttpServer(assistant)
    for platform in platforms:
        assistant.readiness.expect(platform)  # not ready until its adapter has connected
        assistant.telemetry.prepare_platform(platform)
    services: list[Callable[[], Coroutine[Any, Any, None]]] = []
    if "slack" in platforms:
        from bot.slack_app.runner import serve_slack

        services.append(partial(serve_slack, settings, assistant, stop, server))
    if "discord" in platforms:
        from bot.discord_app.runner import serve_discord

        services.append(partial(serve_discord, settings, assistant, stop))
    backups = BackupSchedule(settings, assistant.telemetry)
    log.info("platforms_starting", platforms=platforms)
    with shutdown_on_signals(stop, assistant.work, settings.shutdown_grace_seconds):
        async with server.serving(settings.host, settings.port), asyncio.TaskGroup() as group:
            for service in services:
                group.create_task(service())
            if backups.enabled:  # BACKUP_INTERVAL_HOURS: stops with `stop`, after a backup in progress
                group.create_task(backups.run(stop))
            # Start-up sweeps only see leftovers of writers that are certainly gone; leftovers of a replica
            # that died on another host age out, and are swept here once they have.
            group.create_task(repeat_until_stopped(stop, STALE_AFTER_SECONDS, assistant.sweep_leftovers))
    log.info("platforms_stopped", platforms=platforms)
