"""End to end through the fake Discord: answers in a thread opened on the question, and the buttons under answers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.discord_app import messages as discord_messages
from bot.discord_app.client import AssistantClient
from core.actions import AskQuestion
from core.snippet_choice import operation_ref
from core.threads import thread_key
from tests.bot.discord.conftest import running_bot
from tests.bot.discord.fake_discord import (
    BOT_ROLE_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    OTHER_HUMAN,
    THREAD_ID,
    THREAD_PERMISSIONS,
    Call,
    FakeDiscord,
)
from tests.bot.discord.test_bot import REFUND, questions, wait_reply  # noqa: F401  (`questions` is a fixture)

REFUND_REF = operation_ref("op:POST /orders/{orderId}/refund")


async def allow_threads(bot: AssistantClient, fake: FakeDiscord) -> None:
    """The server's admin lets the bot open threads and talk in them."""
    await fake.set_bot_permissions(THREAD_PERMISSIONS)
    role = bot.get_guild(GUILD_ID).get_role(BOT_ROLE_ID)  # type: ignore[union-attr]
    for _ in range(200):
        if role is not None and role.permissions.value == THREAD_PERMISSIONS:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the role update did not arrive")


def thread_posts(fake: FakeDiscord, thread_id: str) -> list[Call]:
    return fake.sent("POST", rf"/channels/{thread_id}/messages")


async def wait_answer_with_buttons(fake: FakeDiscord, where: str = r"/channels/\d+/messages(/\d+)?") -> Call:
    """The message that got the answer's components (the last message of the answer)."""
    calls = await fake.wait_for(
        lambda c: c.status == 200 and c.method in ("POST", "PATCH") and bool(c.body and c.body.get("components"))
        and bool(re.fullmatch(where, c.path))
    )
    return calls[-1]


def custom_ids(call: Call) -> list[str]:
    return [item["custom_id"] for row in call.body["components"] for item in row["components"]]


def menu(call: Call) -> dict[str, Any]:
    [select] = [item for row in call.body["components"] for item in row["components"] if item["type"] == 3]
    return select


# ---- threads -------------------------------------------------------------------------------------------


async def test_a_question_gets_its_own_thread_and_follow_ups_stay_there(
    bot: Any, fake: FakeDiscord, assistant: Any, questions: list[AskQuestion]  # noqa: F811
) -> None:
    await allow_threads(bot, fake)
    question = fake.mention(f"{REFUND} <@{OTHER_HUMAN['id']}>")
    qid = question["id"]
    await fake.dispatch("MESSAGE_CREATE", question)
    [opened] = await fake.wait_for(lambda c: c.method == "POST" and c.path.endswith("/threads"))
    assert opened.path == f"/channels/{CHANNEL_ID}/messages/{qid}/threads"
    assert opened.body["name"] == REFUND  # the question, without the mentions
    [answer] = await fake.wait_for(lambda c: c.method == "POST" and c.path == f"/channels/{qid}/messages")
    assert "POST /orders/{orderId}/refund" in answer.content
    assert "message_reference" not in answer.body  # the question heads the thread already
    assert fake.sent("POST", rf"/channels/{qid}/typing")
    # A follow-up in the thread, without a mention: answered there, with the thread's memory.
    follow_up = fake.message("and how do I create one?", channel_id=int(qid))
    await fake.dispatch("MESSAGE_CREATE", follow_up)
    await fake.wait_for(lambda c: c.method == "POST" and c.path == f"/channels/{qid}/messages", count=2)
    second = thread_posts(fake, qid)[1]
    assert "POST /orders" in second.content
    assert [(q.origin.channel, q.origin.thread) for q in questions] == [(qid, qid)] * 2
    assert len(await assistant.memory.history(thread_key(questions[0].origin))) == 2
    # The channel stays clean: nothing was posted there, and each new question gets its own thread.
    another = fake.mention("how do I list books?")
    await fake.dispatch("MESSAGE_CREATE", another)
    await fake.wait_for(lambda c: c.method == "POST" and c.path == f"/channels/{another['id']}/messages")
    assert len(fake.sent("POST", r"/channels/\d+/messages/\d+/threads")) == 2
    assert not fake.sent("POST", rf"/channels/{CHANNEL_ID}/messages")


