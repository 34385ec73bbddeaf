"""The command catalogue, its typed syntax, and each command's core handler.

Platform conformance (each platform exposes exactly the catalogue) is tested beside each adapter; the typed
examples below are shared with those tests, so a new command needs one here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core import messages
from core.actions import Origin, PathAttachment
from core.commands.catalogue import (
    CATALOGUE,
    CONSOLE,
    DISCORD,
    EVERYWHERE,
    SLACK,
    ArgKind,
    Invocation,
    available,
    command,
    find,
)
from core.commands.handlers import HANDLERS, complete_spec, run_command
from core.commands.syntax import OptionSyntax, TypedSyntax, help_markdown
from core.errors import ChannelSettingError, CommandUsageError, PermissionDeniedError, SpecNotFoundError
from core.library import IngestProgress
from core.replies import (
    AnswerReply,
    FileReply,
    HelpReply,
    IngestReply,
    QuietSink,
    Reply,
    SpecListReply,
    TextReply,
)
from tests.core.test_pathological_inputs import FAST, bounded, text_inputs

# One typed example per command (after `/api ` in Slack, `/` in the terminal) and the arguments it holds.
TYPED_EXAMPLES: dict[str, tuple[str, dict[str, str]]] = {
    "ask": ("ask how do I refund? spec:bookshop", {"question": "how do I refund?", "spec": "bookshop"}),
    "upload": (
        'upload "specs/my shop.yaml" petshop --private',
        {"file": "specs/my shop.yaml", "name": "petshop", "private": "true"},
    ),
    "specs": ("specs", {}),
    "forget": ("forget bookshop", {"name": "bookshop"}),
    "diff": ("diff bookshop 1 v3", {"name": "bookshop", "before": "1", "after": "v3"}),
    "use": ("use bookshop", {"name": "bookshop"}),
    "check": (
        "check curl https://api.bookshop.example/v1/orders -d x=1 spec:bookshop",
        {"request": "curl https://api.bookshop.example/v1/orders -d x=1", "spec": "bookshop"},
    ),
    "diagram": ("diagram bookshop Book", {"name": "bookshop", "what": "Book"}),
    "lint": ("lint bookshop", {"name": "bookshop"}),
    "help": ("help", {}),
}
DISCORD_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


def test_the_catalogue_is_well_formed() -> None:
    names = [c.name for c in CATALOGUE]
    assert len(set(names)) == len(names)
    assert set(HANDLERS) == set(names), "every command needs its core handler"
    assert set(TYPED_EXAMPLES) == set(names), "every command needs a typed example above"
    for entry in CATALOGUE:
        assert DISCORD_NAME.match(entry.name) and 1 <= len(entry.summary) <= 100
        assert entry.surfaces and entry.surfaces <= EVERYWHERE
        assert len({a.name for a in entry.arguments}) == len(entry.arguments)
        assert sum(a.kind is ArgKind.TEXT for a in entry.arguments) <= 1  # free text takes the rest of the line
        for argument in entry.arguments:
            assert DISCORD_NAME.match(argument.name) and 1 <= len(argument.description) <= 100
            assert 1 <= argument.max_length <= 6000  # Discord's bounds for a string option


def test_surfaces() -> None:
    assert [c.name for c in available(SLACK)] == [
        "ask", "specs", "forget", "diff", "use", "check", "diagram", "lint", "help"]
    assert [c.name for c in available(DISCORD)] == [
        "ask", "upload", "specs", "forget", "diff", "use", "check", "diagram", "lint", "help"]
    assert [c.name for c in available(CONSOLE)] == [
        "ask", "upload", "specs", "forget", "diff", "use", "check", "diagram", "lint", "help"]
    assert find("FORGET", SLACK) is command("forget") and find("upload", SLACK) is None
    with pytest.raises(KeyError):
        command("nope")


@pytest.mark.parametrize("name", sorted(TYPED_EXAMPLES))
def test_typed_examples_parse_to_their_arguments(name: str) -> None:
    text, expected = TYPED_EXAMPLES[name]
    word, _, rest = text.partition(" ")
    typed = find(word, CONSOLE)
    assert typed is command(name)
    assert TypedSyntax("/").parse(typed, rest) == expected


def test_usage_is_derived_from_the_arguments() -> None:
    slack, terminal, discord = TypedSyntax("/api "), TypedSyntax("/"), OptionSyntax("/api ")
    assert slack.usage(command("ask")) == "/api ask QUESTION [spec:NAME]"
    assert slack.usage(command("forget")) == "/api forget NAME"
    assert terminal.usage(command("upload")) == "/upload PATH [NAME] [--private]"
    assert terminal.usage(command("use")) == "/use [NAME]"
    assert discord.usage(command("ask")) == "/api ask question:<text> [spec:<name>]"
    assert discord.usage(command("upload")) == "/api upload file:<attachment> [name:<name>] [private:<true>]"
    assert slack.usage(command("use")) == "/api use [NAME]"


def test_typed_mistakes_get_a_usage_hint() -> None:
    syntax = TypedSyntax("/api ")
    with pytest.raises(CommandUsageError) as missing:
        syntax.parse(command("forget"), "  ")
    assert missing.value.user_message == (
        "Tell me which spec to forget: `/api forget NAME` (see `/api specs` for the names).")
    with pytest.raises(CommandUsageError, match="the command is `/api forget NAME`"):
        syntax.parse(command("forget"), "bookshop petshop")
    with pytest.raises(CommandUsageError, match="check the quotes"):
        syntax.parse(command("forget"), '"book shop')
    assert syntax.parse(command("ask"), "") == {"question": ""}  # the core answers an empty question itself
    assert syntax.parse(command("ask"), "spec:stripe how?") == {"question": "how?", "spec": "stripe"}
    assert syntax.parse(command("forget"), "'book shop'") == {"name": "book shop"}
    upload = TypedSyntax("/").parse
    assert upload(command("upload"), "--private a.yaml") == {"file": "a.yaml", "private": "true"}
    assert upload(command("upload"), "a.yaml") == {"file": "a.yaml"}
    assert upload(command("upload"), "a--private.yaml") == {"file": "a--private.yaml"}  # a word, not a part


@FAST
@given(st.one_of(text_inputs(), st.text(max_size=300)))
@example('"' + "a " * 60_000)
@example("spec:" * 30_000)
def test_parsing_is_bounded_and_only_refuses_politely(text: str) -> None:
    syntax = TypedSyntax("/")
    for entry in CATALOGUE:
        parsed = bounded(syntax.parse, entry, text)
        assert isinstance(parsed, dict | CommandUsageError)


def test_help_lists_each_surfaces_commands_with_the_same_words() -> None:
    syntaxes = {SLACK: TypedSyntax("/api "), DISCORD: OptionSyntax("/api "), CONSOLE: TypedSyntax("/")}
    for surface, syntax in syntaxes.items():
        text = help_markdown(available(surface), syntax, "WAYS")
        listed = re.findall(r"^• `([^`\s]+)", text, re.MULTILINE)
        assert listed == [syntax.usage(c).split()[0] for c in available(surface)]
        assert text.startswith(messages.HELP_INTRO) and text.endswith(messages.HELP_RULES) and "WAYS" in text
        assert all(c.summary in text for c in available(surface))


# ---- the handlers, on the real core ---------------------------------------------------------------------------


class Recording(QuietSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.reply: Reply | None = None

    async def status(self, text: str) -> None:
        self.events.append(("status", text))

    async def partial(self, text: str) -> None:
        self.events.append(("partial", text))

    def progress(self, progress: IngestProgress) -> None:
        self.events.append(("progress", progress.stage))

    async def final(self, reply: Reply) -> None:
        self.reply = reply


ADMIN = Origin("console", "local", channel="terminal", user="you", user_name="ada", is_admin=True)


async def run(
    assistant: Any, name: str, arguments: dict[str, Any] | None = None, origin: Origin = ADMIN
) -> tuple[Reply, Recording]:
    sink = Recording()
    await run_command(assistant, Invocation(command(name), origin, arguments or {}), sink)
    assert sink.reply is not None
    return sink.reply, sink


async def test_each_handler_turns_its_command_into_a_core_request(assistant: Any, example_spec: Path) -> None:
    reply, sink = await run(assistant, "upload", {"file": PathAttachment(example_spec), "name": "bookshop"})
    assert isinstance(reply, IngestReply) and (reply.name, reply.operations, reply.unchanged) == ("bookshop", 7, False)
    assert ("progress", "embedding") in sink.events

    reply, _ = await run(assistant, "specs")
    assert isinstance(reply, SpecListReply)
    assert [(s.name, s.label, s.format, s.operations_text) for s in reply.specs] == [
        ("bookshop", "Bookshop API 1.2.0", "OpenAPI 3", "7 operations, 1 version kept")]

    reply, sink = await run(assistant, "ask", {"question": "how do I refund an order?", "spec": "bookshop"})
    assert isinstance(reply, AnswerReply) and reply.question == "how do I refund an order?"
    assert "POST /orders/{orderId}/refund" in reply.answer.as_markdown()
    assert ("status", messages.searching()) in sink.events

    reply = await run_reply(assistant, "use", {"name": "bookshop"})
    assert reply == TextReply(messages.channel_default_set("bookshop"))
    assert await run_reply(assistant, "use") == TextReply(messages.channel_default_shown("bookshop"))
    reply, _ = await run(assistant, "specs")
    assert isinstance(reply, SpecListReply) and reply.specs[0].default
    assert await run_reply(assistant, "use", {"name": "ALL"}) == TextReply(messages.channel_default_cleared("bookshop"))
    assert await run_reply(assistant, "use") == TextReply(messages.channel_default_shown(None))
    with pytest.raises(SpecNotFoundError):
        await run(assistant, "use", {"name": "nope"})
    with pytest.raises(ChannelSettingError):  # the command line has no channel to remember it for
        await run(assistant, "use", {"name": "bookshop"}, Origin("cli", "local", user="you", is_admin=True))

    reply, sink = await run(assistant, "diagram", {"name": "bookshop", "what": "auth"})
    assert isinstance(reply, FileReply) and reply.text.startswith("Auth flow of `bookshop`")
    assert reply.report is not None and reply.report.filename == "bookshop-auth.png"
    assert ("status", messages.drawing()) in sink.events
    reply, _ = await run(assistant, "lint", {"name": "bookshop"})
    assert isinstance(reply, FileReply) and "Quality report for `bookshop`" in reply.text
    assert reply.report is not None and reply.report.filename == "bookshop-lint.txt"  # the summary lists 3 per kind
    assert b"#/components/schemas/Book/properties/isbn" in reply.report.content

    reply, _ = await run(assistant, "help", origin=Origin("slack", "T1"))
    assert reply == HelpReply(available(SLACK), (messages.generation_off_note(),))  # no GROQ_API_KEY here
    assert await complete_spec(assistant, ADMIN, "BOOK") == ["bookshop"]
    assert await complete_spec(assistant, ADMIN, "zzz") == []

    stranger = Origin("console", "local", user="someone-else")
    with pytest.raises(PermissionDeniedError):
        await run(assistant, "forget", {"name": "bookshop"}, stranger)
    assert await run_reply(assistant, "forget", {"name": "bookshop"}) == TextReply(messages.forgot("bookshop"))
    reply, _ = await run(assistant, "specs")
    assert reply == SpecListReply(())


async def run_reply(assistant: Any, name: str, arguments: dict[str, Any] | None = None) -> Reply:
    reply, _ = await run(assistant, name, arguments)
    return reply
