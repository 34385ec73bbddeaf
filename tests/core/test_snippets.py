"""Snippets are checked for syntax and, where the tool is installed, executed against a local HTTP server."""

from __future__ import annotations

import ast
import base64
import email.parser
import email.policy
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from core.models import (
    ApiSpec,
    ItemKind,
    Operation,
    Parameter,
    RequestBody,
    Response,
    SchemaField,
    Security,
    SecurityScheme,
    SpecFormat,
    ValueType,
    from_dict,
)
from core.models import SecurityRequirement as Req
from core.parsing.graphql import parse_graphql
from core.snippets import LANGUAGES, build_snippet, can_build_snippet, normalise_language
from core.snippets.build import build_request
from core.snippets.request import (
    Env,
    FormBody,
    GraphQLBody,
    JsonBody,
    MultipartBody,
    RawBody,
    Request,
    Value,
)
from core.snippets.source_text import json_safe, without_surrogates
from tests.conftest import skip_noted
from tests.core.snippet_toolchains import Built, Program, build, missing

# The types parsers give fields and parameters (the labels beside them are only shown to people).
INTEGER = ValueType(("integer",))
BOOLEAN = ValueType(("boolean",))
OBJECT = ValueType(("object",))
STRING = ValueType(("string",))
BINARY = ValueType(("string",), binary=True)

ENV = {
    "API_TOKEN": "test-token-123",
    "API_KEY": "test-key-456",
    "API_USER": "alice",
    "API_PASSWORD": "s3cret pass",
    "API_CONSUMER_KEY": "consumer-key-1",
    "API_CONSUMER_SECRET": "consumer-secret-2",
    "API_ACCESS_TOKEN": "access-token-3",
    "API_ACCESS_TOKEN_SECRET": "access-secret-4",
}
FILE_CONTENT = b"hello file\n"

BEARER = SecurityScheme(name="bearerAuth", type="http", scheme="bearer")
BASIC = SecurityScheme(name="basicAuth", type="http", scheme="basic")
KEY_HEADER = SecurityScheme(name="apiKeyHeader", type="apiKey", location="header", param_name="X-API-Key")
KEY_QUERY = SecurityScheme(name="apiKeyQuery", type="apiKey", location="query", param_name="api_key")
SLACK = SecurityScheme(name="slackAuth", type="oauth2", flows=("authorizationCode: https://slack.com/oauth",))
POSTMAN_BEARER = SecurityScheme(name="bearer", type="bearer")
POSTMAN_OAUTH1 = SecurityScheme(name="oauth1", type="oauth1")
ALL_SCHEMES = (BEARER, BASIC, KEY_HEADER, KEY_QUERY, SLACK, POSTMAN_BEARER, POSTMAN_OAUTH1)


# --------------------------------------------------------------------------------------------------------
# A local HTTP server recording what it receives
# --------------------------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def json(self) -> object:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def multipart(self) -> dict[str, bytes]:
        raw = b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            parts[str(name)] = payload if isinstance(payload, bytes) else b""
        return parts


