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
"""

from __future__ import annotations

import re

ZERO_WIDTH_SPACE = "\u200b"
ZERO_WIDTH_JOINER = "\u200d"
_BROADCAST_WORD = re.compile(r"@(?=(?:everyone|here|channel)\b)", re.IGNORECASE)
_BROADCAST_ANYWHERE = re.compile(r"@(?=everyone|here|channel)", re.IGNORECASE)
_ANGLE_MENTION = re.compile(r"<(?=[!@])")  # Slack <!channel>, <!here>, <!subteam^…>, <@U…>; Discord <@1>, <@!1>, <@&1>
_MAX_MENTION_CHARS = 40


def defuse_mentions(text: str, breaker: str = ZERO_WIDTH_SPACE, *, inside_words: bool = False) -> str:
    """Make mass and user/role mentions inert by inserting `breaker` (idempotent, linear time).

    Covers @everyone / @here / @channel, Slack `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`,
    and Discord `<@123>`, `<@!123>`, `<@&123>`. With `inside_words`, `@here` is defused even where a letter
    follows (`@heretic`), as Discord requires; otherwise only whole words are, so ordinary text stays as written.
    """
    broadcast = _BROADCAST_ANYWHERE if inside_words else _BROADCAST_WORD
    text = broadcast.sub("@" + breaker, text)
    return _ANGLE_MENTION.sub("<" + breaker, text)


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
