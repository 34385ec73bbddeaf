"""Events through the real HTTP path: signed POSTs to `app.web_app()`, answers observed at the mock Slack."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from core import messages
from core.actions import Origin, PathAttachment, UploadSpec
from tests.bot.slack.conftest import SlackHttp, mention, message, next_ts, sign
from tests.bot.slack.mock_slack import BOT_ID, BOT_USER_ID, Call, MockSlack


def has_buttons(call: Call) -> bool:
    return any(b.get("type") == "actions" for b in call.params.get("blocks") or [])


def contains(text: str):  # type: ignore[no-untyped-def]
    return lambda call: text in call.blob()


async def test_mention_answers_in_thread_with_sources(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    event = mention("how do I refund an order?", ts="1000.000100")
    result = await slack_http.event(event)
    assert result.status == 200
    final = (await mock_slack.wait_for("chat.update", has_buttons))[0]
    placeholder = mock_slack.calls_to("chat.postMessage")[0]
    assert placeholder.params["channel"] == "C1"
    assert placeholder.params["thread_ts"] == "1000.000100"
    assert placeholder.params["link_names"] is False
    assert "Working on it" in placeholder.blob()
    assert final.params["ts"] == "1700000000.000001"
    blocks = final.params["blocks"]
    assert "*POST /orders/{orderId}/refund*" in json.dumps(blocks)
    sources = [b for b in blocks if b["type"] == "context" and "Sources" in b["elements"][0]["text"]]
    assert sources and "`bookshop` POST /orders/{orderId}/refund" in sources[0]["elements"][0]["text"]
    assert any(b["type"] == "section" and b["text"]["text"].startswith("```") for b in blocks)  # the snippet
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons] == ["feedback_up", "feedback_down"]
    await mock_slack.wait_for("reactions.remove")
    added = mock_slack.calls_to("reactions.add")[0].params
    assert added | {"team_id": "T1"} == {"channel": "C1", "timestamp": "1000.000100",
                                         "name": "hourglass_flowing_sand", "team_id": "T1"}
    assert len(mock_slack.calls_to("chat.postMessage")) == 1
    assert mock_slack.calls_to("auth.test")


async def test_dm_is_answered_without_mention(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.event(message("how do I list the books in the catalogue?", channel="D1", channel_type="im"))
    final = (await mock_slack.wait_for("chat.update", has_buttons))[0]
    assert "GET /books" in final.blob()
    post = mock_slack.calls_to("chat.postMessage")[0]
    assert post.params["channel"] == "D1"
    assert "thread_ts" not in post.params  # DMs are answered at the top level


async def test_thread_follow_up_without_mention(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.event(mention("how do I refund an order?", ts="2000.000100"))
    await mock_slack.wait_for("chat.update", has_buttons)
    # Slack also sends the mention as a plain message event: it must not be answered twice.
    await slack_http.event(message("<@UBOT> how do I refund an order?", ts="2000.000100"))
    # Not addressed: a top-level message, and a reply in a thread the bot is not part of.
    await slack_http.event(message("how do I create a customer?"))
    await slack_http.event(message("how do I create a customer?", thread_ts="3000.000100"))
    await slack_http.event(message("and how do I create a customer?", thread_ts="2000.000100"))
    finals = await mock_slack.wait_for("chat.update", has_buttons, count=2)
    assert "POST /customers" in finals[1].blob()
    await asyncio.sleep(0.3)
    posts = mock_slack.calls_to("chat.postMessage")
    assert len(posts) == 2
    assert all(p.params["thread_ts"] == "2000.000100" for p in posts)


async def test_thread_message_for_other_people_gets_no_answer(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    thread = "5000.000100"
    await slack_http.event(mention("how do I refund an order?", ts=thread))
    await mock_slack.wait_for("chat.update", has_buttons)
    for_others = [
        "<@U2> can you try this on staging?",
        "<@U2|dave> <@U3> does the refund work for you?",
        "<!subteam^S1|@backend> does this match what you see?",
        "<!here> anyone tried refunds on staging?",
    ]
    with capture_logs() as logs:
        for text in for_others:
            await slack_http.event(message(text, thread_ts=thread))
        await mock_slack.wait_until(lambda: sum(e["event"] == "thread_message_skipped" for e in logs) == 4)
    skipped = [e for e in logs if e["event"] == "thread_message_skipped"]
    assert {(e["platform"], e["reason"], e["channel"], e["user"], e["workspace"]) for e in skipped} == {
        ("slack", "mentions_others", "C1", "U1", "T1")}
    assert all(e["event_id"] for e in skipped)
    assert not any(text in repr(entry) for entry in logs for text in for_others)  # no message text in logs
    # The bot and someone else: a question for the bot (Slack sends it as an app_mention and as a message).
    both, ts = "<@U2> FYI, and how do I create a customer?", next_ts()
    await slack_http.event(mention(both, ts=ts, thread_ts=thread))
    await slack_http.event(message(f"<@UBOT> {both}", ts=ts, thread_ts=thread))
    finals = await mock_slack.wait_for("chat.update", has_buttons, count=2)
    assert "POST /customers" in finals[1].blob()
    # No mention at all: a follow-up, as before.
    await slack_http.event(message("and how do I delete a customer?", thread_ts=thread))
    finals = await mock_slack.wait_for("chat.update", has_buttons, count=3)
    assert "DELETE /customers/{customerId}" in finals[2].blob()
    await asyncio.sleep(0.3)
    posts = mock_slack.calls_to("chat.postMessage")
    assert len(posts) == 3 and all(p.params["thread_ts"] == thread for p in posts)
    assert len(mock_slack.calls_to("reactions.add")) == 3  # not even a "working" sign on the skipped ones


async def test_follow_up_reaching_another_instance_is_answered(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.event(mention("how do I refund an order?", ts="4000.000100"))
    await mock_slack.wait_for("chat.update", has_buttons)
    # No instance keeps threads to itself: whichever gets the follow-up asks the core (shared state) about it.
    await slack_http.event(message("and how do I delete a customer?", thread_ts="4000.000100"))
    finals = await mock_slack.wait_for("chat.update", has_buttons, count=2)
    assert "DELETE /customers/{customerId}" in finals[1].blob()


async def test_redelivered_event_is_answered_once(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    event = mention("how do I refund an order?")
    first = await slack_http.event(event, event_id="EvSAME")
    retry = await slack_http.event(event, event_id="EvSAME",
                                   headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status == retry.status == 200
    await mock_slack.wait_for("chat.update", has_buttons)
    await asyncio.sleep(0.3)
    assert len(mock_slack.calls_to("chat.postMessage")) == 1


async def test_bot_messages_edits_and_deletes_are_ignored(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    dm = {"channel": "D1", "channel_type": "im"}
    await slack_http.event(message("how do I list books?", user=BOT_USER_ID, bot_id=BOT_ID, **dm))  # our own
    await slack_http.event(message("how do I list books?", user=None, bot_id="B999", subtype="bot_message", **dm))
    await slack_http.event(message("how do I list books?", user="U2", bot_id="B999", **dm))  # another app's user
    await slack_http.event(message("", user=None, subtype="message_changed",
                                   message={"text": "how do I list books?", "user": "U1"}, **dm))
    await slack_http.event(message("", user=None, subtype="message_deleted", **dm))
    await slack_http.event(message("how do I refund an order?", **dm))
    final = (await mock_slack.wait_for("chat.update", has_buttons))[0]
    assert "refund" in final.blob()
    await asyncio.sleep(0.3)
    assert len(mock_slack.calls_to("chat.postMessage")) == 1


async def test_bad_and_stale_signatures_are_rejected(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    import time

    import aiohttp

    from tests.bot.slack.conftest import event_body

    body = json.dumps(event_body(mention("how do I refund an order?")))
    forged = sign(body, secret="not-the-secret")
    stale = sign(body, timestamp=int(time.time()) - 10 * 60)
    async with aiohttp.ClientSession() as session:
        for headers in (forged, stale, {}):
            async with session.post(slack_http.url + "/slack/events", data=body,
                                    headers={"Content-Type": "application/json", **headers}) as response:
                assert response.status == 401
    await asyncio.sleep(0.3)
    assert not mock_slack.calls_to("chat.postMessage")


async def test_everything_written_is_escaped(slack_http: SlackHttp, mock_slack: MockSlack, tmp_path: Path) -> None:
    spec = tmp_path / "alerts.yaml"
    spec.write_text("""openapi: 3.0.3
