"""Mention safety: text the bot writes can never ping @everyone/@here/@channel or a user or role.

Every platform renders these differently, so the core makes them inert once (a zero-width space after
the `@` or `<`), and adapters still escape for their own markup on top.
"""

from __future__ import annotations

import re

ZERO_WIDTH_SPACE = "\u200b"
_BROADCAST = re.compile(r"@(?=(?:everyone|here|channel)\b)", re.IGNORECASE)
_ANGLE_MENTION = re.compile(r"<(?=[!@])")  # Slack <!channel>, <!here>, <!subteam^…>, <@U…>; Discord <@1>, <@!1>, <@&1>
_MAX_MENTION_CHARS = 40


def defuse_mentions(text: str) -> str:
    """Make mass and user/role mentions inert by inserting a zero-width space (idempotent).

    Covers @everyone / @here / @channel, Slack `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`,
    and Discord `<@123>`, `<@!123>`, `<@&123>`.
    """
    text = _BROADCAST.sub("@" + ZERO_WIDTH_SPACE, text)
    return _ANGLE_MENTION.sub("<" + ZERO_WIDTH_SPACE, text)


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
