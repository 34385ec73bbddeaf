"""Diagrams drawn from specs: the DOT names the spec's real URLs, scopes, paths and fields; the PNG is valid."""

from __future__ import annotations

import asyncio
import re
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.actions import AskQuestion, DrawDiagram, Origin, PathAttachment, UploadSpec
from core.answers import AnswerKind
from core.diagrams import render
from core.diagrams.asking import MAX_WORDS, diagram_intent
from core.diagrams.auth import auth_diagram
from core.diagrams.overview import MAX_OPERATIONS_LISTED, MAX_RESOURCES, overview_diagram
from core.diagrams.render import PNG_SIGNATURE, render_png
from core.diagrams.schemas import MAX_NODES, GraphQLSchemas, OpenApiSchemas, schema_diagram
from core.errors import DiagramError
from core.parsing.loader import load_document, load_spec
from core.parsing.openapi import parse_openapi
from tests.shutdown import ends_when_everything_is_cancelled

pytestmark = pytest.mark.skipif(render.dot_binary() is None, reason="Graphviz (dot) is not installed")

EXTENSIONS = frozenset({"json", "yaml", "yml", "graphql", "md"})


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR, after checking the signature and the chunk's CRC."""
    assert data.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + body) == crc
    assert data.endswith(b"IEND\xaeB`\x82")
    width, height = struct.unpack(">II", body[:8])
    return width, height


def decodes(data: bytes) -> None:
    """Pillow decodes the whole image when it is installed (the IHDR check above always runs)."""
    try:
        from PIL import Image
    except ImportError:
        return
    import io

    with Image.open(io.BytesIO(data)) as image:
        image.load()


async def assert_png(dot: str) -> bytes:
    data = await render_png(dot)
    width, height = png_size(data)
    assert 100 < width <= 3400 and 100 < height <= 3400
    decodes(data)
    return data


def spec_and_document(path: Path) -> tuple[Any, Any]:
    data = path.read_bytes()
    spec = load_spec(path.name, data, max_bytes=50 * 1024 * 1024, allowed_extensions=EXTENSIONS)
    document = load_document(path.name, data) if path.suffix in {".json", ".yaml"} else None
    return spec, document


# ---- the bundled example ---------------------------------------------------------------------------------------


async def test_bookshop_diagrams(example_spec: Path) -> None:
    spec, document = spec_and_document(example_spec)
    auth = auth_diagram(spec, document)
    assert "apiKey: API key in header" in auth.dot
    assert "POST https://api.bookshop.example/v1/customers" in auth.dot and "X-Api-Key: <api key>" in auth.dot
    overview = overview_diagram(spec)
    for operation in spec.operations:
        assert f"{operation.method} {operation.path}" in overview.dot
    book = schema_diagram(OpenApiSchemas(document), "book", "bookshop")  # any case
    assert book.subject == "Book" and ">isbn" in book.dot
    for diagram in (auth, overview, book):
        await assert_png(diagram.dot)


OAUTH = """
openapi: 3.0.3
info: {title: Flows, version: "1"}
servers: [{url: "https://api.flows.example/v2"}]
security: [{oauth: [read]}]
components:
  securitySchemes:
    oauth:
      type: oauth2
      x-pkce-required: true
      flows:
        authorizationCode:
          authorizationUrl: https://login.flows.example/authorize
          tokenUrl: https://login.flows.example/token
          refreshUrl: https://login.flows.example/refresh
          scopes: {read: Read things, write: Write things}
        clientCredentials:
          tokenUrl: https://login.flows.example/machine-token
          scopes: {admin: Everything}
    key:
      type: apiKey
      in: query
      name: api_key
paths:
  /things:
    get:
      responses: {"200": {description: ok}}
"""


