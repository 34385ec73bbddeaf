"""Shared by the PDF and Word readers: their text, with its structure, written as Markdown for `parse_markdown`.

A reader walks its document and hands over headings (with a level), prose lines, code lines and table rows;
`MarkdownWriter` turns them into the Markdown the docs parser already understands, so a PDF or Word doc
becomes the same sections and endpoints as the Markdown it could have been written in. Prose that would read
as Markdown structure (a line starting with `#` or a code fence) is escaped, so only real headings and code
make sections and code blocks.

The text is bounded: past `MAX_DOCUMENT_CHARS` the writer refuses the document, whatever the reader is.
"""

from __future__ import annotations

import re

import structlog

from core import messages
from core.errors import InvalidSpecError

log = structlog.get_logger(__name__)

# Stripe's whole OpenAPI description, the largest spec we know, is about 4 million characters of YAML; its prose
# is a fraction of that. Two million characters is a book of some 700 pages: more is not one API's docs.
MAX_DOCUMENT_CHARS = 2_000_000
MAX_HEADING_LEVEL = 6
# Headings are one line of a few words; a "heading" longer than this is a styled paragraph, kept as prose.
MAX_HEADING_CHARS = 200

_WHITESPACE = re.compile(r"\s+")
# What the Markdown parser would read as a heading or a fence at the start of a line (up to three spaces first).
_MARKDOWN_SYNTAX = re.compile(r"^ {0,3}(?:#|`{3}|~{3})")
_BACKTICK_RUN = re.compile(r"^\s*(`+)")


def one_line(text: str) -> str:
    """`text` with every run of whitespace (line breaks included) made one space, trimmed."""
    return _WHITESPACE.sub(" ", text).strip()


class MarkdownWriter:
    """Collects a document's headings, prose, code and tables, bounded in size; `markdown()` is the result."""

    def __init__(self, filename: str, kind: str, max_chars: int = MAX_DOCUMENT_CHARS) -> None:
        self.filename = filename
        self.kind = kind  # "PDF" or "Word document", for messages
        self.max_chars = max_chars
        self._lines: list[str] = []
        self._code: list[str] = []  # code lines waiting for their fence
        self._chars = 0
        self.headings = 0

    @property
    def chars(self) -> int:
        """Characters of text collected so far."""
        return self._chars

    def heading(self, level: int, text: str) -> None:
        """A heading of `level` (1 is the highest; deeper than 6 counts as 6); long or empty ones stay prose."""
        name = one_line(text)
        if not name:
            return
        if len(name) > MAX_HEADING_CHARS:
            self.text(name)
            return
        self._flush_code()
        self._count(name)
        self._lines.extend(("", "#" * max(1, min(level, MAX_HEADING_LEVEL)) + " " + name, ""))
        self.headings += 1

    def text(self, line: str) -> None:
        """One line of prose (inner line breaks are kept as lines)."""
        self._flush_code()
        for part in line.splitlines() or [""]:
            part = part.rstrip()
            self._count(part)
            # A backslash keeps `# not a heading` and ``` in prose from becoming Markdown structure.
            self._lines.append("\\" + part.lstrip() if _MARKDOWN_SYNTAX.match(part) else part)

    def code(self, line: str) -> None:
        """One line of code; consecutive code lines make one fenced block."""
        for part in line.splitlines() or [""]:
            self._count(part)
            self._code.append(part.rstrip())

    def table_row(self, cells: list[str]) -> None:
        """One table row, written as a Markdown table row (cells on one line each)."""
        self.text("| " + " | ".join(one_line(cell).replace("|", "\\|") for cell in cells) + " |")

    def blank(self) -> None:
        """A paragraph break."""
        self._flush_code()
        if self._lines and self._lines[-1]:
            self._lines.append("")

    def markdown(self) -> str:
        """The document as Markdown; refuses one with no text at all."""
        self._flush_code()
        text = "\n".join(self._lines).strip()
        if not text:
            log.info("document_without_text", filename=self.filename, kind=self.kind)
            raise InvalidSpecError(messages.document_without_text(self.filename, self.kind))
        return text + "\n"

    def _count(self, text: str) -> None:
        self._chars += len(text) + 1
        if self._chars > self.max_chars:
            log.info("document_too_much_text", filename=self.filename, kind=self.kind, limit=self.max_chars)
            raise InvalidSpecError(messages.document_too_much_text(self.filename, self.max_chars))

    def _flush_code(self) -> None:
        if not self._code:
            return
        while self._code and not self._code[-1].strip():
            self._code.pop()
        if self._code:
            # The fence is longer than any run of backticks a code line starts with, so no line closes it early.
            longest = max((len(m.group(1)) for line in self._code if (m := _BACKTICK_RUN.match(line))), default=0)
            fence = "`" * max(3, longest + 1)
            self._lines.extend(("", fence, *self._code, fence, ""))
        self._code = []
