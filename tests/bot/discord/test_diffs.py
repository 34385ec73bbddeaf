"""Diffs and checks in Discord, end to end through the fake gateway and REST: `/api diff` (its full report sent as a
message attachment, multipart/form-data), `/api check`, and a mention asking what changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from core import messages
from core.actions import BytesAttachment, DiffSpec, Origin, UploadSpec
from tests.bookshop_versions import ADDED, REMOVED, bookshop_versions
from tests.bot.discord.fake_discord import APP_ID, CHANNEL_ID, GUILD_ID, USER_ID, Call, FakeDiscord
from tests.bot.discord.test_bot import run_slash, wait_reply

REPORT_NAME = "bookshop-diff-v1-v2.txt"
UPLOADER = Origin("discord", str(GUILD_ID), user=str(USER_ID), user_name="ada")


@pytest.fixture
async def two_versions(bot: Any, assistant: Any, example_spec: Path) -> bytes:
    """`bookshop` re-uploaded as the edited copy (version 2); returns the full report the diff should attach."""
    _, edited = bookshop_versions(example_spec)
    await assistant.ingest(UploadSpec(UPLOADER, BytesAttachment("bookshop.yaml", edited), "bookshop"))
    report = (await assistant.diff(DiffSpec(UPLOADER, "bookshop"))).file()
    assert report.filename == REPORT_NAME
    return report.content


def with_files(fake: FakeDiscord) -> list[Call]:
    return [c for c in fake.calls if c.files]


async def test_api_diff_sends_the_summary_then_the_full_report_as_an_attachment(
    bot: Any, fake: FakeDiscord, two_versions: bytes
) -> None:
    interaction = fake.interaction("diff", {"name": "bookshop"})
    summary = await run_slash(fake, interaction, "Changes in `bookshop` from version 1")
    assert summary.path.endswith("/messages/@original") and REMOVED in summary.content
    [upload] = await fake.wait_for(lambda c: bool(c.files) and c.status == 200)
    assert upload.method == "POST" and upload.path == f"/webhooks/{APP_ID}/{interaction['token']}"
    assert upload.at > summary.at  # the reply first, then its file
    # multipart/form-data as Discord documents it: payload_json, then files[0] named in `attachments`.
    [file] = upload.files
    assert (file["field"], file["filename"], file["data"]) == ("files[0]", REPORT_NAME, two_versions)
    assert upload.body["attachments"] == [{"id": 0, "filename": REPORT_NAME}]
    assert upload.content == messages.report_caption()
    assert not (upload.body.get("flags") or 0) & 64  # /api diff is public, and so is its report
    report = file["data"].decode()
    assert "BREAKING" in report and REMOVED in report and ADDED in report


async def test_a_refused_upload_keeps_the_summary_and_says_so(bot: Any, fake: FakeDiscord, two_versions: bytes) -> None:
    interaction = fake.interaction("diff", {"name": "bookshop"})
    fake.fail_next("POST", rf"/webhooks/{APP_ID}/{interaction['token']}", status=413,
                   body={"message": "Request entity too large", "code": 40005})
    with capture_logs() as logs:
        await fake.dispatch("INTERACTION_CREATE", interaction)
        await fake.wait_for(lambda c: interaction["token"] in c.path and c.content == messages.report_not_attached())
    summary = [c for c in fake.sent("PATCH") if "Changes in `bookshop`" in c.content]
    assert summary, "the summary was shown"
    refused = [c for c in fake.calls if c.files]
    assert len(refused) == 1 and refused[0].status == 413
    [failed] = [e for e in logs if e["event"] == "report_attach_failed"]
    assert failed["status"] == 413 and failed["filename"] == REPORT_NAME


async def test_api_diff_with_one_version_says_so(bot: Any, fake: FakeDiscord) -> None:
    interaction = fake.interaction("diff", {"name": "bookshop"})
    await run_slash(fake, interaction, "`bookshop` has only one version so far")
    assert with_files(fake) == []


async def test_api_check_reports_each_problem(bot: Any, fake: FakeDiscord) -> None:
    pasted = "POST /customers\n" + json.dumps({"email": 42})
    interaction = fake.interaction("check", {"request": pasted, "spec": "bookshop"})
    done = await run_slash(fake, interaction, messages.check_problems(2, "request"))
    assert "`$.name`: missing required field" in done.content and "`$.email`: wrong type" in done.content
    assert "POST /customers" in done.content
    valid = fake.interaction("check", {"request": 'POST /customers\n{"email": "ada@example.com", "name": "Ada"}'})
    await run_slash(fake, valid, messages.check_valid("request"))
    assert with_files(fake) == []


async def test_a_mention_asking_what_changed_gets_the_diff_and_the_report(
    bot: Any, fake: FakeDiscord, two_versions: bytes
) -> None:
    question = fake.mention("what changed in bookshop?")
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    [upload] = await fake.wait_for(lambda c: bool(c.files) and c.status == 200)
    final = [c for c in fake.calls if c.status == 200 and "Changes in `bookshop` from version 1" in c.content]
    assert final and final[0].at <= upload.at
    answer = final[-1].content
    summary, sources = answer.split("**Sources**")
    assert f"`{REMOVED}`: operation removed" in summary
    assert REMOVED in sources and ADDED in sources  # the operations concerned, cited
    assert reply.path == f"/channels/{CHANNEL_ID}/messages"
    assert upload.path == f"/channels/{CHANNEL_ID}/messages"
    assert upload.files[0]["filename"] == REPORT_NAME and upload.files[0]["data"] == two_versions


async def test_a_how_to_question_with_change_words_is_searched(
    bot: Any, fake: FakeDiscord, two_versions: bytes
) -> None:
    question = fake.mention("how do I change a customer's email?")
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    await fake.wait_for(lambda c: c.status == 200 and "**Sources**" in c.content)
    assert "Changes in `bookshop`" not in reply.content
    assert with_files(fake) == []
