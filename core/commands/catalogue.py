"""The chat commands, declared once: every platform's commands are derived from `CATALOGUE`.

Each `Command` says what it is called, which arguments it takes (with their kind: free text, an indexed
spec's name, a new name, a file), who may run it, whether its reply is private, its help line, and on which
surfaces it exists. Slack's `/api` parser, the Discord `/api` command tree (options, descriptions,
autocomplete) and the terminal's `/commands` are built from this list, and the help is rendered from it
(`core.commands.syntax`); what each command does is its core handler (`core.commands.handlers`).

Adding a command: one entry here, its handler in `handlers.HANDLERS`, and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from core.actions import Attachment, Origin
from core.assistant import MAX_QUESTION_CHARS

SLACK = "slack"
DISCORD = "discord"
CONSOLE = "console"
EVERYWHERE = frozenset({SLACK, DISCORD, CONSOLE})
SPEC_NAME_MAX_CHARS = 64
FLAG_ON = "true"  # how a flag that is on travels among the arguments' text values


class ArgKind(StrEnum):
    """What an argument holds, which decides how each platform asks for it."""

    TEXT = "text"  # free text; typed, it takes the rest of the line
    SPEC = "spec"  # the name of a spec indexed here: autocompleted where the platform can
    NAME = "name"  # a name to give a new spec
    FILE = "file"  # a spec file: an attachment, or a path in the terminal
    VERSION = "version"  # a kept version of a spec: its number (`3`) or the spec's own version string
    FLAG = "flag"  # on or off: typed as `--name`, a true/false option on Discord


class Access(StrEnum):
    """Who may run a command."""

    ANYONE = "anyone"
    # Changes an existing spec only for its uploader or a workspace admin (the core checks): adapters must
    # say who the user is (`Origin.user_name`, `Origin.is_admin`) before running it.
    UPLOADER_OR_ADMIN = "uploader_or_admin"


@dataclass(frozen=True)
class Argument:
    """One argument of a command."""

    name: str
    kind: ArgKind
    description: str  # at most 100 characters (Discord's limit for an option's description)
    required: bool = True
    max_length: int = SPEC_NAME_MAX_CHARS

    @property
    def autocompleted(self) -> bool:
        """Whether its values are the workspace's spec names (Discord offers them while typing)."""
        return self.kind is ArgKind.SPEC


@dataclass(frozen=True)
class Command:
    """One chat command."""

    name: str
    summary: str  # the help line; at most 100 characters (Discord's description)
    arguments: tuple[Argument, ...] = ()
    access: Access = Access.ANYONE
    private: bool = True  # reply only to the person who asked, where the platform can (ephemeral)
    surfaces: frozenset[str] = EVERYWHERE  # the platforms it exists on (see the entries for why not everywhere)

    def argument(self, name: str) -> Argument:
        """The argument called `name`."""
        return next(a for a in self.arguments if a.name == name)


_SPEC_FILE = "OpenAPI/Swagger (JSON/YAML), Postman collection, GraphQL SDL or Markdown API doc"
_SPEC_OPTION = Argument("spec", ArgKind.SPEC, "Only search this spec (default: all)", required=False)

CATALOGUE: tuple[Command, ...] = (
    Command(
        "ask", "Ask a question about the uploaded API specs.",
        (Argument("question", ArgKind.TEXT, "What you want to know", max_length=MAX_QUESTION_CHARS), _SPEC_OPTION),
        private=False,
    ),
    Command(
        "upload", "Index an API spec file so everyone here can ask about it.",
        (
            Argument("file", ArgKind.FILE, _SPEC_FILE),
            Argument("name", ArgKind.NAME, "Name to index it under (default: from the file name)", required=False),
            Argument("private", ArgKind.FLAG, "Visible only in this channel or DM (default: the whole workspace)",
                     required=False),
        ),
        access=Access.UPLOADER_OR_ADMIN,
        private=False,
        # A Slack slash command cannot carry a file: in Slack a spec is shared as a file with a mention.
        surfaces=frozenset({DISCORD, CONSOLE}),
    ),
    Command("specs", "List the API specs indexed here (only you see the list)."),
    Command(
        "forget", "Remove an indexed API spec.", (Argument("name", ArgKind.SPEC, "The spec to remove"),),
        access=Access.UPLOADER_OR_ADMIN,
    ),
    Command(
        "diff", "What changed between two versions of a spec, breaking changes first.",
        (
            Argument("name", ArgKind.SPEC, "The spec to compare"),
            Argument("before", ArgKind.VERSION, "The older version (default: the one before `after`)", required=False),
            Argument("after", ArgKind.VERSION, "The newer version (default: the current one)", required=False),
        ),
        private=False,
    ),
    Command(
        "use", "Search one spec first in this channel (no name: show it; `all`: every spec again).",
        (Argument("name", ArgKind.SPEC, "The spec to search first here, or `all` (default: show the current one)",
                  required=False),),
        # Everyone in the channel asks with it from now on, so everyone sees what it became.
        private=False,
    ),
    Command(
        "check", "Check a request or response (curl, HTTP or JSON body) against the spec.",
        (
            # Discord's longest string option; the command line and the terminal take up to MAX_CHECK_CHARS
            Argument("request", ArgKind.TEXT, "A curl command, an HTTP request, or a JSON body after POST /path",
                     max_length=6000),
            Argument("spec", ArgKind.SPEC, "Only check against this spec (default: all)", required=False),
        ),
    ),
    Command(
        "diagram", "Draw a spec's auth flow, an overview of its resources, or one schema, as an image.",
        (
            Argument("name", ArgKind.SPEC, "The spec to draw"),
            Argument("what", ArgKind.TEXT, "auth, overview (the default), or the name of a schema", required=False,
                     max_length=100),
        ),
        private=False,
    ),
    Command(
        "lint", "A quality report for a spec: validity, missing descriptions and examples, auth, errors.",
        (Argument("name", ArgKind.SPEC, "The spec to check"),),
    ),
    Command("help", "How to use the API assistant."),
)


def command(name: str) -> Command:
    """The catalogue's command called `name` (KeyError if there is none)."""
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    raise KeyError(name)


def available(surface: str) -> tuple[Command, ...]:
    """The commands that exist on `surface` ("slack", "discord", "console"), in catalogue order."""
    return tuple(c for c in CATALOGUE if surface in c.surfaces)


def find(word: str, surface: str) -> Command | None:
    """The command a typed word names on `surface` (any case), or None."""
    return next((c for c in available(surface) if c.name == word.lower()), None)


@dataclass(frozen=True, eq=False)
class Invocation:
    """One run of a command: who asked, where, with which arguments (text, or an `Attachment` for a file)."""

    command: Command
    origin: Origin
    arguments: Mapping[str, str | Attachment | None] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """A text argument's value ("" when not given)."""
        value = self.arguments.get(name)
        return value if isinstance(value, str) else ""

    def flag(self, name: str) -> bool:
        """A flag argument's value (False when not given)."""
        return self.arguments.get(name) == FLAG_ON

    def attachment(self, name: str) -> Attachment | None:
        """A file argument's attachment, if given."""
        value = self.arguments.get(name)
        return None if value is None or isinstance(value, str) else value
