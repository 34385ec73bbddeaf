"""The discord.py client: intents, the command tree, and the gateway events it forwards to the handlers."""

from __future__ import annotations

from typing import Any

import discord
import structlog
from discord import app_commands

from bot.discord_app import messages as discord_messages
from bot.discord_app.commands import build_api_group
from bot.discord_app.components import register as register_components
from bot.discord_app.handlers import DiscordHandlers
from bot.discord_app.replies import no_mentions

log = structlog.get_logger(__name__)


def bot_intents() -> discord.Intents:
    """Only what the bot needs: guilds, guild and DM messages, and message content (privileged)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


class AssistantCommandTree(app_commands.CommandTree):
    """A command tree whose framework-level errors (e.g. commands out of sync) get a private reply."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Log the failure and tell the user, privately, without exception text."""
        command = interaction.command.qualified_name if interaction.command else None
        log.error("slash_command_failed", command=command, error=type(error).__name__, exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(
                    discord_messages.command_failed(), ephemeral=True, allowed_mentions=no_mentions()
                )
            else:
                await interaction.response.send_message(
                    discord_messages.command_failed(), ephemeral=True, allowed_mentions=no_mentions()
                )
        except discord.HTTPException as exc:
            log.warning("error_reply_failed", status=exc.status, code=exc.code)


class AssistantClient(discord.Client):
    """The bot. `handlers` is None only for a client that syncs command definitions and never serves."""

    def __init__(self, handlers: DiscordHandlers | None, **options: Any) -> None:
        super().__init__(intents=bot_intents(), allowed_mentions=no_mentions(), **options)
        self.handlers = handlers
        self.tree = AssistantCommandTree(self)

    async def setup_hook(self) -> None:
        """Runs once after login, before the gateway connects: open sessions and register the `/api` group."""
        if self.handlers is not None:
            await self.handlers.start()
            register_components(self)  # clicks on answers sent before this start are handled too
        self.tree.add_command(build_api_group(self.handlers))

    async def close(self) -> None:
        """Disconnect, then close the attachment download session."""
        try:
            await super().close()
        finally:
            if self.handlers is not None:
                await self.handlers.close()

    async def on_ready(self) -> None:
        """Log the connection (never the token)."""
        log.info("discord_ready", bot_user_id=self.user.id if self.user else None, guilds=len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        """Forward messages to the handlers, which decide whether they are for the bot."""
        if self.handlers is not None and self.user is not None:
            await self.handlers.on_message(message, self.user)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server (not a server outage: discord.py reports those as `guild_unavailable`)."""
        log.info("discord_guild_removed", guild_id=guild.id)
        if self.handlers is not None:
            await self.handlers.on_guild_remove(guild.id)
