"""What each command of the catalogue does: one core handler per command, turning it into a core request.

`run_command` is how every adapter runs a command: the handler shows progress on the adapter's sink and
returns the `Reply`, which the sink delivers. Errors are not caught here; the adapter's `guarded` turns them
into the reply the user sees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core import messages
from core.actions import (
    AskQuestion,
    CheckRequest,
    DiffSpec,
    DrawDiagram,
    ForgetSpec,
    LintSpec,
    ListSpecs,
    Origin,
    UploadSpec,
    UseSpec,
)
from core.answers import read_answer
from core.assistant import Assistant
from core.channels import CLEAR_WORD
from core.checks.service import check_answer, checked_summary
from core.commands.catalogue import Invocation, available
from core.diffs.report import ReportFile
from core.replies import (
    AnswerReply,
    DiffReply,
    FileReply,
    HelpReply,
    IngestReply,
    Reply,
    ReplySink,
    TextReply,
    on_loop,
    spec_list,
)

Handler = Callable[[Assistant, Invocation, ReplySink], Awaitable[Reply]]
MAX_CHOICES = 25  # Discord offers at most 25 autocomplete choices


async def ask(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Answer a question, streaming status and text to the sink."""
    request = AskQuestion(invocation.origin, invocation.text("question"), invocation.text("spec") or None)
    answer = await read_answer(assistant.stream_answer(request), sink)
    return AnswerReply(answer, request.question)


async def upload(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Index an attached spec, reporting indexing progress to the sink."""
    attachment = invocation.attachment("file")
    if attachment is None:
        raise ValueError("upload needs a file")  # the adapters always pass one: a bug otherwise
    request = UploadSpec(invocation.origin, attachment, invocation.text("name") or None, invocation.flag("private"))
    return IngestReply.of(await assistant.ingest(request, on_loop(sink.progress)))


async def specs(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """The specs the channel sees, with those that need a re-index, its default and private ones marked."""
    origin = invocation.origin
    records = await assistant.list_specs(ListSpecs(origin))
    versions = await assistant.version_counts(origin.scope)
    return spec_list(records, assistant.stale_specs(origin.scope), versions, await assistant.channel_default(origin))


async def forget(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Remove a spec (its uploader or an admin: the core checks)."""
    record = await assistant.forget(ForgetSpec(invocation.origin, invocation.text("name")))
    return TextReply(messages.forgot(record.name))


async def diff(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Compare two kept versions of a spec: a summary, with the full report as a file when it is long."""
    request = DiffSpec(
        invocation.origin, invocation.text("name"), invocation.text("before") or None, invocation.text("after") or None
    )
    return DiffReply.of(await assistant.diff(request))


async def use(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Set the channel's default spec (checked to be one it sees and can search), show it, or clear it (`all`)."""
    name = invocation.text("name") or None
    clear = name is not None and name.lower() == CLEAR_WORD
    return TextReply(await assistant.use(UseSpec(invocation.origin, None if clear else name, clear)))


async def check(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Check a pasted request or response; the reply echoes what was checked, never the pasted text itself."""
    await sink.status(messages.checking())
    request = CheckRequest(invocation.origin, invocation.text("request"), invocation.text("spec") or None)
    report = await assistant.check(request)
    return AnswerReply(check_answer(report), checked_summary(report))


async def diagram(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """Draw a diagram of a spec: the caption, with the PNG as a file."""
    await sink.status(messages.drawing())
    name = invocation.text("name")
    request = DrawDiagram(invocation.origin, name, invocation.text("what") or "overview")
    drawn, png = await assistant.diagram(request)
    return FileReply(messages.diagram_caption(drawn.kind, name, drawn.subject, drawn.notes), png)


async def lint(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """A spec's quality report: the summary, with the full report as a file when the summary leaves things out."""
    await sink.status(messages.linting())
    report = await assistant.lint(LintSpec(invocation.origin, invocation.text("name")))
    full = ReportFile(report.filename(), report.full_text().encode("utf-8"), messages.lint_report_caption(report.name))
    return FileReply(report.summary(), full if report.needs_file() else None)


async def show_help(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> Reply:
    """The help, listing the commands of the platform it was asked on (and that answers are not generated)."""
    notes = () if assistant.generator is not None else (messages.generation_off_note(),)
    return HelpReply(available(invocation.origin.platform), notes)


HANDLERS: dict[str, Handler] = {
    "ask": ask,
    "upload": upload,
    "specs": specs,
    "forget": forget,
    "diff": diff,
    "use": use,
    "check": check,
    "diagram": diagram,
    "lint": lint,
    "help": show_help,
}


async def run_command(assistant: Assistant, invocation: Invocation, sink: ReplySink) -> None:
    """Run one command: its handler's progress and reply go to `sink`."""
    handler = HANDLERS[invocation.command.name]
    await sink.final(await handler(assistant, invocation, sink))


async def complete_spec(assistant: Assistant, origin: Origin, typed: str) -> list[str]:
    """Spec names for an argument being typed: those whose name or title contains it, prefix matches first."""
    records = await assistant.list_specs(ListSpecs(origin))
    needle = typed.lower().strip()
    names = [r.name for r in records if needle in r.name.lower() or needle in r.title.lower()]
    names.sort(key=lambda n: (not n.lower().startswith(needle), n))
    return names[:MAX_CHOICES]