info: {title: Alerts <!channel> API, version: '1.0'}
paths:
  /broadcasts:
    post:
      operationId: broadcastAlert
      summary: Broadcast an alert to everyone <!here>
      description: Pings <!channel> and <!everyone> and @here and @everyone and <@U999> & <https://evil.example|click>.
      responses: {'200': {description: ok}}
""")
    await slack_http.bot.assistant.ingest(UploadSpec(Origin("slack", "T1"), PathAttachment(spec), "alerts"))
    await slack_http.event(mention("how do I broadcast an alert to everyone?"))
    final = (await mock_slack.wait_for("chat.update", has_buttons))[0]
    written = " ".join(c.blob() for c in mock_slack.calls if c.method.startswith("chat."))
    assert "Broadcast an alert" in written
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<@U999>", "<https://evil.example"):
        assert raw not in written
    assert re.search(r"@(here|everyone|channel)\b", written, re.IGNORECASE) is None
    # Escaped for mrkdwn (and the core has already put a zero-width space after the `<`).
    assert re.search(r"&lt;(\\u200b|\u200b)?@U999&gt;", written) and "&amp;" in written
    assert re.search(r"@(\\u200[bd]|\u200b|\u200d)here", written)  # defused by the core or the adapter
    assert final.params["link_names"] is False
    for block in final.params["blocks"]:
        if block["type"] == "section":
            assert block["text"]["verbatim"] is True
    # The core strips `<...>` from spec text; a refused upload's file name reaches the reply unchanged.
    refused = {"id": "F7", "name": "<!channel> @here.exe", "size": 10, "url_private": "https://files.slack.com/x"}
    await slack_http.event(message("", channel="D1", channel_type="im", subtype="file_share", files=[refused]))
    reply = (await mock_slack.wait_for("chat.postMessage", contains("isn't accepted")))[0]
    assert "&lt;!channel&gt; @\u200dhere.exe" in reply.blob()
    assert "<!channel>" not in reply.blob()


async def test_nothing_indexed_gets_the_friendly_message(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.event(mention("how do I refund an order?", channel="C2"), team="T2")
    final = (await mock_slack.wait_for("chat.update", contains("No API specs have been uploaded")))[0]
    assert final.params["channel"] == "C2"


async def test_unexpected_error_is_logged_not_shown(slack_http: SlackHttp, mock_slack: MockSlack,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(request):  # type: ignore[no-untyped-def]
        structlog.get_logger("core.assistant").info("question_received")  # a core log line of the same action
        raise RuntimeError("database password is hunter2")
        yield  # pragma: no cover

    monkeypatch.setattr(slack_http.bot.assistant, "stream_answer", broken)
    with capture_logs(processors=[merge_contextvars]) as logs:
        await slack_http.event(mention("how do I refund an order?"))
        final = (await mock_slack.wait_for("chat.update"))[0]
    assert "hunter2" not in json.dumps([c.params for c in mock_slack.calls])
    errors = [entry for entry in logs if entry["event"] == "unexpected_error"]
    assert errors and errors[0]["log_level"] == "error" and errors[0]["exc_info"]
    # The reply names the request id that every log line of this event carries.
    ref = errors[0]["request_id"]
    assert re.fullmatch(r"[0-9a-f]{8}", ref)
    assert messages.unexpected_error(ref) in final.params["text"] and f"ref `{ref}`" in final.blob()
    action = [e for e in logs if e["event"] in {"slack_event", "question_received", "unexpected_error"}]
    assert [e["event"] for e in action] == ["slack_event", "question_received", "unexpected_error"]
    assert {e["request_id"] for e in action} == {ref}
    # The next event is another action, with another id.
    await slack_http.event(mention("and how do I cancel one?"))
    await mock_slack.wait_for("chat.update", count=2)
    second = mock_slack.calls_to("chat.update")[1]
    assert "ref `" in second.params["text"] and ref not in second.params["text"]


async def test_ratelimited_post_is_retried_after_retry_after(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    mock_slack.fail("chat.postMessage", status=429, error="ratelimited", retry_after=1)
    await slack_http.event(mention("how do I refund an order?"))
    await mock_slack.wait_for("chat.update", has_buttons)
    first, second = mock_slack.calls_to("chat.postMessage")
    assert second.at - first.at >= 0.9
    assert first.params == second.params


async def test_not_in_channel_is_logged_and_the_app_carries_on(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    mock_slack.fail("chat.postMessage", error="not_in_channel", times=2)
    with capture_logs() as logs:
        await slack_http.event(mention("how do I refund an order?", channel="C9"))
        await mock_slack.wait_for("chat.postMessage", count=2)
        await mock_slack.wait_until(lambda: any(e["event"] == "slack_reply_failed" for e in logs))
    api_errors = [e for e in logs if e["event"] == "slack_api_error"]
    assert api_errors and api_errors[0]["error"] == "not_in_channel"
    await slack_http.event(message("how do I refund an order?", channel="D1", channel_type="im"))
    final = (await mock_slack.wait_for("chat.update", has_buttons))[0]
    assert final.params["channel"] == "D1"


async def test_refused_blocks_fall_back_to_plain_text(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    mock_slack.fail("chat.update", error="msg_too_long")
    await slack_http.event(mention("how do I refund an order?"))
    refused, plain = await mock_slack.wait_for("chat.update", count=2)
    assert refused.params.get("blocks") and "blocks" not in plain.params
    assert "POST /orders/{orderId}/refund" in plain.params["text"] and len(plain.params["text"]) <= 3000


async def test_group_dm_mention_is_answered_once(streaming_http: SlackHttp, mock_slack: MockSlack) -> None:
    ts = "6100.000100"
    # Unaddressed chatter in a group DM is left alone; a mention is a question, answered in its thread.
    await streaming_http.event(message("lunch at noon?", channel="G1", channel_type="mpim"))
    await streaming_http.event(message("<@UBOT> how do I refund an order?", channel="G1", channel_type="mpim",
                                       ts=ts))
    # Slack may deliver the same mention as an app_mention too: one answer all the same.
    await streaming_http.event(mention("how do I refund an order?", channel="G1", ts=ts))
    answer = (await mock_slack.wait_for("chat.postMessage", has_buttons))[0]
    assert answer.params["channel"] == "G1" and answer.params["thread_ts"] == ts
    assert "POST /orders/{orderId}/refund" in answer.blob()
    await asyncio.sleep(0.5)
    assert len(mock_slack.calls_to("chat.postMessage")) == 1
    # Like any thread the bot answered in, a follow-up there needs no mention.
    await streaming_http.event(message("and how do I delete a customer?", channel="G1", channel_type="mpim",
                                       thread_ts=ts))
    later = (await mock_slack.wait_for("chat.postMessage", has_buttons, count=2))[1]
    assert "DELETE /customers/{customerId}" in later.blob()


async def test_generation_off_note_once_per_thread_and_in_the_help(
    streaming_http: SlackHttp, mock_slack: MockSlack
) -> None:
    note = "Generated answers are off"
    thread = "6200.000100"
    await streaming_http.event(mention("how do I refund an order?", ts=thread))
    first = (await mock_slack.wait_for("chat.postMessage", has_buttons))[0]
    await streaming_http.event(message("and how do I delete a customer?", thread_ts=thread))
    second = (await mock_slack.wait_for("chat.postMessage", has_buttons, count=2))[1]
    assert note in first.blob() and note not in second.blob()
    # A new thread asking what was asked before gets the cached answer: without the note.
    await streaming_http.event(mention("how do I refund an order?", ts="6300.000100"))
    cached = (await mock_slack.wait_for("chat.postMessage", has_buttons, count=3))[2]
    assert "POST /orders/{orderId}/refund" in cached.blob() and note not in cached.blob()
    await streaming_http.command("help", mock_slack.response_url("help"))
    (help_reply,) = await mock_slack.wait_for("respond")
    assert note in help_reply.blob() and "GROQ_API_KEY" in help_reply.blob()
