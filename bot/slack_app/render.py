"""Core answers and replies -> Slack messages (Block Kit plus a mrkdwn `text` fallback).

Everything the bot writes goes through `escape`, the adapter's boundary: `&`, `<` and `>` become entities, so
`<!channel>`, `<!here>`, `<@U123>` or `<https://x|y>` written by a spec author or a user can never turn into a
ping or a link, and the core's `defuse_mentions` puts a zero-width joiner after the `@` of a bare
`@channel`/`@here`/`@everyone`. Every mrkdwn text object is `verbatim`, so Slack does not auto-parse mentions
either; links we mean to make are built here.

`slack_markup` turns the core's replies (answers, spec lists, upload reports, the help) into messages.

Markdown from the core (`**bold**`, `*emphasis*`, `code`, `[label](url)`, bullets, headings, fenced code)
is converted to Slack mrkdwn. Long answers are split between lines (never inside a code fence's formatting:
a long snippet becomes several complete fences), within Slack's limits: 3,000 characters per section,
50 blocks per message, a 40,000-character `text` fallback; what does not fit one message goes into more
messages posted in the same thread.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.slack_app import messages as slack_messages
from core.answers import Answer, AnswerKind, CodeBlock
from core.commands.syntax import TypedSyntax, help_markdown
from core.layout import markdown_segments, split_at_breaks
from core.mentions import ZERO_WIDTH_JOINER, defuse_mentions
from core.replies import IngestReply, ReplyMarkup, SpecListReply
from core.snippet_choice import SnippetTarget, available_languages
from core.snippets import language_label

MAX_SECTION_CHARS = 3000  # Slack: a section's text
MAX_BLOCKS_PER_MESSAGE = 50  # Slack: blocks in one message
MAX_TEXT_CHARS = 40_000  # Slack: a message's `text`
MAX_CONTEXT_CHARS = 2000  # kept well under the text-object limit
CONTENT_BLOCKS_PER_MESSAGE = 40  # leaves room for the notice, sources and feedback buttons
MAX_MESSAGE_CHARS = 12_000  # content per message, so one message stays readable and far from size limits
MAX_MESSAGES_PER_ANSWER = 4  # more than this is not an answer any more; the rest is cut with a note
MAX_ECHO_CHARS = 1500

FEEDBACK_UP = "feedback_up"
MAKE_PRIVATE = "spec_make_private"  # the upload confirmation's button: the spec is seen only in this conversation
MAKE_SHARED = "spec_make_shared"  # ... and back: the whole workspace sees it
VISIBILITY_BLOCK_ID = "spec_visibility"
FEEDBACK_DOWN = "feedback_down"
FEEDBACK_BLOCK_ID = "feedback"
SNIPPET_SHOW = "snippet_show"  # a button: the answer's snippet in one language
SNIPPET_LANGUAGE = "snippet_language"  # a menu: in any other language
SNIPPET_BLOCK_ID = "snippet_languages"
QUICK_LANGUAGES = ("python", "curl")  # the buttons people ask for most; the menu has every language
MAX_MENU_OPTIONS = 100  # Slack's limit for a static select
WORKING_EMOJI = "hourglass_flowing_sand"

SYNTAX = TypedSyntax("/api ")
MAX_WARNINGS_SHOWN = 5
_HEADING_START = re.compile(r"\s{0,3}#{1,6}\s")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
# Every body below excludes its own opening character, so no run is scanned once per position: a code span is a
# whole run of backticks, text without backticks and the same run (`(.+?)` between any backticks was cubic);
# a link label holds no `[`; bold and strike text stop at the next `**` / `__` / `~~`.
_INLINE = re.compile(
    r"(?<!`)(?P<code>`+)(?P<code_text>[^`\n]+)(?P=code)(?!`)"
    r"|\[(?P<label>[^\[\]\n]+)\]\((?P<url>https?://[^\s()<>|]+)\)"
    r"|<(?P<auto>https?://[^\s<>|]+)>"
    r"|(?P<bare>https?://[^\s<>|`]+[^\s<>|`.,;:!?)\]'\"])"
)
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
_BOLD = re.compile(
    r"\*\*(?=\S)((?:[^*\n]|\*(?!\*))+?)(?<=\S)\*\*|(?<!\w)__(?=\S)((?:[^_\n]|_(?!_))+?)(?<=\S)__(?!\w)"
)
_STRIKE = re.compile(r"~~(?=\S)((?:[^~\n]|~(?!~))+?)(?<=\S)~~")
_BOLD_MARK = "\x00"
_TOKEN_START, _TOKEN_END = "\x01", "\x02"
_TOKEN = re.compile("\x01(\\d+)\x02")
_CONTROL = re.compile("[\x00-\x02]")


@dataclass(frozen=True)
class SlackMessage:
    """One message to post: the mrkdwn `text` (notification fallback) and its Block Kit blocks."""

    text: str
    blocks: tuple[dict[str, Any], ...] = field(default=())

    def as_kwargs(self) -> dict[str, Any]:
        """Arguments for `chat.postMessage` / `chat.update` / `respond()`."""
        kwargs: dict[str, Any] = {"text": self.text}
        if self.blocks:
            kwargs["blocks"] = list(self.blocks)
        return kwargs

    def plain(self, limit: int = MAX_SECTION_CHARS) -> SlackMessage:
        """The same message as text only, cut to `limit` (a fallback when Slack refuses the blocks)."""
        return SlackMessage(truncate(self.text, limit))


# ---- escaping and Markdown -> mrkdwn ---------------------------------------------------------------


def escape(text: str) -> str:
    """Escape text for Slack: `&<>` as entities, and no `@channel`/`@here`/`@everyone` that could notify."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return defuse_mentions(text, ZERO_WIDTH_JOINER)


