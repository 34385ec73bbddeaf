"""Read a PDF of API docs (pypdf) into Markdown: headings from font sizes, code from monospaced fonts.

PDFs keep no "heading" or "code" marks, only where each piece of text is drawn and in which font and size.
So: the body size is the size most of the text is set in; lines set larger are headings, the largest the
highest level; lines wholly in a bold face at body size are headings one level below those; lines in a
monospaced face (Courier, Consolas, "... Mono", ...) are code. Page numbers alone on a line are dropped.
Multi-column layouts and text drawn out of reading order come out in the order the PDF draws them.

Bounds, besides the parse worker's time and memory limits: at most `MAX_PAGES` pages (a longer PDF is refused
before any page is read), at most `doc_text.MAX_DOCUMENT_CHARS` characters of text, and pypdf's own limits
lowered for one upload (decompressed stream sizes, parsing work per content stream, page tree size and depth;
no external JBIG2 decoder is ever run). An encrypted PDF is refused unless it opens with the empty password
(PDFs that only restrict printing or copying do).
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog
from pypdf import PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from core import messages
from core.errors import InvalidSpecError, UserFacingError
from core.parsing.doc_text import MAX_HEADING_CHARS, MarkdownWriter, one_line

log = structlog.get_logger(__name__)

KIND = "PDF"
# A long API reference runs to a few hundred pages; 1,000 leaves room for a whole manual. A 2,000-page PDF is
# refused at once, before a page is read (what limits the parse is the text, so pages are counted first).
MAX_PAGES = 1_000
# A PDF may put its header after some junk, but within the first kilobyte (readers tolerate that).
HEADER_WINDOW = 1024
# pypdf's limits for one upload. The defaults (75 MB per stream) suit a desktop tool; an upload is at most a few
# MB and API docs are text, so a content stream that inflates past 16 MB is a bomb, not a page.
STREAM_BYTES = 16 * 1024 * 1024
PYPDF_LIMITS: dict[str, Any] = {
    "maximum_declared_stream_length": STREAM_BYTES,
    "array_based_stream_maximum_output_length": STREAM_BYTES,
    "zlib_maximum_output_length": STREAM_BYTES,
    "lzw_maximum_output_length": STREAM_BYTES,
    "run_length_maximum_output_length": STREAM_BYTES,
    "brotli_maximum_output_length": STREAM_BYTES,
    "jbig2_maximum_output_length": STREAM_BYTES,
    "image_maximum_buffer_size": STREAM_BYTES,
    "stream_decoding_work_maximum_length": 4 * STREAM_BYTES,
    # The page tree's own limits (100,000 entries, depth 100) stand: they bound the flattening that counting the
    # pages needs, and a long manual must reach the page count to be told its length.
    "outline_maximum_entries": 10_000,
    "jbig2dec_binary": None,  # never run an external program on an upload
}
# Sizes differing by less than this are the same size (rounding in the PDF's matrices).
SIZE_STEP = 0.5
# A line counts as larger than the body only from this many points up (superscripts and rounding stay body).
HEADING_MIN_EXTRA_POINTS = 1.0
# A bold line is a heading only when short (a bold sentence is emphasis).
MAX_BOLD_HEADING_CHARS = 80

# Font names as PDFs carry them (after any `ABCDEF+` subset prefix): TeX's typewriter faces are CMTT/CMSLTT/LMMono,
# URW's Courier clone is NimbusMonL (NimbusMonoPS); TeX's bold is CMBX/CMB, URW's Times bold is "-Medi".
_MONOSPACED = re.compile(r"courier|mono|nimbusmon|cm(?:sl)?tt|consol|menlo|monaco|inconsolata|typewriter|code", re.I)
_BOLD = re.compile(r"bold|black|heavy|semibold|demi|cmbx|cmb\d|-medi", re.I)
# A table-of-contents line: a title, a dot leader and a page number. Not a heading, whatever its font.
_CONTENTS_LINE = re.compile(r"(?:\.\s?){4,}\s*\d{1,5}$")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,5}(?:\s*(?:/|of)\s*\d{1,5})?$", re.I)


@dataclass
class _Line:
    """One line of drawn text, with the font and size most of its characters use."""

    parts: list[str] = field(default_factory=list)
    fonts: Counter[tuple[str, float]] = field(default_factory=Counter)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def style(self) -> tuple[str, float]:
        return self.fonts.most_common(1)[0][0] if self.fonts else ("", 0.0)

    def all_bold(self) -> bool:
        return bool(self.fonts) and all(_BOLD.search(font) for font, _ in self.fonts)


def pdf_to_markdown(filename: str, data: bytes) -> str:
    """The text of a PDF as Markdown, or an `InvalidSpecError` saying why it can't be read."""
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        log.info("document_refused", filename=filename, kind=KIND, reason="not_a_pdf")
        raise InvalidSpecError(messages.not_a_document(filename, KIND))
    try:
        with apply_configuration(**PYPDF_LIMITS):
            lines = _read_lines(filename, data)
    except (UserFacingError, MemoryError):
        raise
    except LimitReachedError:
        log.warning("document_refused", filename=filename, kind=KIND, reason="limit_reached")
        raise InvalidSpecError(messages.document_bomb(filename, KIND)) from None
    except Exception as exc:  # pypdf raises many types on damaged input (its own, ValueError, KeyError, ...)
        log.warning("document_unreadable", filename=filename, kind=KIND, error=type(exc).__name__)
        raise InvalidSpecError(messages.document_damaged(filename, KIND)) from None
    return _markdown(filename, lines)


