"""Running the Discord bot: build the client, point it at Discord (or a fake), serve, and sync commands."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import discord
import structlog
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.discord_app.client import AssistantClient
from bot.discord_app.handlers import EDIT_INTERVAL_SECONDS, PROGRESS_INTERVAL_SECONDS, DiscordHandlers
from core.assistant import Assistant
from core.config import Settings, secret_value
from core.errors import ConfigError
from core.health import READY, Verdict, not_ready
from core.lifecycle import wait_until_stopped

log = structlog.get_logger(__name__)

API_VERSION_PATH = "/api/v10"
GATEWAY_AUTHENTICATION_FAILED = 4004  # gateway close code: the token sent in IDENTIFY is invalid
REJECTED_TOKEN = (
    "Discord rejected DISCORD_BOT_TOKEN (401 Unauthorized): it is wrong or was reset; copy the bot's token "
    "from Bot > Token in the Discord Developer Portal."
)


def rest_base(api_url: str) -> str:
    """The REST base URL discord.py should use: `DISCORD_API_URL`, with `/api/v10` added when it has no path."""
    base = api_url.rstrip("/")
    return base if urlsplit(base).path not in ("", "/") else base + API_VERSION_PATH


@contextmanager
def discord_endpoints(settings: Settings) -> Iterator[None]:
    """Point discord.py at `DISCORD_API_URL` / `DISCORD_GATEWAY_URL` when set (restored afterwards).

    discord.py keeps these as class attributes, so they apply process-wide while the block runs. discord.py
    2.7 connects to `DiscordWebSocket.DEFAULT_GATEWAY` directly (it does not call `GET /gateway`) and later
    resumes at the `resume_gateway_url` the READY event names.
    """
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if settings.discord_api_url:
        Route.BASE = rest_base(settings.discord_api_url)
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


def _token(settings: Settings) -> str:
    token = secret_value(settings.discord_bot_token).strip()
    if not token:
        raise ConfigError("DISCORD_BOT_TOKEN is not set; create a bot in the Discord Developer Portal and set it.")
    return token


def build_discord_client(
    settings: Settings,
    assistant: Assistant,
    *,
    guild_ready_timeout: float = 2.0,
    edit_interval: float = EDIT_INTERVAL_SECONDS,
    progress_interval: float = PROGRESS_INTERVAL_SECONDS,
) -> AssistantClient:
    """The bot client, with its `/api` command tree registered in `setup_hook` (nothing is synced here)."""
    handlers = DiscordHandlers(
        assistant, settings, edit_interval=edit_interval, progress_interval=progress_interval
    )
    return AssistantClient(handlers, guild_ready_timeout=guild_ready_timeout)


async def serve_discord(settings: Settings, assistant: Assistant, stop: asyncio.Event | None = None) -> None:
    """Connect to Discord and answer (reconnecting as needed) until `stop` is set or the task is cancelled.

    When `stop` is set, new messages and commands are ignored (another instance, or this one after a restart,
    takes them), answers and uploads in progress get up to `SHUTDOWN_GRACE_SECONDS` to finish, then the
    client disconnects.
    """
    token = _token(settings)
    with discord_endpoints(settings):
        client = build_discord_client(settings, assistant)
        try:
            async with client:
                await _run_until_stopped(client, token, settings, assistant, stop)
        except discord.LoginFailure:
            raise ConfigError(REJECTED_TOKEN) from None
        except discord.PrivilegedIntentsRequired:
            raise ConfigError(
                "The bot needs the Message Content intent: enable it under Bot > Privileged Gateway Intents "
                "in the Discord Developer Portal."
            ) from None
        except discord.ConnectionClosed as exc:
            if exc.code == GATEWAY_AUTHENTICATION_FAILED:  # the token was revoked between login and IDENTIFY
                raise ConfigError(REJECTED_TOKEN) from None
            raise
        finally:
            log.info("discord_stopped")


def gateway_verdict(client: discord.Client) -> Verdict:
    """Readiness ("discord"): READY received and the gateway WebSocket open (not closed, not reconnecting)."""
    if client.is_closed():
        return not_ready("client closed")
    if not client.is_ready() or client.ws is None or not client.ws.open:
        return not_ready("not connected to the gateway")
    return READY


async def _run_until_stopped(
    client: AssistantClient, token: str, settings: Settings, assistant: Assistant, stop: asyncio.Event | None
) -> None:
    assistant.readiness.register("discord", lambda: gateway_verdict(client))
    connection = asyncio.create_task(client.start(token))
    stopped = asyncio.create_task(wait_until_stopped(stop))
    try:
        await asyncio.wait({connection, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if connection.done():
            connection.result()  # a login or intents error, or the client was closed elsewhere
            return
        assistant.work.stop_accepting()
        # The gateway stays connected meanwhile: answers in progress still edit and post messages.
        await assistant.work.drain(settings.shutdown_grace_seconds)
        await client.close()
        try:
            await connection
        except Exception as exc:
            # Closed on purpose, so what the connection raises now changes nothing. discord.py 2.7 raises
            # AttributeError when closed before its first gateway connection was made (`self.ws` is None).
            log.info("discord_closed_while_connecting", error=type(exc).__name__)
    finally:
        assistant.readiness.set("discord", not_ready("stopped"))
        for task in (connection, stopped):
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task


async def sync_commands(settings: Settings, guild_id: int | None = None) -> int:
    """Register the `/api` commands with Discord; returns how many top-level commands were synced.

    Run it once after deploying a version whose commands changed (`api-assistant discord-sync`), never on every
    start: Discord rate-limits command updates. With `guild_id`, the commands are copied to that one guild
    (handy while developing); otherwise they are registered globally.
    """
    token = _token(settings)
    with discord_endpoints(settings):
        client = AssistantClient(None)
        try:
            async with client:
                await client.login(token)
                if guild_id is not None:
                    guild = discord.Object(id=guild_id)
                    client.tree.copy_global_to(guild=guild)
                    synced = await client.tree.sync(guild=guild)
                else:
                    synced = await client.tree.sync()
        except discord.LoginFailure:
            raise ConfigError(REJECTED_TOKEN) from None
    log.info("discord_commands_synced", commands=[c.name for c in synced], guild_id=guild_id)
    return len(synced)
