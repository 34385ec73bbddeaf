"""Core replies -> Discord markdown: answers, upload reports, spec lists and the help, split into messages.

Pure functions with no I/O and no discord.py objects, so they are easy to test. Every message produced here is
at most `MESSAGE_LIMIT` characters, never leaves a code fence open, and has its mentions defused by the core's
`defuse_mentions` (the transport also sends `AllowedMentions.none()`; defusing keeps the text from even looking
like a ping). `MARKUP` is this platform's markup for the core's replies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.discord_app import messages as discord_messages
from core import messages
from core.answers import Answer, Citation, CodeBlock
from core.commands.syntax import OptionSyntax, help_markdown
from core.layout import split_markdown
from core.mentions import ZERO_WIDTH_SPACE
from core.mentions import defuse_mentions as defuse_everywhere
from core.replies import IngestReply, ReplyMarkup, SpecListReply

MESSAGE_LIMIT = 2000
THREAD_NAME_LIMIT = 100  # Discord: 1-100 characters
MAX_SOURCES = 8
MAX_WARNINGS_SHOWN = 3
STREAMING_CURSOR = " ▌"

_FENCE = "```"
SYNTAX = OptionSyntax("/api ")
_MARKDOWN_SPECIAL = re.compile(r"([\\*_~|`])")
_LANGUAGE_SAFE = re.compile(r"[^A-Za-z0-9_+#-]")
# Discord's highlighter knows `bash` but not `curl`.
_FENCE_LANGUAGE = {"curl": "bash", "shell": "bash", "sh": "bash"}
# User, role and channel mentions, custom emoji and timestamps read as raw ids in a thread's name.
_MARKUP_TOKEN = re.compile(r"<(?:@[!&]?|#|a?:[A-Za-z0-9_]{1,32}:|t:)[0-9]{1,20}(?::[A-Za-z])?>")


def defuse_mentions(text: str) -> str:
    """Make every mention inert: Discord reads `@everyone` / `@here` even inside a word, so those too."""
    return defuse_everywhere(text, inside_words=True)


def escape_markdown(text: str) -> str:
    """Escape the characters that would turn user-controlled labels into formatting."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def fence_language(language: str) -> str:
    """A code-fence language tag Discord highlights (`curl` snippets are shell)."""
    cleaned = _LANGUAGE_SAFE.sub("", language.lower())[:20]
    return _FENCE_LANGUAGE.get(cleaned, cleaned)


def code_block(language: str, code: str) -> str:
    """A fenced code block whose content cannot close the fence early."""
    safe = code.replace(_FENCE, "`" + ZERO_WIDTH_SPACE + "``").rstrip("\n")
    return f"{_FENCE}{fence_language(language)}\n{safe}\n{_FENCE}"


def render_sources(citations: Sequence[Citation]) -> str:
    """The citations as a short list at the end of an answer."""
    shown = citations[:MAX_SOURCES]
    lines = ["**Sources**"] + [f"• `{c.spec}`: {escape_markdown(c.label)}" for c in shown]
    if len(citations) > len(shown):
        lines.append(f"• …and {len(citations) - len(shown)} more")
    return "\n".join(lines)


def answer_markdown(answer: Answer) -> str:
    """The whole answer as one Discord-markdown string: blocks, then sources, then the notice in small print."""
    parts = []
    for block in answer.blocks:
        if isinstance(block, CodeBlock):
            parts.append(code_block(block.language, block.code))
        elif block.text.strip():
            parts.append(block.text.strip("\n"))
    if answer.citations:
        parts.append(render_sources(answer.citations))
    if answer.notice:
        parts.append("\n".join(f"-# {line}" for line in answer.notice.splitlines() if line.strip()))
    return "\n\n".join(parts)


def render_answer(answer: Answer, limit: int = MESSAGE_LIMIT) -> list[str]:
    """A complete answer as Discord messages, in order."""
    return split_message(defuse_mentions(answer_markdown(answer)), limit) or [messages.unexpected_error()]


def render_partial(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """An answer still being streamed: the text so far with a cursor, as messages."""
    return split_message(defuse_mentions(text.rstrip() + STREAMING_CURSOR), limit)


def render_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Any other reply (errors, help, lists) as messages."""
    return split_message(defuse_mentions(text), limit)


def render_ingest(reply: IngestReply) -> str:
    """What an upload found, e.g. "Indexed `stripe`: Stripe API 2023-08-16 (OpenAPI 3), 468 operations, ..."."""
    text = reply.headline(escape_markdown) + ("" if reply.unchanged else " Ask away!")
    warnings, more = reply.shown_warnings(MAX_WARNINGS_SHOWN)
    lines = [text, *reply.changes, *(f"-# ⚠ {escape_markdown(w[:200])}" for w in warnings)]
    return "\n".join(lines + ([f"-# {more}"] if more else []))


def render_specs(reply: SpecListReply) -> str:
    """The workspace's specs as a list, with Discord relative timestamps; those needing a re-index are marked."""
    if not reply.specs:
        return messages.nothing_indexed()
    lines = [f"**Specs indexed here ({len(reply.specs)})**"]
    for spec in reply.specs:
        lines.append(
            f"• `{spec.name}` — {escape_markdown(spec.label)} · {spec.format} · {spec.operations_text} · "
            f"updated <t:{int(spec.indexed_at)}:R>"
            + (f" · ⚠ {messages.needs_reindex_marker()}" if spec.needs_reindex else "")
            + "".join(f" · {marker}" for marker in spec.markers if marker != messages.needs_reindex_marker())
        )
    return "\n".join(lines)


MARKUP: ReplyMarkup[list[str]] = ReplyMarkup(
    answer=lambda reply: render_answer(reply.answer),
    specs=lambda reply: render_text(render_specs(reply)),
    ingest=lambda reply: render_text(render_ingest(reply)),
    help=lambda reply: render_text(help_markdown(reply.commands, SYNTAX, discord_messages.WAYS)),
    text=render_text,
)
"""The core's replies as Discord messages."""


def thread_name(question: str) -> str:
    """The name of the thread opened on a question: its first line, without markup, at most 100 characters."""
    first = next((line for line in question[:4000].splitlines() if line.strip()), "")
    words = " ".join(_MARKUP_TOKEN.sub(" ", first).replace("`", "").split())
    words = defuse_mentions(words).strip()
    if not words:
        return discord_messages.DEFAULT_THREAD_NAME
    return words if len(words) <= THREAD_NAME_LIMIT else words[: THREAD_NAME_LIMIT - 1].rstrip() + "…"


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Markdown as Discord messages (`core.layout.split_markdown`: code fences closed and reopened)."""
    return split_markdown(text, limit)
