"""The terminal adapter: a chat in the terminal, using the same core calls as Slack and Discord.

Lines starting with `/` are commands (`/upload`, `/specs`, `/forget`, `/use`, `/help`, `/quit`);
anything else is a question.
"""

from __future__ import annotations

import asyncio
import getpass
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import structlog
from structlog.contextvars import bound_contextvars

from core import messages
from core.answers import Answer
from core.errors import UserFacingError
from core.registry import SpecRecord
from core.requests import AskQuestion, ForgetSpec, ListSpecs, Origin, PathAttachment, UploadSpec, new_request_id
from core.service import Assistant, IngestProgress, IngestReport

log = structlog.get_logger(__name__)

CONSOLE_HELP = """Ask me anything about your uploaded API specs, e.g. "how do I create a customer?".
Commands:
  /upload PATH [NAME]  index a spec file (OpenAPI, Swagger, Postman, GraphQL SDL, Markdown)
  /specs               list indexed specs
  /use NAME            ask only about one spec (/use with no name: all specs)
  /forget NAME         remove a spec
  /help                this help
  /quit                leave"""


def render_answer(answer: Answer) -> str:
    """Answers in the terminal are their Markdown, which reads well as plain text."""
    return answer.as_markdown()


def render_specs(records: list[SpecRecord], stale: Collection[str] = ()) -> str:
    """A table of indexed specs; those in `stale` (left out of search until re-indexed) are marked."""
    if not records:
        return messages.nothing_indexed()
    lines = [f"{'NAME':<28} {'FORMAT':<18} {'VERSION':<14} {'OPS':>5}  INDEXED"]
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.indexed_at))
        line = f"{r.name:<28} {r.format.label:<18} {r.version[:14]:<14} {r.operation_count:>5}  {when}"
        lines.append(line + (f"  ({messages.needs_reindex_marker()})" if r.name in stale else ""))
    return "\n".join(lines)


def render_ingest(report: IngestReport) -> str:
    """What an upload found."""
    record = report.record
    if report.unchanged:
        return f"`{record.name}` is already indexed with exactly this content ({record.operation_count} operations)."
    schemes = f", {len(report.scheme_names)} auth scheme{'s' * (len(report.scheme_names) != 1)}"
    verb = "Updated" if report.replaced else "Indexed"
    text = (
        f"{verb} `{record.name}`: {record.label} ({record.format.label}), "
        f"{record.operation_count} operations{schemes if report.scheme_names else ''} in {report.seconds:.1f}s."
    )
    return "\n".join((text, *report.changes))


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


async def guarded(action: Awaitable[str], ref: str) -> str:
    """Run one user action, turning errors into the message the user sees (the one place that does).

    `ref` is the action's request id, shown in the generic reply to an unexpected error.
    """
    try:
        return await action
    except UserFacingError as exc:
        log.info("user_error", error=type(exc).__name__)
        return exc.user_message
    except Exception:
        log.exception("unexpected_error")
        return messages.unexpected_error(ref)


class ConsoleChat:
    """A terminal conversation with the assistant."""

    def __init__(self, assistant: Assistant, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        self.assistant = assistant
        self.stdin = stdin
        self.stdout = stdout
        self.spec: str | None = None
        self.origin = local_origin("console", "you", channel="terminal", thread="console")

    async def handle(self, line: str) -> str | None:
        """Handle one line of input; returns the reply, or None to quit. Each line is one action (request id)."""
        self.origin = replace(self.origin, request_id=new_request_id())
        with bound_contextvars(request_id=self.origin.request_id):
            return await self._handle(line, self.origin.request_id)

    async def _handle(self, line: str, ref: str) -> str | None:
        line = line.strip()
        if not line:
            return ""
        if not line.startswith("/"):
            return await guarded(self._ask(line), ref)
        try:
            command, *args = shlex.split(line)
        except ValueError:
            return "I couldn't read that command (check the quotes)."
        if command in {"/quit", "/exit"}:
            return None
        if command == "/help":
            return CONSOLE_HELP
        if command == "/specs":
            return await guarded(self._specs(), ref)
        if command == "/upload" and 1 <= len(args) <= 2:
            return await guarded(self._upload(Path(args[0]).expanduser(), args[1] if len(args) > 1 else None), ref)
        if command == "/forget" and len(args) == 1:
            return await guarded(self._forget(args[0]), ref)
        if command == "/use" and len(args) <= 1:
            return await guarded(self._use(args[0] if args else None), ref)
        return f"Unknown command `{line}`.\n{CONSOLE_HELP}"

    async def _ask(self, question: str) -> str:
        answer = await self.assistant.ask(AskQuestion(self.origin, question, self.spec))
        return render_answer(answer)

    async def _specs(self) -> str:
        records = await self.assistant.list_specs(ListSpecs(self.origin))
        return render_specs(records, self.assistant.stale_specs(self.origin.scope))

    async def _upload(self, path: Path, name: str | None) -> str:
        if not path.is_file():
            return f"There's no file at `{path}`."
        report = await self.assistant.ingest(
            UploadSpec(self.origin, PathAttachment(path), name), progress_printer(self.stdout)
        )
        return render_ingest(report)

    async def _forget(self, name: str) -> str:
        record = await self.assistant.forget(ForgetSpec(self.origin, name))
        if self.spec == name:
            self.spec = None
        return f"Forgot `{record.name}`."

    async def _use(self, name: str | None) -> str:
        if name is None:
            self.spec = None
            return "Questions now search all indexed specs."
        self.assistant.search_scope(self.origin.scope, name)  # raises a friendly error for unknown names
        self.spec = name
        return f"Questions now search only `{name}`."

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