@dataclass
class Recorder:
    base_url: str
    requests: list[Received] = field(default_factory=list)

    def last(self) -> Received:
        assert self.requests, "the snippet sent no request"
        return self.requests[-1]


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.requests.append(Received(self.command, self.path, headers, body))
            payload = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[Recorder]:
    """One server for the module: snippets are compiled in batches, so its address is known up front."""
    recorder = Recorder(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield recorder
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


# --------------------------------------------------------------------------------------------------------
# Running snippets
# --------------------------------------------------------------------------------------------------------


def check_syntax(snippet: str, language: str, tmp_path: Path) -> None:
    """The snippet compiles (or passes the language's syntax check); skipped where the tool is missing."""
    reason = missing(language)
    if reason:
        skip_noted(reason)
    [built] = build(language, {"check": snippet}, tmp_path, FILE_CONTENT).values()
    assert isinstance(built, Program), built.output


class Builds:
    """Each group of cases built once per language, in one batch, against the module's server."""

    def __init__(self, server: Recorder, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self._built: dict[tuple[str, str], dict[str, tuple[str, Built]]] = {}

    def get(self, group: str, language: str, snippets: Callable[[str], dict[str, str]], name: str) -> tuple[str, Built]:
        """The snippet `name` of `group` in `language`, and what its build made of it (a skip if no toolchain)."""
        reason = missing(language)
        if reason:
            skip_noted(reason)
        key = (group, language)
        if key not in self._built:
            codes = snippets(self.server.base_url)
            built = build(language, codes, self.workdir / group, FILE_CONTENT)
            self._built[key] = {n: (codes[n], built[n]) for n in codes}
        return self._built[key][name]


@pytest.fixture(scope="module")
def builds(server: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(server, tmp_path_factory.mktemp("snippets"))


def run_and_record(built: Built, server: Recorder, extra_env: dict[str, str] | None = None) -> Received:
    """Run a built snippet against the module's server; the one request it sent."""
    assert isinstance(built, Program), f"the snippet does not build:\n{built.output}"
    server.requests.clear()
    built.run({**ENV, **(extra_env or {})})
    assert len(server.requests) == 1, f"{len(server.requests)} requests sent"
    return server.last()


def spec_for(
    base_url: str,
    security: Security = (),
    schemes: tuple[SecurityScheme, ...] = ALL_SCHEMES,
    fmt: SpecFormat = SpecFormat.OPENAPI3,
) -> ApiSpec:
    return ApiSpec(format=fmt, title="Test API", servers=(base_url,), security_schemes=schemes, security=security)


# --------------------------------------------------------------------------------------------------------
# Cases executed against the server
# --------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    spec: Callable[[str], ApiSpec]
    operation: Callable[[str], Operation]
    check: Callable[[Received, str], None]  # (request, language)


def _bearer_json() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.OPERATION,
            method="POST",
            path="/v1/pets/{petId}/tags",
            summary="Tag a pet",
            parameters=(
                Parameter("petId", "path", required=True, type="integer", example="42", value_type=INTEGER),
                Parameter("dry_run", "query", required=True, type="boolean", example="true", value_type=BOOLEAN),
                Parameter("verbose", "query", type="boolean", value_type=BOOLEAN),
                Parameter("X-Request-Id", "header", required=True, example="req-1"),
            ),
            request_body=RequestBody(
                "application/json",
                fields=(
                    SchemaField("name", "string", required=True),
                    SchemaField("count", "integer", required=True, value_type=INTEGER),
                    SchemaField("active", "boolean", required=True, value_type=BOOLEAN),
                    SchemaField("kind", "string", required=True, enum=("dog", "cat")),
                    SchemaField("owner", "object", required=True, value_type=OBJECT),
                    SchemaField("owner.email", "string", required=True, example="o'neil@example.com"),
                    SchemaField("owner.phone", "string"),
                    SchemaField("labels", "array", required=True, value_type=ValueType(("array",), ("object",))),
                    SchemaField("labels[].name", "string", required=True),
                    SchemaField("note", "string", example="keep it"),
                    SchemaField("colour", "string"),
                ),
                required=True,
            ),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "POST"
        assert request.path == "/v1/pets/42/tags"
        assert request.query == {"dry_run": ["true"]}
        assert request.headers["authorization"] == "Bearer test-token-123"
        assert request.headers["x-request-id"] == "req-1"
        assert request.headers["content-type"].startswith("application/json")
        assert request.json() == {
            "name": "<name>",
            "count": 0,
            "active": True,
            "kind": "dog",
            "owner": {"email": "o'neil@example.com"},
            "labels": [{"name": "<name>"}],
            "note": "keep it",
        }

    return Case(lambda base: spec_for(base, security=((Req("bearerAuth"),),)), operation, check)


def _basic_form_nested() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.OPERATION,
            method="POST",
            path="/v1/charges",
            parameters=(Parameter("expand", "query", type="array", value_type=ValueType(("array",))),),
            request_body=RequestBody(
                "application/x-www-form-urlencoded",
                fields=(
                    SchemaField("amount", "integer", required=True, example="2000", value_type=INTEGER),
                    SchemaField("currency", "string", required=True, enum=("usd", "eur")),
                    SchemaField("metadata", "object", required=True, value_type=OBJECT),
                    SchemaField("metadata.order_id", "string", required=True, example="6735"),
                    SchemaField("items", "array", required=True, value_type=ValueType(("array",), ("object",))),
                    SchemaField("items[].price", "string", required=True, example="price_1"),
                    SchemaField("items[].quantity", "integer", required=True, value_type=INTEGER),
                    SchemaField("description", "string", example="It's a 'quoted' value & more"),
                    SchemaField("capture", "boolean", value_type=BOOLEAN),
                ),
            ),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "POST"
        assert request.path == "/v1/charges"
        assert request.query == {}
        expected = "Basic " + base64.b64encode(b"alice:s3cret pass").decode()
        assert request.headers["authorization"] == expected
        assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert request.form() == {
            "amount": ["2000"],
            "currency": ["usd"],
            "metadata[order_id]": ["6735"],
            "items[0][price]": ["price_1"],
            "items[0][quantity]": ["0"],
            "description": ["It's a 'quoted' value & more"],
        }

    return Case(lambda base: spec_for(base, security=((Req("basicAuth"),), (Req("bearerAuth"),))), operation, check)


def _api_key_header() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.OPERATION,
            method="GET",
            path="/search",
            parameters=(
                Parameter("q", "query", required=True, example="rock & roll 'live' ?x=1"),
                Parameter("page", "query", type="integer", example="2", value_type=INTEGER),
                Parameter("X-API-Key", "header", required=True),  # the scheme's own header: not sent twice
            ),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "GET"
        assert request.path == "/search"
        assert request.query == {"q": ["rock & roll 'live' ?x=1"], "page": ["2"]}
        assert request.headers["x-api-key"] == "test-key-456"
        assert "authorization" not in request.headers
        assert request.body == b""

    return Case(lambda base: spec_for(base, security=((Req("apiKeyHeader"),),)), operation, check)


def _api_key_query() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.OPERATION, method="DELETE", path="/things/{thing_id}", security=((Req("apiKeyQuery"),),)
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "DELETE"
        assert request.path == "/things/THING_ID"
        assert request.query == {"api_key": ["test-key-456"]}
        assert "authorization" not in request.headers

    return Case(lambda base: spec_for(base, security=((Req("bearerAuth"),),)), operation, check)


def _no_auth() -> Case:
    def operation(_: str) -> Operation:
        return Operation(kind=ItemKind.OPERATION, method="GET", path="/health", security=())

    def check(request: Received, language: str) -> None:
        assert request.method == "GET"
        assert request.path == "/health"
        assert "authorization" not in request.headers
        assert "x-api-key" not in request.headers

    return Case(lambda base: spec_for(base, security=((Req("bearerAuth"),),)), operation, check)


def _slack_token() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.OPERATION,
            method="POST",
            path="/chat.postMessage",
            operation_id="chat_postMessage",
            parameters=(Parameter("token", "header", required=True, description="Authentication token."),),
            request_body=RequestBody(
                "application/x-www-form-urlencoded",
                fields=(
                    SchemaField("token", "string", required=True),
                    SchemaField("channel", "string", required=True, example="C1234567890"),
                    SchemaField("text", "string", example="Hello, world"),
                    SchemaField("as_user", "string"),
                ),
            ),
            security=((Req("slackAuth"),),),
        )

    def check(request: Received, language: str) -> None:
        assert request.path == "/api/chat.postMessage"
        assert request.headers["authorization"] == "Bearer test-token-123"
        assert "token" not in request.headers
        assert request.form() == {"channel": ["C1234567890"], "text": ["Hello, world"]}

    return Case(lambda base: spec_for(base + "/api", fmt=SpecFormat.SWAGGER2), operation, check)


def _postman_colon_path() -> Case:
    def operation(base: str) -> Operation:
        url = (
            base
            + "/2/users/:id/tweets?max_results=5&tweet.fields=created_at,author_id&query=has:media puppies&tag=a&tag=b"
        )
        return Operation(
            kind=ItemKind.POSTMAN,
            method="GET",
            path="/2/users/:id/tweets",
            name="User Tweets timeline",
            folder="Timelines",
            url=url,
            parameters=(
                Parameter("id", "path", required=True, example="2244994945"),
                Parameter("max_results", "query", example="5"),
                Parameter("expansions", "query"),
            ),
            security=((Req("bearer"),),),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "GET"
        assert request.path == "/2/users/2244994945/tweets"
        assert request.query == {
            "max_results": ["5"],
            "tweet.fields": ["created_at,author_id"],
            "query": ["has:media puppies"],
            "tag": ["a", "b"],
        }
        assert request.headers["authorization"] == "Bearer test-token-123"

    return Case(lambda base: spec_for("", fmt=SpecFormat.POSTMAN), operation, check)


def _postman_raw_oauth1() -> Case:
    raw = '// Replace id-you-want-to-block with the ID you wish to block\n{\n    "target_user_id": "{{target_id}}"\n}'

    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.POSTMAN,
            method="POST",
            path="/2/users/:id/blocking",
            name="Block a user ID",
            folder="Blocks",
            url="{{baseUrl}}/2/users/:id/blocking",
            parameters=(Parameter("id", "path", required=True, example="2244994945"),),
            request_body=RequestBody("application/json", example=raw),
            security=((Req("oauth1"),),),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "POST"
        assert request.path == "/2/users/2244994945/blocking"
        assert request.json() == {"target_user_id": "<target_id>"}
        if language == "python":  # requests_oauthlib signs it
            authorization = request.headers["authorization"]
            assert authorization.startswith("OAuth ")
            assert 'oauth_consumer_key="consumer-key-1"' in authorization
            assert "oauth_signature=" in authorization

    return Case(lambda base: spec_for(base, fmt=SpecFormat.POSTMAN), operation, check)


RAW_TEXT = "line one: it's 'quoted'\nline two: $HOME `id` \\ done"


def _postman_raw_text() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.POSTMAN,
            method="PUT",
            name="Replace note",
            url="{{baseUrl}}/notes/{{noteId}}",
            request_body=RequestBody("text/plain", example=RAW_TEXT),
            security=(),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "PUT"
        assert request.path == "/notes/NOTE_ID"
        assert request.headers["content-type"].startswith("text/plain")
        assert request.body.decode() == RAW_TEXT

    return Case(lambda base: spec_for(base, fmt=SpecFormat.POSTMAN), operation, check)


def _postman_raw_plain_lines() -> Case:
    # Plain lines (nothing to escape): JavaScript writes them as a template literal, which must add nothing.
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.POSTMAN,
            method="POST",
            name="Add note",
            url="{{baseUrl}}/notes",
            request_body=RequestBody("text/plain", example="first line\nsecond line"),
            security=(),
        )

    def check(request: Received, language: str) -> None:
        assert request.body.decode() == "first line\nsecond line"

    return Case(lambda base: spec_for(base, fmt=SpecFormat.POSTMAN), operation, check)


def _multipart() -> Case:
    def operation(_: str) -> Operation:
        return Operation(
            kind=ItemKind.OPERATION,
            method="POST",
            path="/v1/files",
            request_body=RequestBody(
                "multipart/form-data",
                fields=(
                    SchemaField("purpose", "string", required=True, enum=("dispute_evidence", "identity_document")),
                    SchemaField("file", "string(binary)", required=True, value_type=BINARY),
                    SchemaField("note", "string", example="@not-a-file"),
                ),
            ),
        )

    def check(request: Received, language: str) -> None:
        assert request.method == "POST"
        assert request.headers["content-type"].startswith("multipart/form-data")
        assert request.headers["authorization"] == "Bearer test-token-123"
        assert request.multipart() == {"purpose": b"dispute_evidence", "note": b"@not-a-file", "file": FILE_CONTENT}

    return Case(lambda base: spec_for(base, security=((Req("bearerAuth"),),)), operation, check)


GRAPHQL_DOCUMENT = """mutation CreateIssue($input: CreateIssueInput!, $dryRun: Boolean) {
  createIssue(input: $input, dryRun: $dryRun) {
    issue {
      id
      title
    }
  }
}"""


def _graphql_operation(_: str) -> Operation:
    return Operation(
        kind=ItemKind.GRAPHQL,
        method="POST",
        name="createIssue",
        graphql_type="mutation",
        graphql_signature="createIssue(input: CreateIssueInput!, dryRun: Boolean): CreateIssuePayload",
        graphql_document=GRAPHQL_DOCUMENT,
        parameters=(
            Parameter("input", "argument", required=True, type="CreateIssueInput!", value_type=OBJECT),
            Parameter("dryRun", "argument", type="Boolean", value_type=BOOLEAN),
        ),
        request_body=RequestBody(
            "application/json",
            fields=(
                SchemaField("input.repositoryId", "ID!", required=True, value_type=STRING),
                SchemaField("input.title", "String!", required=True, value_type=STRING),
                SchemaField("input.labelIds", "[ID!]", value_type=ValueType(("array",), ("string",))),
            ),
        ),
    )


def _graphql_check(authorised: bool) -> Callable[[Received, str], None]:
    def check(request: Received, language: str) -> None:
        assert request.method == "POST"
        assert request.path == "/graphql"
        assert request.headers["content-type"].startswith("application/json")
        body = request.json()
        assert isinstance(body, dict)
        assert " ".join(body["query"].split()) == " ".join(GRAPHQL_DOCUMENT.split())
        assert body["variables"] == {"input": {"repositoryId": "<repositoryId>", "title": "<title>"}}
        if authorised:
            assert request.headers["authorization"] == "Bearer test-token-123"
        else:
            assert "authorization" not in request.headers

    return check


def _graphql_with_auth() -> Case:
    return Case(
        lambda base: spec_for(base, security=((Req("bearerAuth"),),), schemes=(BEARER,), fmt=SpecFormat.GRAPHQL),
        _graphql_operation,
        _graphql_check(authorised=True),
    )


def _graphql_without_auth() -> Case:
    return Case(
        lambda base: spec_for(base, schemes=(), fmt=SpecFormat.GRAPHQL),
        _graphql_operation,
        _graphql_check(authorised=False),
    )


def _doc_section() -> Case:
    def operation(_: str) -> Operation:
        return Operation(kind=ItemKind.DOC_SECTION, path="/v0/item/<id>.json", name="Items")

    def check(request: Received, language: str) -> None:
        assert request.method == "GET"
        assert request.path == "/v0/item/ID.json"

    return Case(lambda base: spec_for(base, schemes=(), fmt=SpecFormat.MARKDOWN), operation, check)


CASES = {
    "bearer_json": _bearer_json(),
    "basic_form_nested": _basic_form_nested(),
    "api_key_header": _api_key_header(),
    "api_key_query": _api_key_query(),
    "no_auth": _no_auth(),
    "slack_token": _slack_token(),
    "postman_colon_path": _postman_colon_path(),
    "postman_raw_oauth1": _postman_raw_oauth1(),
    "postman_raw_text": _postman_raw_text(),
    "postman_raw_plain_lines": _postman_raw_plain_lines(),
    "multipart": _multipart(),
    "graphql_with_auth": _graphql_with_auth(),
    "graphql_without_auth": _graphql_without_auth(),
    "doc_section": _doc_section(),
}


def _case_snippets(language: str) -> Callable[[str], dict[str, str]]:
    def snippets(base: str) -> dict[str, str]:
        return {name: build_snippet(c.spec(base), c.operation(base), language) for name, c in CASES.items()}

    return snippets


_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e]")


def _env_values(request: Request) -> dict[str, str]:
    """A value for every environment variable the request reads: the test's secrets, else a made-up one."""
    return {name: ENV.get(name, f"value-of-{name}") for name in request.env_vars()}


def sends_what_the_request_describes(received: Received, request: Request, language: str) -> None:
    """The language-neutral `Request` the snippet was rendered from is what arrived: method, path, query,
    headers and body, with the environment's values in place of its variables."""
    env = {**ENV, **_env_values(request)}

    def text(value: Value) -> str:  # snippets write lone surrogates (no UTF-8 for them) as U+FFFD
        return without_surrogates("".join(env[p.name] if isinstance(p, Env) else p for p in value))

    def tree(data: object) -> object:
        if isinstance(data, str):
            return without_surrogates(data)
        if isinstance(data, Env):
            return env[data.name]
        if isinstance(data, dict):
            return {without_surrogates(k): tree(v) for k, v in data.items()}
        if isinstance(data, list):
            return [tree(v) for v in data]
        return data

    def in_url(text: str) -> str:
        # .NET's System.Uri drops bidirectional formatting characters from URLs (documented): C# cannot send them.
        return _BIDI_CONTROLS.sub("", text) if language == "csharp" else text

    def grouped(pairs: Iterable[tuple[str, Value]], url: bool = False) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for name, value in pairs:
            key, item = without_surrogates(name), text(value)
            result.setdefault(in_url(key) if url else key, []).append(in_url(item) if url else item)
        return result

    assert received.method == request.method
    assert unquote(received.path) == in_url(unquote(urlsplit(request.url).path))
    assert received.query == grouped(request.query, url=True)
    for name, value in request.headers:  # HTTP drops the spaces around a header's value
        assert received.headers[name.lower()] == text(value).strip(" \t"), name
    if request.basic_auth:
        user, password = (env[name] for name in request.basic_auth)
        assert received.headers["authorization"] == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    body = request.body
    if body is None:
        assert received.body == b""
    elif isinstance(body, JsonBody):
        assert received.headers["content-type"].startswith(body.content_type)
        assert received.json() == tree(json_safe(body.data))  # JSON has no Infinity: null
    elif isinstance(body, GraphQLBody):
        assert received.headers["content-type"].startswith("application/json")
        sent = received.json()
        assert isinstance(sent, dict) and sent["variables"] == tree(json_safe(body.variables))
        if language == "curl":  # curl writes the document on one line
            assert " ".join(sent["query"].split()) == " ".join(without_surrogates(body.document).split())
        else:  # some start the document on a line of its own
            assert sent["query"].strip("\n") == without_surrogates(body.document)
    elif isinstance(body, FormBody):
        assert received.headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert received.form() == grouped(body.pairs)
    elif isinstance(body, MultipartBody):
        def field(value: Value) -> bytes:
            # fetch's FormData writes every line break in a text field as CRLF, as the HTML standard says.
            written = text(value)
            if language in ("javascript", "typescript"):
                written = re.sub(r"\r\n|\r|\n", "\r\n", written)
            return written.encode()

        expected = {without_surrogates(name): field(value) for name, value in body.fields}
        expected.update({without_surrogates(name): FILE_CONTENT for name, _ in body.files})
        assert received.multipart() == expected
    elif isinstance(body, RawBody):
        assert received.headers["content-type"].startswith(body.content_type)
        assert received.body.decode() == without_surrogates(body.text)
    else:
        assert received.headers["content-type"].startswith(body.content_type)
        assert received.body == FILE_CONTENT


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case_name", list(CASES))
def test_snippet_is_valid_and_sends_the_right_request(
    case_name: str, language: str, server: Recorder, builds: Builds
) -> None:
    snippet, built = builds.get("cases", language, _case_snippets(language), case_name)
    for secret in ENV.values():
        assert secret not in snippet
    case = CASES[case_name]
    received = run_and_record(built, server)
    case.check(received, language)
    request = build_request(case.spec(server.base_url), case.operation(server.base_url))
    sends_what_the_request_describes(received, request, language)


# Real operations from the corpus, served by the local server: (file, operation label or GraphQL field, path
# prefix of the spec's server).
REAL_OPERATIONS = {
    "petstore_json": ("petstore_openapi3.yaml", "POST /pet", "/api/v3"),
    "stripe_form": ("stripe_openapi3_2023-09.yaml", "POST /v1/payment_intents", ""),
    "twilio_form_path": ("twilio_api_v2010_openapi3.json", "POST /2010-04-01/Accounts/{AccountSid}/Messages.json", ""),
    "github_graphql_mutation": ("github_graphql_schema.graphql", "createIssue", ""),
}


@cache
def _real_spec(path: Path) -> ApiSpec:
    from core.parsing.loader import load_spec

    extension = path.suffix.lstrip(".")
    return load_spec(path.name, path.read_bytes(), max_bytes=50 * 2**20, allowed_extensions=frozenset({extension}))


@cache
def _real_request_parts(specs_dir: Path, case_name: str, base: str) -> tuple[ApiSpec, Operation]:
    """The spec (its servers now the local server) and the operation, as answers read them from the store."""
    from core.documents import Document, build_documents

    filename, wanted, prefix = REAL_OPERATIONS[case_name]
    spec = replace(_real_spec(specs_dir / filename), servers=(base + prefix,))
    stored = [Document.from_payload(d.to_payload()).operation for d in build_documents(spec)]
    operation = next(o for o in stored if o is not None and wanted in (o.label, o.name))
    return spec, replace(operation, servers=())


def _real_snippets(specs_dir: Path, language: str) -> Callable[[str], dict[str, str]]:
    def snippets(base: str) -> dict[str, str]:
        parts = {name: _real_request_parts(specs_dir, name, base) for name in REAL_OPERATIONS}
        return {name: build_snippet(spec, operation, language) for name, (spec, operation) in parts.items()}

    return snippets


def _real_facts(case_name: str, received: Received) -> None:
    """What each real operation sends, pinned, so the comparison with the `Request` cannot pass vacuously."""
    basic = "Basic " + base64.b64encode(b"alice:s3cret pass").decode()
    if case_name == "petstore_json":
        assert (received.method, received.path) == ("POST", "/api/v3/pet")
        assert received.headers["authorization"] == "Bearer test-token-123"
        assert received.json() == {"name": "doggie", "photoUrls": ["<photoUrls>"], "id": 10}
    elif case_name == "stripe_form":
        assert (received.method, received.path) == ("POST", "/v1/payment_intents")
        assert received.headers["authorization"] == basic
        assert received.form() == {"amount": ["0"], "currency": ["<currency>"]}
    elif case_name == "twilio_form_path":
        assert (received.method, received.path) == ("POST", "/2010-04-01/Accounts/ACCOUNT_SID/Messages.json")
        assert received.headers["authorization"] == basic
        form = received.form()
        assert form["To"] == ["+14155552345"] and form["Body"] == ["Hello! \U0001f44d"]
        assert form["Tags"] == ['{"campaign_name": "Spring Sale 2022","message_type": "cart_abandoned"}']
    else:
        assert (received.method, received.path) == ("POST", "/graphql")
        sent = received.json()
        assert isinstance(sent, dict)
        assert sent["query"].strip().startswith("mutation CreateIssue($input: CreateIssueInput!)")
        assert sent["variables"] == {"input": {"repositoryId": "<repositoryId>", "title": "<title>"}}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case_name", list(REAL_OPERATIONS))
def test_real_corpus_snippets_send_the_right_request(
    case_name: str, language: str, specs_dir: Path, server: Recorder, builds: Builds
) -> None:
    snippet, built = builds.get("real", language, _real_snippets(specs_dir, language), case_name)
    for secret in ENV.values():
        assert secret not in snippet
    spec, operation = _real_request_parts(specs_dir, case_name, server.base_url)
    request = build_request(spec, operation)
    received = run_and_record(built, server, _env_values(request))
    _real_facts(case_name, received)
    sends_what_the_request_describes(received, request, language)


# --------------------------------------------------------------------------------------------------------
# Unit tests on the text of snippets
# --------------------------------------------------------------------------------------------------------


BASE = "https://api.test"


def _snippets(spec: ApiSpec, operation: Operation) -> dict[str, str]:
    return {language: build_snippet(spec, operation, language) for language in LANGUAGES}


def test_secrets_come_from_the_environment() -> None:
    operation = Operation(kind=ItemKind.OPERATION, method="GET", path="/me")
    snippets = _snippets(spec_for(BASE, security=((Req("bearerAuth"),),)), operation)
    assert 'os.environ["API_TOKEN"]' in snippets["python"]
    assert "process.env.API_TOKEN" in snippets["javascript"]
    assert '"Authorization: Bearer $API_TOKEN"' in snippets["curl"]


def test_basic_auth_forms() -> None:
    operation = Operation(kind=ItemKind.OPERATION, method="GET", path="/me")
    snippets = _snippets(spec_for(BASE, security=((Req("basicAuth"),),)), operation)
    assert '-u "$API_USER:$API_PASSWORD"' in snippets["curl"]
    assert 'auth=(os.environ["API_USER"], os.environ["API_PASSWORD"])' in snippets["python"]
    assert "btoa(process.env.API_USER" in snippets["javascript"]


def test_discord_style_bot_token_header() -> None:
    bot = SecurityScheme(
        name="BotToken", type="apiKey", location="header", param_name="Authorization", description="Discord bot token"
    )
    spec = spec_for(BASE, security=((Req("BotToken"),),), schemes=(bot,))
    snippet = build_snippet(spec, Operation(kind=ItemKind.OPERATION, method="GET", path="/users/@me"), "curl")
    assert '"Authorization: Bot $API_TOKEN"' in snippet


def test_cookie_api_key() -> None:
    cookie = SecurityScheme(name="session", type="apiKey", location="cookie", param_name="sid")
    spec = spec_for(BASE, security=((Req("session"),),), schemes=(cookie,))
    snippets = _snippets(spec, Operation(kind=ItemKind.OPERATION, method="GET", path="/me"))
    assert '"Cookie: sid=$API_KEY"' in snippets["curl"]
    assert '"Cookie": "sid=" + os.environ["API_KEY"]' in snippets["python"]


def test_first_security_alternative_is_used() -> None:
    spec = spec_for(BASE, security=((Req("apiKeyHeader"),), (Req("bearerAuth"),)))
    snippet = build_snippet(spec, Operation(kind=ItemKind.OPERATION, method="GET", path="/x"), "python")
    assert '"X-API-Key": os.environ["API_KEY"]' in snippet
    assert "Bearer" not in snippet


EXAMPLE = Path(__file__).resolve().parents[2] / "core" / "examples" / "bookshop_openapi.yaml"


def test_operations_use_their_own_security_over_the_spec_default() -> None:
    # The bundled example needs an API key by default; its book catalogue says `security: []`.
    from core.documents import Document, build_documents
    from core.parsing.loader import load_spec

    spec = load_spec(EXAMPLE.name, EXAMPLE.read_bytes(), max_bytes=10**6, allowed_extensions=frozenset({"yaml"}))
    stored = [Document.from_payload(d.to_payload()) for d in build_documents(spec)]  # as answers read them
    operations = {d.operation.label: d.operation for d in stored if d.operation is not None}
    for language in LANGUAGES:
        for public in ("GET /books", "GET /books/{isbn}"):
            snippet = build_snippet(spec, operations[public], language)
            assert "X-Api-Key" not in snippet and "API_KEY" not in snippet, (public, language)
        assert "X-Api-Key" in build_snippet(spec, operations["POST /customers"], language)


def test_an_operation_scheme_other_than_the_default_is_used_with_its_scopes() -> None:
    oauth = SecurityScheme(name="oauth", type="oauth2", scopes=("orders:write", "orders:read"))
    operation = Operation(
        kind=ItemKind.OPERATION, method="POST", path="/orders", security=((Req("oauth", ("orders:write",)),),)
    )
    snippets = _snippets(spec_for(BASE, security=((Req("apiKeyHeader"),),), schemes=(*ALL_SCHEMES, oauth)), operation)
    assert '"Authorization: Bearer $API_TOKEN"' in snippets["curl"]
    for language, snippet in snippets.items():
        assert "X-API-Key" not in snippet, language
        assert "The token needs the scope orders:write." in " ".join(snippet.split()), language


def test_unknown_scheme_gets_a_comment() -> None:
    spec = spec_for(BASE, security=((Req("mystery"),),), schemes=())
    snippet = build_snippet(spec, Operation(kind=ItemKind.OPERATION, method="GET", path="/x"), "curl")
    assert "# Authenticate with 'mystery'" in snippet
    assert "Authorization" not in snippet


def test_oauth1_comments_and_python_signing() -> None:
    spec = spec_for(BASE, fmt=SpecFormat.POSTMAN)
    operation = Operation(
        kind=ItemKind.POSTMAN,
        method="GET",
        url="https://api.twitter.com/2/users/me",
        name="Me",
        security=((Req("oauth1"),),),
    )
    snippets = _snippets(spec, operation)
    assert "from requests_oauthlib import OAuth1" in snippets["python"]
    assert "auth=auth" in snippets["python"]
    assert "OAuth 1.0a" in snippets["curl"]
    assert "OAuth 1.0a" in snippets["javascript"]
    assert "Authorization" not in snippets["curl"].split("\n\n", 1)[1]
    for language in ("typescript", "go", "java", "ruby", "php", "csharp"):  # a comment line asks to sign it
        comment = "#" if language == "ruby" else "//"
        assert re.search(rf"^{comment} Sign it with an OAuth 1\.0a library", snippets[language], re.M), language


def test_optional_query_parameters_are_mentioned_not_sent() -> None:
    params = (
        *(Parameter(f"opt{i}", "query") for i in range(8)),
        Parameter("limit", "query", example="10"),
        Parameter("cursor", "query", example="abc"),
        Parameter("order", "query", example="desc"),
        Parameter("id", "query", required=True),
    )
    operation = Operation(kind=ItemKind.OPERATION, method="GET", path="/list", parameters=params, security=())
    snippet = build_snippet(spec_for(BASE), operation, "python")
    assert 'params={"id": "<id>", "limit": "10", "cursor": "abc"}' in snippet
    assert "# Optional query parameters: opt0, opt1, opt2, opt3, opt4, opt5 (+3 more)." in snippet


def test_many_optional_body_fields_are_summarised() -> None:
    fields = tuple(SchemaField(f"field{i}", "string") for i in range(20))
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="POST",
        path="/customers",
        request_body=RequestBody("application/json", fields=fields),
    )
    snippet = build_snippet(spec_for(BASE), operation, "javascript")
    assert "field2" in snippet and "field3:" not in snippet
    assert "// Other optional body fields: field3" in snippet