def _read_lines(filename: str, data: bytes) -> list[_Line]:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        _decrypt(filename, reader)
    pages = len(reader.pages)
    if pages > MAX_PAGES:
        log.info("document_refused", filename=filename, kind=KIND, reason="too_many_pages", pages=pages)
        raise InvalidSpecError(messages.document_too_many_pages(filename, pages, MAX_PAGES))
    collector = _Collector(filename)
    for page in reader.pages:
        page.extract_text(visitor_text=collector.visit)
        collector.end_line()
    return collector.lines


def _decrypt(filename: str, reader: PdfReader) -> None:
    """Open a PDF encrypted with the empty password (restrictions only); refuse one that needs a real password."""
    try:
        opened = bool(reader.decrypt(""))
    except (DependencyError, NotImplementedError, FileNotDecryptedError, ValueError):
        opened = False
    if not opened:
        log.info("document_refused", filename=filename, kind=KIND, reason="encrypted")
        raise InvalidSpecError(messages.encrypted_pdf(filename))


class _Collector:
    """Receives pypdf's text pieces (with their matrices, font and size) and groups them into lines."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: list[_Line] = []
        self._line = _Line()
        self._chars = 0
        # Pieces are counted as they arrive, so text past the limit is never collected (the writer checks too).
        self._limit = MarkdownWriter(filename, KIND).max_chars

    def visit(self, text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        """Take one piece of text (pypdf's `visitor_text`); a line break in it (or alone) ends the line."""
        if not text:
            return
        self._chars += len(text)
        if self._chars > self._limit:
            log.info("document_too_much_text", filename=self.filename, kind=KIND, limit=self._limit)
            raise InvalidSpecError(messages.document_too_much_text(self.filename, self._limit))
        style = (_font_name(font), _rendered_size(size, cm, tm))
        pieces = text.split("\n")
        for index, piece in enumerate(pieces):
            if index:
                self.end_line()
            if piece:
                self._line.parts.append(piece)
                if piece.strip():
                    self._line.fonts[style] += len(piece.strip())

    def end_line(self) -> None:
        """Close the current line (at a line break or the end of a page)."""
        if self._line.text:
            self.lines.append(self._line)
        self._line = _Line()


def _font_name(font: Any) -> str:
    try:
        return str(font.get("/BaseFont", "")) if font is not None else ""
    except AttributeError:
        return ""


def _rendered_size(size: float, cm: list[float], tm: list[float]) -> float:
    """The size text is drawn at: the font size scaled by the text and transformation matrices (vertically)."""
    try:
        # The second row of tm x cm is where the text's vertical axis goes; its length is the scale.
        c = tm[2] * cm[0] + tm[3] * cm[2]
        d = tm[2] * cm[1] + tm[3] * cm[3]
        scaled = abs(float(size)) * math.hypot(c, d)
    except (TypeError, ValueError, IndexError):
        return 0.0
    return round(scaled / SIZE_STEP) * SIZE_STEP if math.isfinite(scaled) else 0.0


def _markdown(filename: str, lines: list[_Line]) -> str:
    """Lines with their styles into Markdown: headings by size (and bold), code by monospaced font."""
    sizes: Counter[float] = Counter()
    for line in lines:
        for (_, size), chars in line.fonts.items():
            sizes[size] += chars
    writer = MarkdownWriter(filename, KIND)
    if not sizes:
        return writer.markdown()  # refuses: no text
    body = sizes.most_common(1)[0][0]
    threshold = body + HEADING_MIN_EXTRA_POINTS
    larger = sorted({line.style()[1] for line in lines if line.style()[1] >= threshold and _heading_like(line)})
    larger.reverse()  # the largest size is level 1
    level_of = {size: index + 1 for index, size in enumerate(larger)}
    bold_level = len(larger) + 1
    for line in lines:
        text = line.text
        font, size = line.style()
        if _PAGE_NUMBER.match(text):
            continue
        if _MONOSPACED.search(font):
            writer.code("".join(line.parts).rstrip())
        elif size in level_of and _heading_like(line):
            writer.heading(level_of[size], text)
        elif (
            _heading_like(line)
            and line.all_bold()
            and len(text) <= MAX_BOLD_HEADING_CHARS
            and abs(size - body) < HEADING_MIN_EXTRA_POINTS
            and not text.endswith((".", ",", ";"))
        ):
            writer.heading(bold_level, text)
        else:
            writer.text(text)
    log.info(
        "document_read", filename=filename, kind=KIND, lines=len(lines), headings=writer.headings, chars=writer.chars
    )
    return writer.markdown()


def _heading_like(line: _Line) -> bool:
    text = one_line(line.text)
    if not 0 < len(text) <= MAX_HEADING_CHARS or _MONOSPACED.search(line.style()[0]) or _CONTENTS_LINE.search(text):
        return False
    return any(c.isalpha() for c in text)
