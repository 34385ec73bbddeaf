"""`api-assistant run`: start every platform that has credentials configured, sharing one core."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from core.config import Settings
from core.errors import ConfigError
from core.service import Assistant

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


async def run_platforms(settings: Settings, assistant: Assistant) -> None:
    """Serve every configured platform until one stops (or the process is interrupted)."""
    platforms = configured_platforms(settings)
    if not platforms:
        raise ConfigError(NO_PLATFORM)
    services: list[Coroutine[Any, Any, None]] = []
    if "slack" in platforms:
        from bot.slack_app.runner import serve_slack

        services.append(serve_slack(settings, assistant))
    if "discord" in platforms:
        from bot.discord_app.runner import serve_discord

        services.append(serve_discord(settings, assistant))
    log.info("platforms_starting", platforms=platforms)
    async with asyncio.TaskGroup() as group:
        for service in services:
            group.create_task(service)
