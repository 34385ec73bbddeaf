"""The model survives storage: what `to_dict` writes, `from_dict` reads back, including documents written
by earlier versions, which lack fields added since."""

from __future__ import annotations

import json
import pickle

from core.documents import Document, build_documents
from core.models import (
    ApiSpec,
    ItemKind,
    Operation,
    SchemaField,
    SecurityRequirement,
    ValueType,
    from_dict,
    to_dict,
    value_type_from_label,
)
from core.parsing.openapi import parse_openapi
from core.snippets import build_snippet

SHOP = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "servers": [{"url": "https://shop.example.com"}],
    "paths": {
        "/orders/{id}": {
            "post": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "notify", "in": "query", "required": True, "schema": {"type": "boolean"}},
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["count", "lines", "metadata", "receipt", "source"],
                                "properties": {
                                    "count": {"type": "integer"},
                                    "lines": {"type": "array", "items": {"type": "integer"}},
                                    "metadata": {
                                        "anyOf": [
                                            {"type": "object", "additionalProperties": {"type": "string"}},
                                            {"type": "string"},
                                        ]
                                    },
                                    "receipt": {"type": "string", "format": "binary"},
                                    "source": {"oneOf": [{"type": "number"}, {"type": "null"}]},
                                },
                            }
                        }
                    }
                },
                "responses": {"204": {"description": "done"}},
            }
        }
    },
}

# `Document.to_payload()` of SHOP's operation as stored before fields and parameters had a `value_type`.
STORED_BEFORE_VALUE_TYPES = (
    '{"key":"op:POST /orders/{id}","kind":"operation","title":"POST /orders/{id}","embed_text":"POST /ord'
    'ers/{id} (orders)","lexical_text":"POST\\n/orders/{id}\\norders\\nid notify\\ncount lines metadata recei'
    'pt source","identifiers":["/orders/{id}","orders/{id}"],"operation":{"kind":"operation","method":"PO'
    'ST","path":"/orders/{id}","operation_id":"","summary":"","description":"","tags":[],"parameters":[{"'
    'name":"id","location":"path","required":true,"type":"integer","description":"","enum":[],"example":n'
    'ull},{"name":"notify","location":"query","required":true,"type":"boolean","description":"","enum":[]'
    ',"example":null}],"request_body":{"content_type":"application/json","fields":[{"name":"count","type"'
    ':"integer","required":true,"description":"","enum":[],"example":null},{"name":"lines","type":"array<'
    'integer>","required":true,"description":"","enum":[],"example":null},{"name":"metadata","type":"anyO'
    'f(map<string, string> | string)","required":true,"description":"","enum":[],"example":null},{"name":'
    '"receipt","type":"string (binary)","required":true,"description":"","enum":[],"example":null},{"name'
    '":"source","type":"number|null","required":true,"description":"","enum":[],"example":null}],"require'
    'd":false,"description":"","example":null},"responses":[{"status":"204","description":"done","fields"'
    ':[]}],"security":null,"deprecated":false,"servers":[],"name":"","folder":"","url":"","graphql_type":'
    '"","graphql_signature":"","graphql_document":""},"scheme":null,"item":{"kind":"operation","method":"'
    'POST","path":"/orders/{id}"}}'
)

# What snippets said for it then.
SNIPPET_THEN = """# POST /orders/{id}

import httpx

response = httpx.post(
    "https://shop.example.com/orders/ID",
    params={"notify": "true"},
    json={"count": 0, "lines": [0], "metadata": {}, "receipt": "<receipt>", "source": 0},
)
response.raise_for_status()
print(response.status_code)
"""


def _shop() -> ApiSpec:
    return parse_openapi(json.loads(json.dumps(SHOP)))


def test_a_document_stored_before_value_types_loads_and_gives_the_same_snippets() -> None:
    assert "value_type" not in STORED_BEFORE_VALUE_TYPES
    stored = Document.from_payload(STORED_BEFORE_VALUE_TYPES)
    assert stored.operation is not None and stored.operation.request_body is not None
    types = {f.name: f.value_type for f in stored.operation.request_body.fields}
    assert types == {
        "count": ValueType(("integer",)),
        "lines": ValueType(("array",), ("integer",)),
        "metadata": ValueType(("map",)),
        "receipt": ValueType(("string",), binary=True),
        "source": ValueType(("number",)),
    }
    assert [p.value_type for p in stored.operation.parameters] == [ValueType(("integer",)), ValueType(("boolean",))]
    spec = _shop()
    assert build_snippet(spec, stored.operation, "python") == SNIPPET_THEN
    fresh = next(d for d in build_documents(spec) if d.operation is not None)
    assert fresh.operation is not None
    for language in ("curl", "python", "javascript"):
        assert build_snippet(spec, stored.operation, language) == build_snippet(spec, fresh.operation, language)