def test_path_placeholders_and_quoting() -> None:
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="GET",
        path="/users/{userId}/files/{name}",
        parameters=(Parameter("name", "path", required=True, example="it's mine.txt"),),
    )
    snippets = _snippets(spec_for(BASE), operation)
    assert "https://api.test/users/USER_ID/files/it%27s%20mine.txt" in snippets["curl"]


def test_a_lone_surrogate_in_a_path_example_is_replaced_not_a_crash() -> None:
    # A JSON spec may say "\ud800" in an example: Python reads it as a lone surrogate, which has no UTF-8 form.
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="GET",
        path="/files/{name}/{kind}",
        parameters=(
            Parameter("name", "path", required=True, example="a\ud800b"),
            Parameter("kind", "path", required=True, enum=("\udfffx",)),
        ),
    )
    for language in LANGUAGES:
        assert "https://api.test/files/a%3Fb/%3Fx" in build_snippet(spec_for(BASE), operation, language), language


def test_curl_quotes_embedded_single_quotes(tmp_path: Path) -> None:
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="POST",
        path="/notes",
        parameters=(Parameter("X-Note", "header", required=True, example="it's $HOME `id`"),),
        request_body=RequestBody(
            "application/json", fields=(SchemaField("text", "string", True, example="'; rm -rf ~ '"),)
        ),
    )
    snippet = build_snippet(spec_for(BASE), operation, "curl")
    assert "-H 'X-Note: it'\\''s $HOME `id`'" in snippet
    check_syntax(snippet, "curl", tmp_path)


