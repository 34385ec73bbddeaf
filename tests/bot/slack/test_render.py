"""Pure translation tests: Markdown -> mrkdwn, escaping, splitting, and Slack payload parsing."""

from __future__ import annotations

import re
from typing import Any

from bot.slack_app import render
from bot.slack_app.render import (
    MAX_BLOCKS_PER_MESSAGE,
    MAX_MESSAGES_PER_ANSWER,
    MAX_SECTION_CHARS,
    MAX_TEXT_CHARS,
    code_sections,
    escape,
    markdown_sections,
    render_answer,
    render_partial,
    split_text,
    text_mrkdwn,
)
from bot.slack_app.translate import FOR_OTHERS, Kind, classify_message, parse_command, slack_to_plain
from core.answers import Answer, AnswerKind, Citation, CodeBlock, TextBlock


def test_escape_defuses_every_broadcast_and_markup() -> None:
    text = escape("<!channel> <!here|here> <@U1> @here @Everyone @channel: a&b <https://x.y|click>")
    assert "<" not in text and ">" not in text
    assert re.search(r"@(here|everyone|channel)\b", text, re.IGNORECASE) is None
    assert "&lt;!channel&gt;" in text and "a&amp;b" in text and "@\u200dEveryone" in text


def test_markdown_becomes_mrkdwn() -> None:
    assert text_mrkdwn("**POST /orders** — *fast* ~~old~~") == "*POST /orders* — _fast_ ~old~"
    assert text_mrkdwn("# Refunds") == "*Refunds*"
    assert text_mrkdwn("- one\n  * two") == "• one\n  • two"
    assert text_mrkdwn("> quoted <b>") == "> quoted &lt;b&gt;"
    link = text_mrkdwn("see [the docs](https://x.example/a?b=1&c=2)")
    assert link == "see <https://x.example/a?b=1&amp;c=2|the docs>"
    assert text_mrkdwn("at https://x.example/v1.") == "at <https://x.example/v1>."
    assert text_mrkdwn("**`code <x>`** stays") == "*`code &lt;x&gt;`* stays"
    assert text_mrkdwn("[evil](javascript:alert(1))") == "[evil](javascript:alert(1))"


def test_fences_become_code_sections_even_when_unclosed() -> None:
    assert markdown_sections("Do:\n```python\nprint('<hi>')\n```\nDone") == [
        "Do:", "```\nprint('&lt;hi&gt;')\n```", "Done"]
    assert render_partial("Do:\n```\nstill writing").blocks[1]["text"]["text"] == "```\nstill writing\n```"


def test_long_text_splits_between_lines_and_never_inside_an_entity() -> None:
    text = escape(" ".join(["a&b<c>"] * 2000))
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p) <= MAX_SECTION_CHARS for p in pieces)
    assert all(not re.search(r"&[a-z]*$", p) for p in pieces)
    lines = "\n".join(f"line {i} " + "z" * 50 for i in range(200))
    assert all(p.endswith("z") for p in split_text(lines))


def test_long_code_becomes_several_whole_fences() -> None:
    code = "\n".join(f"x_{i} = {'1' * 70}" for i in range(200))
    sections = code_sections(code)
    assert len(sections) > 1
    assert all(len(s) <= MAX_SECTION_CHARS and s.startswith("```\n") and s.endswith("\n```") for s in sections)
    assert "\n".join(s[4:-4] for s in sections) == code
    assert code_sections("a ``` b") == ["```\na `\u200b`` b\n```"]


def test_huge_answers_stay_within_slack_limits() -> None:
    many = tuple(TextBlock(f"**Block {i}**") for i in range(130))
    answer = Answer(AnswerKind.GENERATED, many, (Citation("s", "GET /x"),), notice="note")
    rendered = render_answer(answer)
    assert len(rendered) == 4 and all(len(m.blocks) <= MAX_BLOCKS_PER_MESSAGE for m in rendered)
    assert rendered[0].blocks[0]["type"] == "context" and rendered[-1].blocks[-1]["type"] == "actions"
    huge = Answer(AnswerKind.GENERATED, (TextBlock("word " * 200_000), CodeBlock("sh", "echo hi")))
    rendered = render_answer(huge)
    assert len(rendered) == MAX_MESSAGES_PER_ANSWER
    assert "too long for Slack" in rendered[-1].blocks[-2]["text"]["text"]
    for message in rendered:
        assert len(message.text) <= MAX_TEXT_CHARS and len(message.blocks) <= MAX_BLOCKS_PER_MESSAGE
        assert all(len(b["text"]["text"]) <= MAX_SECTION_CHARS for b in message.blocks if b["type"] == "section")


def test_refused_blocks_fall_back_to_plain_text() -> None:
    message = render.render_markdown("x" * 5000)
    assert len(message.plain().text) <= MAX_SECTION_CHARS and not message.plain().blocks


def test_slack_markup_to_plain_question() -> None:
    text = "<@UBOT> how do I call <https://api.x/v1?a=1&amp;b=2|the API> as <@U2|ada> in <#C1|general> &lt;b&gt;"
    assert slack_to_plain(text, "UBOT") == "how do I call the API as @ada in #general <b>"
    assert slack_to_plain("<!here> hi <@UBOT|bot>", "UBOT") == "@here hi"


def test_slash_command_parsing() -> None:
    body = {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "trigger_id": "t"}
    assert parse_command({**body, "text": "  "}).command.name == "help"
    forget = parse_command({**body, "text": "Forget stripe"})
    assert (forget.command.name, forget.text("name")) == ("forget", "stripe")
    implicit = parse_command({**body, "text": "how do I refund?"})
    assert (implicit.command.name, implicit.text("question"), implicit.origin.workspace) == (
        "ask", "how do I refund?", "T1")


def test_messages_in_bot_threads_are_follow_ups() -> None:
    # Whether the bot is in the thread is the core's answer (`Assistant.knows_thread`, tested in the core).
    body: dict[str, Any] = {"team_id": "T1", "event_id": "Ev1",
            "event": {"type": "message", "user": "U1", "text": "more?", "ts": "9", "thread_ts": "3", "channel": "C1",
                      "channel_type": "channel"}}
    follow_up = classify_message(body, "UBOT", in_bot_thread=True)
    assert follow_up.kind is Kind.QUESTION and follow_up.origin.thread == "3" and follow_up.reply_thread == "3"
    ignored = classify_message(body, "UBOT")
    assert ignored.kind is Kind.IGNORE and ignored.reason == "not_addressed"


def test_thread_messages_for_other_people_are_left_to_them() -> None:
    def classify(text: str, channel_type: str = "channel", in_bot_thread: bool = True) -> tuple[Kind, str]:
        event = {"type": "message", "user": "U1", "text": text, "ts": "9", "thread_ts": "3",
                 "channel": "D1" if channel_type == "im" else "C1", "channel_type": channel_type}
        incoming = classify_message({"team_id": "T1", "event_id": "Ev1", "event": event}, "UBOT",
                                    in_bot_thread=in_bot_thread)
        return incoming.kind, incoming.reason

    assert classify("<@U2> can you try this on staging?") == (Kind.IGNORE, FOR_OTHERS)
    assert classify("<!subteam^S1|@ops> thoughts?") == (Kind.IGNORE, FOR_OTHERS)
    assert classify("the spec is in <#C9|specs>, how do I list books?") == (Kind.QUESTION, "")
    assert classify("<@U2> can you try this?", in_bot_thread=False) == (Kind.IGNORE, "not_addressed")
    assert classify("<@U2> can you try this?", channel_type="im") == (Kind.QUESTION, "")  # a DM is for the bot
