"""The terminal adapter: a chat in the terminal, running the same catalogue commands as Slack and Discord.

Lines starting with `/` are the catalogue's terminal commands (`/ask`, `/upload`, `/specs`, `/forget`, `/use`,
`/help`, typed as `core.commands.syntax.TypedSyntax` reads them) and `/quit`; anything else is a question.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import structlog
from structlog.contextvars import bound_contextvars

from core import messages
from core.actions import Attachment, Origin, PathAttachment, new_request_id
from core.assistant import Assistant
from core.commands.catalogue import CONSOLE, ArgKind, Invocation, available, command, find
from core.commands.handlers import run_command
from core.commands.syntax import TypedSyntax, help_markdown, split_command
from core.diffs.report import ReportFile
from core.errors import UserFacingError
from core.library import IngestProgress
from core.registry import SpecRecord
from core.replies import Delivery, HelpReply, Reply, ReplyMarkup, SpecListReply, guarded, spec_list

log = structlog.get_logger(__name__)

SYNTAX = TypedSyntax("/")
QUIT = ("/quit", "/exit")
WAYS = (
    'Type a question to ask it, e.g. "how do I create a customer?". Lines starting with `/` are commands; '
    "`/quit` leaves."
)


def specs_table(reply: SpecListReply) -> str:
    """A table of indexed specs; those left out of search until re-indexed are marked."""
    if not reply.specs:
        return messages.nothing_indexed()
    lines = [f"{'NAME':<28} {'FORMAT':<18} {'VERSION':<14} {'OPS':>5} {'KEPT':>4}  INDEXED"]
    for spec in reply.specs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(spec.indexed_at))
        line = (
            f"{spec.name:<28} {spec.format:<18} {spec.version[:14]:<14} {spec.operations:>5} {spec.versions:>4}  {when}"
        )
        lines.append(line + (f"  ({', '.join(spec.markers)})" if spec.markers else ""))
    return "\n".join(lines)


def render_specs(records: list[SpecRecord], stale: Collection[str] = ()) -> str:
    """A table of `records`; those in `stale` are marked."""
    return specs_table(spec_list(records, stale))


MARKUP: ReplyMarkup[str] = ReplyMarkup(
    answer=lambda reply: reply.answer.as_markdown(),  # Markdown reads well as plain text
    specs=specs_table,
    ingest=lambda reply: "\n".join((reply.headline(timed=True), *reply.changes)),
    help=lambda reply: help_markdown(reply.commands, SYNTAX, WAYS),
    text=str,
)
"""The core's replies as terminal text."""


class TerminalReply(Delivery[str]):
    """The reply to one line: indexing progress goes to `progress`, the reply (or error) is kept as text."""

    markup = MARKUP

    def __init__(
        self, progress: Callable[[IngestProgress], None] | None = None, *, files_dir: Path | None = None,
        out: Path | None = None,
    ) -> None:
        self.show_progress = progress
        self.reply: Reply | None = None
        self.text = ""
        self.files_dir = files_dir  # where files a reply carries are written (default: the working directory)
        self.out = out  # the first file goes here instead (`api-assistant diagram … --out FILE.png`)
        self.saved: list[Path] = []

    def progress(self, progress: IngestProgress) -> None:
        """Show indexing progress."""
        if self.show_progress is not None:
            self.show_progress(progress)

    async def final(self, reply: Reply) -> None:
        """Keep the reply, and its text."""
        self.reply = reply
        await super().final(reply)

    async def deliver(self, rendered: str) -> None:
        """Keep the text."""
        self.text = rendered

    async def attach(self, report: ReportFile) -> bool:
        """Write the reply's file (to `out` when given) and say where, after the reply's text."""
        folder = self.files_dir if self.files_dir is not None else Path.cwd()
        path = self.out if self.out is not None else folder / Path(report.filename).name
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, report.content)
        self.saved.append(path)
        self.text += "\n" + messages.diagram_saved(str(path))
        return True


