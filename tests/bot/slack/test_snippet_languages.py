"""Snippets in the language asked for, and "show in another language" under answers, through the mock Slack."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.slack_app import messages as slack_messages
from bot.slack_app.handlers import SlackBot
from core.snippet_choice import operation_ref
from tests.bot.slack.conftest import SlackHttp, mention, serve_bot
from tests.bot.slack.mock_slack import Call, MockSlack

REFUND = "how do I refund an order?"
REF = operation_ref("op:POST /orders/{orderId}/refund")


def language_block(call: Call) -> dict[str, Any] | None:
    return next((b for b in call.params.get("blocks") or [] if b.get("block_id") == "snippet_languages"), None)


def answered(call: Call) -> bool:
    return language_block(call) is not None


def click(action: dict[str, Any], response_url: str, user: str = "U1") -> dict[str, Any]:
    return {
        "type": "block_actions", "team": {"id": "T1", "domain": "test"}, "user": {"id": user, "team_id": "T1"},
        "api_app_id": "A1", "token": "legacy", "trigger_id": "t1", "response_url": response_url,
        "channel": {"id": "C1", "name": "general"}, "container": {"type": "message", "message_ts": "5000.000200"},
        "message": {"ts": "5000.000200", "thread_ts": "5000.000100", "text": "answer"},
        "actions": [{**action, "block_id": "snippet_languages", "action_ts": "1"}],
    }


def button(language: str, value: str | None = None) -> dict[str, Any]:
    return {"type": "button", "action_id": f"snippet_show_{language}", "value": value or f"{language}:{REF}:bookshop"}


def chosen(language: str) -> dict[str, Any]:
    value = f"{language}:{REF}:bookshop"
    return {"type": "static_select", "action_id": "snippet_language",
            "selected_option": {"text": {"type": "plain_text", "text": language}, "value": value}}


async def answer_blocks(http: SlackHttp, mock_slack: MockSlack, question: str) -> dict[str, Any]:
    await http.event(mention(question))
    for _ in range(750):
        found = [c for c in mock_slack.calls if answered(c)]
        if found:
            block = language_block(found[-1])
            assert block is not None
            return block
        await asyncio.sleep(0.02)
    raise AssertionError(f"no answer with language choices; calls: {[c.method for c in mock_slack.calls]}")


@pytest.mark.parametrize("streaming", [False, True], ids=["post-and-edit", "native-streaming"])
async def test_answers_offer_other_languages(slack_settings: Any, indexed: Any, mock_slack: MockSlack,
                                             streaming: bool) -> None:
    bot = SlackBot(indexed, slack_settings, streaming=streaming, quick_reply=0.0)
    async with serve_bot(slack_settings, indexed, bot) as http:
        block = await answer_blocks(http, mock_slack, REFUND)
    [python, select] = block["elements"]  # curl is shown already: no "Show curl"
    assert (python["action_id"], python["value"]) == ("snippet_show_python", f"python:{REF}:bookshop")
    assert python["text"]["text"] == slack_messages.show_language("Python")
    assert select["type"] == "static_select" and select["placeholder"]["text"] == slack_messages.OTHER_LANGUAGE
    labels = [("Python", "python"), ("JavaScript", "javascript"), ("TypeScript", "typescript"), ("Go", "go"),
              ("Java", "java"), ("Ruby", "ruby"), ("PHP", "php"), ("C#", "csharp")]
    assert [(o["text"]["text"], o["value"]) for o in select["options"]] == [
        (label, f"{code}:{REF}:bookshop") for label, code in labels]
    # Slack's limits: 150 characters for an option's value, 100 options in a static select, 25 elements a block.
    assert all(len(o["value"]) <= 150 for o in select["options"])
    assert len(select["options"]) <= 100 and len(block["elements"]) <= 25


async def test_clicks_show_the_snippet_privately(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    url = mock_slack.response_url("snippet")
    assert (await slack_http.action(click(button("python"), url))).status == 200
    [response] = await mock_slack.wait_for("respond")
    assert response.params["response_type"] == "ephemeral" and response.params["replace_original"] is False
    shown = json.dumps(response.params["blocks"])
    assert "in Python:" in shown and "httpx.post(" in shown
    assert not any(b.get("block_id") == "feedback" for b in response.params["blocks"])  # nothing to rate
    own = next(b for b in response.params["blocks"] if b.get("block_id") == "snippet_languages")
    assert [e["action_id"] for e in own["elements"]] == ["snippet_show_curl", "snippet_language"]
    await slack_http.action(click(chosen("javascript"), url))
    responses = await mock_slack.wait_for("respond", count=2)
    assert "fetch(" in json.dumps(responses[1].params["blocks"])


async def test_clicks_work_on_a_restarted_bot(slack_settings: Any, indexed: Any, mock_slack: MockSlack) -> None:
    """Nothing about the answer is kept in memory: a new bot process answers clicks on earlier answers."""
    first = SlackBot(indexed, slack_settings, streaming=False, quick_reply=0.0)
    async with serve_bot(slack_settings, indexed, first) as http:
        await answer_blocks(http, mock_slack, REFUND)
    restarted = SlackBot(indexed, slack_settings, streaming=False, quick_reply=0.0)
    async with serve_bot(slack_settings, indexed, restarted) as http:
        await http.action(click(chosen("python"), mock_slack.response_url("after")))
        [response] = await mock_slack.wait_for("respond")
    assert "httpx.post(" in json.dumps(response.params["blocks"])


async def test_bad_or_stale_values(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    url = mock_slack.response_url("bad")
    await slack_http.action(click(button("python", "python:not-a-ref:bookshop"), url))  # not ours: ignored
    await asyncio.sleep(0.2)
    assert not mock_slack.responses
    await slack_http.action(click(button("python", f"python:{operation_ref('op:GET /gone')}:bookshop"), url))
    [gone] = await mock_slack.wait_for("respond")
    assert "isn't in `bookshop` any more" in gone.params["text"]


async def test_language_asked_for_in_the_question(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    block = await answer_blocks(slack_http, mock_slack, "how do I refund an order in Perl?")
    final = (await mock_slack.wait_for("chat.update", answered))[-1]
    text = final.blob()
    assert ("I can't write Perl snippets yet (I write curl, Python, JavaScript, TypeScript, Go, Java, Ruby, PHP and "
            "C#), so here it is in Python") in text
    assert "httpx" in text
    assert [e["action_id"] for e in block["elements"]] == ["snippet_show_curl", "snippet_language"]


async def test_newer_languages_are_asked_for_and_chosen(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    block = await answer_blocks(slack_http, mock_slack, "how do I refund an order in Ruby?")
    text = (await mock_slack.wait_for("chat.update", answered))[-1].blob()
    assert "Net::HTTP::Post.new(uri)" in text and "can't write" not in text
    select = block["elements"][-1]
    assert "ruby" not in [o["value"].split(":")[0] for o in select["options"]]  # it is shown already
    url = mock_slack.response_url("go")
    await slack_http.action(click(chosen("go"), url))
    [response] = await mock_slack.wait_for("respond")
    shown = json.dumps(response.params["blocks"])
    assert "in Go:" in shown and "net/http" in shown
