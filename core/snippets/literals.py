"""Rendering helpers the Python, JavaScript and TypeScript renderers share: literals, expressions, comment headers."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from core.snippets.request import Env, Request, Value

COMMENT_WIDTH = 100
_JS_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def string_literal(text: str) -> str:
    """A double-quoted string literal valid in both Python and JavaScript."""
    return json.dumps(text, ensure_ascii=False)


def literal(value: Any, language: str, indent: int, width: int = 88) -> str:
    """A Python, JavaScript or TypeScript literal for a JSON-like tree (leaves may be `Env`), wrapped when long."""
    unit = "    " if language == "python" else "  "
    flat = _flat_literal(value, language)
    if len(flat) + len(unit) * indent <= width or not isinstance(value, dict | list) or not value:
        return flat
    inner = unit * (indent + 1)
    if isinstance(value, dict):
        items = [
            f"{inner}{key_literal(k, language)}: {literal(v, language, indent + 1, width)}," for k, v in value.items()
        ]
        return "{\n" + "\n".join(items) + "\n" + unit * indent + "}"
    items = [f"{inner}{literal(v, language, indent + 1, width)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + unit * indent + "]"


def _flat_literal(value: Any, language: str) -> str:
    if isinstance(value, Env):
        if language == "typescript":  # `env()` in the snippet: a string, or an error naming the variable
            return f'env("{value.name}")'
        return f'os.environ["{value.name}"]' if language == "python" else f"process.env.{value.name}"
    if isinstance(value, bool):
        return ("True" if value else "False") if language == "python" else ("true" if value else "false")
    if value is None:
        return "None" if language == "python" else "null"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{key_literal(k, language)}: {_flat_literal(v, language)}" for k, v in value.items())
        return "{" + items + "}" if language == "python" else "{ " + items + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_flat_literal(v, language) for v in value) + "]"
    return string_literal(str(value))


def key_literal(key: Any, language: str) -> str:
    """A dict key / object property name: bare in JavaScript and TypeScript when it is an identifier, else quoted."""
    text = str(key)
    if language in ("javascript", "typescript") and _JS_IDENTIFIER.fullmatch(text):
        return text
    return string_literal(text)


def value_expression(value: Value, language: str) -> str:
    """A Python / JavaScript / TypeScript expression concatenating literal parts and environment variables."""
    pieces = [_flat_literal(part, language) for part in value if part != ""] or ['""']
    return " + ".join(pieces)


def pairs_literal(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...], language: str, indent: int) -> str:
    """A dict / object literal from (name, value) pairs; duplicate names become a list of pairs."""
    names = [n for n, _ in pairs]
    unit = "    " if language == "python" else "  "
    inner = unit * (indent + 1)
    if len(set(names)) != len(names):  # repeated names: a list of pairs
        pair_open, pair_close = ("(", ")") if language == "python" else ("[", "]")
        items = [f"{pair_open}{string_literal(n)}, {value_expression(v, language)}{pair_close}" for n, v in pairs]
        opener, closer = "[", "]"
    else:
        items = [f"{key_literal(n, language)}: {value_expression(v, language)}" for n, v in pairs]
        opener, closer = "{", "}"
    flat = opener + ", ".join(items) + closer
    if language in ("javascript", "typescript") and opener == "{":
        flat = "{ " + ", ".join(items) + " }"
    if len(flat) + len(unit) * indent <= 80:
        return flat
    return opener + "\n" + "\n".join(f"{inner}{item}," for item in items) + "\n" + unit * indent + closer


def comment_lines(request: Request, prefix: str, signs_oauth1: bool = False) -> list[str]:
    """The snippet's header comment: title, the environment variables it reads, then the notes, wrapped."""
    lines = [request.title] if request.title else []
    env = request.env_vars(signs_oauth1)
    if env:
        lines.append("Reads " + ", ".join(env) + " from the environment.")
    lines.extend(request.notes)
    comments: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(" ".join(line.split()), COMMENT_WIDTH, break_long_words=False, break_on_hyphens=False)
        comments.extend(f"{prefix} {part}" for part in wrapped)
    return comments
