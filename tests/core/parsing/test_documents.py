"""PDF and Word API docs: read into the same sections and endpoints as Markdown docs, and hostile files refused."""

from __future__ import annotations

import asyncio
import io
import random
import zipfile
import zlib

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from core import messages
from core.errors import (
    FileTypeNotAllowedError,
    InvalidSpecError,
    ParseMemoryError,
    ParseTimeoutError,
    UnreadableSpecError,
    UserFacingError,
)
from core.models import ItemKind, SpecFormat
from core.parsing import pdf, word
from core.parsing.doc_text import MAX_DOCUMENT_CHARS, MarkdownWriter
from core.parsing.loader import load_spec
from tests.core.parsing.documents import build_pdf, encrypt_pdf, rezip, things_docx, things_pdf
from tests.core.test_pathological_inputs import deadline

ALLOWED = frozenset({"pdf", "docx", "md"})
MB = 1024 * 1024


def load(name: str, data: bytes):  # type: ignore[no-untyped-def]
    return load_spec(name, data, max_bytes=20 * MB, allowed_extensions=ALLOWED)


def refused(name: str, data: bytes) -> str:
    with pytest.raises(InvalidSpecError) as caught:
        load(name, data)
    assert type(caught.value) is InvalidSpecError  # a planned refusal, not "tripped up my parser"
    return caught.value.user_message


# ---- what comes out --------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_pdf_headings_become_sections_and_endpoints_operations(compress: bool) -> None:
    spec = load("things.pdf", things_pdf(compress=compress))
    assert spec.format is SpecFormat.MARKDOWN and spec.title == "Things API"
    sections = {op.name: op for op in spec.operations}
    assert list(sections) == ["Things API", "Authentication", "Get a thing", "Archive a thing", "Archive errors",
                              "Rate limits"]  # fmt: skip
    assert all(op.kind is ItemKind.DOC_SECTION for op in spec.operations)
    # Sizes 24 > 16 > 13, then bold at body size: four levels, each nested under the one above.
    assert sections["Get a thing"].tags == ("Things API",)
    assert sections["Archive errors"].tags == ("Things API", "Archive a thing")
    assert sections["Rate limits"].tags == ("Things API", "Archive a thing", "Archive errors")
    assert (sections["Get a thing"].method, sections["Get a thing"].path) == ("GET", "/v1/things/{id}")
    assert (sections["Archive a thing"].method, sections["Archive a thing"].path) == ("POST", "/v1/things/{id}/archive")
    assert sections["Authentication"].path == ""
    assert "https://api.things.example" in spec.servers  # from the curl line, read as code
    assert "```\ncurl -H 'X-Api-Key: $KEY'" in sections["Get a thing"].description
    # A prose line starting with "#" stays prose; page numbers are dropped.
    assert "Not a heading" in sections["Rate limits"].description
    assert not any(op.name.startswith("Not a heading") for op in spec.operations)
    assert "\n1\n" not in sections["Get a thing"].description


def test_pdf_fonts_named_as_tex_and_urw_name_them_and_contents_lines() -> None:
    lines: list[tuple[str, float, str]] = [
        ("bold", 14, "Table of Contents"),
        ("bold", 11, "Get a thing . . . . . . . . . . . . . . . . 3"),
        ("bold", 14, "Get a thing"),
        ("body", 11, "Fetches one thing."),
        ("mono", 11, "GET /v1/things/{id} HTTP/1.1"),
        ("bold", 11, "Errors"),
        ("body", 11, "None worth naming."),
    ]
    for names in ({"bold": "ABCDEF+CMBX12", "mono": "GHIJKL+CMTT10", "body": "MNOPQR+CMR10"},
                  {"bold": "STUVWX+NimbusRomNo9L-Medi", "mono": "YZABCD+NimbusMonL-Regu"}):  # fmt: skip
        spec = load("tex.pdf", build_pdf([lines], fonts=names))
        sections = {op.name: op for op in spec.operations}
        assert list(sections) == ["Table of Contents", "Get a thing", "Errors"], names
        assert (sections["Get a thing"].method, sections["Get a thing"].path) == ("GET", "/v1/things/{id}")
        assert "```\nGET /v1/things/{id} HTTP/1.1\n```" in sections["Get a thing"].description
        assert sections["Errors"].tags == ("Get a thing",)


