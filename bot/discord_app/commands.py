"""The `/api` slash command group. Thin: parameters and descriptions here, behaviour in `handlers`."""

from __future__ import annotations

from typing import Protocol

import discord
from discord import app_commands

from core.service import MAX_QUESTION_CHARS


class SlashHandler(Protocol):
    """What the commands call; `handlers.DiscordHandlers` implements it."""

    async def slash_ask(self, interaction: discord.Interaction, question: str, spec: str | None) -> None:
        """Answer a question."""
        ...

    async def slash_upload(self, interaction: discord.Interaction, file: discord.Attachment, name: str | None) -> None:
        """Index an attached spec."""
        ...

    async def slash_specs(self, interaction: discord.Interaction) -> None:
        """List specs."""
        ...

    async def slash_forget(self, interaction: discord.Interaction, name: str) -> None:
        """Remove a spec."""
        ...

    async def slash_help(self, interaction: discord.Interaction) -> None:
        """Show help."""
        ...

    async def spec_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete spec names."""
        ...


class ApiGroup(app_commands.Group):
    """`/api ask|upload|specs|forget|help`."""

    def __init__(self, handler: SlashHandler | None) -> None:
        """`handler` is None only in a client built to sync command definitions, which never runs them."""
        super().__init__(name="api", description="Ask about and manage the API specs uploaded here.")
        self._handler = handler

    @property
    def handler(self) -> SlashHandler:
        """The handler; raises a command error in a sync-only client."""
        if self._handler is None:
            raise app_commands.AppCommandError("this client only syncs command definitions")
        return self._handler

    @app_commands.command(name="ask", description="Ask a question about the uploaded API specs.")
    @app_commands.describe(question="What you want to know", spec="Only search this spec (default: all)")
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
        spec: app_commands.Range[str, 1, 64] | None = None,
    ) -> None:
        """Answer a question (public)."""
        await self.handler.slash_ask(interaction, question, spec)

    @app_commands.command(name="upload", description="Index an API spec file for this server.")
    @app_commands.describe(
        file="OpenAPI/Swagger (JSON/YAML), Postman collection, GraphQL SDL or Markdown API doc",
        name="Name to index it under (default: from the file name)",
    )
    async def upload(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment,
        name: app_commands.Range[str, 1, 64] | None = None,
    ) -> None:
        """Index an attached spec (result is public)."""
        await self.handler.slash_upload(interaction, file, name)

    @app_commands.command(name="specs", description="List the API specs indexed here (only you see the list).")
    async def specs(self, interaction: discord.Interaction) -> None:
        """List specs (private)."""
        await self.handler.slash_specs(interaction)

    @app_commands.command(name="forget", description="Remove an indexed API spec.")
    @app_commands.describe(name="The spec to remove")
    async def forget(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 64]) -> None:
        """Remove a spec (confirmed privately)."""
        await self.handler.slash_forget(interaction, name)

    @app_commands.command(name="help", description="How to use the API assistant.")
    async def help(self, interaction: discord.Interaction) -> None:
        """Show help (private)."""
        await self.handler.slash_help(interaction)

    @ask.autocomplete("spec")
    @forget.autocomplete("name")
    async def _spec_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.handler.spec_choices(interaction, current)
