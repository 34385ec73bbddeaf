"""`/api` subcommands (ack first, then `respond()` through response_url) and the 👍/👎 buttons."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bot.slack_app import messages as slack_messages
from core.actions import ListSpecs, Origin
from tests.bot.slack.conftest import SlackHttp
from tests.bot.slack.mock_slack import Call, MockSlack


def texts(call: Call) -> str:
    return call.blob()


async def test_ask_is_acked_at_once_then_answered_privately(slack_http: SlackHttp, mock_slack: MockSlack,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assistant = slack_http.bot.assistant
    real = assistant.stream_answer

    async def slow(request):  # type: ignore[no-untyped-def]
        await asyncio.sleep(1.5)  # a slow LLM: the ack must not wait for it
        async for event in real(request):
            yield event

    monkeypatch.setattr(assistant, "stream_answer", slow)
    result = await slack_http.command("ask how do I refund an order?", mock_slack.response_url("ask"))
    assert result.status == 200 and result.seconds < 1.0
    assert mock_slack.responses == []  # the work is still going on
    (response,) = await mock_slack.wait_for("respond")
    body = response.params
    assert body["response_type"] == "ephemeral"
    assert body["blocks"][0]["elements"][0]["text"] == "*You asked:* how do I refund an order?"
    assert "*POST /orders/{orderId}/refund*" in texts(response)
    assert any(b["type"] == "actions" for b in body["blocks"])


async def test_ask_echo_is_escaped(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.command("ask <!channel> @here how do I refund <@U2>?", mock_slack.response_url())
    (response,) = await mock_slack.wait_for("respond")
    blob = texts(response)
    assert "<!channel>" not in blob and "<@U2>" not in blob
    assert re.search(r"@(here|channel)\b", blob) is None
    assert "*You asked:* @\u200dchannel @\u200dhere how do I refund @U2?" in blob


async def test_specs_help_and_forget(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    async def run(text: str) -> str:
        before = len(mock_slack.responses)
        result = await slack_http.command(text, mock_slack.response_url())
        assert result.status == 200 and result.seconds < 3
        await mock_slack.wait_for("respond", count=before + 1)
        response = mock_slack.responses[before].params
        assert response["response_type"] == "ephemeral"
        return str(response["text"])

    listing = await run("specs")
    assert "1 indexed spec:" in listing and "`bookshop` — Bookshop API 1.2.0 (OpenAPI 3), 7 operations" in listing
    assert "/api specs" in await run("help")
    assert "/api forget NAME" in await run("")
    assert "Tell me which spec to forget" in await run("forget")
    assert "There's no spec called `nope` here. Indexed specs: `bookshop`." in await run("forget nope")
    assert "Forgot `bookshop`" in await run("FORGET bookshop")  # U1 uploaded it
    assert "No specs are indexed here yet" in await run("specs")
    assert "No API specs have been uploaded here yet" in await run("how do I refund an order?")  # implicit ask


def click(action_id: str, answer_id: str, user: str, response_url: str) -> dict[str, Any]:
    return {
        "type": "block_actions", "team": {"id": "T1", "domain": "test"}, "user": {"id": user, "team_id": "T1"},
        "api_app_id": "A1", "token": "legacy", "trigger_id": "t1", "response_url": response_url,
        "channel": {"id": "C1", "name": "general"}, "container": {"type": "message", "message_ts": "5000.000200"},
        "message": {"ts": "5000.000200", "thread_ts": "5000.000100", "text": "answer"},
        "actions": [{"action_id": action_id, "block_id": "feedback", "value": answer_id, "type": "button",
                     "action_ts": "1"}],
    }


async def test_feedback_buttons_are_recorded_and_confirmed(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    assistant = slack_http.bot.assistant
    url = mock_slack.response_url("fb")
    assert (await slack_http.action(click("feedback_up", "abc123", "U1", url))).status == 200
    await mock_slack.wait_for("respond")
    assert mock_slack.responses[0].params["text"] == slack_messages.feedback_thanks(True)
    assert mock_slack.responses[0].params["response_type"] == "ephemeral"
    assert mock_slack.responses[0].params["replace_original"] is False
    await slack_http.action(click("feedback_up", "abc123", "U1", url))  # same person again
    await slack_http.action(click("feedback_down", "abc123", "U2", url))
    await mock_slack.wait_for("respond", count=3)
    texts_sent = [r.params["text"] for r in mock_slack.responses]
    assert slack_messages.feedback_already(True) in texts_sent
    assert slack_messages.feedback_thanks(False) in texts_sent
    assert assistant.feedback == {True: 1, False: 1}
    await slack_http.action(click("feedback_up", "<bad id>", "U3", url))  # ignored: not an answer id
    await asyncio.sleep(0.2)
    assert len(mock_slack.responses) == 3 and assistant.feedback == {True: 1, False: 1}


async def forget_as(slack_http: SlackHttp, mock_slack: MockSlack, user: str, name: str = "bookshop") -> str:
    before = len(mock_slack.responses)
    await slack_http.command(f"forget {name}", mock_slack.response_url(), user_id=user)
    await mock_slack.wait_for("respond", count=before + 1)
    return str(mock_slack.responses[before].params["text"])


async def test_only_the_uploader_or_an_admin_may_forget(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    refusal = await forget_as(slack_http, mock_slack, "U2")
    assert refusal == "Only ada (who uploaded `bookshop`) or a workspace admin can forget it."
    assert [c.params["user"] for c in mock_slack.calls_to("users.info")] == ["U2"]
    specs = await slack_http.bot.assistant.list_specs(ListSpecs(Origin("slack", "T1")))
    assert [s.name for s in specs] == ["bookshop"]
    assert "Forgot `bookshop`" in await forget_as(slack_http, mock_slack, "UADMIN")


async def test_owner_flag_counts_as_admin_and_failed_lookup_does_not(slack_http: SlackHttp,
                                                                      mock_slack: MockSlack) -> None:
    mock_slack.add_user("UOWNER", "margaret", owner=True)
    mock_slack.fail("users.info", error="missing_scope")
    assert "Only ada" in await forget_as(slack_http, mock_slack, "UOWNER")  # unknown: no extra rights
    assert "Forgot `bookshop`" in await forget_as(slack_http, mock_slack, "UOWNER")
