"""The reply pipeline: what the core answers to one user action, and how an error becomes a reply.

Every action (a command, a mention, an upload) ends in exactly one `Reply`, a small platform-neutral value:
a text, an answer, a spec list, an ingest report or the help. While it runs, the core shows progress on the
adapter's `ReplySink` (status lines, the answer written so far, indexing progress). Adapters keep only
transport (post, edit, stream, ephemeral) and markup: each implements a `ReplyMarkup` (Block Kit, Discord
markdown, terminal text) and `render_reply` picks the right method.

`guarded` is the one place where an error becomes a reply, for every adapter: user-facing errors show their
message, a platform's own API errors are logged as such (see `Transport`), anything else is logged with its
traceback and the user gets the generic message naming the action's request id.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import structlog

from core import messages
from core.answers import Answer, AnswerView
from core.errors import RateLimitedError, UserFacingError
from core.registry import SpecRecord

if TYPE_CHECKING:
    from core.commands.catalogue import Command
    from core.diffs.report import DiffReport, ReportFile
    from core.library import IngestProgress, IngestReport

T = TypeVar("T")
Logger = structlog.typing.FilteringBoundLogger
log = structlog.get_logger(__name__)


# ---- replies -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextReply:
    """A sentence or two in Markdown's common subset (confirmations, usage hints)."""

    text: str


@dataclass(frozen=True)
class AnswerReply:
    """An answer to a question."""

    answer: Answer
    question: str


@dataclass(frozen=True)
class SpecEntry:
    """One indexed spec, as every spec list shows it."""

    name: str
    label: str  # title and version
    format: str  # "OpenAPI 3", "Postman 2.1", ...
    version: str
    operations: int
    indexed_at: float
    needs_reindex: bool  # left out of search until re-indexed (vectors of another embedding model)
    versions: int = 1  # versions kept (this one and earlier ones, for diffs)
    default: bool = False  # the default spec of the channel the list was asked in (`use NAME`)
    private: bool = False  # visible only in the channel the list was asked in

    @property
    def operations_text(self) -> str:
        """"7 operations, 3 versions kept"."""
        return messages.count(self.operations, "operation") + ", " + messages.versions_text(self.versions)

    @property
    def markers(self) -> tuple[str, ...]:
        """What lists add after a spec: needs a re-index, this channel's default, only this channel."""
        shown = (
            (self.needs_reindex, messages.needs_reindex_marker()),
            (self.default, messages.default_marker()),
            (self.private, messages.private_marker()),
        )
        return tuple(text for on, text in shown if on)


@dataclass(frozen=True)
class SpecListReply:
    """The specs of a workspace (none: nothing indexed yet)."""

    specs: tuple[SpecEntry, ...]


@dataclass(frozen=True)
class IngestReply:
    """What an upload did, in words every platform shows the same way."""

    name: str
    label: str
    format: str
    operations: int
    schemes: int
    unchanged: bool  # the exact same file was already indexed under this name
    replaced: bool
    seconds: float
    changes: tuple[str, ...] = ()  # where requests go, how they authenticate: what a replacement changed
    warnings: tuple[str, ...] = ()
    private: bool = False  # visible only in the channel it was uploaded to

    @classmethod
    def of(cls, report: IngestReport) -> IngestReply:
        """The reply for an ingest report."""
        record = report.record
        changes = report.changes + (upload_diff_lines(report.diff) if report.diff is not None else ())
        if record.private:
            changes = (messages.uploaded_private(record.name), *changes)
        changes += (report.quality,) if report.quality else ()
        return cls(
            record.name, record.label, record.format.label, record.operation_count, len(report.scheme_names),
            report.unchanged, report.replaced, report.seconds, changes, report.warnings, record.private,
        )

    def headline(self, escape: Callable[[str], str] = str, *, timed: bool = False) -> str:
        """The summary sentence; `escape` protects the spec's own label in the platform's markup."""
        if self.unchanged:
            return messages.already_indexed(self.name, self.operations)
        return messages.indexed(
            self.replaced, self.name, escape(self.label), self.format, self.operations, self.schemes,
            self.seconds if timed else None,
        )

    def shown_warnings(self, limit: int) -> tuple[list[str], str]:
        """The first `limit` warnings, and the "…and N more warnings" line ("" when all are shown)."""
        more = len(self.warnings) - limit
        return list(self.warnings[:limit]), messages.more_warnings(more) if more > 0 else ""


@dataclass(frozen=True)
class HelpReply:
    """How to use the assistant: the commands of the platform it is asked on, and notes on how it runs here."""

    commands: tuple[Command, ...]
    notes: tuple[str, ...] = ()  # the operator's settings people should know of ("generated answers are off")


