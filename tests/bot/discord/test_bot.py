"""End to end: the real discord.py client and the real core, talking to a fake Discord."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from bot.discord_app.client import bot_intents
from bot.discord_app.render import MESSAGE_LIMIT
from bot.discord_app.runner import sync_commands
from core import messages
from core.actions import AskQuestion, ListSpecs, Origin
from core.answers import (
    Answer,
    AnswerEvent,
    AnswerKind,
    Citation,
    CodeBlock,
    FinalAnswer,
    StatusUpdate,
    TextBlock,
    TextDelta,
)
from core.commands.catalogue import DISCORD, Command, available
from core.errors import RateLimitedError
from tests.bot.discord.fake_discord import (
    BOT_ID,
    BOT_ROLE_ID,
    BOT_USER,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    OTHER_BOT,
    OTHER_HUMAN,
    OTHER_USER_ID,
    THREAD_ID,
    TOKEN,
    USER_ID,
    Call,
    FakeDiscord,
)

MESSAGES = rf"/channels/({CHANNEL_ID}|{THREAD_ID}|{DM_CHANNEL_ID})/messages"
REFUND = "how do I refund an order?"
GUILD_ORIGIN = Origin("discord", str(GUILD_ID))


def posts(fake: FakeDiscord, channel: int = CHANNEL_ID) -> list[Call]:
    return fake.sent("POST", rf"/channels/{channel}/messages")


def replies_to(fake: FakeDiscord, message_id: str) -> list[Call]:
    return [
        c for c in fake.sent("POST", MESSAGES)
        if str((c.body.get("message_reference") or {}).get("message_id")) == message_id
    ]


async def wait_reply(fake: FakeDiscord, message_id: str) -> Call:
    [call] = await fake.wait_for(
        lambda c: c.method == "POST" and c.status == 200
        and str((c.body.get("message_reference") or {}).get("message_id")) == message_id
    )
    return call


def assert_never_pings(fake: FakeDiscord) -> None:
    """Every message, edit, follow-up and response the bot sent denies all mentions (also checked after every test)."""
    sent = fake.message_calls()
    assert sent, "the bot sent nothing"
    for call in sent:
        body = call.body.get("data", call.body) if call.path.endswith("/callback") else call.body
        mentions = body.get("allowed_mentions")
        assert mentions is not None, f"{call.method} {call.path} has no allowed_mentions"
        assert mentions.get("parse") == [], call
        assert not mentions.get("users") and not mentions.get("roles") and not mentions.get("replied_user"), call
        assert "@everyone" not in call.content and "@here" not in call.content


@pytest.fixture
def questions(assistant: Any, monkeypatch: pytest.MonkeyPatch) -> list[AskQuestion]:
    """Records every question the core is asked (and still answers it)."""
    seen: list[AskQuestion] = []
    real = assistant.stream_answer

    async def spy(request: AskQuestion) -> AsyncIterator[AnswerEvent]:
        seen.append(request)
        async for event in real(request):
            yield event

    monkeypatch.setattr(assistant, "stream_answer", spy)
    return seen


# ---- connection ------------------------------------------------------------------------------------------


async def test_identify_handshake(bot: Any, fake: FakeDiscord) -> None:
    [identify] = fake.identifies
    assert identify["token"] == TOKEN
    assert identify["intents"] == bot_intents().value
    assert bot_intents().message_content and not bot_intents().members and not bot_intents().presences
    assert fake.heartbeats >= 1
    assert fake.sent("GET", "/users/@me") and fake.sent("GET", "/oauth2/applications/@me")
    assert bot.user.id == BOT_ID
    assert bot.get_guild(GUILD_ID) is not None
    assert bot.tree.get_command("api") is not None
    assert not fake.sent("PUT"), "commands must not be synced on start"


async def test_sync_commands(fake: FakeDiscord, discord_settings: Any) -> None:
    assert await sync_commands(discord_settings) == 1
    [put] = fake.sent("PUT", r"/applications/\d+/commands")
    [api] = put.body
    assert api["name"] == "api"
    assert {o["name"] for o in api["options"]} == {c.name for c in available(DISCORD)}
    assert {o["name"] for o in api["options"]} >= {"ask", "upload", "specs", "forget", "help", "diff", "check"}
    assert not fake.identifies, "syncing needs no gateway connection"


# ---- questions -------------------------------------------------------------------------------------------


async def test_mention_gets_a_reply_with_sources(bot: Any, fake: FakeDiscord, questions: list[AskQuestion]) -> None:
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    assert "POST /orders/{orderId}/refund" in reply.content
    assert "**Sources**" in reply.content
    assert reply.content.index("```bash") < reply.content.index("**Sources**")
    assert reply.body["message_reference"]["fail_if_not_exists"] is False
    typing = fake.sent("POST", rf"/channels/{CHANNEL_ID}/typing")
    assert typing and typing[0].at <= reply.at
    [asked] = questions
    assert asked.question == REFUND  # the mention is stripped
    assert asked.origin == Origin(
        "discord", str(GUILD_ID), str(CHANNEL_ID), str(USER_ID), thread=question["id"], event_id=question["id"],
        user_name="ada", is_admin=True,  # ada owns the guild
    )
    assert_never_pings(fake)


async def test_mentioning_the_bot_role_works_too(bot: Any, fake: FakeDiscord, questions: list[AskQuestion]) -> None:
    question = fake.message(f"<@&{BOT_ROLE_ID}> list books", mention_roles=[BOT_ROLE_ID])
    await fake.dispatch("MESSAGE_CREATE", question)
    await wait_reply(fake, question["id"])
    assert questions[0].question == "list books"


async def test_follow_up_by_replying_to_the_answer(bot: Any, fake: FakeDiscord, questions: list[AskQuestion]) -> None:
    first = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", first)
    answer = await wait_reply(fake, first["id"])
    follow_up = fake.message("and how do I create one?", reply_to=answer.response)  # no mention
    await fake.dispatch("MESSAGE_CREATE", follow_up)
    second = await wait_reply(fake, follow_up["id"])
    assert "POST /orders" in second.content
    # A reply to the follow-up answer is still the same conversation.
    third = fake.message("what auth does it need?", reply_to=second.response)
    await fake.dispatch("MESSAGE_CREATE", third)
    await wait_reply(fake, third["id"])
    assert [q.origin.thread for q in questions] == [first["id"]] * 3
    assert_never_pings(fake)


async def test_follow_up_in_a_thread_without_mention(bot: Any, fake: FakeDiscord, questions: list[AskQuestion]) -> None:
    unaddressed = fake.message("anyone know how refunds work?", channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", unaddressed)
    first = fake.mention(REFUND, channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", first)
    await wait_reply(fake, first["id"])
    screenshot = fake.message("", channel_id=THREAD_ID, attachments=[fake.attachment("screen.png", size=10)])
    await fake.dispatch("MESSAGE_CREATE", screenshot)  # not a question, not an upload: left alone
    follow_up = fake.message("and listing books?", channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", follow_up)
    await wait_reply(fake, follow_up["id"])
    assert [q.origin.thread for q in questions] == [str(THREAD_ID)] * 2
    assert not replies_to(fake, screenshot["id"]) and not fake.cdn_requests
    assert not replies_to(fake, unaddressed["id"])  # before the bot joined in, the thread was not its business


async def test_thread_message_for_other_people_gets_no_answer(
    bot: Any, fake: FakeDiscord, questions: list[AskQuestion]
) -> None:
    first = fake.mention(REFUND, channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", first)
    await wait_reply(fake, first["id"])
    other_role = 600_000_000_000_000_006
    for_others = [
        fake.message(f"<@{OTHER_USER_ID}> can you try this on staging?", channel_id=THREAD_ID, mentions=[OTHER_HUMAN]),
        fake.message(f"<@!{OTHER_USER_ID}> does the refund work for you?", channel_id=THREAD_ID,
                     mentions=[OTHER_HUMAN]),
        fake.message(f"<@&{other_role}> does this match what you see?", channel_id=THREAD_ID,
                     mention_roles=[other_role]),
        fake.message("@here anyone tried refunds on staging?", channel_id=THREAD_ID),
    ]
    with capture_logs() as logs:
        for message in for_others:
            await fake.dispatch("MESSAGE_CREATE", message)
        for _ in range(300):
            if sum(e["event"] == "thread_message_skipped" for e in logs) == len(for_others):
                break
            await asyncio.sleep(0.02)
    skipped = [e for e in logs if e["event"] == "thread_message_skipped"]
    assert sorted(e["event_id"] for e in skipped) == sorted(m["id"] for m in for_others)
    assert {(e["platform"], e["reason"], e["channel"], e["user"], e["workspace"]) for e in skipped} == {
        ("discord", "mentions_others", str(THREAD_ID), str(USER_ID), str(GUILD_ID))}
    assert not any(m["content"] in repr(entry) for entry in logs for m in for_others)  # no message text in logs
    # The bot (here by its role) and someone else: a question for the bot.
    both = fake.message(f"<@{OTHER_USER_ID}> FYI <@&{BOT_ROLE_ID}> and listing books?", channel_id=THREAD_ID,
                        mentions=[OTHER_HUMAN], mention_roles=[BOT_ROLE_ID])
    await fake.dispatch("MESSAGE_CREATE", both)
    await wait_reply(fake, both["id"])
    # No mention at all: a follow-up, as before.
    follow_up = fake.message("and how do I create an order?", channel_id=THREAD_ID)
    await fake.dispatch("MESSAGE_CREATE", follow_up)
    await wait_reply(fake, follow_up["id"])
    await asyncio.sleep(0.2)
    assert not any(replies_to(fake, m["id"]) for m in for_others)
    assert len(posts(fake, THREAD_ID)) == 3
    assert len(fake.sent("POST", rf"/channels/{THREAD_ID}/typing")) == 3  # not even "typing" for the skipped
    assert [q.origin.event_id for q in questions] == [first["id"], both["id"], follow_up["id"]]


async def test_dm_without_mention_uses_a_private_workspace(
    bot: Any, fake: FakeDiscord, questions: list[AskQuestion]
) -> None:
    dm = fake.message(REFUND, channel_id=DM_CHANNEL_ID, guild=False)
    await fake.dispatch("MESSAGE_CREATE", dm)
    reply = await wait_reply(fake, dm["id"])
    assert reply.path == f"/channels/{DM_CHANNEL_ID}/messages"
    assert "No API specs have been uploaded here yet" in reply.content  # the guild's specs are not visible
    assert questions[0].origin.workspace == f"dm-{USER_ID}"


async def test_unaddressed_and_bot_messages_are_ignored(bot: Any, fake: FakeDiscord) -> None:
    ignored = [
        fake.message("just chatting about refunds"),
        fake.mention(REFUND, author=OTHER_BOT),
        fake.mention(REFUND, author=BOT_USER),
        fake.message("@everyone look"),
    ]
    for message in ignored:
        await fake.dispatch("MESSAGE_CREATE", message)
    last = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", last)
    await wait_reply(fake, last["id"])
    await asyncio.sleep(0.2)
    assert len(fake.sent("POST", MESSAGES)) == 1
    assert len(fake.sent("POST", rf"/channels/{CHANNEL_ID}/typing")) == 1


async def test_empty_mention_gets_a_hint(bot: Any, fake: FakeDiscord) -> None:
    question = fake.message(f"<@{BOT_ID}>", mentions=[BOT_USER])
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    assert reply.content.startswith("Ask me something about your APIs")


async def test_rate_limited_question_gets_the_friendly_reply(
    bot: Any, fake: FakeDiscord, assistant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stream(request: AskQuestion) -> AsyncIterator[AnswerEvent]:
        yield StatusUpdate("Searching the specs…")
        raise RateLimitedError(messages.rate_limited(12), retry_after=12)

    monkeypatch.setattr(assistant, "stream_answer", stream)
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    assert "try again in 12 seconds" in reply.content


async def test_unexpected_error_reply_names_the_request_id_of_its_log_lines(
    bot: Any, fake: FakeDiscord, assistant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stream(request: AskQuestion) -> AsyncIterator[AnswerEvent]:
        structlog.get_logger("core.assistant").info("question_received")  # a core log line of the same action
        yield StatusUpdate("Searching the specs…")
        raise RuntimeError("boom: token=abc123 at /srv/secret")

    monkeypatch.setattr(assistant, "stream_answer", stream)
    with capture_logs(processors=[merge_contextvars]) as logs:
        question = fake.mention(REFUND)
        await fake.dispatch("MESSAGE_CREATE", question)
        reply = await wait_reply(fake, question["id"])
    assert "abc123" not in reply.content and "boom" not in reply.content
    [error] = [e for e in logs if e["event"] == "unexpected_error"]
    assert error["exc_info"] and error["workspace"] == str(GUILD_ID)
    ref = error["request_id"]
    assert messages.unexpected_error(ref) in reply.content and f"ref `{ref}`" in reply.content
    [received] = [e for e in logs if e["event"] == "question_received"]
    assert received["request_id"] == ref

    async def failing_list(request: ListSpecs) -> list[Any]:
        raise RuntimeError("registry down")

    monkeypatch.setattr(assistant, "list_specs", failing_list)
    with capture_logs(processors=[merge_contextvars]) as logs:
        await fake.dispatch("INTERACTION_CREATE", fake.interaction("specs"))
        [followup] = await fake.wait_for(
            lambda c: c.method == "PATCH" and "@original" in c.path and "ref `" in c.content
        )
    [error] = [e for e in logs if e["event"] == "unexpected_error"]
    assert error["command"] == "specs" and error["request_id"] != ref
    assert f"ref `{error['request_id']}`" in followup.content


async def test_redelivered_message_after_resume_is_answered_once(bot: Any, fake: FakeDiscord) -> None:
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    await wait_reply(fake, question["id"])
    await fake.reconnect(replay_last=1)  # Discord replays the event after the RESUME
    await fake.wait_identified()
    assert fake.resumes and fake.resumes[0]["session_id"] == "fake-session"
    await fake.dispatch("MESSAGE_CREATE", question)  # ...and once more, for good measure
    later = fake.mention("list books")
    await fake.dispatch("MESSAGE_CREATE", later)
    await wait_reply(fake, later["id"])
    await asyncio.sleep(0.2)
    assert len(replies_to(fake, question["id"])) == 1


async def test_rate_limited_send_is_retried(bot: Any, fake: FakeDiscord) -> None:
    fake.fail_next("POST", rf"/channels/{CHANNEL_ID}/messages", status=429, retry_after=0.2)
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    reply = await wait_reply(fake, question["id"])
    attempts = [c for c in fake.calls if c.method == "POST" and c.path == f"/channels/{CHANNEL_ID}/messages"]
    assert [c.status for c in attempts] == [429, 200]
    assert reply.at - attempts[0].at >= 0.2
    assert "**Sources**" in reply.content


# ---- streaming and long answers --------------------------------------------------------------------------


async def test_streamed_answer_is_edited_progressively_and_throttled(
    bot: Any, fake: FakeDiscord, assistant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = await assistant.ask(AskQuestion(GUILD_ORIGIN, REFUND))
    # Edits are coalesced (the latest text, once per interval): the mention comes early enough to be in one.
    parts = ["To refund ", "(ping @everyone) ", "an order, call ", "`POST /orders/{orderId}/refund` ", "with amount."]

    async def stream(request: AskQuestion) -> AsyncIterator[AnswerEvent]:
        yield StatusUpdate("Searching the specs…")
        for part in parts:
            yield TextDelta(part)
            await asyncio.sleep(0.1)
        yield FinalAnswer(final)

    monkeypatch.setattr(assistant, "stream_answer", stream)
    question = fake.mention(REFUND)
    await fake.dispatch("MESSAGE_CREATE", question)
    first = await wait_reply(fake, question["id"])
    message_id = first.response["id"]
    edits = await fake.wait_for(
        lambda c: c.method == "PATCH" and c.path.endswith(message_id) and "**Sources**" in c.content
    )
    assert first.content == "To refund ▌"
    updates = [first] + [c for c in fake.sent("PATCH") if c.path.endswith(message_id)]
    assert updates[-1] is edits[0]
    assert any("▌" in c.content and "@\u200beveryone" in c.content for c in updates[1:-1])
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    assert all(gap >= 0.3 - 0.02 for gap in gaps), gaps  # the fixture's edit interval
    assert len(updates) < len(parts) + 1  # some deltas were coalesced
    assert_never_pings(fake)


async def test_long_answer_is_split_with_fences_intact(
    bot: Any, fake: FakeDiscord, assistant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "\n".join(f"step_{i} = client.orders.refund(order_id='ord_{i}', amount={i * 100})" for i in range(120))
    answer = Answer(
        AnswerKind.GENERATED,
        (TextBlock("Refund each order in turn:"), CodeBlock("python", code), TextBlock("That's all.")),
        (Citation("bookshop", "POST /orders/{orderId}/refund"),),
    )

    async def stream(request: AskQuestion) -> AsyncIterator[AnswerEvent]:
        yield FinalAnswer(answer)

    monkeypatch.setattr(assistant, "stream_answer", stream)
    question = fake.mention("refund 120 orders")
    await fake.dispatch("MESSAGE_CREATE", question)
    await wait_reply(fake, question["id"])
    await fake.wait_for(lambda c: c.method == "POST" and "**Sources**" in c.content)
    sent = posts(fake)
    assert len(sent) >= 3
    assert sent[0].body.get("message_reference") and not any(c.body.get("message_reference") for c in sent[1:])
    for call in sent:
        assert len(call.content) <= MESSAGE_LIMIT
        fences = [line for line in call.content.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, call.content
    for call in sent[1:-1]:
        assert call.content.startswith("```python\n")
    lines = [line for c in sent for line in c.content.split("\n") if line.startswith("step_")]
    assert lines == code.split("\n")
    assert_never_pings(fake)


# ---- uploads by message ----------------------------------------------------------------------------------


async def test_attached_spec_is_indexed_with_progress(
    bot: Any, fake: FakeDiscord, assistant: Any, example_spec: Any
) -> None:
    fake.cdn_delay = 0.4  # a slow download, so the progress message shows up
    spec = fake.attachment("bookshop_openapi.yaml", served=example_spec.read_bytes())
    message = fake.mention("shop", attachments=[spec])
    await fake.dispatch("MESSAGE_CREATE", message)
    progress = await wait_reply(fake, message["id"])
    assert progress.content.startswith("Indexing")
    [done] = await fake.wait_for(lambda c: c.method == "PATCH" and "Indexed" in c.content)
    assert done.path.endswith(progress.response["id"])  # the progress message becomes the result
    assert done.content.startswith(
        "Indexed `shop`: Bookshop API 1.2.0 (OpenAPI 3), 7 operations, 1 auth scheme."
    )
    assert fake.cdn_requests == ["/cdn/attachments/" + f"{CHANNEL_ID}/bookshop_openapi.yaml"]
    names = [r.name for r in await assistant.list_specs(ListSpecs(GUILD_ORIGIN))]
    assert names == ["bookshop", "shop"]
    assert_never_pings(fake)


async def test_oversize_or_wrong_type_refused_before_download(bot: Any, fake: FakeDiscord) -> None:
    huge = fake.attachment("huge.yaml", size=50 * 1024 * 1024)
    first = fake.mention("", attachments=[huge])
    await fake.dispatch("MESSAGE_CREATE", first)
    reply = await wait_reply(fake, first["id"])
    assert "over the 10.0 MB limit" in reply.content
    binary = fake.attachment("tool.exe", size=1000)
    second = fake.mention("", attachments=[binary])
    await fake.dispatch("MESSAGE_CREATE", second)
    reply = await wait_reply(fake, second["id"])
    assert "file type isn't accepted" in reply.content
    assert fake.cdn_requests == []  # nothing was downloaded


# ---- slash commands --------------------------------------------------------------------------------------


def callback(fake: FakeDiscord, interaction: dict[str, Any]) -> list[Call]:
    return fake.sent("POST", rf"/interactions/{interaction['id']}/[^/]+/callback")


def original_edits(fake: FakeDiscord, interaction: dict[str, Any]) -> list[Call]:
    return fake.sent("PATCH", rf"/webhooks/\d+/{interaction['token']}/messages/@original")


async def run_slash(fake: FakeDiscord, interaction: dict[str, Any], expect: str) -> Call:
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [done] = await fake.wait_for(
        lambda c: c.method in ("PATCH", "POST") and interaction["token"] in c.path and expect in c.content
    )
    return done


async def test_slash_ask_is_public(bot: Any, fake: FakeDiscord, questions: list[AskQuestion]) -> None:
    interaction = fake.interaction("ask", {"question": REFUND, "spec": "bookshop"})
    done = await run_slash(fake, interaction, "**Sources**")
    [deferred] = callback(fake, interaction)
    assert deferred.body["type"] == 5 and not (deferred.body.get("data") or {}).get("flags")
    assert deferred.at < done.at and done.path.endswith("/messages/@original")
    assert "POST /orders/{orderId}/refund" in done.content
    assert questions[0].spec == "bookshop" and questions[0].origin.event_id == interaction["id"]
    assert_never_pings(fake)


async def test_slash_ask_error_is_private(bot: Any, fake: FakeDiscord) -> None:
    interaction = fake.interaction("ask", {"question": REFUND, "spec": "nope"})
    error = await run_slash(fake, interaction, "There's no spec called `nope`")
    assert error.method == "POST" and error.body["flags"] & 64  # an ephemeral follow-up
    await fake.wait_for(lambda c: c.method == "DELETE" and interaction["token"] in c.path)
    [placeholder] = original_edits(fake, interaction)
    assert placeholder.at < error.at and "nope" not in placeholder.content
    assert_never_pings(fake)


async def test_slash_specs_is_ephemeral(bot: Any, fake: FakeDiscord) -> None:
    interaction = fake.interaction("specs")
    done = await run_slash(fake, interaction, "Specs indexed here (1)")
    [deferred] = callback(fake, interaction)
    assert deferred.body == {"type": 5, "data": {"flags": 64}}
    assert "`bookshop` — Bookshop API 1.2.0 · OpenAPI 3 · 7 operations" in done.content


async def test_slash_forget(bot: Any, fake: FakeDiscord, assistant: Any) -> None:
    interaction = fake.interaction("forget", {"name": "bookshop"})
    await run_slash(fake, interaction, "Forgot `bookshop`")
    assert callback(fake, interaction)[0].body["data"]["flags"] == 64
    assert await assistant.list_specs(ListSpecs(GUILD_ORIGIN)) == []


async def test_only_the_uploader_or_a_server_manager_may_forget(bot: Any, fake: FakeDiscord, assistant: Any) -> None:
    member_permissions = "68608"  # view channels, send messages, read history: no Manage Server
    refused = fake.interaction("forget", {"name": "bookshop"}, author=OTHER_HUMAN, permissions=member_permissions)
    error = await run_slash(fake, refused, "Only ada")
    assert error.content == "Only ada (who uploaded `bookshop`) or a workspace admin can forget it."
    assert callback(fake, refused)[0].body["data"]["flags"] == 64  # only the person who asked sees it
    assert [r.name for r in await assistant.list_specs(ListSpecs(GUILD_ORIGIN))] == ["bookshop"]
    manager_permissions = str(int(member_permissions) | 1 << 5)  # + Manage Server
    allowed = fake.interaction("forget", {"name": "bookshop"}, author=OTHER_HUMAN, permissions=manager_permissions)
    await run_slash(fake, allowed, "Forgot `bookshop`")
    assert await assistant.list_specs(ListSpecs(GUILD_ORIGIN)) == []


async def test_replacing_someone_elses_spec_is_refused(bot: Any, fake: FakeDiscord, assistant: Any,
                                                       example_spec: Any) -> None:
    changed = example_spec.read_text().replace("https://api.bookshop.example/v1", "https://elsewhere.example/v1")
    spec = fake.attachment("bookshop.yaml", served=changed.encode())
    refused = fake.mention("bookshop", attachments=[spec], author=OTHER_HUMAN)
    await fake.dispatch("MESSAGE_CREATE", refused)
    error = await wait_reply(fake, refused["id"])
    assert "Only ada (who uploaded `bookshop`) or a workspace admin can replace it." in error.content
    assert fake.cdn_requests == []
    accepted = fake.mention("bookshop", attachments=[spec])  # ada, who uploaded it
    await fake.dispatch("MESSAGE_CREATE", accepted)
    done = await fake.wait_for(lambda c: "Updated `bookshop`" in c.content)
    announced = "Requests now go to `https://elsewhere.example/v1` (was `https://api.bookshop.example/v1`)"
    assert announced in done[-1].content


async def test_slash_help(bot: Any, fake: FakeDiscord) -> None:
    interaction = fake.interaction("help")
    done = await run_slash(fake, interaction, "/api upload")
    assert callback(fake, interaction)[0].body["data"]["flags"] == 64
    assert len(done.content) <= MESSAGE_LIMIT


async def test_slash_upload(bot: Any, fake: FakeDiscord, assistant: Any, example_spec: Any) -> None:
    spec = fake.attachment("api.yaml", served=example_spec.read_bytes())
    interaction = fake.interaction("upload", {"file": spec["id"], "name": "petshop"}, attachments=[spec])
    done = await run_slash(fake, interaction, "Indexed `petshop`")
    assert callback(fake, interaction)[0].body["type"] == 5
    assert done.path.endswith("/messages/@original")
    assert fake.cdn_requests
    assert {r.name for r in await assistant.list_specs(ListSpecs(GUILD_ORIGIN))} == {"bookshop", "petshop"}


async def test_slash_upload_too_large_is_refused_privately(bot: Any, fake: FakeDiscord) -> None:
    spec = fake.attachment("big.json", size=11 * 1024 * 1024)
    interaction = fake.interaction("upload", {"file": spec["id"]}, attachments=[spec])
    error = await run_slash(fake, interaction, "over the 10.0 MB limit")
    assert error.body["flags"] & 64
    assert fake.cdn_requests == []


async def test_spec_autocomplete(bot: Any, fake: FakeDiscord) -> None:
    interaction = fake.interaction("ask", {"question": "x", "spec": "book"}, kind=4, focused="spec")
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [answer] = await fake.wait_for(lambda c: c.path.startswith(f"/interactions/{interaction['id']}/"))
    assert answer.body == {"type": 8, "data": {"choices": [{"name": "bookshop", "value": "bookshop"}]}}


@pytest.mark.parametrize("entry", available(DISCORD), ids=lambda c: c.name)
async def test_each_slash_command_replies_as_privately_as_the_catalogue_says(
    bot: Any, fake: FakeDiscord, entry: Command
) -> None:
    if entry.name == "upload":
        spec = fake.attachment("big.json", size=11 * 1024 * 1024)  # refused before any download
        interaction = fake.interaction("upload", {"file": spec["id"]}, attachments=[spec])
    else:
        options = {
            "ask": {"question": REFUND}, "forget": {"name": "nope"}, "diff": {"name": "bookshop"},
            "check": {"request": "POST /customers\n{}"}, "diagram": {"name": "bookshop"}, "lint": {"name": "bookshop"},
        }.get(entry.name, {})
        interaction = fake.interaction(entry.name, options)
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [deferred] = await fake.wait_for(lambda c: c.path.startswith(f"/interactions/{interaction['id']}/"))
    assert deferred.body["type"] == 5
    assert bool((deferred.body.get("data") or {}).get("flags", 0) & 64) is entry.private
    await fake.wait_for(lambda c: c.method in ("PATCH", "POST") and interaction["token"] in c.path)


async def test_slash_diagram_attaches_the_png(bot: Any, fake: FakeDiscord) -> None:
    interaction = fake.interaction("diagram", {"name": "bookshop", "what": "auth"})
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [upload] = await fake.wait_for(lambda c: bool(c.files) and interaction["token"] in c.path)
    [file] = upload.files
    assert file["filename"] == "bookshop-auth.png" and file["data"].startswith(b"\x89PNG\r\n\x1a\n")
    assert any("Auth flow of `bookshop`" in c.content for c in original_edits(fake, interaction))
    assert not (callback(fake, interaction)[0].body.get("data") or {}).get("flags")  # public, like the command


async def test_draw_mention_attaches_the_png(bot: Any, fake: FakeDiscord) -> None:
    await fake.dispatch("MESSAGE_CREATE", fake.mention("draw the Order schema of bookshop"))
    [upload] = await fake.wait_for(lambda c: bool(c.files))
    assert upload.files[0]["filename"] == "bookshop-schema-Order.png"
