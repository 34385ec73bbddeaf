"""Make PDF and Word files for the tests: small valid ones written by hand, and hostile ones.

PDFs are written object by object with the standard fonts (Helvetica, Helvetica-Bold, Courier: every reader has
them, nothing is embedded), so each line's font and size are exactly what the test says.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Sequence

import docx
from pypdf import PdfReader, PdfWriter

# (font, size, text): font is "body", "bold" or "mono".
Line = tuple[str, float, str]
FONTS = {"body": ("F1", "Helvetica"), "bold": ("F2", "Helvetica-Bold"), "mono": ("F3", "Courier")}


def content_stream(lines: Sequence[Line]) -> bytes:
    """Text operators drawing each line below the previous one."""
    y = 800.0
    ops = []
    for font, size, text in lines:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"BT /{FONTS[font][0]} {size:g} Tf 50 {y:g} Td ({escaped}) Tj ET")
        y -= size + 6
    return "\n".join(ops).encode("latin-1")


def build_pdf(
    pages: Sequence[Sequence[Line] | bytes], *, compress: bool = False, fonts: dict[str, str] | None = None
) -> bytes:
    """A valid PDF: one page per entry (lines, or a raw content stream), with an exact cross-reference table.

    `fonts` renames the fonts ("bold" -> "ABCDEF+CMBX12"), as TeX and subsetting tools name theirs.
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    names = {key: (fonts or {}).get(kind, name) for kind, (key, name) in FONTS.items()}
    font_objects = {
        key: add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>".encode())
        for key, name in names.items()
    }
    resources = "<< /Font << " + " ".join(f"/{key} {number} 0 R" for key, number in font_objects.items()) + " >> >>"
    pages_number = add(b"")  # filled in once the pages exist
    kids = []
    streams: dict[bytes, int] = {}  # identical pages share one content stream
    for page in pages:
        stream = page if isinstance(page, bytes) else content_stream(page)
        if stream not in streams:
            body = zlib.compress(stream) if compress else stream
            extra = b" /Filter /FlateDecode" if compress else b""
            streams[stream] = add(b"<< /Length %d%s >>\nstream\n" % (len(body), extra) + body + b"\nendstream")
        kids.append(
            add(
                f"<< /Type /Page /Parent {pages_number} 0 R /MediaBox [0 0 612 842] /Resources {resources} "
                f"/Contents {streams[stream]} 0 R >>".encode()
            )
        )
    kid_refs = " ".join(f"{k} 0 R" for k in kids)
    objects[pages_number - 1] = f"<< /Type /Pages /Kids [{kid_refs}] /Count {len(kids)} >>".encode()
    catalog = add(f"<< /Type /Catalog /Pages {pages_number} 0 R >>".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
    return out.getvalue()


def encrypt_pdf(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    """`data` encrypted with AES-256 (pypdf's writer); an empty user password only restricts what readers allow."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


ARCHIVE = "POST /v1/things/{id}/archive moves a thing to the archive; archived things are kept for 30 days."
THINGS_PDF_PAGES: list[list[Line]] = [
    [
        ("bold", 24, "Things API"),
        ("body", 11, "The Things API stores things for your team. Every request needs an API key."),
        ("bold", 16, "Authentication"),
        ("body", 11, "Send the key in the X-Api-Key header with every request."),
        ("bold", 16, "Get a thing"),
        ("body", 11, "GET /v1/things/{id} returns one thing by its id, with its colour and weight."),
        ("mono", 10, "curl -H 'X-Api-Key: $KEY' https://api.things.example/v1/things/42"),
        ("body", 9, "1"),
    ],
    [
        ("bold", 16, "Archive a thing"),
        ("body", 11, ARCHIVE),
        ("bold", 13, "Archive errors"),
        ("body", 11, "A thing that is already archived answers 409 Conflict."),
        ("bold", 11, "Rate limits"),
        ("body", 11, "# Not a heading: at most 100 requests a minute per key."),
        ("body", 9, "2"),
    ],
]


def things_pdf(**kwargs: bool) -> bytes:
    """A two-page API doc: a title, sections at three sizes and a bold one, an endpoint per section, curl code."""
    return build_pdf(THINGS_PDF_PAGES, **kwargs)


def things_docx() -> bytes:
    """The same API doc as a Word document, with heading styles, a code paragraph, a list and a table."""
    document = docx.Document()
    document.add_heading("Things API", 0)  # the Title style
    document.add_paragraph("The Things API stores things for your team. Every request needs an API key.")
    document.add_heading("Authentication", 1)
    document.add_paragraph("Send the key in the X-Api-Key header with every request.")
    document.add_heading("Get a thing", 1)
    document.add_paragraph("GET /v1/things/{id} returns one thing by its id, with its colour and weight.")
    code = document.add_paragraph("curl -H 'X-Api-Key: $KEY' https://api.things.example/v1/things/42")
    code.runs[0].font.name = "Courier New"
    document.add_heading("Archive a thing", 1)
    document.add_paragraph(ARCHIVE)
    document.add_heading("Archive errors", 2)
    document.add_paragraph("409 Conflict: the thing is already archived.", style="List Bullet")
    document.add_heading("Thing fields", 2)
    table = document.add_table(rows=3, cols=2)
    for row, (name, meaning) in enumerate([("field", "meaning"), ("colour", "a CSS colour"), ("weight", "in grams")]):
        table.cell(row, 0).text = name
        table.cell(row, 1).text = meaning
    document.add_paragraph("# Not a heading: at most 100 requests a minute per key.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def rezip(data: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None) -> bytes:
    """A copy of a .docx (a zip) with some parts replaced or added, deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, (replace or {}).get(info.filename, source.read(info.filename)))
        for name, body in (add or {}).items():
            target.writestr(name, body)
    return out.getvalue()