async def test_oauth_flows_with_pkce_client_credentials_and_a_query_key() -> None:
    document = __import__("yaml").safe_load(OAUTH)
    spec = parse_openapi(document)
    diagram = auth_diagram(spec, document)
    dot = diagram.dot
    assert "OAuth 2 authorization code with PKCE" in dot and "code_challenge=S256(verifier)" in dot
    assert "https://login.flows.example/authorize" in dot and "POST https://login.flows.example/token" in dot
    assert "scope=read write" in dot and "https://login.flows.example/refresh" in dot
    assert "OAuth 2 client credentials" in dot and "POST https://login.flows.example/machine-token" in dot
    assert "grant_type=client_credentials" in dot and "scope=admin" in dot
    assert "?api_key=<api key>" in dot and "GET https://api.flows.example/v2/things" in dot
    await assert_png(dot)
    without = __import__("yaml").safe_load(OAUTH.replace("x-pkce-required: true", "x-other: 1"))
    assert "PKCE" not in auth_diagram(parse_openapi(without), without).dot


async def test_hostile_labels_render() -> None:
    text = "Evil \"quoted\" \\ <b>html<b> {curly} | pipe\\l " + "x" * 500
    document = __import__("yaml").safe_load(OAUTH)
    document["info"]["title"] = text
    document["paths"] = {f"/{text}": {"post": {"tags": [text], "responses": {"200": {"description": "ok"}}}}}
    looping = {"type": "object", "properties": {text: {"$ref": f"#/components/schemas/{text}"}}}
    document["components"]["schemas"] = {text: looping}
    spec = parse_openapi(document)
    for diagram in (auth_diagram(spec, document), overview_diagram(spec),
                    schema_diagram(OpenApiSchemas(document), text, text)):
        await assert_png(diagram.dot)


# ---- the corpus ------------------------------------------------------------------------------------------------


async def test_stripe(specs_dir: Path) -> None:
    spec, document = spec_and_document(specs_dir / "stripe_openapi3_2023-09.yaml")
    auth = auth_diagram(spec, document)
    assert "basicAuth: HTTP basic" in auth.dot and "bearerAuth: bearer token" in auth.dot
    assert "https://api.stripe.com/v1/" in auth.dot
    customer = schema_diagram(OpenApiSchemas(document), "customer", "stripe")
    nodes = re.findall(r"^\s*s\d+ \[", customer.dot, re.M)
    assert len(nodes) == MAX_NODES and customer.notes  # bounded, and the diagram says what it left out
    assert ">default_source<" in customer.dot and ">address</B>" in customer.dot
    assert len(customer.dot) < 40_000
    overview = overview_diagram(spec)
    assert "customers (" in overview.dot and "POST /v1/customers" in overview.dot and overview.notes
    assert overview.dot.count("… and") <= MAX_RESOURCES
    for diagram in (auth, customer, overview):
        await assert_png(diagram.dot)


async def test_slack_oauth_urls_and_scopes(specs_dir: Path) -> None:
    spec, document = spec_and_document(specs_dir / "slack_web_api_swagger2.json")
    auth = auth_diagram(spec, document)
    assert "slackAuth: OAuth 2 authorization code" in auth.dot and "PKCE" not in auth.dot
    assert "https://slack.com/oauth/authorize" in auth.dot and "POST https://slack.com/api/oauth.access" in auth.dot
    assert "scope=admin admin.apps:read admin.apps:write" in auth.dot and "more)" in auth.dot
    assert "https://slack.com/api/admin.apps.approve" in auth.dot
    await assert_png(auth.dot)
    await assert_png(overview_diagram(spec).dot)


async def test_github_graphql(specs_dir: Path) -> None:
    path = specs_dir / "github_graphql_schema.graphql"
    spec, _ = spec_and_document(path)
    auth = auth_diagram(spec, None)
    assert "The spec declares no authentication." in auth.dot  # nothing invented
    overview = overview_diagram(spec)
    assert "mutation (247)" in overview.dot and "abortQueuedMigrations" in overview.dot
    assert "… and 241 more" in overview.dot
    assert "example.com" not in overview.dot + auth.dot  # the SDL names no server: none is invented
    repository = schema_diagram(GraphQLSchemas(path.read_text(encoding="utf-8")), "repository", "github")
    assert repository.subject == "Repository" and ">assignableUsers*<" in repository.dot  # required: starred
    assert "more fields" in repository.dot  # hundreds of fields, MAX_FIELDS listed
    for diagram in (auth, overview, repository):
        await assert_png(diagram.dot)
    with pytest.raises(DiagramError, match="Did you mean `Repository`"):
        schema_diagram(GraphQLSchemas(path.read_text(encoding="utf-8")), "Repositry", "github")


