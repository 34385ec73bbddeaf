"""Read a Word document (.docx, python-docx) of API docs into Markdown.

Paragraphs styled "Heading 1" to "Heading 9" (or a style based on one) become headings of that level (past 6
as 6), one level deeper when the document has a "Title" (which is then the level-1 heading); paragraphs in a
code style ("Code", "HTML Preformatted", "Source Code", ...) or written wholly in a monospaced font become
code; list paragraphs become `- ` items; tables become one Markdown row per table row. Body paragraphs and
tables are read in document order.

A .docx is a zip archive, so before python-docx opens it the archive's directory is checked: at most
`MAX_MEMBERS` parts, at most `MAX_UNCOMPRESSED_BYTES` unpacked in all, and no part over 1 MB that unpacks to
more than `MAX_COMPRESSION_RATIO` times its packed size (a zip bomb). Python's zipfile never inflates a part
past the size its directory declares, so these checks bound what is read. python-docx parses the XML without
resolving entities and within libxml2's default depth and text-node limits; the text is bounded by
`doc_text.MAX_DOCUMENT_CHARS`, and the parse worker's time and memory limits stand behind all of it.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import structlog
from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from core import messages
from core.errors import InvalidSpecError, UserFacingError
from core.parsing.doc_text import MarkdownWriter

log = structlog.get_logger(__name__)

KIND = "Word document"
MAIN_PART = "word/document.xml"
# A text-heavy 10 MB .docx unpacks to about 60-100 MB of XML; its text would be far over the text limit anyway.
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_MEMBERS = 2_000  # a long document with many images has a few hundred parts
# Word's XML packs about 5-15 to 1; a ratio of 100 on a large part is something made to unpack, not a document.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM_BYTES = 1024 * 1024
TITLE_LEVEL = -1  # the "Title" style: above Heading 1
# How far up a style's "based on" chain a heading or code style is looked for.
MAX_STYLE_DEPTH = 8

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.I)
_CODE_STYLE = re.compile(r"code|preformatted|source|verbatim|monospace|listing|console", re.I)
_MONOSPACED_FONT = re.compile(r"courier|mono|consol|menlo|monaco|inconsolata|typewriter|code", re.I)
_LIST_STYLE = re.compile(r"^list", re.I)


def docx_to_markdown(filename: str, data: bytes) -> str:
    """The text of a .docx as Markdown, or an `InvalidSpecError` saying why it can't be read."""
    _check_archive(filename, data)
    try:
        document = Document(io.BytesIO(data))
        return _markdown(filename, document)
    except (UserFacingError, MemoryError):
        raise
    except Exception as exc:  # python-docx / lxml / zipfile raise many types on damaged input
        log.warning("document_unreadable", filename=filename, kind=KIND, error=type(exc).__name__)
        raise InvalidSpecError(messages.document_damaged(filename, KIND)) from None


def _check_archive(filename: str, data: bytes) -> None:
    """Refuse what is not a .docx, and zip bombs, from the archive's directory alone (nothing is unpacked)."""
    if not data.startswith(b"PK"):
        log.info("document_refused", filename=filename, kind=KIND, reason="not_a_zip")
        raise InvalidSpecError(messages.not_a_document(filename, KIND))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        log.warning("document_unreadable", filename=filename, kind=KIND, error=type(exc).__name__)
        raise InvalidSpecError(messages.document_damaged(filename, KIND)) from None
    unpacked = sum(member.file_size for member in members)
    bomb = (
        len(members) > MAX_MEMBERS
        or unpacked > MAX_UNCOMPRESSED_BYTES
        or any(
            m.file_size > RATIO_CHECKED_FROM_BYTES and m.file_size > MAX_COMPRESSION_RATIO * max(m.compress_size, 1)
            for m in members
        )
    )
    if bomb:
        log.warning("document_refused", filename=filename, kind=KIND, reason="zip_bomb", members=len(members),
                    unpacked_bytes=unpacked, packed_bytes=len(data))  # fmt: skip
        raise InvalidSpecError(messages.document_bomb(filename, KIND))
    if not any(member.filename == MAIN_PART for member in members):
        log.info("document_refused", filename=filename, kind=KIND, reason="no_document_part")
        raise InvalidSpecError(messages.not_a_document(filename, KIND))


class _Styles:
    """What a paragraph style means here (heading level, code, list), looked up once per style."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, bool, bool]] = {}

    def of(self, paragraph: Paragraph) -> tuple[int, bool, bool]:
        """(heading level or 0, is code, is a list item) for the paragraph's style."""
        style_id = paragraph._p.style or ""  # the raw id: cheap, and the cache key
        if style_id not in self._known:
            self._known[style_id] = self._classify(paragraph.style)
        return self._known[style_id]

    @staticmethod
    def _classify(style: Any) -> tuple[int, bool, bool]:
        level, code, listed = 0, False, False
        for _ in range(MAX_STYLE_DEPTH):
            if style is None:
                break
            name = str(style.name or "")
            heading = _HEADING_STYLE.match(name)
            if heading and not level:
                level = int(heading.group(1))
            elif name.lower() == "title" and not level:
                level = TITLE_LEVEL
            code = code or bool(_CODE_STYLE.search(name))
            listed = listed or bool(_LIST_STYLE.match(name))
            style = style.base_style
        return level, code, listed


def _markdown(filename: str, document: Any) -> str:
    writer = MarkdownWriter(filename, KIND)
    styles = _Styles()
    blocks = list(document.iter_inner_content())
    # A document with a Title has its Heading 1s under it (as `## `), like a Markdown doc under its `# `.
    shift = 1 if any(isinstance(b, Paragraph) and styles.of(b)[0] == TITLE_LEVEL for b in blocks) else 0
    for block in blocks:
        if isinstance(block, Table):
            _table(writer, block)
            continue
        level, code, listed = styles.of(block)
        text = block.text
        if code or _monospaced(block):
            writer.code(text)
        elif level == TITLE_LEVEL:
            writer.heading(1, text)
        elif level:
            writer.heading(level + shift, text)
        elif text.strip():
            writer.text(("- " if listed else "") + text)
        else:
            writer.blank()
    log.info("document_read", filename=filename, kind=KIND, headings=writer.headings, chars=writer.chars)
    return writer.markdown()


def _table(writer: MarkdownWriter, table: Table) -> None:
    writer.blank()
    for row in table.rows:
        cells: list[str] = []
        previous: Any = None
        for cell in row.cells:
            if cell._tc is not previous:  # a merged cell is repeated once per grid column it spans
                cells.append(cell.text)
            previous = cell._tc
        writer.table_row(cells)
    writer.blank()


def _monospaced(paragraph: Paragraph) -> bool:
    """Whether every run with text is set in a monospaced font (code pasted into a normal paragraph)."""
    fonts = [run.font.name for run in paragraph.runs if run.text.strip()]
    return bool(fonts) and all(font and _MONOSPACED_FONT.search(font) for font in fonts)