def test_postman_template_variables() -> None:
    spec = spec_for("https://api.example.org/v1", fmt=SpecFormat.POSTMAN)
    operation = Operation(
        kind=ItemKind.POSTMAN,
        method="GET",
        name="Get thing",
        url="{{baseUrl}}/things/{{thingId}}?apiKey={{api_key}}&lang={{lang}}",
        parameters=(Parameter("Accept-Language", "header", example="en"),),
    )
    snippet = build_snippet(spec, operation, "python")
    assert '"https://api.example.org/v1/things/THING_ID"' in snippet
    assert '"apiKey": os.environ["API_KEY"]' in snippet
    assert '"lang": "<lang>"' in snippet
    assert '"Accept-Language": "en"' in snippet


def test_graphql_without_auth_says_so() -> None:
    spec = spec_for(BASE, schemes=(), fmt=SpecFormat.GRAPHQL)
    snippets = _snippets(spec, _graphql_operation(BASE))
    for language, snippet in snippets.items():
        assert "does not describe the API's authentication" in snippet, language
        assert "API_TOKEN" not in snippet
    assert '"https://api.test/graphql"' in snippets["python"]


def test_graphql_keeps_a_base_url_that_already_ends_in_graphql() -> None:
    spec = spec_for("https://api.github.com/graphql", schemes=(), fmt=SpecFormat.GRAPHQL)
    snippet = build_snippet(spec, _graphql_operation(BASE), "curl")
    assert "'https://api.github.com/graphql'" in snippet