def test_documents_written_now_keep_their_value_types() -> None:
    spec = _shop()
    for document in build_documents(spec):
        payload = document.to_payload()
        again = Document.from_payload(payload)
        assert again == document
        assert again.to_payload() == payload
    operation = spec.operations[0]
    assert operation.request_body is not None
    stored = json.loads(json.dumps(to_dict(operation)))
    assert stored["request_body"]["fields"][1]["value_type"] == {
        "types": ["array"],
        "items": ["integer"],
        "binary": False,
    }
    assert from_dict(Operation, stored) == operation
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_a_stored_value_type_wins_over_the_label() -> None:
    # Only fields stored without one have their type read from the label.
    stored = {"name": "n", "type": "integer", "value_type": {"types": ["string"], "items": [], "binary": False}}
    assert from_dict(SchemaField, stored).value_type == ValueType(("string",))
    assert from_dict(SchemaField, {"name": "n", "type": "integer"}).value_type == ValueType(("integer",))
    assert from_dict(SchemaField, {"name": "n"}).value_type == ValueType(("string",))


def test_labels_of_stored_fields_read_as_snippets_used_to_read_them() -> None:
    cases = {
        "integer": ValueType(("integer",)),
        "string|null": ValueType(("string",)),
        "null": ValueType(("string",)),
        "Int!": ValueType(("int",)),
        "anyOf(object (Card) | string)": ValueType(("object",)),
        "oneOf(anyOf(integer | string) | null)": ValueType(("integer",)),
        "oneOf(array<integer> | string)": ValueType(("array",), ("integer",)),
        "array<array<integer>>": ValueType(("array",), ("array",)),
        "array<object (recursive: Node)>": ValueType(("array",), ("object",)),
        "map<string, string (binary)>": ValueType(("map",), binary=True),
        "[ID!]!": ValueType(("array",), ("id",)),
        "string[]": ValueType(("array",), ("string",)),
        "file": ValueType(("file",), binary=True),
        "": ValueType(("string",)),
    }
    assert {label: value_type_from_label(label) for label in cases} == cases


# An operation and a spec header as stored before security requirements kept their scopes: each requirement
# was only its scheme's name.
STORED_BEFORE_SCOPES_OPERATION = {
    "kind": "operation",
    "method": "POST",
    "path": "/chat.postMessage",
    "security": [["slackAuth"], ["botAuth", "teamAuth"]],
}
STORED_BEFORE_SCOPES_HEADER = {
    "format": "swagger2",
    "title": "Slack Web API",
    "security_schemes": [{"name": "slackAuth", "type": "oauth2", "scopes": ["chat:write:bot"]}],
    "security": [["slackAuth"]],
}


def test_security_stored_before_scopes_loads_as_requirements_without_scopes() -> None:
    operation = from_dict(Operation, STORED_BEFORE_SCOPES_OPERATION)
    assert operation.security == (
        (SecurityRequirement("slackAuth"),),
        (SecurityRequirement("botAuth"), SecurityRequirement("teamAuth")),
    )
    header = from_dict(ApiSpec, STORED_BEFORE_SCOPES_HEADER)
    assert header.security == ((SecurityRequirement("slackAuth"),),)
    assert header.effective_security(Operation(kind=ItemKind.OPERATION, method="GET", path="/x")) == header.security
    # Stored `null` (the spec's default) and `[]` (no auth) keep their meanings.
    assert from_dict(Operation, {"kind": "operation", "security": None}).security is None
    assert from_dict(Operation, {"kind": "operation", "security": []}).security == ()


def test_security_with_scopes_survives_storage_and_pickling() -> None:
    spec = parse_openapi(
        {
            "openapi": "3.0.3",
            "info": {"title": "Chat", "version": "1"},
            "components": {"securitySchemes": {"oauth": {"type": "oauth2", "flows": {}}, "key": {"type": "apiKey"}}},
            "security": [{"key": []}],
            "paths": {
                "/post": {"post": {"security": [{"oauth": ["chat:write", "chat:write"]}, {}], "responses": {}}},
                "/open": {"get": {"security": [], "responses": {}}},
                "/default": {"get": {"responses": {}}},
            },
        }
    )
    post = next(op for op in spec.operations if op.path == "/post")
    assert post.security == ((SecurityRequirement("oauth", ("chat:write",)),), ())  # repeated scopes once
    for document in build_documents(spec):
        assert Document.from_payload(document.to_payload()) == document
    assert from_dict(ApiSpec, json.loads(json.dumps(to_dict(spec)))) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