def test_pdf_matches_the_markdown_it_could_have_been() -> None:
    markdown = "\n".join([
        "# Things API", "The Things API stores things for your team. Every request needs an API key.",
        "## Authentication", "Send the key in the X-Api-Key header with every request.",
        "## Get a thing", "GET /v1/things/{id} returns one thing by its id, with its colour and weight.",
        "```", "curl -H 'X-Api-Key: $KEY' https://api.things.example/v1/things/42", "```",
        "## Archive a thing",
        "POST /v1/things/{id}/archive moves a thing to the archive; archived things are kept for 30 days.",
        "### Archive errors", "A thing that is already archived answers 409 Conflict.",
        "#### Rate limits", "\\# Not a heading: at most 100 requests a minute per key.",
    ])  # fmt: skip
    from_markdown = load("things.md", markdown.encode())
    from_pdf = load("things.pdf", things_pdf())
    shape = [(op.name, op.method, op.path, op.tags, op.summary) for op in from_markdown.operations]
    assert [(op.name, op.method, op.path, op.tags, op.summary) for op in from_pdf.operations] == shape
    assert from_pdf.servers == from_markdown.servers


def test_docx_styles_become_sections_code_lists_and_tables() -> None:
    spec = load("things.docx", things_docx())
    assert spec.format is SpecFormat.MARKDOWN and spec.title == "Things API"
    sections = {op.name: op for op in spec.operations}
    assert list(sections) == ["Things API", "Authentication", "Get a thing", "Archive a thing", "Archive errors",
                              "Thing fields"]  # fmt: skip
    assert (sections["Get a thing"].method, sections["Get a thing"].path) == ("GET", "/v1/things/{id}")
    assert (sections["Archive a thing"].method, sections["Archive a thing"].path) == ("POST", "/v1/things/{id}/archive")
    assert sections["Archive errors"].tags == ("Things API", "Archive a thing")
    assert "```\ncurl -H 'X-Api-Key: $KEY' https://api.things.example/v1/things/42\n```" in (
        sections["Get a thing"].description
    )
    assert "https://api.things.example" in spec.servers
    assert "- 409 Conflict: the thing is already archived." in sections["Archive errors"].description
    assert "| colour | a CSS colour |" in sections["Thing fields"].description
    assert "Not a heading" in sections["Thing fields"].description
    assert not any(op.name.startswith("Not a heading") for op in spec.operations)


def test_docx_custom_styles_based_on_headings_and_code_styles_count() -> None:
    document = docx.Document()
    styles = document.styles
    endpoint_heading = styles.add_style("Endpoint Heading", 1)  # WD_STYLE_TYPE.PARAGRAPH
    endpoint_heading.base_style = styles["Heading 2"]
    code_style = styles.add_style("Code Block", 1)
    document.add_heading("Gadgets API", 1)
    document.add_paragraph("List gadgets", style="Endpoint Heading")
    document.add_paragraph("Lists every gadget.")
    document.add_paragraph("GET /v2/gadgets HTTP/1.1", style=code_style)
    document.add_heading("Deep detail", 8)  # Heading 8: deeper than Markdown goes, read as level 6
    document.add_paragraph("Nothing to call here.")
    out = io.BytesIO()
    document.save(out)
    spec = load("gadgets.docx", out.getvalue())
    sections = {op.name: op for op in spec.operations}
    assert (sections["List gadgets"].method, sections["List gadgets"].path) == ("GET", "/v2/gadgets")
    assert sections["List gadgets"].tags == ("Gadgets API",)
    assert sections["Deep detail"].tags == ("Gadgets API", "List gadgets")


def test_a_document_without_endpoints_is_refused_like_markdown() -> None:
    data = build_pdf([[("bold", 20, "Our handbook"), ("body", 11, "Be kind to each other.")]])
    assert refused("handbook.pdf", data) == messages.spec_without_operations("handbook.pdf")


def test_documents_pass_the_type_check_like_any_upload() -> None:
    with pytest.raises(FileTypeNotAllowedError):
        load_spec("things.pdf", things_pdf(), max_bytes=MB, allowed_extensions=frozenset({"md"}))


# ---- refused clearly ------------------------------------------------------------------------------------


def test_encrypted_pdf_is_refused_and_a_restrictions_only_one_read() -> None:
    with capture_logs() as logs:
        assert refused("secret.pdf", encrypt_pdf(things_pdf(), "hunter2")) == messages.encrypted_pdf("secret.pdf")
    assert {"event": "document_refused", "filename": "secret.pdf", "kind": "PDF", "reason": "encrypted",
            "log_level": "info"} in logs  # fmt: skip
    # An empty user password only restricts printing or copying: readers open it, so do we.
    assert load("restricted.pdf", encrypt_pdf(things_pdf(), "")).title == "Things API"


def test_too_many_pages_are_refused_before_a_page_is_read() -> None:
    data = build_pdf([[("body", 11, "GET /v1/page")]] * (pdf.MAX_PAGES + 1))
    message = refused("manual.pdf", data)
    assert message == messages.document_too_many_pages("manual.pdf", pdf.MAX_PAGES + 1, pdf.MAX_PAGES)
    assert "1,001 pages" in message
    assert len(load("long.pdf", build_pdf([[("body", 11, "GET /v1/page")]] * pdf.MAX_PAGES)).operations) == 1