def test_doc_section_without_path_does_not_fail() -> None:
    operation = Operation(kind=ItemKind.DOC_SECTION, name="Design")
    assert not can_build_snippet(operation)
    snippet = build_snippet(spec_for(BASE, schemes=(), fmt=SpecFormat.MARKDOWN), operation, "curl")
    assert "names no endpoint" in snippet


def test_deprecated_operations_are_flagged() -> None:
    operation = Operation(kind=ItemKind.OPERATION, method="GET", path="/old", deprecated=True)
    assert "deprecated" in build_snippet(spec_for(BASE), operation, "python")


def test_unknown_language_raises() -> None:
    operation = Operation(kind=ItemKind.OPERATION, method="GET", path="/x")
    with pytest.raises(ValueError, match="unknown snippet language"):
        build_snippet(spec_for(BASE), operation, "cobol")
    assert build_snippet(spec_for(BASE), operation, "py") == build_snippet(spec_for(BASE), operation, "python")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("py", "python"),
        ("Python3", "python"),
        ("requests", "python"),
        ("httpx", "python"),
        ("js", "javascript"),
        ("node", "javascript"),
        ("Node.js", "javascript"),
        ("TypeScript", "typescript"),
        ("ts", "typescript"),
        ("fetch", "javascript"),
        ("deno", "javascript"),
        ("Go", "go"),
        ("golang", "go"),
        ("Java", "java"),
        ("rb", "ruby"),
        ("Ruby", "ruby"),
        ("PHP", "php"),
        ("C#", "csharp"),
        ("csharp", "csharp"),
        ("cs", "csharp"),
        (".NET", "csharp"),
        ("dotnet", "csharp"),
        ("asp.net", None),
        ("shell", "curl"),
        ("bash", "curl"),
        ("cURL", "curl"),
        ("`curl`", "curl"),
        ("in python please", "python"),
        ("cobol", None),
        ("", None),
    ],
)
def test_normalise_language(text: str, expected: str | None) -> None:
    assert normalise_language(text) == expected