@dataclass(frozen=True)
class DiffReply:
    """A diff of two versions: its summary, and the full report as a file when the summary leaves things out."""

    text: str
    report: ReportFile | None = None

    @classmethod
    def of(cls, diff: DiffReport) -> DiffReply:
        """The reply for a diff."""
        return cls(diff.summary(), diff.file() if diff.needs_file() else None)


def upload_diff_lines(diff: DiffReport) -> tuple[str, ...]:
    """What a re-upload changed, for its reply: breaking changes first, then the rest counted."""
    from core.diffs.report import UPLOAD_BREAKING, change_line

    if diff.diff.empty:
        return ()
    found = diff.diff
    lines = [messages.upload_changes_heading(found.breaking_count)]
    lines += [f"• {change_line(c)}" for c in found.breaking[:UPLOAD_BREAKING]]
    more = found.breaking_count - min(len(found.breaking), UPLOAD_BREAKING)
    if more > 0:
        lines.append(messages.diff_more_breaking(more, attached=False))
    counts = found.counts(False)
    if counts:
        lines.append("• " + ", ".join(f"{messages.rule_name(rule)}: {n}" for rule, n in list(counts.items())[:6]))
    lines.append(messages.diff_see_more(diff.name))
    return tuple(lines)


@dataclass(frozen=True)
class FileReply:
    """A few lines of text with a file to attach: a diagram's PNG, a quality report in full."""

    text: str
    report: ReportFile | None = None


Reply = TextReply | AnswerReply | SpecListReply | IngestReply | HelpReply | DiffReply | FileReply


def reply_report(reply: Reply) -> ReportFile | None:
    """The file that goes with a reply, if any: a diff's full report (from `/api diff` or a question about changes)."""
    if isinstance(reply, DiffReply | FileReply):
        return reply.report
    if isinstance(reply, AnswerReply):
        return reply.answer.report
    return None


@dataclass(frozen=True)
class ReplyMarkup(Generic[T]):
    """One platform's markup for each kind of reply (a new command that replies in text needs none)."""

    answer: Callable[[AnswerReply], T]
    specs: Callable[[SpecListReply], T]
    ingest: Callable[[IngestReply], T]
    help: Callable[[HelpReply], T]
    text: Callable[[str], T]  # any other reply, and errors


def render_reply(reply: Reply, markup: ReplyMarkup[T]) -> T:
    """`reply` in the platform's markup."""
    if isinstance(reply, AnswerReply):
        return markup.answer(reply)
    if isinstance(reply, SpecListReply):
        return markup.specs(reply)
    if isinstance(reply, IngestReply):
        return markup.ingest(reply)
    if isinstance(reply, HelpReply):
        return markup.help(reply)
    return markup.text(reply.text)


def spec_list(
    records: Sequence[SpecRecord],
    stale: Collection[str] = (),
    versions: Mapping[str, int] | None = None,
    default: str | None = None,
) -> SpecListReply:
    """The reply listing `records`; those named in `stale` are marked as needing a re-index.

    `versions` counts each spec's kept versions (1 when not given); `default` is the channel's default spec,
    marked as such, and private specs (listed only in their own channel) are marked too.
    """
    kept = versions or {}
    return SpecListReply(tuple(
        SpecEntry(
            r.name, r.label, r.format.label, r.version, r.operation_count, r.indexed_at, r.name in stale,
            kept.get(r.name, 1), r.name == default, r.private,
        )
        for r in records
    ))


def specs_markdown(reply: SpecListReply) -> str:
    """A spec list as plain Markdown (answers to "what specs do you have?")."""
    if not reply.specs:
        return messages.nothing_indexed()
    lines = [
        f"• `{s.name}`: {s.label} ({s.format}, {s.operations_text})" + "".join(f", {m}" for m in s.markers)
        for s in reply.specs
    ]
    return messages.specs_listed() + "\n" + "\n".join(lines)


# ---- showing progress --------------------------------------------------------------------------------------


class ReplySink(AnswerView, Protocol):
    """Where one action's progress and reply go: an adapter's transport for one reply."""

    def progress(self, progress: IngestProgress) -> None:
        """Indexing progress (called on the event loop's thread)."""
        ...

    async def final(self, reply: Reply) -> None:
        """Deliver the reply."""
        ...


class QuietSink:
    """A sink that shows no progress; subclasses deliver the final reply."""

    async def status(self, text: str) -> None:
        """Not shown."""

    async def partial(self, text: str) -> None:
        """Not shown."""

    def progress(self, progress: IngestProgress) -> None:
        """Not shown."""


