"""Mention safety: text the bot writes can never ping @everyone/@here/@channel or a user, role or user group.

One function, `defuse_mentions`, knows every platform's mention syntax and makes it inert by inserting an
invisible character after the `@` or `<`:

- plain text and Slack: `@channel`, `@here`, `@everyone` (as whole words, any case);
- Slack markup: `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`;
- Discord markup: `<@123>`, `<@!123>`, `<@&123>`; and Discord treats `@everyone` / `@here` as a ping even
  inside a longer word, so its adapter asks for `inside_words=True`.

The core defuses what it writes from spec text and model output; each adapter applies the same function
once more where a reply leaves for its platform (Slack's `render.escape`, Discord's `replies.safe_content`),
so nothing reaches a platform that could ping, whatever produced it.

The same syntax tells who a message is for: `addresses_others` says whether a person's message mentions
someone (a user, role, user group, or everyone) and not the bot, so a thread the bot answered in does not
take people talking among themselves as follow-ups. A channel link (`<#C1>`, `<#123>`) addresses nobody.
"""

from __future__ import annotations

import re
from collections.abc import Collection

ZERO_WIDTH_SPACE = "\u200b"
ZERO_WIDTH_JOINER = "\u200d"
_BROADCAST_WORD = re.compile(r"@(?=(?:everyone|here|channel)\b)", re.IGNORECASE)
_BROADCAST_ANYWHERE = re.compile(r"@(?=everyone|here|channel)", re.IGNORECASE)
_ANGLE_MENTION = re.compile(r"<(?=[!@])")  # Slack <!channel>, <!here>, <!subteam^…>, <@U…>; Discord <@1>, <@!1>, <@&1>
_MAX_MENTION_CHARS = 40
# Someone a message can address, in either platform's markup: a user or group (Slack <@U1>, <@U1|ada>,
# <!subteam^S1|team>; Discord <@1>, <@!1>, role <@&1>), a Slack broadcast (<!here>), or a typed broadcast
# (Discord's only form). Every repetition is bounded and each alternative starts at a "<" or "@", so a scan
# costs at most a few hundred steps per character, whatever the input.
_ADDRESSEE = re.compile(
    r"<(?:@[!&]?|!subteam\^)(?P<id>[A-Za-z0-9]{1,32})(?:\|[^<>\n]{0,200})?>"
    r"|<!(?:here|channel|everyone)(?:\|[^<>\n]{0,200})?>"
    r"|(?<!\w)@(?i:here|channel|everyone)\b"
)


def defuse_mentions(text: str, breaker: str = ZERO_WIDTH_SPACE, *, inside_words: bool = False) -> str:
    """Make mass and user/role mentions inert by inserting `breaker` (idempotent, linear time).

    Covers @everyone / @here / @channel, Slack `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`,
    and Discord `<@123>`, `<@!123>`, `<@&123>`. With `inside_words`, `@here` is defused even where a letter
    follows (`@heretic`), as Discord requires; otherwise only whole words are, so ordinary text stays as written.
    """
    broadcast = _BROADCAST_ANYWHERE if inside_words else _BROADCAST_WORD
    text = broadcast.sub("@" + breaker, text)
    return _ANGLE_MENTION.sub("<" + breaker, text)


def addresses_others(text: str, bot_ids: Collection[str]) -> bool:
    """Whether `text` mentions someone other than the bot and not the bot itself (linear time).

    Someone is a user (`<@U1>`, `<@U1|ada>`, `<@1>`, `<@!1>`), a Discord role (`<@&1>`), a Slack user group
    (`<!subteam^S1>`) or everyone (`<!here>`, `<!channel>`, `<!everyone>`, a typed `@here`/`@channel`/
    `@everyone`). `bot_ids` are the ids that stand for the bot: its user id, and on Discord its managed role's
    id. Channel links, dates, emoji and anything without mention markup address nobody, so plain text is False.
    """
    others = False
    for match in _ADDRESSEE.finditer(text):
        if match.group("id") in bot_ids:
            return False  # the bot is asked too: a question for it, whoever else is mentioned
        others = True
    return others


class MentionGuard:
    """Defuses mentions in streamed text, holding back a possibly incomplete mention at the end of a part."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, part: str) -> str:
        """The safe text that can be shown now (possibly empty)."""
        text = self._pending + part
        tail = self._tail_start(text)
        self._pending = text[tail:]
        return defuse_mentions(text[:tail])

    def flush(self) -> str:
        """Whatever is still held back, defused."""
        text, self._pending = self._pending, ""
        return defuse_mentions(text)

    @staticmethod
    def _tail_start(text: str) -> int:
        window_start = max(0, len(text) - _MAX_MENTION_CHARS)
        window = text[window_start:]
        # The earliest "@" or "<" in the whitespace-free end of the text may start a mention not yet complete.
        last_space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
        start = last_space + 1
        for index in range(start, len(window)):
            if window[index] in "@<":
                return window_start + index
        return len(text)
