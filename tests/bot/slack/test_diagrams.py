"""Diagrams and quality reports in Slack: the PNG goes up with files_upload_v2, the report as text."""

from __future__ import annotations

import asyncio

from bot.slack_app import messages as slack_messages
from tests.bot.slack.conftest import SlackHttp, mention
from tests.bot.slack.mock_slack import MockSlack

PNG = b"\x89PNG\r\n\x1a\n"


async def test_diagram_command_sends_the_png_by_dm(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    result = await slack_http.command("diagram bookshop auth", mock_slack.response_url())
    assert result.status == 200
    await mock_slack.wait_for("respond", count=2)
    caption, sent_by_dm = (c.params for c in mock_slack.responses[:2])
    assert "Auth flow of `bookshop`" in str(caption["text"]) and caption["response_type"] == "ephemeral"
    assert sent_by_dm["text"] == slack_messages.REPORT_SENT_BY_DM
    (shared,) = mock_slack.shared()
    assert shared.data is not None and shared.data.startswith(PNG) and shared.filename == "bookshop-auth.png"
    assert shared.channel == "DU1" and "Auth flow of `bookshop`" in shared.initial_comment


async def test_lint_command_sends_the_summary_and_the_full_report(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.command("lint bookshop", mock_slack.response_url())
    await mock_slack.wait_for("respond", count=2)
    text = str(mock_slack.responses[0].params["text"])
    assert "Quality report for `bookshop`" in text and "have no description" in text
    (shared,) = mock_slack.shared()
    assert shared.filename == "bookshop-lint.txt" and shared.data is not None
    assert b"#/components/schemas/Book/properties/isbn" in shared.data


async def test_draw_mention_gets_the_image_in_its_thread(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    event = mention("draw the auth flow for bookshop")
    await slack_http.event(event)
    await mock_slack.wait_for("files.completeUploadExternal")
    await asyncio.sleep(0.2)
    (shared,) = mock_slack.shared()
    assert (shared.channel, shared.thread_ts) == ("C1", event["ts"])
    assert shared.data is not None and shared.data.startswith(PNG)
    assert any("Auth flow of `bookshop`" in m.blob() for m in mock_slack.thread("C1", event["ts"]))
