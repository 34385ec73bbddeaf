"""Small text helpers shared by the parsers and document builder."""

from __future__ import annotations

import html
import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser

# Descriptions are kept to a few thousand characters; this much HTML is more than enough to fill that,
# and it bounds the parser's work on hostile markup (deep nesting costs an HTML5 tree builder more than
# linear time: 16,000 characters of `<ul>` take about 30 ms).
MAX_HTML_CHARS = 16_000

# A Postman `{{variable}}` (as written in URLs, headers and bodies; snippets read them too). The name starts and
# ends with a non-space: `\s*([^{}]+?)\s*` split a run of spaces three ways (cubic time).
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*([^{}\s](?:[^{}]*[^{}\s])?)\s*\}\}")

_WS = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_BLOCK = frozenset({"p", "br", "li", "ul", "ol", "div", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})
_MARKS = dict.fromkeys(_BLOCK, "\n") | {"code": "`"}  # written where the element opens and where it closes
_NOT_TEXT = frozenset({"script", "style", "template", "-comment", "!doctype"})


def strip_html(text: str) -> str:
    """Plain text from a description that may contain HTML (Stripe's do); Markdown is left alone.

    Any input is accepted: malformed or hostile markup is read the way a browser would read it (lexbor's
    HTML5 parser), never raised on.
    """
    if not text:
        return ""
    text = text[:MAX_HTML_CHARS]
    text = _html_text(text) if "<" in text and ">" in text else html.unescape(text)
    lines = [_WS.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _html_text(markup: str) -> str:
    """The text of an HTML fragment: block elements on their own lines, `<code>` in backticks."""
    root = LexborHTMLParser(markup).root
    parts: list[str] = []
    # Walked with an explicit stack: nesting depth is the author's choice, Python's recursion limit is not.
    stack: list[tuple[Any, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, closing = stack.pop()
        tag = node.tag
        if closing:
            parts.append(_MARKS.get(tag, ""))
        elif tag == "-text":
            parts.append(node.text_content or "")
        elif tag not in _NOT_TEXT:
            parts.append(_MARKS.get(tag, ""))
            stack.append((node, True))
            children = []
            child = node.child
            while child is not None:
                children.append(child)
                child = child.next
            stack.extend((child, False) for child in reversed(children))
    return "".join(parts)


def truncate(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters at a word boundary, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence (or line) of a description, bounded in length."""
    text = text.strip()
    match = re.search(r"(?<=[.!?])\s|\n", text)
    sentence = text[: match.start()] if match else text
    return truncate(sentence.strip(), limit)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def identifier_words(identifier: str) -> str:
    """Split an identifier into words: `ban_user_from_guild`, `getInventory`, `chat.postMessage`."""
    spaced = _CAMEL.sub(" ", identifier)
    return " ".join(w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w).lower()


def split_userinfo(url: str) -> tuple[str, str, str]:
    """A URL as (everything before the userinfo, the userinfo, everything after its `@`).

    `https://ada:pw@api.example.com/x` gives (`https://`, `ada:pw`, `api.example.com/x`); a URL without
    userinfo gives (`url`, "", ""). Only the authority is searched, so an `@` in a path (`/users/@me`)
    is not mistaken for one.
    """
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start, end)
        if found >= 0:
            end = found
    at = url.rfind("@", start, end)
    if at < 0:
        return url, "", ""
    return url[:start], url[start:at], url[at + 1 :]


def strip_userinfo(url: str) -> str:
    """The URL without its `user:password@` part, a credential wherever it is written."""
    before, _, after = split_userinfo(url)
    return before + after