def test_too_much_text_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    line = "GET /v1/things lists things. " * 40  # about 1,200 characters
    page = [("body", 11.0, line)] * 60
    pages = MAX_DOCUMENT_CHARS // (len(line) * 60) + 2
    data = build_pdf([[("bold", 20, "Things"), *page]] + [page] * pages, compress=True)
    assert refused("huge.pdf", data) == messages.document_too_much_text("huge.pdf", MAX_DOCUMENT_CHARS)
    document = docx.Document()
    for _ in range(60):
        document.add_paragraph(line)
    out = io.BytesIO()
    document.save(out)
    # The same limit for Word, shown on a small one.
    monkeypatch.setattr(MarkdownWriter, "__init__", _small_writer)
    assert refused("huge.docx", out.getvalue()) == messages.document_too_much_text("huge.docx", 10_000)


_original_init = MarkdownWriter.__init__


def _small_writer(self: MarkdownWriter, filename: str, kind: str, max_chars: int = 0) -> None:
    _original_init(self, filename, kind, 10_000)


def test_pdf_stream_bombs_are_refused_quickly() -> None:
    inflating = build_pdf([b"0 0 Td\n" * (3 * pdf.STREAM_BYTES // 7)], compress=True)
    assert len(inflating) < MB  # about 50 MB once inflated
    with deadline(10):
        assert refused("bomb.pdf", inflating) == messages.document_bomb("bomb.pdf", "PDF")
    nested = build_pdf([b"BT " + b"[" * 200_000 + b"(x)" + b"]" * 200_000 + b" TJ ET"], compress=True)
    with deadline(10):
        assert refused("nested.pdf", nested) in {messages.document_damaged("nested.pdf", "PDF"),
                                                 messages.document_bomb("nested.pdf", "PDF")}  # fmt: skip


def test_docx_zip_bombs_are_refused_from_the_directory() -> None:
    original = things_docx()
    # One part that inflates 1,000 to 1: refused by its ratio, before python-docx reads anything.
    ratio_bomb = rezip(original, add={"word/media/padding.bin": b"\0" * (20 * MB)})
    assert len(ratio_bomb) < MB
    with capture_logs() as logs:
        assert refused("bomb.docx", ratio_bomb) == messages.document_bomb("bomb.docx", "Word document")
    assert any(log["event"] == "document_refused" and log["reason"] == "zip_bomb" for log in logs)
    # Many parts, each small.
    many = rezip(original, add={f"customXml/extra{i}.xml": b"<a/>" for i in range(word.MAX_MEMBERS)})
    assert refused("many.docx", many) == messages.document_bomb("many.docx", "Word document")
    # A directory that declares more than the limit in all (stored, so no ratio to catch it).
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
    declared = bytearray(out.getvalue())
    central = declared.rindex(b"PK\x01\x02")
    declared[central + 24 : central + 28] = (word.MAX_UNCOMPRESSED_BYTES + 1).to_bytes(4, "little")  # uncompressed size
    assert refused("declared.docx", bytes(declared)) == messages.document_bomb("declared.docx", "Word document")


def test_docx_entities_are_never_expanded() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
        )
        + b']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
        + b"<w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    bomb = rezip(things_docx(), replace={"word/document.xml": laughs})
    with deadline(10):
        message = refused("laughs.docx", bomb)
    assert message in {messages.document_without_text("laughs.docx", "Word document"),
                       messages.document_damaged("laughs.docx", "Word document")}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.pdf", b"# Things\n\nGET /v1/things lists things.\n", messages.not_a_document("notes.pdf", "PDF")),
        ("notes.docx", b"# Things\n\nGET /v1/things\n", messages.not_a_document("notes.docx", "Word document")),
        ("half.pdf", things_pdf()[: len(things_pdf()) // 2], messages.document_damaged("half.pdf", "PDF")),
        ("head.pdf", things_pdf()[:200], messages.document_damaged("head.pdf", "PDF")),
        ("half.docx", things_docx()[:4000], messages.document_damaged("half.docx", "Word document")),
        ("empty.pdf", b"", messages.empty_file("empty.pdf")),
        ("blank.docx", b"  \n", messages.empty_file("blank.docx")),
        ("scan.pdf", build_pdf([b"q 100 0 0 100 0 0 cm Q"]), messages.document_without_text("scan.pdf", "PDF")),
    ],
)
def test_bad_documents_are_refused_clearly(name: str, data: bytes, expected: str) -> None:
    with capture_logs() as logs:
        assert refused(name, data) == expected
    if data.strip():
        assert any(log.get("filename") == name and log["event"].startswith("document_") for log in logs), logs


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    assert refused("sheet.docx", out.getvalue()) == messages.not_a_document("sheet.docx", "Word document")


# ---- junk never crashes or hangs -------------------------------------------------------------------------

JUNK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_refused(name: str, data: bytes) -> None:
    with deadline(10):
        try:
            load(name, data)
        except UnreadableSpecError:  # "tripped up my parser": a reader error that was not turned into a message
            raise
        except UserFacingError:
            pass


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """`valid` with a few byte ranges overwritten with random bytes, or cut short."""
    edit = st.tuples(st.integers(0, len(valid) - 1), st.binary(min_size=1, max_size=64))

    def apply(edits: list[tuple[int, bytes]], cut: int) -> bytes:
        data = bytearray(valid[:cut] if cut > 8 else valid)
        for at, junk in edits:
            data[at : at + len(junk)] = junk
        return bytes(data)

    return st.builds(apply, st.lists(edit, min_size=1, max_size=6), st.integers(0, len(valid)))


@JUNK
@given(st.binary(max_size=4096), st.sampled_from(["pdf", "docx"]))
def test_random_bytes_are_refused_never_crash(data: bytes, extension: str) -> None:
    _only_refused(f"junk.{extension}", data)


@JUNK
@given(st.binary(max_size=2048))
def test_random_bytes_after_a_pdf_header_are_refused_never_crash(tail: bytes) -> None:
    _only_refused("junk.pdf", b"%PDF-1.7\n" + tail)


@JUNK
@given(_mutations(things_pdf(compress=True)))
def test_damaged_pdfs_are_read_or_refused_never_crash(data: bytes) -> None:
    _only_refused("damaged.pdf", data)


@JUNK
@given(_mutations(things_docx()))
def test_damaged_docx_are_read_or_refused_never_crash(data: bytes) -> None:
    _only_refused("damaged.docx", data)


def test_flate_data_in_junk_is_bounded() -> None:
    # A raw deflate stream of zeros as the whole content: the stream limit, not memory, stops it.
    payload = zlib.compress(b"\0" * (2 * pdf.STREAM_BYTES))
    _only_refused("zeros.pdf", build_pdf([b"BT (a) Tj ET"]).replace(b"BT (a) Tj ET", payload))


# ---- in the parse workers, under their time and memory limits --------------------------------------------


async def test_documents_are_parsed_in_the_workers_and_a_slow_hostile_pdf_is_stopped() -> None:
    from core.parsing.worker import ParsePool

    # 4 KB that draw 300,000 one-letter strings per page: within every pypdf limit, several seconds a page.
    stream = b"BT /F1 11 Tf " + b"(a) Tj\n" * 300_000 + b"ET"
    slow = build_pdf([stream] * 3, compress=True)
    assert len(slow) < 10_000
    pool = ParsePool(workers=1, timeout_seconds=3, memory_mb=1500, cache_bytes=0)
    try:
        await pool.start()
        for name, data in (("things.pdf", things_pdf()), ("things.docx", things_docx())):
            assert await pool.parse(name, data, max_bytes=MB, allowed_extensions=ALLOWED) == load(name, data)
        with pytest.raises(InvalidSpecError) as caught:
            await pool.parse("secret.pdf", encrypt_pdf(things_pdf(), "pw"), max_bytes=MB, allowed_extensions=ALLOWED)
        assert caught.value.user_message == messages.encrypted_pdf("secret.pdf")
        started = asyncio.get_running_loop().time()
        with capture_logs() as logs, pytest.raises(ParseTimeoutError):
            await pool.parse("slow.pdf", slow, max_bytes=MB, allowed_extensions=ALLOWED)
        assert asyncio.get_running_loop().time() - started < 15
        assert any(log["event"] == "parse_timeout" for log in logs)
        # The replacement worker reads the next document as usual.
        assert (await pool.parse("things.pdf", things_pdf(), max_bytes=MB, allowed_extensions=ALLOWED)).title
    finally:
        await pool.aclose()


async def test_a_document_that_needs_more_memory_than_allowed_is_refused() -> None:
    from core.parsing.worker import ParsePool

    # A .docx whose document part is about 60 MB of XML that packs only about 10 to 1 (so within the zip limits):
    # far more than 250 MB once lxml has built its tree.
    rng = random.Random(16)
    body = b"".join(b"<w:p><w:r><w:t>%x</w:t></w:r></w:p>" % rng.getrandbits(64) for _ in range(1_200_000))
    xml = (b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
           + body + b"</w:body></w:document>")  # fmt: skip
    heavy = rezip(things_docx(), replace={"word/document.xml": xml})
    pool = ParsePool(workers=1, timeout_seconds=60, memory_mb=250, cache_bytes=0)
    try:
        with pytest.raises(ParseMemoryError) as caught:
            await pool.parse("heavy.docx", heavy, max_bytes=20 * MB, allowed_extensions=ALLOWED)
        assert caught.value.user_message == messages.parse_memory_exceeded("heavy.docx")
    finally:
        await pool.aclose()