def _escape_url(url: str) -> str:
    return url.replace("&", "&amp;")


def _emphasis(escaped: str) -> str:
    escaped = _ITALIC.sub(lambda m: f"_{m.group(1)}_", escaped)
    escaped = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", escaped)
    escaped = _STRIKE.sub(lambda m: f"~{m.group(1)}~", escaped)
    return escaped.replace(_BOLD_MARK, "*")


def inline_mrkdwn(text: str) -> str:
    """Convert one line of Markdown to escaped mrkdwn (code spans, links, emphasis)."""
    tokens: list[str] = []

    def stash(match: re.Match[str]) -> str:
        if match.group("code"):
            content = match.group("code_text")
            rendered = f"`{escape(content)}`" if "`" not in content else escape(content)
        elif match.group("url"):
            label = escape(match.group("label").replace("**", ""))
            rendered = f"<{_escape_url(match.group('url'))}|{label}>"
        else:
            rendered = f"<{_escape_url(match.group('auto') or match.group('bare'))}>"
        tokens.append(rendered)
        return f"{_TOKEN_START}{len(tokens) - 1}{_TOKEN_END}"

    text = _CONTROL.sub("", text)
    converted = _emphasis(escape(_INLINE.sub(stash, text)))
    return _TOKEN.sub(lambda m: tokens[int(m.group(1))], converted)


def _line_mrkdwn(line: str) -> str:
    if heading := _HEADING_START.match(line):
        # The title without a closing `#` run; string methods, as a regex for it was quadratic in spaces.
        title = line[heading.end() :].strip().rstrip("#").rstrip().replace("**", "").replace("__", "")
        return f"*{inline_mrkdwn(title)}*" if title else ""
    if _RULE.match(line):
        return "──────────"
    if quote := _QUOTE.match(line):
        return "> " + _line_mrkdwn(quote.group(1))  # a literal `>` at line start is Slack's quote marker
    if bullet := _BULLET.match(line):
        return f"{bullet.group(1)}• {inline_mrkdwn(bullet.group(2))}"
    return inline_mrkdwn(line)


def text_mrkdwn(markdown: str) -> str:
    """A Markdown text (no fences) as escaped mrkdwn."""
    return "\n".join(_line_mrkdwn(line) for line in markdown.strip("\n").split("\n"))


# ---- splitting within Slack's limits -------------------------------------------------------------


def _safe_cut(text: str, position: int) -> bool:
    """Whether cutting before `position` keeps entities (`&amp;`) and our links (`<url|label>`) whole."""
    head = text[max(0, position - 8) : position]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        return False
    prefix = text[:position]
    return prefix.rfind("<") <= prefix.rfind(">")


