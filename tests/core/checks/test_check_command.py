"""`/api check`, `api-assistant check` and "why is this request failing? curl …" on the real core: the operation is
found in the workspace's specs, the reply cites it, and the pasted credentials reach no reply, log or thread memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.cli import main
from core.actions import AskQuestion, CheckRequest, Origin, PathAttachment, UploadSpec
from core.answers import AnswerKind
from core.commands.catalogue import Invocation, command
from core.commands.handlers import run_command
from core.errors import NothingToCheckError, OperationNotFoundError, SpecNotFoundError, UserFacingError
from core.replies import AnswerReply, QuietSink, Reply
from core.threads import thread_key

KEY = "bk_live_9f8e7d6c5b4a39281706"
ORIGIN = Origin("slack", "T1", channel="C1", user="U1", thread="1700000000.1")


class Recording(QuietSink):
    def __init__(self) -> None:
        self.reply: Reply | None = None

    async def final(self, reply: Reply) -> None:
        self.reply = reply


@pytest.fixture
async def bookshop(assistant: Any, example_spec: Path) -> Any:
    await assistant.ingest(UploadSpec(ORIGIN, PathAttachment(example_spec), "bookshop"))
    return assistant


async def test_the_check_command_cites_the_operation_and_masks_the_key(bookshop: Any) -> None:
    text = (
        f"curl -X POST https://api.bookshop.example/v1/orders -H 'X-Api-Key: {KEY}' "
        "-H 'Content-Type: application/json' "
        """-d '{"customer_id": "cus_1", "items": [{"isbn": "978", "quantity": 0}], "gift": "x"}'"""
    )
    sink = Recording()
    with capture_logs() as logs:
        await run_command(bookshop, Invocation(command("check"), ORIGIN, {"request": text}), sink)
    reply = sink.reply
    assert isinstance(reply, AnswerReply) and reply.answer.kind is AnswerKind.CHECK
    markdown = reply.answer.as_markdown()
    assert "`$.items[0].quantity`" in markdown and "at least 1" in markdown
    assert [c.label for c in reply.answer.citations] == ["POST /orders"]
    assert KEY not in markdown and KEY not in reply.question and "X-Api-Key: [masked]" in markdown
    assert KEY not in repr(logs)
    checked = next(line for line in logs if line["event"] == "request_checked")
    assert (checked["operation"], checked["secrets_masked"], checked["kinds"]) == ("POST /orders", 1, ["bounds"])

    valid = await bookshop.check(
        CheckRequest(
            ORIGIN,
            f"""curl https://api.bookshop.example/v1/orders/ord_1/refund -H 'X-Api-Key: {KEY}' """
            """--json '{"reason": "late"}'""",
            "bookshop",
        )
    )
    assert valid.valid and valid.label == "POST /orders/{orderId}/refund"


async def test_friendly_errors(bookshop: Any) -> None:
    with pytest.raises(NothingToCheckError):
        await bookshop.check(CheckRequest(ORIGIN, "is my request ok?"))
    with pytest.raises(OperationNotFoundError, match="takes"):
        await bookshop.check(CheckRequest(ORIGIN, "curl -X PUT https://api.bookshop.example/v1/orders"))
    with pytest.raises(OperationNotFoundError, match="couldn't find"):
        await bookshop.check(CheckRequest(ORIGIN, "curl https://api.bookshop.example/v1/nothing/here"))
    with pytest.raises(SpecNotFoundError):
        await bookshop.check(CheckRequest(ORIGIN, "curl https://api.bookshop.example/v1/orders", "stripe"))
    with pytest.raises(UserFacingError, match="characters"):
        await bookshop.check(CheckRequest(ORIGIN, "curl " + "x" * 30_000))


async def test_a_body_alone_is_matched_by_retrieval(bookshop: Any) -> None:
    report = await bookshop.check(CheckRequest(ORIGIN, '{"customer_id": "cus_1", "items": [{"isbn": "9"}]}'))
    assert report.guessed and report.label == "POST /orders"
    assert [(p.where, p.kind.value) for p in report.problems] == [("$.items[0].quantity", "missing_field")]


async def test_a_mention_with_a_failing_request_is_checked_not_searched(bookshop: Any) -> None:
    question = (
        "why is this request failing? "
        f"curl -X POST https://api.bookshop.example/v1/orders -H 'X-Api-Key: {KEY}' --json '{{\"items\": []}}'"
    )
    answer = await bookshop.ask(AskQuestion(ORIGIN, question))
    assert answer.kind is AnswerKind.CHECK and "`$.customer_id`: missing required field" in answer.as_markdown()
    assert KEY not in answer.as_markdown()
    history = await bookshop.memory.history(thread_key(ORIGIN))
    assert history and history[-1].question == "check POST /orders (bookshop)"
    remembered = " ".join(f"{t.question} {t.answer_summary}" for t in history)
    assert KEY not in remembered

    ordinary = await bookshop.ask(AskQuestion(Origin("slack", "T1", user="U2"), "how do I refund an order?"))
    assert ordinary.kind is not AnswerKind.CHECK


def test_the_command_line(tmp_path: Path, example_spec: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert main(["ingest", str(example_spec), "--name", "bookshop"]) == 0
    request = tmp_path / "request.http"
    request.write_text(f'POST /v1/orders HTTP/1.1\nHost: api.bookshop.example\nX-Api-Key: {KEY}\n\n{{"items": 3}}\n')
    capsys.readouterr()
    assert main(["check", f"@{request}", "--spec", "bookshop"]) == 0
    out = capsys.readouterr().out
    assert "`$.items`: wrong type: expected array, got integer" in out and KEY not in out
    assert main(["check", "nothing to see"]) == 1
    assert "didn't find a request" in capsys.readouterr().err