async def test_refused_thread_falls_back_to_a_reply_in_the_channel(bot: Any, fake: FakeDiscord) -> None:
    await allow_threads(bot, fake)
    fake.fail_next("POST", r"/channels/\d+/messages/\d+/threads", status=403,
                   body={"message": "Missing Permissions", "code": 50013})
    question = fake.mention(REFUND)
    with capture_logs() as logs:
        await fake.dispatch("MESSAGE_CREATE", question)
        reply = await wait_reply(fake, question["id"])
    assert reply.path == f"/channels/{CHANNEL_ID}/messages" and "**Sources**" in reply.content
    [failed] = [e for e in logs if e["event"] == "discord_thread_failed"]
    assert (failed["status"], failed["code"]) == (403, 50013)


async def test_without_the_permission_the_answer_is_a_reply_as_before(bot: Any, fake: FakeDiscord) -> None:
    question = fake.mention(REFUND)  # the fake's bot role has no thread permissions by default
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    assert reply.path == f"/channels/{CHANNEL_ID}/messages"
    assert not fake.sent("POST", r"/channels/\d+/messages/\d+/threads")


async def test_no_thread_in_a_thread_a_dm_a_follow_up_or_an_upload(bot: Any, fake: FakeDiscord,
                                                                    example_spec: Any) -> None:
    await allow_threads(bot, fake)
    in_thread = fake.mention(REFUND, channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", in_thread)
    await wait_reply(fake, in_thread["id"])
    dm = fake.message(REFUND, channel_id=DM_CHANNEL_ID, guild=False)
    await fake.dispatch("MESSAGE_CREATE", dm)
    await wait_reply(fake, dm["id"])
    spec = fake.attachment("shop.yaml", served=example_spec.read_bytes())
    upload = fake.mention("shop", attachments=[spec])
    await fake.dispatch("MESSAGE_CREATE", upload)
    await fake.wait_for(lambda c: "Indexed `shop`" in c.content)
    empty = fake.mention("")
    await fake.dispatch("MESSAGE_CREATE", empty)
    await wait_reply(fake, empty["id"])
    assert not fake.sent("POST", r"/channels/\d+/messages/\d+/threads")


# ---- buttons -------------------------------------------------------------------------------------------


async def test_answer_buttons_vote_and_show_other_languages(bot: Any, fake: FakeDiscord, assistant: Any) -> None:
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    answer = await wait_answer_with_buttons(fake)
    ids = custom_ids(answer)
    answer_id = ids[0].split(":")[2]
    assert ids == [f"fb:up:{answer_id}", f"fb:down:{answer_id}", f"sn:python:{REFUND_REF}:bookshop",
                   f"sl::{REFUND_REF}:bookshop"]
    assert all(len(i) <= 100 for i in ids)
    options = [o["value"] for o in menu(answer)["options"]]
    assert options == ["python", "javascript", "typescript", "go", "java", "ruby", "php", "csharp"]  # not curl: shown
    assert [o["label"] for o in menu(answer)["options"]][-1] == "C#"
    # Discord's limits: 25 options in a menu, 5 components in a row, 5 rows.
    assert len(options) <= 25 and len(answer.body["components"]) <= 5
    assert all(len(row["components"]) <= 5 for row in answer.body["components"])
    assert menu(answer)["placeholder"] == discord_messages.OTHER_LANGUAGE
    message = answer.response

    up = fake.click(message, f"fb:up:{answer_id}")
    await fake.dispatch("INTERACTION_CREATE", up)
    [thanks] = await fake.wait_for(lambda c: up["token"] in c.path and c.method == "PATCH")
    assert thanks.content == discord_messages.feedback_thanks(True)
    [deferred] = fake.sent("POST", rf"/interactions/{up['id']}/[^/]+/callback")
    assert deferred.body == {"type": 5, "data": {"flags": 64}}  # only the clicker sees it
    again = fake.click(message, f"fb:down:{answer_id}")
    await fake.dispatch("INTERACTION_CREATE", again)
    [already] = await fake.wait_for(lambda c: again["token"] in c.path and c.method == "PATCH")
    assert already.content == discord_messages.feedback_already(False)
    other = fake.click(message, f"fb:down:{answer_id}", author=OTHER_HUMAN)
    await fake.dispatch("INTERACTION_CREATE", other)
    await fake.wait_for(lambda c: other["token"] in c.path and c.method == "PATCH")
    assert assistant.feedback == {True: 1, False: 1}

    python = fake.click(message, f"sn:python:{REFUND_REF}:bookshop")
    await fake.dispatch("INTERACTION_CREATE", python)
    [shown] = await fake.wait_for(lambda c: python["token"] in c.path and "```python" in c.content)
    assert shown.content.startswith("`POST /orders/{orderId}/refund` in Python:")
    assert "httpx.post(" in shown.content
    assert fake.sent("POST", rf"/interactions/{python['id']}/[^/]+/callback")[0].body["data"]["flags"] == 64
    # The snippet has its own language choices, and no vote (it is not an answer to rate).
    assert custom_ids(shown) == [f"sn:curl:{REFUND_REF}:bookshop", f"sl::{REFUND_REF}:bookshop"]
    chosen = fake.click(message, f"sl::{REFUND_REF}:bookshop", values=["javascript"])
    await fake.dispatch("INTERACTION_CREATE", chosen)
    [js] = await fake.wait_for(lambda c: chosen["token"] in c.path and "```javascript" in c.content)
    assert "fetch(" in js.content


async def test_clicks_on_answers_sent_before_a_restart_are_handled(
    bot: Any, fake: FakeDiscord, discord_settings: Any, assistant: Any
) -> None:
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    answer = await wait_answer_with_buttons(fake)
    message, answer_id = answer.response, custom_ids(answer)[0].split(":")[2]
    await bot.close()  # the process stops; a new one starts on the same data
    async with running_bot(discord_settings, assistant):
        click = fake.click(message, f"sn:python:{REFUND_REF}:bookshop")
        await fake.dispatch("INTERACTION_CREATE", click)
        await fake.wait_for(lambda c: click["token"] in c.path and "```python" in c.content)
        chosen = fake.click(message, f"sl::{REFUND_REF}:bookshop", values=["javascript"])
        await fake.dispatch("INTERACTION_CREATE", chosen)
        await fake.wait_for(lambda c: chosen["token"] in c.path and "```javascript" in c.content)
        vote = fake.click(message, f"fb:up:{answer_id}")
        await fake.dispatch("INTERACTION_CREATE", vote)
        await fake.wait_for(lambda c: vote["token"] in c.path and c.method == "PATCH")
    assert assistant.feedback[True] == 1


async def test_snippet_click_for_a_forgotten_spec_says_so_privately(bot: Any, fake: FakeDiscord) -> None:
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    message = (await wait_answer_with_buttons(fake)).response
    forget = fake.interaction("forget", {"name": "bookshop"})
    await fake.dispatch("INTERACTION_CREATE", forget)
    await fake.wait_for(lambda c: forget["token"] in c.path and "Forgot" in c.content)
    click = fake.click(message, f"sn:python:{REFUND_REF}:bookshop")
    await fake.dispatch("INTERACTION_CREATE", click)
    [error] = await fake.wait_for(lambda c: click["token"] in c.path and "isn't indexed here any more" in c.content)
    assert "```" not in error.content


@pytest.mark.parametrize(
    "question", ["give me Rust for refunding an order", "refund an order in node", "give me Go for refunding an order"]
)
async def test_language_asked_for_in_the_question(bot: Any, fake: FakeDiscord, question: str) -> None:
    message = fake.mention(question)
    await fake.dispatch("MESSAGE_CREATE", message)
    answer = await wait_answer_with_buttons(fake)
    if "Rust" in question:
        assert ("I can't write Rust snippets yet (I write curl, Python, JavaScript, TypeScript, Go, Java, Ruby, PHP "
                "and C#)") in answer.content
        assert "```bash" in answer.content
    elif "Go" in question:
        assert "```go" in answer.content and "net/http" in answer.content
        assert "go" not in [o["value"] for o in menu(answer)["options"]]
    else:
        assert "```javascript" in answer.content
        assert [o["value"] for o in menu(answer)["options"]] == [
            "curl", "python", "typescript", "go", "java", "ruby", "php", "csharp"]
