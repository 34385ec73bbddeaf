"""Fitting Markdown into chat messages: where to cut a long text, whatever the platform's markup and limits.

Pure functions; the adapters' renderers pass their own limits (and Slack a test that keeps its entities and
links whole). Each cut looks back at most `limit` positions, so a long text costs a bounded amount per piece.
"""

from __future__ import annotations

from collections.abc import Callable

_FENCE = "```"
# Before opening a code fence near the end of a message, keep room for some code, or move the fence on.
_MIN_CODE_ROOM = 80


def markdown_segments(markdown: str) -> list[tuple[str, str]]:
    """Split Markdown into ("text", ...) and ("code", ...) segments; an unclosed fence runs to the end."""
    segments: list[tuple[str, str]] = []
    buffer: list[str] = []
    in_code = False

    def flush() -> None:
        if buffer:
            segments.append(("code" if in_code else "text", "\n".join(buffer)))
            buffer.clear()

    for line in markdown.split("\n"):
        stripped = line.strip()
        if not in_code and len(stripped) > 6 and stripped.startswith("```") and stripped.endswith("```"):
            flush()
            segments.append(("code", stripped[3:-3]))
            continue
        if stripped.startswith("```"):
            flush()
            in_code = not in_code
            continue
        buffer.append(line)
    flush()
    return [(kind, body) for kind, body in segments if kind == "code" or body.strip()]


def _cut_position(text: str, limit: int, safe: Callable[[str, int], bool]) -> int:
    floor = max(1, limit // 3)
    for separator in ("\n\n", "\n", " "):
        index = text.rfind(separator, 0, limit + 1)
        while index >= floor:
            if safe(text, index):
                return index
            index = text.rfind(separator, 0, index)
    for index in range(limit, floor - 1, -1):
        if safe(text, index):
            return index
    return limit


def _anywhere(text: str, position: int) -> bool:
    return True


def split_at_breaks(text: str, limit: int, safe: Callable[[str, int], bool] = _anywhere) -> list[str]:
    """Split text into pieces of at most `limit` characters, preferring paragraph, line, then word breaks.

    `safe(text, position)` says whether a cut before `position` keeps the markup whole (an entity, a link).
    """
    pieces: list[str] = []
    while len(text) > limit:
        cut = _cut_position(text, limit, safe)
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    pieces.append(text)
    return [piece for piece in pieces if piece.strip()]


def split_markdown(text: str, limit: int) -> list[str]:
    """Split Markdown into messages of at most `limit` characters, breaking between lines where possible.

    A code block that has to be split is closed at the end of one message and reopened (same language) at the
    start of the next, so every message renders on its own. An unterminated fence at the end is closed too.
    Returns [] for blank text.
    """
    if limit < 40:
        raise ValueError("limit too small to split Markdown safely")
    chunks: list[str] = []
    lines: list[str] = []
    length = 0  # len("\n".join(lines))
    fence: str | None = None  # the opening line of the code block we are inside, if any

    def flush() -> None:
        nonlocal lines, length
        if any(line.strip() for line in lines if line != fence):
            chunks.append("\n".join([*lines, _FENCE] if fence else lines))
        lines = [fence] if fence else []
        length = len(fence) if fence else 0

    def add(line: str) -> None:
        nonlocal length
        length += len(line) + (1 if lines else 0)
        lines.append(line)

    for raw in text.split("\n"):
        is_fence = raw.lstrip().startswith(_FENCE)
        opens = is_fence and fence is None
        after = (raw.strip()[:24] if opens else None) if is_fence else fence
        closing_room = len(_FENCE) + 1 if after else 0
        extra = _MIN_CODE_ROOM if opens else 0
        if lines and length + 1 + len(raw) + closing_room + extra > limit:
            flush()
        room = limit - length - (1 if lines else 0) - closing_room
        if len(raw) <= room:
            add(raw)
            fence = after
            continue
        # A single line longer than a whole message: cut it into pieces (at spaces outside code).
        rest = raw
        while rest:
            room = limit - length - (1 if lines else 0) - closing_room
            if len(rest) <= room:
                add(rest)
                break
            cut = room if fence else (rest.rfind(" ", room // 2, room) + 1 or room)
            add(rest[:cut])
            rest = rest[cut:]
            flush()
        fence = after
    if lines:
        flush()
    return chunks
