"""Small text helpers shared by the parsers and document builder."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_WS = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "br", "li", "ul", "ol", "div", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "code":
            self.parts.append("`")

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self.parts.append("`")
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(text: str) -> str:
    """Plain text from a description that may contain HTML (Stripe's do); Markdown is left alone."""
    if not text:
        return ""
    if "<" in text and ">" in text:
        extractor = _TextExtractor()
        extractor.feed(text)
        extractor.close()
        text = "".join(extractor.parts)
    else:
        text = html.unescape(text)
    lines = [_WS.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


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
