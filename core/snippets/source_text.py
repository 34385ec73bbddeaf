"""Helpers the TypeScript, Go, Java, Ruby, PHP and C# renderers share: safe comments, JSON text, query strings.

Spec text reaches snippets in comments and string literals. Each renderer escapes its own literals; what is
common is here: characters that are not printable (control characters, bidirectional overrides, byte order
marks, lone surrogates) never reach a comment as they are, JSON bodies are written as JSON text with
environment variables spliced in, and literal query or form text is percent-encoded before it is written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from core.snippets.literals import comment_lines
from core.snippets.request import Env, Part, Request, Value, merge_literals

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_QUERY_SAFE = ",:@/"
SIGN_OAUTH1 = ("Sign it with an OAuth 1.0a library and add the resulting Authorization header below.",)


def without_surrogates(text: str) -> str:
    """The text with lone surrogates (which no UTF-8 source file can hold) replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text)


def escaped(
    text: str, escapes: Mapping[str, str], keep: Callable[[str], bool], escape: Callable[[int], str]
) -> str:
    r"""The inside of a string literal, written the way one language writes it.

    Each character of `escapes` is replaced by its escape, the characters `keep` accepts stay as they are, any
    other is written by `escape(code point)`; lone surrogates become U+FFFD first. Which characters stay and how
    the rest are written is each language's own rule (Java must never write `\u000a`, C#'s `\x` would swallow
    the digits after it); the walk over the text is the same.
    """
    return "".join(
        escapes[char] if char in escapes else char if keep(char) else escape(ord(char))
        for char in without_surrogates(text)
    )


def brace_unicode_escape(code: int) -> str:
    r"""`\u{1f600}`: Ruby's and PHP's escape for any code point."""
    return f"\\u{{{code:x}}}"


def ascii_printable(char: str) -> bool:
    """Whether a character is printable ASCII (space to tilde)."""
    return " " <= char <= "~"


def printable(text: str) -> str:
    """The text with every character that is not printable (str.isprintable) replaced by U+FFFD."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else REPLACEMENT for c in text)


def header_comments(
    request: Request,
    prefix: str,
    clean: Callable[[str], str] | None = None,
    signs_oauth1: bool = False,
    oauth1_note: Sequence[str] = SIGN_OAUTH1,
) -> list[str]:
    """The snippet's header comment with unprintable characters replaced, then `clean` applied to each line.

    `comment_lines` already joins every line break (including U+2028 and the like) into spaces, so a comment
    cannot end early; what is left to each language is its own comment hazard (`?>` in PHP, unicode escapes
    in Java, `@ts-` directives in TypeScript). An OAuth 1.0a request the snippet does not sign itself ends
    with `oauth1_note`, telling the reader to sign it.
    """
    lines = comment_lines(request, prefix, signs_oauth1=signs_oauth1)
    cleaned: list[str] = []
    for line in lines:
        text = printable(line[len(prefix) + 1 :])
        cleaned.append(f"{prefix} {clean(text) if clean else text}")
    if request.oauth1 and not signs_oauth1:
        cleaned.extend(f"{prefix} {note}" for note in oauth1_note)
    return cleaned


def json_safe(data: Any) -> Any:
    """A JSON tree with non-finite numbers (which JSON cannot hold) as null and lone surrogates as U+FFFD.

    `Env` leaves are kept.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, str):
        return without_surrogates(data)
    if isinstance(data, dict):
        return {without_surrogates(str(k)): json_safe(v) for k, v in data.items()}
    if isinstance(data, list):
        return [json_safe(v) for v in data]
    return data


def json_parts(data: Any, indent: int | None = 2, ascii_only: bool = True) -> Value:
    """JSON text (ASCII only unless `ascii_only` is False, laid out like `json.dumps`) as a `Value`.

    Each `Env` leaf is a part the renderer writes as a JSON string read at run time. The text is written here
    rather than by marking the leaves and replacing the marks, so no text in a spec can pass for an environment
    variable.
    """
    parts: list[Part] = []
    _json_into(json_safe(data), indent, 0, parts, ascii_only)
    return merge_literals(parts)


def _json_into(data: Any, indent: int | None, level: int, parts: list[Part], ascii_only: bool) -> None:
    if isinstance(data, Env):
        parts.append(data)
        return
    if not isinstance(data, dict | list) or not data:
        parts.append(json.dumps(data, ensure_ascii=ascii_only))
        return
    opener, closer = ("{", "}") if isinstance(data, dict) else ("[", "]")
    inner = "\n" + " " * (indent * (level + 1)) if indent is not None else ""
    parts.append(opener)
    items = list(data.items()) if isinstance(data, dict) else [(None, v) for v in data]
    for index, (key, value) in enumerate(items):
        parts.append(("," if index else "") + (inner if indent is not None else (" " if index else "")))
        if key is not None:
            parts.append(json.dumps(key, ensure_ascii=ascii_only) + ": ")
        _json_into(value, indent, level + 1, parts, ascii_only)
    parts.append(("\n" + " " * (indent * level) if indent is not None else "") + closer)


def encoded_pairs(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...]) -> Value:
    """`name=value&...` with literal text percent-encoded now; `Env` parts are left to encode at run time."""
    parts: list[Part] = []
    for index, (name, value) in enumerate(pairs):
        parts.append(("&" if index else "") + quote(without_surrogates(name), safe="") + "=")
        for part in value:
            parts.append(quote(without_surrogates(part), safe=_QUERY_SAFE) if isinstance(part, str) else part)
    return merge_literals(parts)


def has_repeats(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...]) -> bool:
    """Whether a name appears more than once (a map literal cannot hold it)."""
    names = [name for name, _ in pairs]
    return len(set(names)) != len(names)


def plain_lines(text: str) -> bool:
    r"""Whether the text can be written as lines in a source file as it is: printable characters and `\n` only."""
    return all(line.isprintable() for line in text.split("\n"))


def multipart_name(name: str) -> str:
    """A form field name as browsers write it in `Content-Disposition` (quotes and line breaks escaped)."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def concatenation(
    value: Value, env: Callable[[str], str], quote_text: Callable[[str], str], joiner: str, empty: str
) -> str:
    """An expression for a value: its literal parts quoted, its environment variables read, joined by `joiner`."""
    pieces = [env(p.name) if isinstance(p, Env) else quote_text(p) for p in value if p != ""]
    return joiner.join(pieces) or empty


def lines_literal(text: str, indent: str, quote_text: Callable[[str], str]) -> str:
    """Text of several lines as one literal per line, joined with `+` (exact: nothing is stripped)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return quote_text(text)
    pieces = [quote_text(line + "\n") for line in lines[:-1]]
    if lines[-1]:
        pieces.append(quote_text(lines[-1]))
    return f"\n{indent}+ ".join(pieces)
