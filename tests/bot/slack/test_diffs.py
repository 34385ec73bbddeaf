"""Diffs and checks in Slack, end to end through the mock: `/api diff` (its full report uploaded with
`files_upload_v2`), `/api check`, and a mention asking what changed, on the bookshop example and an edited copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.slack_app import messages as slack_messages
from core import messages
from core.actions import BytesAttachment, DiffSpec, Origin, UploadSpec
from tests.bookshop_versions import ADDED, REMOVED, bookshop_versions
from tests.bot.slack.conftest import SlackHttp, mention
from tests.bot.slack.mock_slack import TEAM_ID, MockSlack
from tests.bot.slack.test_native_streaming import settled

REPORT_NAME = "bookshop-diff-v1-v2.txt"


@pytest.fixture
async def two_versions(indexed: Any, example_spec: Path) -> bytes:
    """`bookshop` re-uploaded as the edited copy (version 2); returns the full report the diff should attach."""
    _, edited = bookshop_versions(example_spec)
    uploader = Origin("slack", TEAM_ID, user="U1", user_name="ada")
    await indexed.ingest(UploadSpec(uploader, BytesAttachment("bookshop.yaml", edited), "bookshop"))
    report = (await indexed.diff(DiffSpec(uploader, "bookshop"))).file()
    assert report.filename == REPORT_NAME
    return report.content


async def run_command(slack_http: SlackHttp, mock: MockSlack, text: str, count: int = 1) -> list[dict[str, Any]]:
    before = len(mock.responses)
    result = await slack_http.command(text, mock.response_url())
    assert result.status == 200 and result.seconds < 3
    await mock.wait_for("respond", count=before + count)
    await settled(mock, 0.3)
    return [r.params for r in mock.responses[before:]]


async def test_api_diff_replies_privately_and_sends_the_full_report_by_dm(
    slack_http: SlackHttp, mock_slack: MockSlack, two_versions: bytes
) -> None:
    summary, sent_by_dm = await run_command(slack_http, mock_slack, "diff bookshop", count=2)
    assert summary["response_type"] == "ephemeral"
    assert "Changes in `bookshop` from version 1 (Bookshop API 1.2.0) to version 2" in summary["text"]
    assert REMOVED in json.dumps(summary)
    assert sent_by_dm["text"] == slack_messages.REPORT_SENT_BY_DM
    # files_upload_v2's three steps, as Slack documents them.
    (get_url,) = mock_slack.calls_to("files.getUploadURLExternal")
    assert get_url.params["filename"] == REPORT_NAME and int(get_url.params["length"]) == len(two_versions)
    assert len(mock_slack.upload_requests) == 1
    (complete,) = mock_slack.calls_to("files.completeUploadExternal")
    assert json.loads(complete.params["files"])[0]["title"] == REPORT_NAME
    assert complete.params["channels"] == "U1" and not complete.params.get("channel_id")
    (shared,) = mock_slack.shared()
    assert shared.data == two_versions and shared.channel == "DU1" and shared.thread_ts is None
    assert shared.initial_comment == messages.report_caption()
    report = shared.data.decode()
    assert "BREAKING" in report and REMOVED in report and ADDED in report


async def test_a_failed_upload_keeps_the_summary_and_is_not_repeated(
    slack_http: SlackHttp, mock_slack: MockSlack, two_versions: bytes
) -> None:
    # A 500 from the completion may mean it was shared: never tried again (bot.slack_app.retries).
    mock_slack.fail("files.completeUploadExternal", error="internal_error", status=500)
    with capture_logs() as logs:
        summary, notice = await run_command(slack_http, mock_slack, "diff bookshop", count=2)
    assert "Changes in `bookshop`" in summary["text"]
    assert notice["text"] == messages.report_not_attached() and notice["response_type"] == "ephemeral"
    assert len(mock_slack.calls_to("files.completeUploadExternal")) == 1
    assert mock_slack.shared() == []
    (failed,) = [e for e in logs if e["event"] == "report_attach_failed"]
    assert failed["error"] == "internal_error" and failed["filename"] == REPORT_NAME


async def test_api_diff_with_one_version_says_so(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    (reply,) = await run_command(slack_http, mock_slack, "diff bookshop")
    assert "`bookshop` has only one version so far" in reply["text"]
    assert mock_slack.calls_to("files.getUploadURLExternal") == []


async def test_api_check_reports_each_problem_privately(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    body = json.dumps({"email": 42})
    (reply,) = await run_command(slack_http, mock_slack, f"check POST /customers\n{body}")
    assert reply["response_type"] == "ephemeral"
    text = reply["text"]
    assert text.startswith(messages.check_problems(2, "request"))
    assert "`$.name`: missing required field" in text and "`$.email`: wrong type" in text
    assert "Checked against `POST /customers` in `bookshop`." in text
    (valid,) = await run_command(slack_http, mock_slack,
                                 'check POST /customers\n{"email": "ada@example.com", "name": "Ada"}')
    assert valid["text"].startswith(messages.check_valid("request"))
    assert mock_slack.calls_to("files.getUploadURLExternal") == []


async def test_a_mention_asking_what_changed_is_answered_in_its_thread_with_the_report(
    streaming_http: SlackHttp, mock_slack: MockSlack, two_versions: bytes
) -> None:
    event = mention("what changed in bookshop?")
    await streaming_http.event(event)
    await mock_slack.wait_for("files.completeUploadExternal")
    await settled(mock_slack, 0.3)
    thread = mock_slack.thread("C1", event["ts"])
    answer, file_message = thread
    assert "Changes in `bookshop` from version 1" in answer.blob()
    assert f"`bookshop` {REMOVED}" in answer.blob().replace("&lt;", "<").replace("&gt;", ">")  # cited
    assert file_message.text == messages.report_caption()
    (shared,) = mock_slack.shared()
    assert (shared.channel, shared.thread_ts, shared.data) == ("C1", event["ts"], two_versions)
    (complete,) = mock_slack.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C1" and complete.params["thread_ts"] == event["ts"]


async def test_a_mention_with_change_words_that_asks_how_is_searched(
    streaming_http: SlackHttp, mock_slack: MockSlack, two_versions: bytes
) -> None:
    event = mention("how do I change a customer's email?")
    await streaming_http.event(event)
    await mock_slack.wait_until(lambda: bool(mock_slack.thread("C1", event["ts"])))
    await settled(mock_slack, 0.3)
    (reply,) = mock_slack.thread("C1", event["ts"])
    assert "Changes in `bookshop`" not in reply.blob()
    assert mock_slack.calls_to("files.getUploadURLExternal") == []