class Delivery(QuietSink, ABC, Generic[T]):
    """A sink that delivers the reply, or an error, rendered in its `markup` (`core.live.LiveReply` shows progress).

    A reply that carries a file (`reply_report`) is delivered first, then the file is attached (`attach`), so a
    failed upload never costs the reply itself: it is logged and a line saying so follows the reply (`add`).
    """

    markup: ReplyMarkup[T]
    transport: Transport  # whose API errors `attach` may raise (set by subclasses; LOCAL when not)

    async def final(self, reply: Reply) -> None:
        """Deliver the reply, then attach its file, if it has one."""
        await self.deliver(render_reply(reply, self.markup))
        await attach_report(self, reply, log)

    async def fail(self, text: str) -> None:
        """Deliver an error (the user message `guarded` chose)."""
        await self.deliver(self.markup.text(text))

    @abstractmethod
    async def deliver(self, rendered: T) -> None:
        """Send the rendered reply."""

    async def attach(self, report: ReportFile) -> bool:
        """Upload `report` after the reply; False: this platform attaches no files (the default), nothing was sent."""
        return False

    async def add(self, rendered: T) -> None:
        """Send one more message after the delivered reply (by default: deliver it again)."""
        await self.deliver(rendered)


async def attach_report(sink: Delivery[T], reply: Reply, logger: Logger) -> None:
    """Attach the reply's file, if it has one. Never raises (but cancellation): the reply is already shown.

    A failed upload is logged (`report_attach_failed`, with the platform's error code) and followed by a line
    saying the full report could not be attached; if even that line fails, it is logged.
    """
    report = reply_report(reply)
    if report is None:
        return
    transport = getattr(sink, "transport", LOCAL)
    try:
        attached = await sink.attach(report)
    except Exception as exc:
        fields = transport.describe(exc)
        if fields is None:
            logger.warning("report_attach_failed", filename=report.filename, bytes=len(report.content),
                           exc_info=True)
        else:
            logger.warning("report_attach_failed", filename=report.filename, bytes=len(report.content), **fields)
        try:
            await sink.add(sink.markup.text(messages.report_not_attached()))
        except Exception as notice_failure:
            logger.warning(f"{transport.name}_reply_failed", **(transport.describe(notice_failure) or {
                "error": type(notice_failure).__name__}))
        return
    if attached:
        logger.info("report_attached", filename=report.filename, bytes=len(report.content))



def on_loop(callback: Callable[[T], None]) -> Callable[[T], None]:
    """`callback`, callable from any thread: calls from other threads run on the current event loop.

    The core reports indexing progress from worker threads; sinks update chat messages on the loop.
    """
    loop = asyncio.get_running_loop()

    def relay(value: T) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(value)
        else:
            loop.call_soon_threadsafe(callback, value)

    return relay


# ---- errors ------------------------------------------------------------------------------------------------


def _not_a_platform_error(exc: Exception) -> dict[str, Any] | None:
    return None


def _never(exc: Exception) -> bool:
    return False


@dataclass(frozen=True)
class Transport:
    """What `guarded` needs to know about one platform's own API errors (the core knows none of them)."""

    name: str  # prefixes the log events `<name>_api_error` and `<name>_reply_failed`
    describe: Callable[[Exception], dict[str, Any] | None] = _not_a_platform_error  # log fields of an API error
    mute: Callable[[Exception], bool] = _never  # after this API error a reply would fail too: send none


LOCAL = Transport("local")


async def guarded(
    action: Awaitable[object],
    send_error: Callable[[str], Awaitable[object]],
    *,
    ref: str,
    logger: Logger,
    transport: Transport = LOCAL,
) -> None:
    """Run one user action, turning any error into the reply the user sees: the one place that does.

    `UserFacingError`s show their message; the platform's API errors (`transport`) are logged with their
    code; anything else is logged with its traceback. In both of those cases the user gets
    `messages.unexpected_error(ref)` (`ref`: the action's request id), never exception text. If even that
    reply fails, it is logged and dropped: nothing here raises (but cancellation).
    """
    try:
        await action
        return
    except UserFacingError as exc:
        extra = {"retry_after": round(exc.retry_after, 1)} if isinstance(exc, RateLimitedError) else {}
        logger.info("user_error", error=type(exc).__name__, **extra)
        text = exc.user_message
    except Exception as exc:
        fields = transport.describe(exc)
        if fields is None:
            logger.exception("unexpected_error")
        else:
            logger.warning(f"{transport.name}_api_error", **fields)
            if transport.mute(exc):
                return
        text = messages.unexpected_error(ref)
    try:
        await send_error(text)
    except Exception as exc:
        fields = transport.describe(exc)
        if fields is None:
            logger.exception(f"{transport.name}_reply_failed")
        else:
            logger.warning(f"{transport.name}_reply_failed", **fields)