def _python_json_body(fields: tuple[SchemaField, ...]) -> str:
    body = RequestBody("application/json", fields=fields)
    operation = Operation(kind=ItemKind.OPERATION, method="POST", path="/x", request_body=body)
    return build_snippet(spec_for(BASE), operation, "python")


def _stored(name: str, label: str, example: str | None = None) -> SchemaField:
    """A field as a document stored before fields had a `ValueType` holds it: the label only."""
    stored = {"name": name, "type": label, "required": True, "description": "", "enum": [], "example": example}
    return from_dict(SchemaField, stored)


def test_type_notations_give_sensible_placeholders() -> None:
    # Documents stored before value types existed have only labels: they still give the snippets they gave.
    fields = (
        _stored("metadata", "anyOf(map<string, string> | string)"),
        _stored("tags", "array<string>"),
        _stored("ids", "[ID!]!"),
        _stored("count", "Int!"),
        _stored("ratio", "number | null"),
        _stored("flag", "Boolean"),
        _stored("when", "string", example="2024-01-01"),
        _stored("size", "integer", example="3"),
    )
    snippet = _python_json_body(fields)
    expected = (
        '"metadata": {}',
        '"tags": ["<tags>"]',
        '"ids": ["<ids>"]',
        '"count": 0',
        '"ratio": 0',
        '"flag": True',
        '"when": "2024-01-01"',
        '"size": 3',
    )
    for text in expected:
        assert text in snippet


