"""File uploads: checked by name and size before download, fetched from Slack with the bot token, indexed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.slack_app.files import SlackFileAttachment, allowed_file_origins
from core.actions import ListSpecs, Origin
from core.errors import FileTooLargeError, UserFacingError
from tests.bot.slack.conftest import SlackHttp, message
from tests.bot.slack.mock_slack import BOT_TOKEN, Call, MockSlack


def contains(text: str):  # type: ignore[no-untyped-def]
    return lambda call: text in call.blob()


def upload(files: list[dict], *, text: str = "", **kwargs) -> dict:  # type: ignore[no-untyped-def]
    return message(text, subtype="file_share", files=files, **kwargs)


async def test_upload_in_channel_is_indexed_with_progress(slack_http: SlackHttp, mock_slack: MockSlack,
                                                          example_spec: Path) -> None:
    file = mock_slack.add_file("shop.yaml", example_spec.read_bytes())
    await slack_http.event(upload([file], text="<@UBOT> here's our shop API", ts="4000.000100"))
    done = (await mock_slack.wait_for("chat.update", contains("Indexed `shop`")))[0]
    assert "Indexed `shop`: Bookshop API 1.2.0 (OpenAPI 3), 7 operations, 1 auth scheme." in done.params["text"]
    first = mock_slack.calls_to("chat.postMessage")[0]
    assert first.params["thread_ts"] == "4000.000100" and "Reading `shop.yaml`" in first.blob()
    (download,) = mock_slack.file_requests
    assert download.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    specs = await slack_http.bot.assistant.list_specs(ListSpecs(Origin("slack", "T1")))
    shop = next(s for s in specs if s.name == "shop")
    assert shop.platform == "slack" and shop.uploaded_by == "U1" and shop.uploader_name == "ada"


async def test_files_shared_without_a_mention_are_ignored_silently(slack_http: SlackHttp, mock_slack: MockSlack,
                                                                   example_spec: Path) -> None:
    file = mock_slack.add_file("shop.yaml", example_spec.read_bytes())
    await slack_http.event(upload([file], text="our new API, have a look", ts="4001.000100"))
    await slack_http.event(upload([file], text="in a thread", thread_ts="4001.000100"))
    await asyncio.sleep(0.5)
    assert mock_slack.file_requests == [] and mock_slack.calls_to("chat.postMessage") == []
    specs = await slack_http.bot.assistant.list_specs(ListSpecs(Origin("slack", "T1")))
    assert [s.name for s in specs] == ["bookshop"]


async def test_replacing_someone_elses_spec_is_refused_and_changes_are_announced(
    slack_http: SlackHttp, mock_slack: MockSlack, example_spec: Path
) -> None:
    original = example_spec.read_text()
    swapped = original.replace("https://api.bookshop.example/v1", "https://collector.attacker.example/v1")
    assert swapped != original
    file = mock_slack.add_file("bookshop.yaml", swapped.encode(), file_id="F7")
    await slack_http.event(upload([file], text="<@UBOT>", user="U2"))
    refusal = (await mock_slack.wait_for("chat.update", contains("Only ada")))[0]
    assert "Only ada (who uploaded `bookshop`) or a workspace admin can replace it." in refusal.params["text"]
    assert mock_slack.file_requests == []  # refused before the download
    await slack_http.event(upload([file], text="<@UBOT>", user="U1"))
    done = (await mock_slack.wait_for("chat.update", contains("Updated `bookshop`")))[0]
    assert ("Requests now go to `https://collector.attacker.example/v1` (was `https://api.bookshop.example/v1`)"
            in done.params["text"])


async def test_upload_in_dm_and_files_info_lookup(slack_http: SlackHttp, mock_slack: MockSlack,
                                                  example_spec: Path) -> None:
    mock_slack.add_file("catalogue.yaml", example_spec.read_bytes(), file_id="F9")
    # Slack Connect style: the event carries only the id, details come from files.info.
    await slack_http.event(upload([{"id": "F9", "file_access": "check_file_info"}], channel="D1", channel_type="im"))
    await mock_slack.wait_for("chat.update", contains("Indexed `catalogue`"))
    assert mock_slack.calls_to("files.info")[0].params["file"] == "F9"
    assert "thread_ts" not in mock_slack.calls_to("chat.postMessage")[0].params


async def test_oversize_upload_refused_before_download(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    file = mock_slack.add_file("huge.json", b"{}", size=50 * 1024 * 1024)
    await slack_http.event(upload([file], text="<@UBOT>"))
    reply = (await mock_slack.wait_for("chat.postMessage", contains("over the 10.0 MB limit")))[0]
    assert "`huge.json` is 50.0 MB" in reply.params["text"]
    assert mock_slack.file_requests == []


async def test_wrong_type_refused_before_download(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    photo = mock_slack.add_file("photo.png", b"\x89PNG", file_id="F2")
    # In a channel, without a mention: not meant for the bot, so no reply at all.
    await slack_http.event(upload([photo], ts="4100.000100"))
    # In a DM (or with a mention) the user gets a friendly refusal.
    diagram = mock_slack.add_file("diagram.png", b"\x89PNG", file_id="F3")
    await slack_http.event(upload([diagram], channel="D1", channel_type="im"))
    reply = (await mock_slack.wait_for("chat.postMessage", contains("isn't accepted")))[0]
    assert reply.params["channel"] == "D1" and "`diagram.png`" in reply.params["text"]
    await asyncio.sleep(0.3)
    assert mock_slack.file_requests == []
    assert len(mock_slack.calls_to("chat.postMessage")) == 1


async def test_size_is_enforced_while_streaming(slack_http: SlackHttp, mock_slack: MockSlack,
                                                example_spec: Path) -> None:
    for settings in (slack_http.bot.settings, slack_http.bot.assistant.settings):
        settings.max_file_size_mb = 0.002  # ~2 KB; the bookshop spec is ~6 KB
    file = mock_slack.add_file("liar.yaml", example_spec.read_bytes(), size=500, chunked=True)
    await slack_http.event(upload([file], text="<@UBOT>"))
    reply = (await mock_slack.wait_for("chat.update", contains("over the")))[0]
    assert "`liar.yaml`" in reply.params["text"]
    assert len(mock_slack.file_requests) == 1


async def test_files_outside_slack_are_never_fetched(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    evil = {"id": "F5", "name": "spec.yaml", "size": 100, "url_private": "https://evil.example.com/spec.yaml"}
    await slack_http.event(upload([evil], channel="D1", channel_type="im"))
    reply = (await mock_slack.wait_for("chat.postMessage", contains("hosted by Slack")))[0]
    assert "`spec.yaml`" in reply.params["text"]


async def test_attachment_never_shows_its_token_and_refuses_foreign_redirects(mock_slack: MockSlack,
                                                                              example_spec: Path) -> None:
    origins = allowed_file_origins(mock_slack.api_url)
    redirecting = SlackFileAttachment("a.yaml", 10, f"{mock_slack.base}/redirect/a.yaml", BOT_TOKEN, origins, "F1")
    assert BOT_TOKEN not in repr(redirecting)
    with pytest.raises(UserFacingError, match="hosted by Slack"):
        await redirecting.read(1000)
    payload = mock_slack.add_file("b.yaml", example_spec.read_bytes())
    no_scope = SlackFileAttachment("b.yaml", 10, payload["url_private"], "xoxb-wrong", origins, "F1")
    with pytest.raises(UserFacingError, match="sign-in page"):
        await no_scope.read(100_000)
    good = SlackFileAttachment("b.yaml", 10, payload["url_private"], BOT_TOKEN, origins, "F1")
    assert await good.read(100_000) == example_spec.read_bytes()
    with pytest.raises(FileTooLargeError):
        await good.read(1000)  # Content-Length already says it is too big
    assert all(isinstance(c, Call) for c in mock_slack.file_requests)
