import codecs
import gzip
import io
import json
import zipfile

import pytest
from structlog.testing import capture_logs

from core import messages
from core.errors import FileTooLargeError, FileTypeNotAllowedError, InvalidSpecError, UnreadableSpecError
from core.models import SpecFormat, to_dict
from core.parsing import loader
from core.parsing.loader import check_upload, load_spec

ALLOWED = frozenset({"json", "yaml", "yml", "graphql", "gql", "md", "txt"})
MB = 1024 * 1024

MINIMAL_OPENAPI = {
    "openapi": "3.0.0",
    "info": {"title": "Tiny", "version": "1"},
    "paths": {"/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}},
}


def load(name: str, data: bytes, max_bytes: int = MB):
    return load_spec(name, data, max_bytes=max_bytes, allowed_extensions=ALLOWED)


def test_detects_format_from_content_not_extension():
    spec = load("spec.txt", json.dumps(MINIMAL_OPENAPI).encode())
    assert spec.format is SpecFormat.OPENAPI3
    yaml_text = "openapi: 3.0.0\ninfo: {title: T, version: '1'}\npaths:\n  /a:\n    get:\n      responses: {}\n"
    assert load("noext", yaml_text.encode()).format is SpecFormat.OPENAPI3
    sdl = "type Query {\n  viewer: String\n}\n"
    assert load("schema.txt", sdl.encode()).format is SpecFormat.GRAPHQL
    postman = {
        "info": {"name": "P", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"},
        "item": [{"name": "Ping", "request": {"method": "GET", "url": "https://x.test/ping"}}],
    }
    assert load("collection.json", json.dumps(postman).encode()).format is SpecFormat.POSTMAN


def test_empty_file():
    with pytest.raises(InvalidSpecError, match="empty"):
        load("spec.json", b"  \n")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("spec.json", json.dumps(MINIMAL_OPENAPI))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
        _zip(),
        gzip.compress(json.dumps(MINIMAL_OPENAPI).encode()),
        b"%PDF-1.7\n\x00\x01\x02binary",
        codecs.BOM_UTF16_LE + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # a byte-order mark does not make junk text
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
    ],
)
def test_binary_file(data):
    with pytest.raises(InvalidSpecError, match="binary"):
        load("spec.json", data)


POSTMAN = {
    "info": {"name": "Ping", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
    "item": [{"name": "Ping ✓", "request": {"method": "GET", "url": "https://x.test/ping?lang=fr"}}],
}

_ENCODINGS = {
    "utf-16": lambda text: text.encode("utf-16"),  # BOM + native order, what `open(..., "w", encoding="utf-16")` writes
    "utf-16-le": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),  # Notepad's "Unicode", PowerShell
    "utf-16-be": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-8-bom": lambda text: text.encode("utf-8-sig"),
    "utf-32-le": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
}


@pytest.mark.parametrize("encoding", list(_ENCODINGS))
def test_utf16_and_byte_order_marks_are_read(encoding, example_spec):
    encode = _ENCODINGS[encoding]
    bookshop = example_spec.read_text(encoding="utf-8")
    expected = load("bookshop.yaml", bookshop.encode())
    assert to_dict(load("bookshop.yaml", encode(bookshop))) == to_dict(expected)
    assert len(expected.operations) == 7
    collection = json.dumps(POSTMAN, ensure_ascii=False, indent=2)
    spec = load("ping.postman_collection.json", encode(collection))
    assert spec.format is SpecFormat.POSTMAN and to_dict(spec) == to_dict(load("p.json", collection.encode()))
    assert spec.operations[0].name == "Ping ✓"


def test_broken_utf16_says_so():
    with pytest.raises(InvalidSpecError, match="isn't valid UTF-16"):
        load("spec.yaml", codecs.BOM_UTF16_LE + "openapi: 3.0.0\n".encode("utf-16-le") + b"\x00")
    with pytest.raises(InvalidSpecError, match="empty"):
        load("spec.yaml", "  \n ".encode("utf-16"))


def test_malformed_json_names_line_and_column():
    with pytest.raises(InvalidSpecError, match=r"isn't valid JSON at line 2, column"):
        load("spec.json", b'{"openapi": "3.0.0",\n "info": }')


def test_malformed_yaml_names_line():
    with pytest.raises(InvalidSpecError, match=r"isn't valid YAML at line 4"):
        load("spec.yaml", b"openapi: 3.0.0\ninfo:\n  title: [unclosed\n  version: 1\n")