def split_text(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Split mrkdwn into pieces of at most `limit` characters, preferring paragraph, line, then word breaks."""
    return split_at_breaks(text, limit, _safe_cut)


def truncate(text: str, limit: int) -> str:
    """Cut escaped text to `limit` characters with an ellipsis, never inside an entity or a link."""
    if len(text) <= limit:
        return text
    marker = slack_messages.TEXT_TRUNCATED
    pieces = split_text(text, limit - len(marker))
    return (pieces[0] if pieces else "") + marker  # no pieces: the text was only spaces


def code_sections(code: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """A code snippet as one or more complete ``` fences, each within `limit`."""
    body = escape(code.strip("\n").replace("```", "`" + "\u200b" + "``"))
    room = limit - len("```\n\n```")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in body.split("\n"):
        for piece in split_text(line, room) if len(line) > room else [line]:
            if current and size + len(piece) + 1 > room:
                chunks.append("\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + 1
    if current:
        chunks.append("\n".join(current))
    return [f"```\n{chunk}\n```" for chunk in chunks]


def markdown_sections(markdown: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Markdown (possibly with fenced code) as mrkdwn section texts, each within `limit`."""
    sections: list[str] = []
    for kind, body in markdown_segments(markdown):
        if kind == "code":
            sections.extend(code_sections(body, limit))
        else:
            sections.extend(split_text(text_mrkdwn(body), limit))
    return sections


# ---- blocks ------------------------------------------------------------------------------------


def section(mrkdwn: str) -> dict[str, Any]:
    """A section block of already-escaped mrkdwn."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn, "verbatim": True}}


def context(mrkdwn: str) -> dict[str, Any]:
    """A context block (small grey text) of already-escaped mrkdwn."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, MAX_CONTEXT_CHARS),
                                             "verbatim": True}]}


def feedback_buttons(answer_id: str) -> dict[str, Any]:
    """👍/👎 buttons whose value is the answer id."""
    def button(action_id: str, label: str) -> dict[str, Any]:
        return {"type": "button", "action_id": action_id, "value": answer_id,
                "text": {"type": "plain_text", "text": label, "emoji": True}}

    return {"type": "actions", "block_id": FEEDBACK_BLOCK_ID, "elements": [
        button(FEEDBACK_UP, slack_messages.FEEDBACK_BUTTON_UP),
        button(FEEDBACK_DOWN, slack_messages.FEEDBACK_BUTTON_DOWN),
    ]}


def visibility_button(name: str, private: bool) -> dict[str, Any]:
    """Under an upload's confirmation in a private channel or DM: keep the spec there, or share it again."""
    action_id, label = (MAKE_SHARED, slack_messages.SHARE_BUTTON) if private else (
        MAKE_PRIVATE, slack_messages.MAKE_PRIVATE_BUTTON)
    return {"type": "actions", "block_id": VISIBILITY_BLOCK_ID, "elements": [
        {"type": "button", "action_id": action_id, "value": name,
         "text": {"type": "plain_text", "text": label, "emoji": True}},
    ]}


def render_ingest(reply: IngestReply, *, offer_private: bool = False) -> SlackMessage:
    """An upload's confirmation; `offer_private` (a private channel or DM) adds the button that changes who sees it."""
    message = render_markdown(ingest_markdown(reply))
    if not offer_private:
        return message
    return SlackMessage(message.text, (*message.blocks, visibility_button(reply.name, reply.private)))


def language_actions(target: SnippetTarget, shown: str) -> dict[str, Any] | None:
    """"Show Python" / "Show curl" buttons and a "Show in another language…" menu for an answer's snippet.

    Each value is the snippet's `language:ref:spec` (`core.snippet_choice`): a click needs nothing stored, so
    it works after a restart. Languages come from the snippet registry.
    """
    others = [language for language in available_languages() if language != shown]
    if not others:
        return None

    def plain(text: str) -> dict[str, Any]:
        return {"type": "plain_text", "text": text, "emoji": True}

    elements: list[dict[str, Any]] = [
        {"type": "button", "action_id": f"{SNIPPET_SHOW}_{language}", "value": target.value(language),
         "text": plain(slack_messages.show_language(language_label(language)))}
        for language in QUICK_LANGUAGES if language in others
    ]
    elements.append({
        "type": "static_select", "action_id": SNIPPET_LANGUAGE, "placeholder": plain(slack_messages.OTHER_LANGUAGE),
        "options": [{"text": plain(language_label(language)), "value": target.value(language)}
                    for language in others[:MAX_MENU_OPTIONS]],
    })
    return {"type": "actions", "block_id": SNIPPET_BLOCK_ID, "elements": elements}


def _fallback(parts: Iterable[str]) -> str:
    text = "\n\n".join(part for part in parts if part)
    return truncate(text, MAX_TEXT_CHARS) or slack_messages.TEXT_TRUNCATED


def _group(sections: Sequence[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    size = 0
    for text in sections:
        if groups[-1] and (len(groups[-1]) >= CONTENT_BLOCKS_PER_MESSAGE or size + len(text) > MAX_MESSAGE_CHARS):
            groups.append([])
            size = 0
        groups[-1].append(text)
        size += len(text)
    return groups


def citations_mrkdwn(answer: Answer) -> str:
    """The sources line of an answer."""
    cited = [f"`{escape(c.spec)}` {escape(c.label)}" for c in answer.citations]
    return f"*{slack_messages.SOURCES_LABEL}* " + " · ".join(cited)


def render_answer(answer: Answer, *, echo: str | None = None, buttons: bool = True) -> list[SlackMessage]:
    """An answer as one or more messages: notice first, content, then sources and 👍/👎 on the last one."""
    sections: list[str] = []
    for block in answer.blocks:
        if isinstance(block, CodeBlock):
            sections.extend(code_sections(block.code))
        else:
            sections.extend(markdown_sections(block.text))
    groups = _group(sections)
    if len(groups) > MAX_MESSAGES_PER_ANSWER:
        groups = groups[:MAX_MESSAGES_PER_ANSWER]
        groups[-1].append(text_mrkdwn(slack_messages.ANSWER_TRUNCATED))
    rendered: list[SlackMessage] = []
    for index, group in enumerate(groups):
        first, last = index == 0, index == len(groups) - 1
        head: list[dict[str, Any]] = []
        tail: list[dict[str, Any]] = []
        if first and echo is not None:
            head.append(context(f"*You asked:* {escape(echo[:MAX_ECHO_CHARS])}"))
        if first and answer.notice:
            head.append(context(text_mrkdwn(answer.notice)))
        if last and answer.citations:
            tail.append(context(citations_mrkdwn(answer)))
        if last and buttons and answer.answer_id and answer.kind is not AnswerKind.SNIPPET:
            tail.append(feedback_buttons(answer.answer_id))
        languages = language_actions(answer.snippet, answer.snippet_language) if answer.snippet else None
        if last and buttons and languages is not None:
            tail.append(languages)
        blocks = [*head, *(section(text) for text in group), *tail]
        assert len(blocks) <= MAX_BLOCKS_PER_MESSAGE
        fallback_parts = list(group) + ([citations_mrkdwn(answer)] if last and answer.citations else [])
        rendered.append(SlackMessage(_fallback(fallback_parts), tuple(blocks)))
    return rendered


def render_markdown(markdown: str) -> SlackMessage:
    """A reply written in Markdown (core and Slack messages, errors) as one message."""
    sections = markdown_sections(markdown)[:CONTENT_BLOCKS_PER_MESSAGE] or [escape(markdown)]
    return SlackMessage(_fallback(sections), tuple(section(text) for text in sections))


def render_partial(markdown: str) -> SlackMessage:
    """The text of an answer still being written, in one message (cut if it is already very long)."""
    sections = markdown_sections(markdown)
    kept = _group(sections)[0] if sections else []
    blocks = [section(text) for text in kept]
    blocks.append(context(f":{WORKING_EMOJI}: {escape(slack_messages.WORKING)}"))
    return SlackMessage(_fallback(kept) if kept else escape(slack_messages.WORKING), tuple(blocks))


def render_status(status: str) -> SlackMessage:
    """A progress line ("Working on it…", "Indexing: embedding 40/120…")."""
    text = text_mrkdwn(status)
    return SlackMessage(text, (context(f":{WORKING_EMOJI}: {text}"),))


def render_specs(reply: SpecListReply) -> SlackMessage:
    """The workspace's specs; those left out of search until re-indexed are marked."""
    if not reply.specs:
        return render_markdown(slack_messages.no_specs())
    lines = [slack_messages.specs_heading(len(reply.specs))]
    for spec in reply.specs:
        when = time.strftime("%Y-%m-%d", time.gmtime(spec.indexed_at))
        lines.append(f"• `{spec.name}` — {spec.label} ({spec.format}), {spec.operations_text}, indexed {when}"
                     + "".join(f" — _{marker}_" for marker in spec.markers))
    return render_markdown("\n".join(lines))


def ingest_markdown(reply: IngestReply) -> str:
    """What an upload found, in Markdown: the summary, what changed, and the first warnings as bullets."""
    warnings, more = reply.shown_warnings(MAX_WARNINGS_SHOWN)
    lines = [reply.headline(), *reply.changes, *(f"• {warning}" for warning in warnings)]
    return "\n".join(lines + ([f"• {more}"] if more else []))


def slack_markup(*, echo: bool = False, offer_private: bool = False) -> ReplyMarkup[list[SlackMessage]]:
    """The core's replies as Slack messages; with `echo` an answer starts with its question (slash commands).

    `offer_private`: upload confirmations get the button that makes the spec private (or shared again).
    """
    return ReplyMarkup(
        answer=lambda reply: render_answer(reply.answer, echo=reply.question if echo else None),
        specs=lambda reply: [render_specs(reply)],
        ingest=lambda reply: [render_ingest(reply, offer_private=offer_private)],
        help=lambda reply: [render_markdown(help_markdown(reply.commands, SYNTAX, slack_messages.WAYS, reply.notes))],
        text=lambda text: [render_markdown(text)],
    )
