"""Diagrams and quality reports in Slack: the PNG goes up with files_upload_v2, the report as text."""

from __future__ import annotations

from tests.bot.slack.conftest import SlackHttp, mention
from tests.bot.slack.mock_slack import MockSlack

PNG = b"\x89PNG\r\n\x1a\n"


async def test_diagram_command_uploads_the_png_to_the_channel(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    result = await slack_http.command("diagram bookshop auth", mock_slack.response_url())
    assert result.status == 200
    await mock_slack.wait_for("files.completeUploadExternal")
    [upload] = mock_slack.uploads.values()
    assert upload["data"].startswith(PNG) and len(upload["data"]) == upload["length"]
    assert upload["channel"] == "C1" and upload["filename"] == "bookshop-auth.png"
    await mock_slack.wait_for("respond")
    assert "Auth flow of `bookshop`" in str(mock_slack.responses[-1].params["text"])


async def test_lint_command_answers_privately_without_uploading(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    await slack_http.command("lint bookshop", mock_slack.response_url())
    await mock_slack.wait_for("respond")
    text = str(mock_slack.responses[-1].params["text"])
    assert "Quality report for `bookshop`" in text and "have no description" in text
    assert mock_slack.responses[-1].params["response_type"] == "ephemeral"
    assert mock_slack.uploads == {}  # a private command's full report is not posted in the channel


async def test_draw_mention_gets_the_image_in_its_thread(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    event = mention("draw the auth flow for bookshop")
    await slack_http.event(event)
    await mock_slack.wait_for("files.completeUploadExternal")
    [upload] = mock_slack.uploads.values()
    assert upload["thread_ts"] == event["ts"] and upload["data"].startswith(PNG)
