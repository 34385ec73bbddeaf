"""Slack's own failures while answering: 5xx on chat.postMessage / chat.update, through the real HTTP path.

The mock Slack keeps the messages it was asked to post and edit, so each test checks what a person would see in
the thread: the answer exactly once, never only the "Working on it…" placeholder.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from structlog.testing import capture_logs

from bot.slack_app import messages as slack_messages
from bot.slack_app import retries
from tests.bot.slack.conftest import SlackHttp, mention, message
from tests.bot.slack.mock_slack import Call, Message, MockSlack

REFUND = "POST /orders/{orderId}/refund"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries as in production, on a shorter clock: a permanent failure gives up after about a second."""
    monkeypatch.setattr(retries, "RETRY_SECONDS", 1.0)
    monkeypatch.setattr(retries, "BACKOFF_SECONDS", 0.02)


def has_buttons(call: Call) -> bool:
    return any(b.get("type") == "actions" for b in call.params.get("blocks") or [])


def is_answer(shown: Message) -> bool:
    return any(b.get("type") == "actions" for b in shown.blocks)


async def settled(mock_slack: MockSlack, seconds: float = 0.5) -> None:
    """Wait until the mock has received no call for `seconds` (the bot is done with the thread)."""
    await mock_slack.wait_until(lambda: bool(mock_slack.calls))
    while True:
        count = len(mock_slack.calls)
        await asyncio.sleep(seconds)
        if len(mock_slack.calls) == count:
            return


