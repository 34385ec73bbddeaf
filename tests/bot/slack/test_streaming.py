"""Streamed answers: text parts edit one message at most once a second; long answers split within limits."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.slack_app.render import MAX_BLOCKS_PER_MESSAGE, MAX_SECTION_CHARS, MAX_TEXT_CHARS
from core.answers import Answer, AnswerKind, Citation, CodeBlock, FinalAnswer, StatusUpdate, TextBlock, TextDelta
from tests.bot.slack.conftest import SlackHttp, mention
from tests.bot.slack.mock_slack import Call, MockSlack


def has_buttons(call: Call) -> bool:
    return any(b.get("type") == "actions" for b in call.params.get("blocks") or [])


def long_answer() -> Answer:
    text = "\n".join(f"**Step {i}**: call `GET /books?page={i}` & read the <docs> " + "x" * 60 for i in range(250))
    code = "\n".join(f"line_{i} = '{'y' * 60}'" for i in range(130))
    return Answer(AnswerKind.GENERATED, (TextBlock(text), CodeBlock("python", code), TextBlock("That's all.")),
                  (Citation("bookshop", "GET /books"),), notice="Written by a model.")


async def test_streamed_long_answer(slack_http: SlackHttp, mock_slack: MockSlack,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def stream(request):  # type: ignore[no-untyped-def]
        yield StatusUpdate("Thinking…")
        for i in range(25):
            await asyncio.sleep(0.1)
            yield TextDelta(f"part {i} ")
        yield FinalAnswer(long_answer())

    monkeypatch.setattr(slack_http.bot.assistant, "stream_answer", stream)
    await slack_http.event(mention("explain the whole API", ts="7000.000100"))
    last = (await mock_slack.wait_for("chat.postMessage", has_buttons))[0]
    posts = mock_slack.calls_to("chat.postMessage")
    updates = mock_slack.calls_to("chat.update")
    partials, final = updates[:-1], updates[-1]
    # Progressive edits while the text streams, never more than one a second.
    assert len(partials) >= 2 and "part 0" in partials[0].blob()
    times = [posts[0].at] + [u.at for u in partials]
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    # The final answer: the first message replaces the placeholder, the rest follow in the thread.
    assert final.at <= posts[1].at and "Written by a model." in final.blob()
    answer_messages = [final.params, *(p.params for p in posts[1:])]
    assert len(answer_messages) >= 3 and last.params is answer_messages[-1]
    for params in answer_messages:
        blocks = params["blocks"]
        assert len(blocks) <= MAX_BLOCKS_PER_MESSAGE and len(params["text"]) <= MAX_TEXT_CHARS
        for block in blocks:
            if block["type"] == "section":
                text = block["text"]["text"]
                assert len(text) <= MAX_SECTION_CHARS
                assert text.count("```") % 2 == 0  # code fences are never split open
                assert "<docs>" not in text
    assert [has_buttons(Call("", p, {})) for p in answer_messages] == [False] * (len(answer_messages) - 1) + [True]
    assert all(p.params["thread_ts"] == "7000.000100" for p in posts)
    assert "That's all." in posts[-1].blob()
