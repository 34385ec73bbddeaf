"""The assistant panel (Slack's split view for AI apps) through Bolt's `AsyncAssistant` and the mock Slack."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from bot.slack_app.panel import MAX_PROMPT_TITLE_CHARS, MAX_PROMPTS, MAX_TITLE_CHARS, suggested_prompts, thread_title
from tests.bot.slack.conftest import SlackHttp, message
from tests.bot.slack.mock_slack import Call, MockSlack


def panel_event(kind: str, thread_ts: str, *, viewing: str = "C1") -> dict[str, Any]:
    """`assistant_thread_started` / `assistant_thread_context_changed`, as Slack sends them."""
    return {
        "type": kind, "event_ts": thread_ts,
        "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": thread_ts,
                             "context": {"channel_id": viewing, "team_id": "T1", "enterprise_id": None}},
    }


def sent(call: Call) -> dict[str, Any]:
    return {k: v for k, v in call.params.items() if k != "team_id"}


def has_buttons(call: Call) -> bool:
    return any(b.get("type") == "actions" for b in call.params.get("blocks") or [])


async def test_opening_a_thread_offers_prompts_from_the_workspaces_specs(
    streaming_http: SlackHttp, mock_slack: MockSlack
) -> None:
    result = await streaming_http.event(panel_event("assistant_thread_started", "9800.000100"))
    assert result.status == 200
    call = (await mock_slack.wait_for("assistant.threads.setSuggestedPrompts"))[0]
    assert sent(call) == {
        "channel_id": "D1", "thread_ts": "9800.000100", "title": "Ask about your APIs",
        "prompts": [
            {"title": "Authenticate with Bookshop API", "message": "How do I authenticate with Bookshop API?"},
            {"title": "What specs do you have?", "message": "What specs do you have?"},
        ],
    }
    # Moving to another channel changes nothing here, and costs no Web API call (Bolt's default would store it).
    await streaming_http.event(panel_event("assistant_thread_context_changed", "9800.000100", viewing="C2"))
    await asyncio.sleep(0.5)
    assert {c.method for c in mock_slack.calls} == {"auth.test", "assistant.threads.setSuggestedPrompts"}


async def test_a_question_in_the_panel_is_answered_and_titles_the_thread(
    streaming_http: SlackHttp, mock_slack: MockSlack
) -> None:
    thread = "9900.000100"
    await streaming_http.event(panel_event("assistant_thread_started", thread))
    await streaming_http.event(message("how do I refund an order?", channel="D1", channel_type="im",
                                       thread_ts=thread))
    answer = (await mock_slack.wait_for("chat.postMessage", has_buttons))[0]
    assert answer.params["thread_ts"] == thread and "POST /orders/{orderId}/refund" in answer.blob()
    titles = mock_slack.calls_to("assistant.threads.setTitle")
    assert [sent(c) for c in titles] == [{"channel_id": "D1", "thread_ts": thread,
                                          "title": "how do I refund an order?"}]
    # A follow-up in the same thread is answered too, and keeps the title.
    await streaming_http.event(message("and how do I delete a customer?", channel="D1", channel_type="im",
                                       thread_ts=thread))
    later = (await mock_slack.wait_for("chat.postMessage", has_buttons, count=2))[1]
    assert "DELETE /customers/{customerId}" in later.blob()
    assert len(mock_slack.calls_to("assistant.threads.setTitle")) == 1


def test_prompts_stay_within_slacks_limits_and_never_ping(indexed) -> None:  # type: ignore[no-untyped-def]
    record = indexed.registry.list_records("slack:T1")[0]
    records = [dataclasses.replace(record, name=f"spec{i}", title=f"<!here> @channel API {i} " + "x" * 200,
                                   indexed_at=float(i)) for i in range(6)]
    prompts = suggested_prompts(records)
    assert len(prompts) == MAX_PROMPTS
    assert prompts[0]["message"].startswith("How do I authenticate with") and "API 5" in prompts[0]["message"]
    for prompt in prompts:
        assert len(prompt["title"]) <= MAX_PROMPT_TITLE_CHARS
        assert "<!here>" not in prompt["message"] and "@channel" not in prompt["message"]
    assert suggested_prompts([]) == [{"title": "What specs do you have?", "message": "What specs do you have?"}]
    title = thread_title("how\ndo I   <@U2> " + "y" * 500)
    assert "\n" not in title and "<@U2>" not in title and len(title) <= MAX_TITLE_CHARS