def test_yaml_alias_bomb_refused_quickly():
    lines = ["openapi: 3.0.0", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("paths: {}")
    with pytest.raises(InvalidSpecError, match="anchors/aliases"):
        load("bomb.yaml", "\n".join(lines).encode())


def test_yaml_is_loaded_by_libyaml_with_the_safe_constructor():
    import yaml

    if yaml.__with_libyaml__:  # every PyYAML wheel; a build without it falls back to the pure-Python loader
        assert loader.YAML_LOADER is yaml.CSafeLoader
    assert issubclass(loader.YAML_LOADER, yaml.SafeLoader) or loader.YAML_LOADER is yaml.CSafeLoader
    # The safe constructor knows no Python tags: nothing in a file can name code to run.
    hostile = b"openapi: 3.0.0\ninfo: !!python/object/apply:os.system ['echo pwned']\npaths: {}\n"
    with pytest.raises(InvalidSpecError, match="isn't valid YAML"):
        load("spec.yaml", hostile)


def test_not_a_spec():
    with pytest.raises(InvalidSpecError, match="doesn't look like an API spec"):
        load("data.json", b'{"name": "just some json", "values": [1, 2, 3]}')
    with pytest.raises(InvalidSpecError, match="doesn't look like an API spec"):
        load("notes.txt", b"remember to buy milk\n")


def test_markdown_without_endpoints_is_not_indexed():
    with pytest.raises(InvalidSpecError):
        load("README.md", b"# My project\n\nIt does things. No API here.\n")


def test_spec_without_operations():
    empty = {"openapi": "3.0.0", "info": {"title": "Empty", "version": "1"}, "paths": {}}
    with pytest.raises(InvalidSpecError, match="no operations"):
        load("empty.json", json.dumps(empty).encode())


def test_external_ref_is_refused_and_never_fetched():
    spec = json.loads(json.dumps(MINIMAL_OPENAPI))
    spec["paths"]["/ping"]["get"]["responses"]["200"] = {"$ref": "https://evil.example/responses.yaml#/Ok"}
    with pytest.raises(InvalidSpecError, match=r"evil\.example"):
        load("spec.json", json.dumps(spec).encode())


def test_broken_ref_is_named():
    spec = json.loads(json.dumps(MINIMAL_OPENAPI))
    spec["paths"]["/ping"]["get"]["responses"]["200"] = {"$ref": "#/components/responses/Missing"}
    with pytest.raises(InvalidSpecError, match="#/components/responses/Missing"):
        load("spec.json", json.dumps(spec).encode())


def test_too_large_and_disallowed_type_are_refused_before_reading():
    with pytest.raises(FileTooLargeError, match="over the"):
        check_upload("big.json", 11 * MB, max_bytes=10 * MB, allowed_extensions=ALLOWED)
    with pytest.raises(FileTypeNotAllowedError, match=r"\.json"):
        check_upload("malware.exe", 10, max_bytes=MB, allowed_extensions=ALLOWED)
    with pytest.raises(FileTooLargeError):
        load("spec.json", json.dumps(MINIMAL_OPENAPI).encode(), max_bytes=20)


def test_deeply_nested_json_is_refused():
    with pytest.raises(InvalidSpecError):
        load("deep.json", b"[" * 100_000 + b"]" * 100_000)


async def test_rejected_upload_is_logged_without_its_content(assistant):
    from structlog.testing import capture_logs

    from core.actions import BytesAttachment, Origin, UploadSpec

    with capture_logs() as logs, pytest.raises(InvalidSpecError):
        await assistant.ingest(UploadSpec(Origin("slack", "T1", user="U1"), BytesAttachment("x.json", b'{"secret": 1')))
    [entry] = [e for e in logs if e["event"] == "ingest_rejected"]
    assert entry["reason"] == "InvalidSpecError" and entry["filename"] == "x.json" and entry["user"] == "U1"
    assert "secret" not in str(entry)


def test_html_that_crashed_the_old_stripper_is_read():
    spec = json.loads(json.dumps(MINIMAL_OPENAPI))
    spec["paths"]["/ping"]["get"]["description"] = "<p>Checks a <![ b > <code>thing</code></p>"
    assert load("spec.json", json.dumps(spec).encode()).operations[0].description == "Checks a `thing`"


@pytest.mark.parametrize("parser", ["parse_openapi", "parse_postman", "parse_graphql", "parse_markdown"])
def test_a_parser_failure_becomes_a_clear_message_and_a_logged_traceback(monkeypatch, parser):
    def crash(*args, **kwargs):
        raise AssertionError("expected name token at '<![ b'")

    monkeypatch.setattr(loader, parser, crash)
    files = {
        "parse_openapi": ("api.json", json.dumps(MINIMAL_OPENAPI)),
        "parse_postman": ("ping.json", json.dumps(POSTMAN)),
        "parse_graphql": ("schema.graphql", "type Query {\n  viewer: String\n}\n"),
        "parse_markdown": ("api.md", "# API\n\n## Ping\n\n`GET /ping`\n"),
    }
    filename, text = files[parser]
    with capture_logs() as logs, pytest.raises(UnreadableSpecError) as raised:
        load(filename, text.encode())
    assert raised.value.user_message == messages.spec_unreadable(filename)
    assert f"`{filename}`" in raised.value.user_message and "something went wrong" not in raised.value.user_message
    assert "<![" not in raised.value.user_message  # exception text stays in the logs
    [entry] = [e for e in logs if e["event"] == "spec_parser_failed"]
    assert entry["filename"] == filename and entry["exc_info"] is True and entry["log_level"] == "error"


def test_known_problems_keep_their_own_message(monkeypatch):
    def refuse(*args, **kwargs):
        raise InvalidSpecError("specific reason")

    monkeypatch.setattr(loader, "parse_openapi", refuse)
    with pytest.raises(InvalidSpecError, match="specific reason") as raised:
        load("api.json", json.dumps(MINIMAL_OPENAPI).encode())
    assert not isinstance(raised.value, UnreadableSpecError)


async def test_an_unreadable_spec_is_reported_to_the_uploader(assistant):
    from core.actions import BytesAttachment, ListSpecs, Origin, UploadSpec
    from core.parsing.worker import ParsePool

    # Uploads are parsed in worker processes: this pool's workers crash inside the parser on `explode…` files.
    hostile = ParsePool(1, 30, 1500, target="tests.core.parsing.hostile_parsers:parse")
    assistant.parser = hostile  # the test's own pool: the one the composition root built is closed by it
    try:
        attachment = BytesAttachment("explode-shop.json", json.dumps(MINIMAL_OPENAPI).encode())
        with pytest.raises(InvalidSpecError, match=r"couldn't read `explode-shop\.json`"):
            await assistant.ingest(UploadSpec(Origin("slack", "T1", user="U1"), attachment))
        assert await assistant.list_specs(ListSpecs(Origin("slack", "T1"))) == []
    finally:
        await hostile.aclose()
