"""How commands are written on each platform, derived from the catalogue: typed text, or Discord options.

`TypedSyntax` is Slack's `/api forget NAME` and the terminal's `/forget NAME`: positional arguments in
order, the last free-text argument taking the rest of the line; a command whose text runs to the end of
the line takes its optional arguments as `name:VALUE` words (`/api ask how do I refund? spec:stripe`).
A word may be quoted to hold spaces (`/upload "my spec.yaml"`); a flag is the word `--name` anywhere
(`/upload spec.yaml --private`). `OptionSyntax` is Discord's
`/api forget name:<name>`, where the client itself collects the options.

`help_markdown` is the one help text: the same introduction, commands and rules everywhere, each command
written in the platform's syntax, with the platform's own ways to talk to the bot (`ways`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core import messages
from core.commands.catalogue import FLAG_ON, ArgKind, Argument, Command
from core.errors import CommandUsageError

_SPACE = re.compile(r"\s+")
_QUOTES = "\"'"


def _placeholder(argument: Argument) -> str:
    if argument.kind is ArgKind.FLAG:
        return f"--{argument.name}"
    if argument.kind is ArgKind.FILE:
        return "PATH"
    if argument.kind in (ArgKind.TEXT, ArgKind.VERSION):
        return argument.name.upper()
    return "NAME"


def _takes_rest(command: Command) -> bool:
    return any(a.kind is ArgKind.TEXT for a in command.arguments)


def _is_option(command: Command, argument: Argument) -> bool:
    """Optional arguments of a command whose free text runs to the end of the line are written `name:VALUE`."""
    return (
        not argument.required and argument.kind not in (ArgKind.TEXT, ArgKind.FLAG) and _takes_rest(command)
    )


@dataclass(frozen=True)
class TypedSyntax:
    """Commands typed as text after `prefix` (`"/api "` in Slack, `"/"` in the terminal)."""

    prefix: str

    def usage(self, command: Command) -> str:
        """`/api ask QUESTION [spec:NAME]`."""
        return _usage(self.prefix, command, self._shown)

    @staticmethod
    def _shown(command: Command, argument: Argument) -> str:
        shown = _placeholder(argument)
        return f"{argument.name}:{shown}" if _is_option(command, argument) else shown

    def parse(self, command: Command, text: str) -> dict[str, str]:
        """The arguments typed after the command's name; a `CommandUsageError` says what is wrong.

        A missing free-text argument is passed as "" (the handler answers an empty question as it would an
        empty mention). Linear in the length of `text`.
        """
        values: dict[str, str] = {}
        rest = text.strip()
        for argument in command.arguments:
            if argument.kind is ArgKind.FLAG:
                found = re.search(rf"(?:^|\s)--{re.escape(argument.name)}(?=\s|$)", rest)
                if found:
                    values[argument.name] = FLAG_ON
                    rest = (rest[: found.start()] + rest[found.end() :]).strip()
        for argument in command.arguments:
            if _is_option(command, argument):
                found = re.search(rf"(?:^|\s){re.escape(argument.name)}:(\S+)", rest)
                if found:
                    values[argument.name] = found.group(1)
                    rest = (rest[: found.start()] + rest[found.end() :]).strip()
        for argument in command.arguments:
            if argument.name in values or _is_option(command, argument) or argument.kind is ArgKind.FLAG:
                continue
            if argument.kind is ArgKind.TEXT:
                values[argument.name], rest = rest, ""
            elif rest:
                values[argument.name], rest = _next_word(rest)
            elif argument.required:
                raise CommandUsageError(self._missing(command, argument))
        if rest:
            raise CommandUsageError(messages.unexpected_words(rest, self.usage(command)))
        return values

    def _missing(self, command: Command, argument: Argument) -> str:
        listing = self.prefix + "specs" if argument.kind is ArgKind.SPEC else ""
        return messages.missing_argument(argument.kind.value, command.name, self.usage(command), listing)


def has_flag(text: str, name: str) -> bool:
    """Whether free text (a mention sharing a file: `@bot stripe --private`) holds the flag `--name` as a word."""
    return f"--{name}" in text.split()


def split_command(text: str) -> tuple[str, str]:
    """The first word of typed text and the rest (`"forget  stripe"` -> `("forget", "stripe")`)."""
    parts = _SPACE.split(text.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _next_word(text: str) -> tuple[str, str]:
    """The first word of `text` (a quoted one may hold spaces) and what follows it."""
    if text[0] in _QUOTES:
        end = text.find(text[0], 1)
        if end == -1:
            raise CommandUsageError(messages.unreadable_command())
        return text[1:end], text[end + 1 :].strip()
    word, rest = split_command(text)
    return word, rest


@dataclass(frozen=True)
class OptionSyntax:
    """Commands whose arguments the platform collects as named options (Discord's `name:<value>`)."""

    prefix: str

    def usage(self, command: Command) -> str:
        """`/api ask question:<text> [spec:<name>]`."""
        return _usage(self.prefix, command, self._shown)

    @staticmethod
    def _shown(command: Command, argument: Argument) -> str:
        value = {ArgKind.FILE: "attachment", ArgKind.SPEC: "name", ArgKind.FLAG: "true"}.get(
            argument.kind, argument.kind.value
        )
        return f"{argument.name}:<{value}>"


def _usage(prefix: str, command: Command, shown: Callable[[Command, Argument], str]) -> str:
    words = [prefix + command.name]
    words += [shown(command, a) if a.required else f"[{shown(command, a)}]" for a in command.arguments]
    return " ".join(words)


Syntax = TypedSyntax | OptionSyntax


def help_markdown(commands: Sequence[Command], syntax: Syntax, ways: str, notes: Sequence[str] = ()) -> str:
    """The help: what the assistant does, the platform's `ways` to talk to it, its commands, the rules, `notes`."""
    lines = [messages.HELP_INTRO, "", ways, "", "**Commands**"]
    lines += [f"• `{syntax.usage(c)}` — {c.summary}" for c in commands]
    lines += ["", messages.HELP_RULES]
    lines += [line for note in notes for line in ("", note)]
    return "\n".join(lines)