async def test_every_corpus_spec_draws(specs_dir: Path) -> None:
    for path in sorted(specs_dir.glob("*.*")):
        if path.suffix not in {".json", ".yaml", ".graphql", ".md"}:
            continue
        spec, document = spec_and_document(path)
        if not isinstance(document, dict) or "info" not in document:
            document = None
        overview = overview_diagram(spec)
        assert overview.dot.count("\\l") <= (MAX_RESOURCES + 1) * (MAX_OPERATIONS_LISTED + 4), path.name
        await assert_png(auth_diagram(spec, document).dot)
        await assert_png(overview.dot)


# ---- through the assistant -------------------------------------------------------------------------------------


async def test_assistant_draws_and_answers_drawing_requests(assistant: Any, example_spec: Path) -> None:
    origin = Origin("console", "local", user="you", is_admin=True)
    await assistant.ingest(UploadSpec(origin, PathAttachment(example_spec), "bookshop"))
    diagram, png = await assistant.diagram(DrawDiagram(origin, "bookshop", "Order"))
    assert diagram.subject == "Order" and png.filename == "bookshop-schema-Order.png"
    png_size(png.content)
    answer = await assistant.ask(AskQuestion(origin, "please draw the auth flow for bookshop"))
    assert answer.kind is AnswerKind.DIAGRAM and "Auth flow of `bookshop`" in answer.as_markdown()
    assert answer.report is not None and answer.report.content.startswith(PNG_SIGNATURE)
    with pytest.raises(DiagramError, match="no schema called `Nope`"):
        await assistant.diagram(DrawDiagram(origin, "bookshop", "Nope"))


# ---- recognising a drawing request, bounded --------------------------------------------------------------------


def test_diagram_intent() -> None:
    auth = diagram_intent("Draw the auth flow for stripe")
    assert auth is not None and auth.kind == "auth" and "stripe" in auth.words
    schema = diagram_intent("can you draw stripe's customer schema?")
    assert schema is not None and (schema.kind, schema.schema) == ("schema", "customer") and "stripe" in schema.words
    assert diagram_intent("diagram schema Repository of github").schema == "Repository"  # type: ignore[union-attr]
    overview = diagram_intent("draw petstore")
    assert overview is not None and overview.kind == "overview"
    assert diagram_intent("how do I draw a card from the deck endpoint?") is None
    assert diagram_intent("draw " + "word " * MAX_WORDS) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=4000))
def test_diagram_intent_is_bounded(text: str) -> None:
    started = time.perf_counter()
    diagram_intent("draw " + text)
    diagram_intent(text)
    assert time.perf_counter() - started < 0.5


def test_diagram_intent_worst_cases_are_linear() -> None:
    for hostile in ("draw " + "'" * 100_000, "draw " + "schema " * 39, "please " * 50_000, "draw " + "a" * 1_000_000):
        started = time.perf_counter()
        diagram_intent(hostile)
        assert time.perf_counter() - started < 1.0


# ---- rendering bounds ------------------------------------------------------------------------------------------


async def test_render_is_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(DiagramError, match="too large"):
        await render_png("digraph { " + "a -> b; " * 100_000 + "}")
    slow = tmp_path / "dot"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(render, "dot_binary", lambda: str(slow))
    started = time.perf_counter()
    with pytest.raises(DiagramError, match="took too long"):
        await render_png("digraph { a }", timeout=0.5)
    assert time.perf_counter() - started < 5
    monkeypatch.setattr(render, "dot_binary", lambda: None)
    with pytest.raises(DiagramError, match="Graphviz"):
        await render_png("digraph { a }")
    await asyncio.sleep(0)


@pytest.mark.parametrize("steps", range(12))
async def test_a_render_cancelled_at_shutdown_ends_at_once(steps: int) -> None:
    """On the way out every task is cancelled at once (`asyncio.run` ending, a test's loop closing).

    asyncio's own subprocess start, cancelled with the task that connects its pipes, waited forever on Python
    3.11 (a full test run hung in teardown after `/api diagram`; 7 of these 12 cancellation points hung).
    """
    task = asyncio.create_task(render_png("digraph { a -> b }"))
    assert await ends_when_everything_is_cancelled(task, steps), f"the render hung when cancelled at step {steps}"
