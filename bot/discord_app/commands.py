"""The `/api` slash command group, built from the core's command catalogue (`core.commands.catalogue`).

Each catalogue command available on Discord becomes a subcommand: its summary is the description, each
argument an option (free text and names as strings of bounded length, files as attachments, flags as
true/false), spec names are
autocompleted, optional options come last. Discord cannot set `default_permissions` on a subcommand, so the
group sets none and the core decides who may change a spec. Behaviour is in `handlers`.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional, Protocol

import discord
from discord import app_commands

from core.commands.catalogue import DISCORD, ArgKind, Argument, Command, available

GROUP_NAME = "api"
GROUP_DESCRIPTION = "Ask about and manage the API specs uploaded here."
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


class SlashHandler(Protocol):
    """What the commands call; `handlers.DiscordHandlers` implements it."""

    async def run_slash(self, interaction: discord.Interaction, command: Command, options: dict[str, Any]) -> None:
        """Run a catalogue command with the options Discord collected."""
        ...

    async def spec_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete spec names."""
        ...


def build_api_group(handler: SlashHandler | None) -> app_commands.Group:
    """The `/api` group. `handler` is None only in a client built to sync command definitions, which never runs them."""
    group = app_commands.Group(name=GROUP_NAME, description=GROUP_DESCRIPTION)
    for command in available(DISCORD):
        group.add_command(_subcommand(command, group, handler))
    return group


def _subcommand(
    command: Command, group: app_commands.Group, handler: SlashHandler | None
) -> app_commands.Command[Any, ..., None]:
    async def run(interaction: discord.Interaction, **options: Any) -> None:
        await _handler(handler).run_slash(interaction, command, options)

    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await _handler(handler).spec_choices(interaction, current)

    # discord.py reads the options from the callback's signature: give it one built from the catalogue.
    interaction = inspect.Parameter("interaction", _POSITIONAL, annotation=discord.Interaction)
    run.__signature__ = inspect.Signature([interaction, *map(_option, command.arguments)])  # type: ignore[attr-defined]
    app_commands.describe(**{a.name: a.description for a in command.arguments})(run)
    subcommand: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=command.name, description=command.summary, callback=run, parent=group
    )
    for argument in command.arguments:
        if argument.autocompleted:
            subcommand.autocomplete(argument.name)(complete)
    return subcommand


def _option(argument: Argument) -> inspect.Parameter:
    kind: Any = app_commands.Range[str, 1, argument.max_length]
    if argument.kind is ArgKind.FILE:
        kind = discord.Attachment
    elif argument.kind is ArgKind.FLAG:
        kind = bool
    if argument.required:
        return inspect.Parameter(argument.name, _KEYWORD, annotation=kind)
    return inspect.Parameter(argument.name, _KEYWORD, annotation=Optional[kind], default=None)  # noqa: UP045


def _handler(handler: SlashHandler | None) -> SlashHandler:
    if handler is None:
        raise app_commands.AppCommandError("this client only syncs command definitions")
    return handler