async def test_500s_on_post_and_update_are_retried_and_the_answer_arrives_once(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail("chat.postMessage", status=500, times=2)
    mock_slack.fail("chat.update", status=500, times=2)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8000.000100"))
        await mock_slack.wait_for("chat.update", has_buttons)
        await settled(mock_slack)
    shown = mock_slack.thread("C1", "8000.000100")
    assert len(shown) == 1 and is_answer(shown[0]) and REFUND in shown[0].blob()
    # The post's 500s were not blindly repeated: each time the thread was read first, then the post tried again.
    assert len(mock_slack.calls_to("chat.postMessage")) == 3
    assert len(mock_slack.calls_to("conversations.replies")) == 2
    assert [e["attempt"] for e in logs if e["event"] == "slack_post_uncertain"] == [1, 2]
    assert not [e for e in logs if e["event"] in ("slack_api_error", "unexpected_error", "slack_reply_failed")]


async def test_a_post_that_landed_despite_its_500_is_not_posted_again(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail("chat.postMessage", status=500, landed=True)  # Slack posted it, then answered 500
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8100.000100"))
        await mock_slack.wait_for("chat.update", has_buttons)
        await settled(mock_slack)
    shown = mock_slack.thread("C1", "8100.000100")
    assert len(shown) == 1 and is_answer(shown[0])  # the placeholder that landed became the answer
    assert len(mock_slack.calls_to("chat.postMessage")) == 1
    assert any(e["event"] == "slack_post_landed_after_all" for e in logs)


async def test_a_post_is_not_repeated_when_the_thread_cannot_be_read(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail("chat.postMessage", status=500)  # the placeholder: did it land? Slack can't be asked
    mock_slack.fail_always("conversations.replies", status=500)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8050.000100"))
        await mock_slack.wait_until(lambda: any(is_answer(m) for m in mock_slack.messages), 20)
        await settled(mock_slack)
    posts = mock_slack.calls_to("chat.postMessage")
    assert len(posts) == 2 and slack_messages.WORKING in posts[0].blob()  # the placeholder was not tried again
    shown = mock_slack.thread("C1", "8050.000100")
    assert len(shown) == 1 and is_answer(shown[0])  # the answer came as a new message all the same
    assert [e["event"] for e in logs if e["event"].startswith("slack_p")] == [
        "slack_post_uncertain", "slack_post_lookup_failed", "slack_placeholder_failed"]


async def test_dm_post_that_landed_is_found_in_the_history(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    mock_slack.fail("chat.postMessage", status=502, error="bad_gateway", landed=True)
    await slack_http.event(message("how do I refund an order?", channel="D1", channel_type="im"))
    await mock_slack.wait_for("chat.update", has_buttons)
    await settled(mock_slack)
    shown = mock_slack.thread("D1", None)
    assert len(shown) == 1 and is_answer(shown[0])
    assert mock_slack.calls_to("conversations.history")


async def test_permanent_500s_on_update_post_the_answer_once_as_a_new_message(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail_always("chat.update", status=500)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8200.000100"))
        await mock_slack.wait_for("chat.postMessage", has_buttons, timeout=20)
        await settled(mock_slack)
    shown = mock_slack.thread("C1", "8200.000100")
    answers = [m for m in shown if is_answer(m)]
    assert len(answers) == 1 and REFUND in answers[0].blob()
    assert len(shown) == 2 and slack_messages.WORKING in shown[0].blob()  # the placeholder stays above it
    # Each edit was tried again (editing twice is harmless), within the time allowed.
    assert len(mock_slack.calls_to("chat.update")) >= 3
    assert any(e["event"] == "slack_update_failed_posting_new" for e in logs)
    assert not [e for e in logs if e["event"] in ("slack_api_error", "unexpected_error")]


async def test_an_edit_that_landed_despite_its_500s_is_not_posted_again(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail_always("chat.update", status=500, landed=True)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8300.000100"))
        await mock_slack.wait_for("chat.update", has_buttons, timeout=20)
        await mock_slack.wait_until(lambda: any(e["event"] == "slack_update_landed_after_all" for e in logs), 20)
        await settled(mock_slack)
    shown = mock_slack.thread("C1", "8300.000100")
    assert len(shown) == 1 and is_answer(shown[0])
    assert len(mock_slack.calls_to("chat.postMessage")) == 1  # only the placeholder


async def test_when_slack_takes_no_answer_the_placeholder_becomes_an_apology(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail_always("chat.update", status=500, when=has_buttons)
    mock_slack.fail_always("chat.postMessage", status=500, when=has_buttons)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8400.000100"))
        await mock_slack.wait_until(lambda: any(e["event"] == "slack_api_error" for e in logs), 20)
        await settled(mock_slack)
    shown = mock_slack.thread("C1", "8400.000100")
    assert [m.text for m in shown] == [slack_messages.reply_failed()]
    failure = next(e for e in logs if e["event"] == "slack_api_error")
    assert failure["delivered"] is False
    # No generic "something went wrong" after it: the apology is the reply.
    assert not [c for c in mock_slack.calls if "went wrong" in c.blob()]


async def test_a_placeholder_slack_cannot_take_is_skipped_and_the_answer_posted(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    mock_slack.fail_always("chat.postMessage", status=503, error="service_unavailable",
                           when=lambda call: slack_messages.WORKING in call.blob())
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8500.000100"))
        await mock_slack.wait_until(lambda: any(is_answer(m) for m in mock_slack.messages), 20)
        await settled(mock_slack)
    shown = mock_slack.thread("C1", "8500.000100")
    assert len(shown) == 1 and is_answer(shown[0])
    # 503 says Slack did nothing: the client itself tried the placeholder again, without a lookup.
    assert len([c for c in mock_slack.calls_to("chat.postMessage") if slack_messages.WORKING in c.blob()]) >= 2
    assert not mock_slack.calls_to("conversations.replies")
    assert any(e["event"] == "slack_placeholder_failed" for e in logs)


async def test_429s_for_longer_than_a_few_tries_are_waited_out_and_the_answer_arrives_once(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    """A storm of 429s on posts and edits (the failure drill's): each call waits Retry-After and tries again."""
    mock_slack.fail("chat.postMessage", status=429, error="ratelimited", retry_after=0, times=5)
    mock_slack.fail("chat.update", status=429, error="ratelimited", retry_after=0, times=7)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8600.000100"))
        await mock_slack.wait_until(lambda: any(is_answer(m) for m in mock_slack.messages), 30)
        await settled(mock_slack, 1.5)  # longer than a wait of Retry-After 0 (up to a second, with jitter)
    shown = mock_slack.thread("C1", "8600.000100")
    assert len(shown) == 1 and is_answer(shown[0]) and REFUND in shown[0].blob()  # the placeholder became it
    assert len(mock_slack.calls_to("chat.postMessage")) == 6  # the placeholder, tried until Slack took it
    assert not [e for e in logs if e["event"] in ("slack_placeholder_failed", "slack_update_failed_posting_new")]


async def test_429s_are_tried_again_only_within_the_time_limit(
    slack_http: SlackHttp, mock_slack: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retries, "RATE_LIMIT_SECONDS", 1.5)
    mock_slack.fail_always("chat.update", status=429, error="ratelimited", retry_after=1)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", ts="8700.000100"))
        await mock_slack.wait_until(lambda: any(is_answer(m) for m in mock_slack.messages), 30)
        await settled(mock_slack, 2.5)  # longer than a wait of Retry-After 1 (up to two seconds, with jitter)
    # Each edit gave up after one wait of Retry-After (a second would pass the limit); the answer was posted instead.
    updates = mock_slack.calls_to("chat.update")
    assert 2 <= len(updates) <= 4, [c.blob()[:80] for c in updates]
    answers = [m for m in mock_slack.thread("C1", "8700.000100") if is_answer(m)]
    assert len(answers) == 1
    assert any(e["event"] == "slack_update_failed_posting_new" for e in logs)


def _api_error(status: int, error: str) -> SlackApiError:
    response = AsyncSlackResponse(client=None, http_verb="POST", api_url="", req_args={},  # type: ignore[arg-type]
                                  data={"ok": False, "error": error}, headers={}, status_code=status)
    return SlackApiError("failed", response)


@pytest.mark.parametrize(
    ("failure", "transient", "may_have_happened"),
    [
        (_api_error(500, "internal_error"), True, True),  # Slack: part of it may have happened
        (_api_error(200, "fatal_error"), True, True),
        (_api_error(502, ""), True, True),
        (_api_error(504, ""), True, True),
        (_api_error(503, "service_unavailable"), True, False),  # turned away before it ran
        (_api_error(429, "ratelimited"), True, False),
        (_api_error(200, "not_in_channel"), False, False),
        (_api_error(200, "msg_too_long"), False, False),
        (aiohttp.ServerDisconnectedError(), True, True),  # dropped mid-request
        (TimeoutError(), True, True),
        (aiohttp.ClientConnectorError(None, OSError(111, "refused")), True, False),  # never connected  # type: ignore[arg-type]
        (ValueError("a bug"), False, False),
    ],
)
def test_which_failures_may_have_happened(failure: Exception, transient: bool, may_have_happened: bool) -> None:
    assert retries.transient(failure) is transient
    assert retries.may_have_happened(failure) is may_have_happened


def test_backoff_doubles_with_jitter() -> None:
    for attempt in range(5):
        base = retries.BACKOFF_SECONDS * 2**attempt
        delays = [retries.backoff(attempt) for _ in range(50)]
        assert all(base / 2 <= d <= base for d in delays) and len(set(delays)) > 1
