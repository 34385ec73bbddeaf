"""The reply pipeline: reading answer streams, turning errors into replies, replies in neutral form."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from core import messages
from core.answers import Answer, AnswerEvent, AnswerKind, FinalAnswer, StatusUpdate, TextBlock, TextDelta, read_answer
from core.diffs.report import ReportFile
from core.errors import RateLimitedError, UserFacingError
from core.replies import AnswerReply, Delivery, DiffReply, IngestReply, ReplyMarkup, Transport, guarded, on_loop

ANSWER = Answer(AnswerKind.GENERATED, (TextBlock("Call `POST /refunds`."),))


class Recorder:
    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    async def status(self, text: str) -> None:
        self.shown.append(("status", text))

    async def partial(self, text: str) -> None:
        self.shown.append(("partial", text))


async def events(*items: AnswerEvent) -> AsyncIterator[AnswerEvent]:
    for item in items:
        yield item


async def test_read_answer_shows_status_and_the_text_so_far() -> None:
    view = Recorder()
    stream = events(StatusUpdate("Searching…"), TextDelta("Call "), TextDelta("POST /refunds."), FinalAnswer(ANSWER))
    assert await read_answer(stream, view) is ANSWER
    assert view.shown == [("status", "Searching…"), ("partial", "Call "), ("partial", "Call POST /refunds.")]
    assert await read_answer(events(TextDelta("x"), FinalAnswer(ANSWER))) is ANSWER  # no view: nothing shown
    with pytest.raises(RuntimeError, match="without a final answer"):
        await read_answer(events(StatusUpdate("Searching…")), view)


class ApiError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Forbidden(ApiError):
    pass


PLATFORM = Transport(
    "chat",
    describe=lambda exc: {"error": exc.code} if isinstance(exc, ApiError) else None,
    mute=lambda exc: isinstance(exc, Forbidden),
)


async def run_guarded(action: Any, *, send_fails: Exception | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    sent: list[str] = []

    async def send(text: str) -> None:
        if send_fails is not None:
            raise send_fails
        sent.append(text)

    with capture_logs() as logs:
        await guarded(action, send, ref="ab12cd34", logger=structlog.get_logger().bind(user="U1"), transport=PLATFORM)
    return sent, logs


async def fail(exc: Exception) -> None:
    raise exc


async def test_guarded_turns_each_kind_of_error_into_its_reply() -> None:
    sent, logs = await run_guarded(fail(UserFacingError("No spec called `x`.")))
    assert sent == ["No spec called `x`."]
    assert [(e["event"], e["error"], e["user"]) for e in logs] == [("user_error", "UserFacingError", "U1")]

    sent, logs = await run_guarded(fail(RateLimitedError(messages.rate_limited(12), retry_after=12.04)))
    assert sent == [messages.rate_limited(12)] and logs[0]["retry_after"] == 12.0

    sent, logs = await run_guarded(fail(RuntimeError("password=hunter2")))
    assert sent == [messages.unexpected_error("ab12cd34")] and "hunter2" not in sent[0]
    assert logs[0]["event"] == "unexpected_error" and logs[0]["log_level"] == "error" and logs[0]["exc_info"]

    sent, logs = await run_guarded(fail(ApiError("not_in_channel")))
    assert sent == [messages.unexpected_error("ab12cd34")]
    assert [(e["event"], e["log_level"], e["error"]) for e in logs] == [("chat_api_error", "warning", "not_in_channel")]

    sent, logs = await run_guarded(fail(Forbidden("missing_permissions")))  # a reply would be refused as well
    assert sent == [] and [e["event"] for e in logs] == ["chat_api_error"]

    sent, logs = await run_guarded(asyncio.sleep(0))
    assert sent == [] and logs == []


async def test_a_failed_error_reply_is_logged_never_raised() -> None:
    _, logs = await run_guarded(fail(UserFacingError("nope")), send_fails=ApiError("channel_not_found"))
    assert [(e["event"], e.get("error")) for e in logs][-1] == ("chat_reply_failed", "channel_not_found")
    _, logs = await run_guarded(fail(UserFacingError("nope")), send_fails=ValueError("bug"))
    assert logs[-1]["event"] == "chat_reply_failed" and logs[-1]["exc_info"]
    with pytest.raises(asyncio.CancelledError):  # cancellation is not an error to report
        await run_guarded(fail(asyncio.CancelledError()))


async def test_progress_from_worker_threads_reaches_the_loop() -> None:
    seen: list[tuple[int, bool]] = []
    loop_thread = threading.get_ident()
    relay = on_loop(lambda value: seen.append((value, threading.get_ident() == loop_thread)))
    relay(1)
    await asyncio.to_thread(relay, 2)
    await asyncio.sleep(0.05)
    assert seen == [(1, True), (2, True)]


def test_ingest_summary_is_one_sentence_everywhere() -> None:
    reply = IngestReply("stripe", "Stripe_API 1.0", "OpenAPI 3", 1, 2, unchanged=False, replaced=True, seconds=1.26,
                        warnings=("w1", "w2", "w3"))
    assert reply.headline() == "Updated `stripe`: Stripe_API 1.0 (OpenAPI 3), 1 operation, 2 auth schemes."
    assert reply.headline(lambda label: label.replace("_", "\\_"), timed=True) == (
        "Updated `stripe`: Stripe\\_API 1.0 (OpenAPI 3), 1 operation, 2 auth schemes in 1.3s.")
    assert reply.shown_warnings(2) == (["w1", "w2"], "…and 1 more warning")
    assert reply.shown_warnings(3) == (["w1", "w2", "w3"], "")
    same = IngestReply("stripe", "Stripe", "OpenAPI 3", 468, 0, unchanged=True, replaced=False, seconds=0.1)
    assert same.headline() == "`stripe` is already indexed with exactly this content (468 operations)."


# ---- files that go with a reply -----------------------------------------------------------------------------


class FileDelivery(Delivery[str]):
    """A sink on a platform that attaches files: records what it delivers, fails as told."""

    markup = ReplyMarkup(answer=lambda r: r.answer.as_markdown(), specs=str, ingest=str, help=str, text=str)
    transport = PLATFORM

    def __init__(self, attach_fails: Exception | None = None, add_fails: bool = False) -> None:
        self.sent: list[str] = []
        self.attached: list[ReportFile] = []
        self.attach_fails = attach_fails
        self.add_fails = add_fails

    async def deliver(self, rendered: str) -> None:
        self.sent.append(rendered)

    async def attach(self, report: ReportFile) -> bool:
        if self.attach_fails is not None:
            raise self.attach_fails
        self.attached.append(report)
        return True

    async def add(self, rendered: str) -> None:
        if self.add_fails:
            raise ApiError("channel_not_found")
        self.sent.append(rendered)


REPORT = ReportFile("shop-diff-v1-v2.txt", b"BREAKING\n")


async def test_a_reply_with_a_file_is_delivered_then_the_file_attached() -> None:
    sink = FileDelivery()
    with capture_logs() as logs:
        await sink.final(DiffReply("Changes in `shop`…", REPORT))
        await sink.final(AnswerReply(Answer(AnswerKind.DIFF, (TextBlock("Changes…"),), report=REPORT), "q"))
        await sink.final(DiffReply("No API changes."))  # nothing to attach
    assert sink.sent == ["Changes in `shop`…", "Changes…", "No API changes."]
    assert sink.attached == [REPORT, REPORT]
    assert [e["event"] for e in logs] == ["report_attached", "report_attached"]


@pytest.mark.parametrize("failure", [ApiError("not_in_channel"), RuntimeError("boom")])
async def test_a_failed_upload_keeps_the_reply_and_says_so(failure: Exception) -> None:
    sink = FileDelivery(attach_fails=failure)
    with capture_logs() as logs:
        await sink.final(DiffReply("Changes in `shop`…", REPORT))
    assert sink.sent == ["Changes in `shop`…", messages.report_not_attached()]
    (logged,) = logs
    assert logged["event"] == "report_attach_failed" and logged["filename"] == REPORT.filename
    if isinstance(failure, ApiError):
        assert logged["error"] == "not_in_channel"
    assert "boom" not in str(logged.get("error", ""))


async def test_when_even_the_notice_fails_it_is_logged_never_raised() -> None:
    sink = FileDelivery(attach_fails=ApiError("not_in_channel"), add_fails=True)
    with capture_logs() as logs:
        await sink.final(DiffReply("Changes in `shop`…", REPORT))
    assert sink.sent == ["Changes in `shop`…"]
    assert [e["event"] for e in logs] == ["report_attach_failed", "chat_reply_failed"]
    assert logs[1]["error"] == "channel_not_found"


async def test_a_platform_without_files_sends_the_reply_alone_and_claims_nothing() -> None:
    class TextOnly(FileDelivery):
        async def attach(self, report: ReportFile) -> bool:
            return await Delivery.attach(self, report)

    sink = TextOnly()
    with capture_logs() as logs:
        await sink.final(DiffReply("Changes in `shop`…", REPORT))
    assert sink.sent == ["Changes in `shop`…"] and logs == []
