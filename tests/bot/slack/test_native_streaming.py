"""Native streaming through the mock Slack: chat.startStream / appendStream / stopStream, and the fallback.

The bot runs with its defaults (`streaming_http`): generated answers are streamed into their thread, the wait is
the thread's status, quick answers are simply posted; where Slack has no streaming it posts and edits.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from structlog.testing import capture_logs

from bot.slack_app import messages as slack_messages
from bot.slack_app.handlers import SlackBot
from bot.slack_app.replies import MAX_STREAM_CHUNK_CHARS, MAX_STREAMED_CHARS, STREAM_INTERVAL
from core.answers import Answer, AnswerEvent, AnswerKind, Citation, FinalAnswer, StatusUpdate, TextBlock, TextDelta
from tests.bot.slack.conftest import SlackHttp, mention, message, serve_bot
from tests.bot.slack.mock_slack import Call, MockSlack


def sent(call: Call) -> dict[str, object]:
    """What the bot passed (Bolt's client adds the workspace's `team_id` to every call)."""
    return {k: v for k, v in call.params.items() if k != "team_id"}


def has_buttons(call: Call) -> bool:
    return any(b.get("type") == "actions" for b in call.params.get("blocks") or [])


def answer(text: str) -> Answer:
    return Answer(AnswerKind.GENERATED, (TextBlock(text),), (Citation("bookshop", "GET /books"),))


def scripted(parts: list[str], *, first_after: float = 0.0, every: float = 0.05,
             final: Answer | None = None) -> Callable[..., AsyncIterator[AnswerEvent]]:
    """A core answer stream: a status line, `parts` of text (the first after `first_after` s), the final answer."""

    async def stream(request):  # type: ignore[no-untyped-def]
        yield StatusUpdate("Searching the specs…")
        await asyncio.sleep(first_after)
        for part in parts:
            yield TextDelta(part)
            await asyncio.sleep(every)
        yield FinalAnswer(final or answer("".join(parts)))

    return stream


async def settled(mock: MockSlack, quiet: float = 0.4) -> None:
    """Wait until the mock has seen no call for `quiet` seconds (background writes have ended)."""
    count = -1
    while count != len(mock.calls):
        count = len(mock.calls)
        await asyncio.sleep(quiet)


async def test_a_generated_answer_is_streamed_then_edited_into_the_answer(
    streaming_http: SlackHttp, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [f"part {i} " for i in range(20)]
    monkeypatch.setattr(streaming_http.bot.assistant, "stream_answer", scripted(parts, first_after=0.8))
    await streaming_http.event(mention("how do I list books?", ts="9100.000100"))
    final = (await mock_slack.wait_for("chat.update", has_buttons))[0]
    await settled(mock_slack)
    # The wait was the thread's status, not a message; no reaction added and removed.
    status = mock_slack.calls_to("assistant.threads.setStatus")
    assert [sent(c) for c in status] == [{"channel_id": "C1", "thread_ts": "9100.000100",
                                           "status": "Searching the specs…"}]
    assert not mock_slack.calls_to("chat.postMessage") and not mock_slack.calls_to("reactions.add")
    start = mock_slack.calls_to("chat.startStream")
    assert len(start) == 1
    assert sent(start[0]) | {"markdown_text": ""} == {
        "channel": "C1", "thread_ts": "9100.000100", "recipient_user_id": "U1", "recipient_team_id": "T1",
        "markdown_text": ""}
    assert start[0].params["markdown_text"].startswith("part 0")
    appends = mock_slack.calls_to("chat.appendStream")
    assert appends, "the text kept coming after the start"
    # Throttled: never two appends (or the start and an append) closer than the interval.
    times = [start[0].at] + [a.at for a in appends]
    assert all(later - earlier >= STREAM_INTERVAL * 0.9 for earlier, later in itertools.pairwise(times))
    streamed = start[0].params["markdown_text"] + "".join(a.params["markdown_text"] for a in appends)
    assert "".join(parts).startswith(streamed) and len(streamed) >= len("".join(parts[:10]))
    # Stopped, then edited into the answer: Block Kit, sources, 👍/👎, reply id; one message in the thread.
    stop = mock_slack.calls_to("chat.stopStream")
    ts = mock_slack.messages[0].ts
    assert len(stop) == 1 and sent(stop[0]) == {"channel": "C1", "ts": ts} and stop[0].at < final.at
    assert final.params["ts"] == ts and final.params["metadata"]["event_type"] == "api_assistant_reply"
    assert "Sources" in final.blob()
    shown = mock_slack.thread("C1", "9100.000100")
    assert len(shown) == 1 and not shown[0].streaming and "part 19" in shown[0].blob()


async def test_a_quick_answer_is_simply_posted(
    slack_settings, indexed, mock_slack: MockSlack  # type: ignore[no-untyped-def]
) -> None:
    bot = SlackBot(indexed, slack_settings, quick_reply=5.0)  # "quick", however busy the test machine is
    async with serve_bot(slack_settings, indexed, bot) as http:
        await http.event(mention("how do I refund an order?", ts="9200.000100"))
        await http.event(message("how do I refund an order?", channel="D1", channel_type="im"))
        await mock_slack.wait_for("chat.postMessage", has_buttons, count=2)
        await settled(mock_slack)
    posts = mock_slack.calls_to("chat.postMessage")
    assert len(posts) == 2 and all(has_buttons(p) for p in posts)  # the answers, and nothing before them
    assert sorted(str(p.params.get("thread_ts")) for p in posts) == ["9200.000100", "None"]
    assert all("POST /orders/{orderId}/refund" in p.blob() for p in posts)
    for method in ("chat.update", "chat.startStream", "assistant.threads.setStatus"):
        assert not mock_slack.calls_to(method), method
    assert len(mock_slack.calls_to("reactions.add")) == 1  # only the DM, which cannot stream, shows one


async def test_a_slow_answer_without_text_shows_a_status_then_posts(
    slack_settings, indexed, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    bot = SlackBot(indexed, slack_settings, quick_reply=0.2)
    monkeypatch.setattr(indexed, "stream_answer", scripted([], first_after=0.8, final=answer("All books.")))
    async with serve_bot(slack_settings, indexed, bot) as http:
        await http.event(mention("list books", ts="9300.000100"))
        post = (await mock_slack.wait_for("chat.postMessage", has_buttons))[0]
        await settled(mock_slack)
    status = mock_slack.calls_to("assistant.threads.setStatus")
    assert len(status) == 1 and status[0].at < post.at
    assert len(mock_slack.calls_to("chat.postMessage")) == 1 and not mock_slack.calls_to("chat.startStream")


async def test_without_streaming_the_bot_posts_and_edits_and_remembers(
    streaming_http: SlackHttp, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_slack.streaming = False  # a Slack without chat.startStream
    parts = [f"part {i} " for i in range(8)]
    monkeypatch.setattr(streaming_http.bot.assistant, "stream_answer", scripted(parts, every=0.1))
    with capture_logs() as logs:
        for count, thread in enumerate(("9400.000100", "9400.000200"), 1):
            await streaming_http.event(mention("how do I list books?", ts=thread))
            await mock_slack.wait_for("chat.update", has_buttons, count=count)
        await settled(mock_slack)
    # Learnt once from the first start; the second answer never tried to stream.
    assert len(mock_slack.calls_to("chat.startStream")) == 1
    assert [e["error"] for e in logs if e["event"] == "slack_streaming_unavailable"] == ["unknown_method"]
    for thread in ("9400.000100", "9400.000200"):
        shown = mock_slack.thread("C1", thread)
        assert len(shown) == 1 and "Sources" in shown[0].blob() and "part 7" in shown[0].blob()
    # Both answers were posted with the text so far, then edited: the post-and-edit path.
    assert len(mock_slack.calls_to("chat.postMessage")) == 2
    assert not [e for e in logs if e["event"] in ("slack_api_error", "unexpected_error")]


async def test_a_stream_that_fails_to_start_is_not_started_twice(
    streaming_http: SlackHttp, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_slack.fail("chat.startStream", status=500)  # did it post? Unknown: never started again for this reply
    monkeypatch.setattr(streaming_http.bot.assistant, "stream_answer", scripted([f"p{i} " for i in range(5)]))
    with capture_logs() as logs:
        await streaming_http.event(mention("how do I list books?", ts="9500.000100"))
        await mock_slack.wait_for("chat.postMessage", has_buttons)  # quick: simply posted, once
        await settled(mock_slack)
        assert len(mock_slack.calls_to("chat.startStream")) == 1
        assert any(e["event"] == "slack_stream_start_failed" for e in logs)
        assert not any(e["event"] == "slack_streaming_unavailable" for e in logs)
        shown = mock_slack.thread("C1", "9500.000100")
        assert len(shown) == 1 and "Sources" in shown[0].blob()
        # Only that reply fell back: the next one streams.
        await streaming_http.event(mention("how do I list books?", ts="9500.000200"))
        await mock_slack.wait_for("chat.stopStream")
        await mock_slack.wait_for("chat.update", has_buttons)
    assert len(mock_slack.calls_to("chat.startStream")) == 2


async def test_streamed_text_cannot_ping_and_respects_slacks_limits(
    streaming_http: SlackHttp, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "word " * 7_000  # 35,000 characters in one part
    parts = ["Ask <!here> or <@U2> and @channel, see <https://evil.example|docs> " + huge, huge, "end"]
    monkeypatch.setattr(streaming_http.bot.assistant, "stream_answer", scripted(parts, every=0.7))
    await streaming_http.event(mention("how do I list books?", ts="9600.000100"))
    await mock_slack.wait_for("chat.postMessage", has_buttons)  # a long answer ends in more messages
    await settled(mock_slack)
    sent = [c.params["markdown_text"] for c in mock_slack.calls_to("chat.startStream")
            + mock_slack.calls_to("chat.appendStream")]
    assert all(0 < len(text) <= MAX_STREAM_CHUNK_CHARS for text in sent)
    streamed = "".join(sent)
    assert len(streamed) <= MAX_STREAMED_CHARS
    for dangerous in ("<!here>", "<@U2>", "@channel", "<https://"):
        assert dangerous not in streamed
    assert len(streamed) == MAX_STREAMED_CHARS  # full: the rest was never appended, the answer has it
    shown = mock_slack.thread("C1", "9600.000100")
    assert shown[0].ts == mock_slack.calls_to("chat.update")[-1].params["ts"] and not shown[0].streaming


async def test_a_failing_append_still_ends_in_the_whole_answer(
    streaming_http: SlackHttp, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_slack.fail_always("chat.appendStream", status=500)
    parts = [f"part {i} " for i in range(10)]
    monkeypatch.setattr(streaming_http.bot.assistant, "stream_answer", scripted(parts, every=0.1))
    with capture_logs() as logs:
        await streaming_http.event(mention("how do I list books?", ts="9700.000100"))
        await mock_slack.wait_for("chat.update", has_buttons)
        await settled(mock_slack)
    assert len(mock_slack.calls_to("chat.appendStream")) == 1  # not tried again (it could show text twice)
    assert [e["event"] for e in logs].count("slack_stream_append_failed") == 1
    shown = mock_slack.thread("C1", "9700.000100")
    assert len(shown) == 1 and "part 9" in shown[0].blob() and not shown[0].streaming
    assert slack_messages.WORKING not in shown[0].blob()
