import json

import pytest

from core.errors import FileTooLargeError, FileTypeNotAllowedError, InvalidSpecError
from core.models import SpecFormat
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


def test_binary_file():
    with pytest.raises(InvalidSpecError, match="binary"):
        load("spec.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(InvalidSpecError, match="binary"):
        load("spec.yaml", "openapi: 3.0.0\n".encode("utf-16"))


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

    from core.requests import BytesAttachment, Origin, UploadSpec

    with capture_logs() as logs, pytest.raises(InvalidSpecError):
        await assistant.ingest(UploadSpec(Origin("slack", "T1", user="U1"), BytesAttachment("x.json", b'{"secret": 1')))
    [entry] = [e for e in logs if e["event"] == "ingest_rejected"]
    assert entry["reason"] == "InvalidSpecError" and entry["filename"] == "x.json" and entry["user"] == "U1"
    assert "secret" not in str(entry)
