"""One mention-defusing function for every platform: whatever the text, nothing the bot sends can ping.

Properties checked on generated text (mention syntax of every platform mixed with noise), and on large
worst-case inputs within a time budget: the core's `defuse_mentions`, and each adapter's boundary built on it
(Slack's `render.escape` and full messages, Discord's `safe_content` and rendered messages). The same syntax
read the other way: `addresses_others`, whether a message is for someone other than the bot.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.discord_app import render as discord_render
from bot.discord_app.replies import safe_content
from bot.slack_app import render as slack_render
from core.answers import Answer, AnswerKind, Citation, CodeBlock, TextBlock
from core.mentions import ZERO_WIDTH_JOINER, ZERO_WIDTH_SPACE, addresses_others, defuse_mentions
from tests.core.test_pathological_inputs import FAST, bounded, text_inputs

MENTION_PIECES = (
    "@", "<", ">", "!", "&", "|", "^", " ", "\n", "x", "1", "U1", "everyone", "here", "channel", "EVERYONE", "Here",
    "@everyone", "@here", "@channel", "@heretic", "<@U123>", "<@!42>", "<@&7>", "<!channel>", "<!here|here>",
    "<!everyone>", "<!subteam^S1|team>", "subteam^", "<<", "@@", "me@example.com", "`", "**", "_", "#",
    ZERO_WIDTH_SPACE, ZERO_WIDTH_JOINER, "https://x.io/", "[a](https://x.io/@here)",
)  # fmt: skip
mention_text = st.one_of(st.lists(st.sampled_from(MENTION_PIECES), max_size=60).map("".join), st.text(max_size=200))

WORD_BROADCAST = re.compile(r"@(?:everyone|here|channel)\b", re.IGNORECASE)
ANY_BROADCAST = re.compile(r"@(?:everyone|here|channel)", re.IGNORECASE)
ANGLE_MENTION = re.compile(r"<[!@]")
OUR_LINK_TARGET = re.compile(r"<https?://[^|>\s]*")  # links the Slack renderer builds: a URL is no mention


def breakers_removed(text: str) -> str:
    return text.replace(ZERO_WIDTH_SPACE, "").replace(ZERO_WIDTH_JOINER, "")


@given(mention_text)
@example("<!channel> <!here|here> <!everyone> <!subteam^S1> <@U1> <@!1> <@&1> @here @Everyone @channel")
def test_defused_text_cannot_ping_and_loses_nothing(text: str) -> None:
    plain = defuse_mentions(text)
    assert not WORD_BROADCAST.search(plain) and not ANGLE_MENTION.search(plain)
    discord = defuse_mentions(text, inside_words=True)
    assert not ANY_BROADCAST.search(discord) and not ANGLE_MENTION.search(discord)
    slack = defuse_mentions(text, ZERO_WIDTH_JOINER)
    assert not WORD_BROADCAST.search(slack) and not ANGLE_MENTION.search(slack)
    for defused in (plain, discord, slack):
        assert breakers_removed(defused) == breakers_removed(text)  # only invisible characters were added
    assert defuse_mentions(plain) == plain and defuse_mentions(discord, inside_words=True) == discord


def test_ordinary_text_is_left_alone() -> None:
    text = "email dev@example.com, @heretic, `X-API-Key`, a < b > c"
    assert defuse_mentions(text) == text
    assert defuse_mentions("@heretic", inside_words=True) == f"@{ZERO_WIDTH_SPACE}heretic"


def answer_of(text: str) -> Answer:
    return Answer(AnswerKind.GENERATED, (TextBlock(text), CodeBlock("sh", text)), (Citation(text[:50], text),),
                  notice=text[:500])


@given(mention_text)
def test_nothing_slack_is_sent_can_ping(text: str) -> None:
    escaped = slack_render.escape(text)
    assert "<" not in escaped and ">" not in escaped and not WORD_BROADCAST.search(escaped)
    messages = [slack_render.render_markdown(text), *slack_render.render_answer(answer_of(text), echo=text)]
    for message in messages:
        sent = OUR_LINK_TARGET.sub("", json.dumps(message.as_kwargs(), ensure_ascii=False))
        assert not ANGLE_MENTION.search(sent) and not WORD_BROADCAST.search(sent), sent


@given(mention_text)
def test_nothing_discord_is_sent_can_ping(text: str) -> None:
    chunks = [*discord_render.render_text(text), *discord_render.render_answer(answer_of(text)),
              *discord_render.render_partial(text)]
    for chunk in [safe_content(text), *(safe_content(c) for c in chunks)]:
        assert not ANY_BROADCAST.search(chunk) and not ANGLE_MENTION.search(chunk), chunk


@FAST
@given(text_inputs())
@example("<@" * 60_000)
@example("@" * 120_000)
@example("@everyone" * 12_000)
def test_defusing_is_bounded_in_time(text: str) -> None:
    bounded(defuse_mentions, text)
    bounded(defuse_mentions, text, inside_words=True)
    bounded(slack_render.escape, text)
    bounded(safe_content, text)


# ---- who a message is for -------------------------------------------------------------------------------

BOT_IDS = frozenset({"UBOT", "100", "7"})  # a Slack bot user; a Discord bot user and its managed role


@pytest.mark.parametrize(
    ("text", "others"),
    [
        ("<@U2> can you try this on staging?", True),
        ("<@U2|dave> can you try this on staging?", True),
        ("thanks <@W2>", True),  # Enterprise Grid user ids start with W
        ("<@200> can you try this?", True),
        ("<@!200> can you try this?", True),
        ("<@&300> please review", True),  # a role that is not the bot's
        ("<!subteam^S1> please review", True),
        ("<!subteam^S1|@backend> please review", True),
        ("<!here> anyone?", True),
        ("<!channel|channel> heads up", True),
        ("<!everyone> heads up", True),
        ("@here anyone?", True),
        ("@Everyone look", True),
        ("<@UBOT> and <@U2>: how do I refund?", False),  # the bot is asked too
        ("<@U2> <@!100> how do I refund?", False),
        ("<@&7> <@200> list books", False),  # the bot's role stands for the bot
        ("<@UBOT> how do I refund?", False),
        ("and how do I delete one?", False),
        ("see <#C1|general> for the spec", False),  # a channel link addresses nobody
        ("see <#300>", False),
        ("<!date^1700000000^{date}|Nov 14> works", False),
        ("<https://example.com|docs> and <mailto:a@b.io|mail>", False),
        ("mail dev@here.com or ops@example.com", False),
        ("@heretic decorators, @param and `@Override`", False),
        ("&lt;@U2&gt; typed as text", False),  # Slack escapes a literal "<": no mention
        ("<@> <@!> <@&> <!subteam^> <@U2 x>", False),  # broken markup mentions no one
    ],
)
def test_addresses_others(text: str, others: bool) -> None:
    assert addresses_others(text, BOT_IDS) is others


def test_without_bot_ids_any_mention_is_someone_else() -> None:
    assert addresses_others("<@UBOT> hi", ()) and not addresses_others("hi", ())


@given(mention_text, mention_text)
def test_mentioning_the_bot_always_means_the_bot_is_asked(before: str, after: str) -> None:
    assert not addresses_others(f"{before} <@UBOT> {after}", BOT_IDS)
    assert not addresses_others(f"{before} <@!100> {after}", BOT_IDS)


@given(mention_text)
def test_a_mention_of_someone_else_is_found_anywhere(text: str) -> None:
    clean = text.replace("<", "").replace("@", "")  # no markup left: nobody is addressed
    assert not addresses_others(clean, BOT_IDS)
    assert addresses_others(f"{clean} <@U2> {clean}", BOT_IDS)
    assert addresses_others(f"{clean}\n<@&300>", BOT_IDS)


@FAST
@given(text_inputs())
@example("<@" * 60_000)
@example("<@U" + "1" * 31 + "|" + "a" * 199 + "<" * 60_000)
@example(("<!subteam^" + "S" * 32 + "|" + "x" * 199) * 500)
@example("<@!" * 40_000 + "1" * 40_000)
@example("@here" * 24_000 + "<@UBOT>")
@example("<@U2>" * 24_000)
@example(("<@U1|" + "a" * 199) * 600)
def test_addresses_others_is_bounded_in_time(text: str) -> None:
    bounded(addresses_others, text, BOT_IDS)