def test_value_types_give_sensible_placeholders_and_labels_are_not_read() -> None:
    fields = (
        SchemaField(
            "metadata", "anyOf(map<string, string> | string)", True, value_type=ValueType(("object", "string"))
        ),
        SchemaField("tags", "array<string>", True, value_type=ValueType(("array",), ("string",))),
        SchemaField("grid", "array<array<integer>>", True, value_type=ValueType(("array",), ("array",))),
        SchemaField(
            "ids", "oneOf(array<integer> | string)", True, value_type=ValueType(("array", "string"), ("integer",))
        ),
        SchemaField("ratio", "number|null", True, value_type=ValueType(("number", "null"))),
        SchemaField("flag", "Boolean", True, value_type=BOOLEAN),
        SchemaField("when", "DateTime", True, value_type=ValueType()),
        SchemaField("size", "integer", True, example="3", value_type=INTEGER),
        SchemaField("config", "object", True, example='{"a": 1}', value_type=OBJECT),
        SchemaField("note", "string", True, example="[draft]", value_type=STRING),
        SchemaField("count", "integer", True, value_type=STRING),  # the type decides, not the label
    )
    snippet = _python_json_body(fields)
    expected = (
        '"metadata": {}',
        '"tags": ["<tags>"]',
        '"grid": [["<grid>"]]',
        '"ids": [0]',
        '"ratio": 0',
        '"flag": True',
        '"when": "<when>"',
        '"size": 3',
        '"config": {"a": 1}',
        '"note": "[draft]"',
        '"count": "<count>"',
    )
    for text in expected:
        assert text in snippet