async def run_local(
    assistant: Assistant, origin: Origin, name: str, arguments: Mapping[str, str | Attachment | None],
    progress: Callable[[IngestProgress], None] | None = None, *, out: Path | None = None,
) -> str:
    """Run a catalogue command for the local operator and return its reply as text (errors are raised).

    Files the reply carries are written to the working directory (the first to `out`, when given).
    """
    reply = TerminalReply(progress, out=out)
    await run_command(assistant, Invocation(command(name), origin, arguments), reply)
    return reply.text


def local_origin(platform: str, user: str, **fields: str) -> Origin:
    """The terminal's origin: whoever runs the program owns the local workspace, so they are its admin."""
    return Origin(platform=platform, workspace="local", user=user, user_name=_login_name(), is_admin=True, **fields)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user database entry (some containers)
        return ""


def progress_printer(stream: TextIO) -> Callable[[IngestProgress], None]:
    """Show ingest progress on one updating line, at most a few times a second."""
    last = [0.0]

    def show(progress: IngestProgress) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and progress.done != progress.total:
            return
        last[0] = now
        stream.write("\r" + progress.message.ljust(40))
        if progress.total and progress.done == progress.total and progress.stage == "storing":
            stream.write("\n")
        stream.flush()

    return show


class ConsoleChat:
    """A terminal conversation with the assistant."""

    def __init__(self, assistant: Assistant, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        self.assistant = assistant
        self.stdin = stdin
        self.stdout = stdout
        self.origin = local_origin(CONSOLE, "you", channel="terminal", thread="console")

    async def handle(self, line: str) -> str | None:
        """Handle one line of input; returns the reply, or None to quit. Each line is one action (request id)."""
        self.origin = replace(self.origin, request_id=new_request_id())
        with bound_contextvars(request_id=self.origin.request_id):
            line = line.strip()
            if not line:
                return ""
            word, _ = split_command(line)
            if word in QUIT:
                return None
            if line.startswith("/") and find(word[1:], CONSOLE) is None:
                return f"Unknown command `{line}`.\n{MARKUP.help(HelpReply(available(CONSOLE)))}"
            return await self.execute(line)

    async def execute(self, line: str | Invocation) -> str:
        """Run a line (or a ready invocation) as one action; errors become the reply, as on every platform."""
        reply = TerminalReply(progress_printer(self.stdout), files_dir=self.assistant.settings.data_dir / "files")
        await guarded(self._run(line, reply), reply.fail, ref=self.origin.request_id, logger=log)
        return reply.text

    async def _run(self, line: str | Invocation, reply: TerminalReply) -> None:
        invocation = self._invocation(line) if isinstance(line, str) else line
        await run_command(self.assistant, invocation, reply)

    def _invocation(self, line: str) -> Invocation:
        """A line as a command: `/name ARGS`, or a question (the terminal's `/use`d spec first, as in a channel)."""
        if not line.startswith("/"):
            return Invocation(command("ask"), self.origin, {"question": line})
        word, rest = split_command(line)
        typed = find(word[1:], CONSOLE)
        assert typed is not None  # unknown commands are answered before
        arguments: dict[str, str | Attachment | None] = dict(SYNTAX.parse(typed, rest))
        for argument in typed.arguments:
            if argument.kind is ArgKind.FILE:
                arguments[argument.name] = _local_file(arguments[argument.name])
        return Invocation(typed, self.origin, arguments)

    async def run(self) -> None:
        """Read lines until /quit or end of input."""
        self.stdout.write("API assistant. Ask a question, or /help for commands.\n")
        while True:
            self.stdout.write("\n> ")
            self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                break
            reply = await self.handle(line)
            if reply is None:
                break
            if reply:
                self.stdout.write(reply + "\n")
        self.stdout.write("Bye!\n")


def _local_file(typed: str | Attachment | None) -> PathAttachment:
    path = Path(str(typed)).expanduser()
    if not path.is_file():
        raise UserFacingError(f"There's no file at `{path}`.")
    return PathAttachment(path)
