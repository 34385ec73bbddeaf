"""Every platform exposes exactly the core's command catalogue, and shows the same help.

Slack's `/api` parser, the Discord `/api` command tree and the terminal's `/commands` are derived from
`core.commands.catalogue.CATALOGUE`; these tests fail when a platform offers a command the catalogue does not
have, lacks one it has, or takes other arguments.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.console import MARKUP as TERMINAL
from bot.console import ConsoleChat
from bot.discord_app.commands import GROUP_NAME, build_api_group
from bot.discord_app.render import MARKUP as DISCORD_MARKUP
from bot.slack_app.render import slack_markup
from bot.slack_app.translate import parse_command
from core import messages
from core.actions import PathAttachment
from core.commands.catalogue import CATALOGUE, CONSOLE, DISCORD, SLACK, ArgKind, available, command
from core.commands.syntax import TypedSyntax
from core.replies import HelpReply
from tests.core.test_commands import TYPED_EXAMPLES

# string, attachment, boolean
OPTION_TYPES = {
    ArgKind.TEXT: 3, ArgKind.SPEC: 3, ArgKind.NAME: 3, ArgKind.VERSION: 3, ArgKind.FILE: 11, ArgKind.FLAG: 5,
}


def discord_payload() -> dict[str, Any]:
    """The `/api` group exactly as `discord-sync` registers it."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    group = build_api_group(None)
    tree.add_command(group)
    return group.to_dict(tree)


def test_the_discord_tree_is_the_catalogue() -> None:
    api = discord_payload()
    assert api["name"] == GROUP_NAME and api["type"] == 1
    # Discord takes default_permissions on the top-level command only; who may change a spec is the core's call.
    assert api["default_member_permissions"] is None
    subcommands = api["options"]
    assert [s["name"] for s in subcommands] == [c.name for c in available(DISCORD)]
    for sub, entry in zip(subcommands, available(DISCORD), strict=True):
        assert sub["type"] == 1 and sub["description"] == entry.summary
        arguments = sorted(entry.arguments, key=lambda a: not a.required)  # Discord wants required options first
        assert [o["name"] for o in sub["options"]] == [a.name for a in arguments]
        for option, argument in zip(sub["options"], arguments, strict=True):
            assert option["type"] == OPTION_TYPES[argument.kind]
            assert (option["description"], option["required"]) == (argument.description, argument.required)
            assert option.get("autocomplete", False) == argument.autocompleted
            if argument.kind not in (ArgKind.FILE, ArgKind.FLAG):
                assert (option["min_length"], option["max_length"]) == (1, argument.max_length)
    json.dumps(api)  # what is synced is plain JSON


def test_the_slack_parser_reads_exactly_the_catalogue() -> None:
    body = {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "trigger_id": "t"}
    for entry in CATALOGUE:
        text, arguments = TYPED_EXAMPLES[entry.name]
        invocation = parse_command({**body, "text": text})
        if entry in available(SLACK):
            assert (invocation.command, dict(invocation.arguments)) == (entry, arguments)
        else:  # not a Slack command (a slash command carries no file): a question
            assert (invocation.command.name, invocation.text("question")) == ("ask", text)


def test_the_terminal_reads_exactly_the_catalogue(assistant: Any, tmp_path: Path) -> None:
    chat = ConsoleChat(assistant)
    spec = tmp_path / "specs" / "my shop.yaml"
    spec.parent.mkdir()
    spec.write_text("openapi: 3.0.0")
    for entry in available(CONSOLE):
        text, arguments = TYPED_EXAMPLES[entry.name]
        invocation = chat._invocation("/" + text.replace("specs/my shop.yaml", str(spec)))
        parsed = {k: str(v.path) if isinstance(v, PathAttachment) else v for k, v in invocation.arguments.items()}
        expected = {k: str(spec) if k == "file" else v for k, v in arguments.items()}
        assert (invocation.command, parsed) == (entry, expected)
    assert {c.name for c in CATALOGUE} - {c.name for c in available(CONSOLE)} == set()


def listed_commands(text: str, prefix: str) -> list[str]:
    return re.findall(rf"`{re.escape(prefix)}([a-z]+)", text)


def test_help_is_the_same_everywhere_with_each_platforms_commands() -> None:
    slack = "\n".join(m.text for m in slack_markup().help(HelpReply(available(SLACK))))
    [discord_help] = DISCORD_MARKUP.help(HelpReply(available(DISCORD)))
    terminal = TERMINAL.help(HelpReply(available(CONSOLE)))
    assert listed_commands(slack, "/api ") == [c.name for c in available(SLACK)]
    assert listed_commands(discord_help, "/api ") == [c.name for c in available(DISCORD)]
    assert re.findall(r"^• `/([a-z]+)", terminal, re.MULTILINE) == [c.name for c in available(CONSOLE)]
    for shown, surface in ((slack, SLACK), (discord_help, DISCORD), (terminal, CONSOLE)):
        assert messages.HELP_INTRO in shown and messages.HELP_RULES in shown
        positions = [shown.index(c.summary) for c in available(surface)]
        assert positions == sorted(positions)  # the same words, in catalogue order
    assert TypedSyntax("/api ").usage(command("forget")) in slack