def test_binary_value_types_are_the_files_of_a_multipart_body() -> None:
    fields = (
        SchemaField("attachments", "array<string (binary)>", True, value_type=ValueType(("array",), ("string",), True)),
        SchemaField("policy", "object (BinaryPolicy)", True, value_type=OBJECT),  # "binary" in a name is no file
        SchemaField("policy.name", "string", True, value_type=STRING),
    )
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="POST",
        path="/upload",
        request_body=RequestBody("multipart/form-data", fields=fields),
    )
    snippet = build_snippet(spec_for(BASE), operation, "curl")
    assert "-F 'attachments=@attachments.bin'" in snippet
    assert "--form-string 'policy[name]=<name>'" in snippet
    assert "@policy" not in snippet


def test_a_graphql_input_object_left_unexpanded_is_an_object() -> None:
    spec = parse_graphql(
        "input BranchInput { name: String, id: ID }\n"
        "input CommitInput { branch: BranchInput!, message: String! }\n"
        "type Query { ok: Boolean }\n"
        "type Mutation { commit(input: CommitInput!): Boolean }"
    )
    commit = next(op for op in spec.operations if op.name == "commit")
    snippet = build_snippet(spec, commit, "python")
    assert '"branch": {}' in snippet and '"message": "<message>"' in snippet


def test_missing_server_is_pointed_out() -> None:
    spec = ApiSpec(format=SpecFormat.OPENAPI3, title="No servers")
    snippet = build_snippet(spec, Operation(kind=ItemKind.OPERATION, method="GET", path="/x"), "curl")
    assert "'https://api.example.com/x'" in snippet
    assert "names no server" in snippet


def test_no_content_responses_print_the_status() -> None:
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="PUT",
        path="/bans/{user_id}",
        responses=(Response("204", "No Content"), Response("default", "Error")),
    )
    snippets = _snippets(spec_for(BASE), operation)
    assert "print(response.status_code)" in snippets["python"]
    assert "console.log(response.status);" in snippets["javascript"]
    with_body = Operation(kind=ItemKind.OPERATION, method="DELETE", path="/x", responses=(Response("200", "OK"),))
    assert "print(response.json())" in build_snippet(spec_for(BASE), with_body, "python")


def test_a_title_cannot_declare_the_python_snippets_encoding() -> None:
    # "coding: utf-7" in the first two lines made Python read "+ACIAOw-" as '";' and run what followed as code.
    payload = "+ACIAOw-print('INJECTED')+ADs-y=+ACI-"
    operation = Operation(
        kind=ItemKind.OPERATION,
        method="POST",
        path="/jobs",
        summary="Transcoding: utf-7 jobs",
        request_body=RequestBody("application/json", fields=(SchemaField("note", "string", True, example=payload),)),
    )
    snippet = build_snippet(spec_for(BASE), operation, "python")
    tree = ast.parse(snippet.encode())  # from bytes, as `python snippet.py` reads it: encoding declarations apply
    assert payload in {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert not any(isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print" and
                   "INJECTED" in ast.dump(node) for node in ast.walk(tree))


def test_spec_text_never_reads_the_environment_in_curl(tmp_path: Path) -> None:
    # JSON bodies were written with marks for the environment variables, found again afterwards: a spec value
    # spelled like a mark read any variable the spec named ("@@ENV:AWS_SECRET_ACCESS_KEY@@") and sent it.
    fields = (
        SchemaField("token", "string", True),
        SchemaField("note", "string", True, example="@@ENV:HOME@@"),
    )
    body = RequestBody("application/json", fields=fields)
    operation = Operation(kind=ItemKind.OPERATION, method="POST", path="/notes", request_body=body)
    snippet = build_snippet(spec_for(BASE), operation, "curl")
    assert '"note": "@@ENV:HOME@@"' in snippet and "HOME}" not in snippet and "$HOME" not in snippet
    assert '"token": "\'"${API_TOKEN}"\'"' in snippet
    check_syntax(snippet, "curl", tmp_path)


def test_java_snippet_runs_as_a_single_source_file(server: Recorder, tmp_path: Path) -> None:
    """The batched builds rename each class; the snippet as shipped runs with `java Main.java` too."""
    reason = missing("java")
    if reason:
        skip_noted(reason)
    case = CASES["multipart"]
    snippet = build_snippet(case.spec(server.base_url), case.operation(server.base_url), "java")
    (tmp_path / "Main.java").write_text(snippet, encoding="ascii")
    (tmp_path / "file.bin").write_bytes(FILE_CONTENT)
    case.check(run_and_record(Program(["java", "Main.java"], tmp_path), server), "java")
