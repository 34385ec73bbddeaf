"""The checker on small hand-made specs: OpenAPI 3.0 nullable / readOnly / writeOnly, Swagger 2.0 bodies and form
fields, OpenAPI 3.1 type arrays; reading curl and HTTP; masking; and bounds on hostile specs and pastes."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.checks.contract import RawSpec
from core.checks.operation import check_operation
from core.checks.pasted import form_values, is_check_request, read_pasted, shell_words
from core.checks.schemas import Budget, Outcome, ProblemKind, validate
from core.checks.secrets import shown_request
from core.errors import NothingToCheckError

ITEM = {
    "type": "object",
    "required": ["name", "id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
        "note": {"type": "string", "nullable": True},
        "kind": {"type": "string", "enum": ["a", "b"], "nullable": True},
        "secret": {"type": "string", "writeOnly": True},
        "parent": {"allOf": [{"$ref": "#/components/schemas/Item"}], "nullable": True},
    },
}
OPENAPI_30: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Items", "version": "1"},
    "servers": [{"url": "https://api.items.test/v1"}],
    "components": {
        "schemas": {"Item": ITEM},
        "securitySchemes": {"key": {"type": "apiKey", "in": "query", "name": "api_key"}},
    },
    "security": [{"key": []}],
    "paths": {
        "/items": {
            "post": {
                "operationId": "createItem",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
                },
                "responses": {
                    "201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}
                },
            }
        },
        "/items/{itemId}": {
            "parameters": [{"name": "itemId", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10}},
                    {"name": "X-Trace", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}
                },
            },
        },
    },
}
SWAGGER_2: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Legacy", "version": "1"},
    "host": "legacy.test",
    "basePath": "/api",
    "securityDefinitions": {"basic": {"type": "basic"}},
    "security": [{"basic": []}],
    "definitions": {
        "Thing": {
            "type": "object",
            "required": ["size"],
            "properties": {"size": {"type": "integer", "x-nullable": True, "minimum": 0, "exclusiveMinimum": True}},
        }
    },
    "paths": {
        "/things": {
            "post": {
                "consumes": ["application/json"],
                "parameters": [
                    {"in": "body", "name": "body", "required": True, "schema": {"$ref": "#/definitions/Thing"}}
                ],
                "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Thing"}}},
            }
        },
        "/upload": {
            "post": {
                "consumes": ["multipart/form-data"],
                "parameters": [
                    {"in": "formData", "name": "file", "type": "file", "required": True},
                    {"in": "formData", "name": "mode", "type": "string", "enum": ["fast", "slow"], "required": True},
                    {"in": "query", "name": "tags", "type": "array", "items": {"type": "integer"}},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
}
OPENAPI_31: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "New", "version": "1"},
    "paths": {
        "/notes": {
            "put": {
                "security": [],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["title"],
                                "properties": {
                                    "title": {"type": ["string", "null"], "maxLength": 5},
                                    "kind": {"const": "note"},
                                    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
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


def check(document: dict[str, Any], text: str) -> Outcome:
    spec = RawSpec(document)
    pasted = read_pasted(text)
    if pasted.method:
        match = spec.match_path(pasted.path)
        operation = next(op for op in match.operations if op.method == pasted.method)
        return check_operation(spec, operation, pasted, prefix=match.stripped_prefix)
    operation = spec.by_operation_id(pasted.operation)
    assert operation is not None
    return check_operation(spec, operation, pasted)


def found(outcome: Outcome) -> set[tuple[str, ProblemKind]]:
    return {(p.where, p.kind) for p in outcome.problems}


ITEMS = "https://api.items.test/v1/items"


def test_openapi_30_nullable_and_read_only() -> None:
    valid = check(
        OPENAPI_30, f"""curl {ITEMS}?api_key=k --json '{{"name": "box", "note": null, "kind": null, "parent": null}}'"""
    )
    assert valid.problems == []  # `id` is required but read-only: not asked of a request
    wrong = check(
        OPENAPI_30,
        f"""curl {ITEMS}?api_key=k --json '{{"id": 3, "name": "B", "kind": "c", "extra": 1, "note": 5}}'""",
    )
    assert found(wrong) == {
        ("$.id", ProblemKind.READ_ONLY),
        ("$.name", ProblemKind.BOUNDS),
        ("$.name", ProblemKind.PATTERN),
        ("$.kind", ProblemKind.NOT_IN_ENUM),
        ("$.extra", ProblemKind.UNKNOWN_FIELD),
        ("$.note", ProblemKind.WRONG_TYPE),
    }
    missing = check(OPENAPI_30, f"curl -X POST {ITEMS}?api_key=k -H 'Content-Type: application/json'")
    assert found(missing) == {("body", ProblemKind.MISSING_BODY)}
    no_key = check(OPENAPI_30, f"""curl {ITEMS} --json '{{"name": "box"}}'""")
    assert found(no_key) == {("auth", ProblemKind.MISSING_AUTH)}
    assert "query `api_key`" in no_key.problems[0].text


def test_parameters_headers_and_placeholders() -> None:
    good = check(OPENAPI_30, "GET /v1/items/42?limit=3&api_key=k HTTP/1.1\nHost: api.items.test\nX-Trace: t1\n")
    assert good.problems == []
    bad = check(OPENAPI_30, "curl 'https://api.items.test/v1/items/abc?limit=11&api_key=<key>'")
    assert found(bad) == {
        ("path parameter itemId", ProblemKind.WRONG_TYPE),
        ("query parameter limit", ProblemKind.BOUNDS),
        ("header parameter X-Trace", ProblemKind.MISSING_PARAMETER),
        ("query api_key", ProblemKind.PLACEHOLDER),
    }
    placeholder = check(OPENAPI_30, "curl https://api.items.test/v1/items/:itemId?api_key=k -H 'X-Trace: 1'")
    assert found(placeholder) == {("URL path", ProblemKind.PLACEHOLDER)}


def test_responses_refuse_write_only_fields_and_accept_read_only_ones() -> None:
    valid = check(OPENAPI_30, 'is this response valid for GET /items/{itemId} 200?\n{"id": 1, "name": "box"}')
    assert valid.problems == []
    leaked = check(OPENAPI_30, 'response for GET /items/1 200:\n{"name": "box", "secret": "s3cr3t"}')
    assert found(leaked) == {("$.id", ProblemKind.MISSING_FIELD), ("$.secret", ProblemKind.WRITE_ONLY)}
    named = check(OPENAPI_30, 'createItem\n{"name": "box"}')  # a body with its operationId
    assert named.problems == []


def test_swagger_2_bodies_and_form_fields() -> None:
    valid = check(
        SWAGGER_2,
        """curl -u me:pw https://legacy.test/api/things -H 'Content-Type: application/json' -d '{"size": null}'""",
    )
    assert valid.problems == []  # x-nullable
    zero = check(
        SWAGGER_2,
        """curl -u me:pw https://legacy.test/api/things -H 'Content-Type: application/json' -d '{"size": 0}'""",
    )
    assert found(zero) == {("$.size", ProblemKind.BOUNDS)}  # exclusiveMinimum: true, the draft 4 way
    upload = check(SWAGGER_2, "curl -u me:pw 'https://legacy.test/api/upload?tags=1,x' -F file=@a.png -F mode=medium")
    assert found(upload) == {("$.mode", ProblemKind.NOT_IN_ENUM), ("query parameter tags[1]", ProblemKind.WRONG_TYPE)}
    ok = check(SWAGGER_2, "curl -u me:pw https://legacy.test/api/upload -F file=@a.png -F mode=fast")
    assert ok.problems == []
    as_json = check(
        SWAGGER_2, "curl -u me:pw https://legacy.test/api/upload -H 'Content-Type: application/json' -d '{}'"
    )
    assert ("header Content-Type", ProblemKind.CONTENT_TYPE) in found(as_json)
    no_auth = check(SWAGGER_2, "curl https://legacy.test/api/upload -F file=@a.png -F mode=fast")
    assert found(no_auth) == {("auth", ProblemKind.MISSING_AUTH)}


def test_openapi_31_schemas_as_they_are() -> None:
    assert (
        check(OPENAPI_31, """curl -X PUT https://x.test/notes --json '{"title": null, "kind": "note"}'""").problems
        == []
    )
    wrong = check(
        OPENAPI_31,
        """curl -X PUT https://x.test/notes --json '{"title": "too long", "kind": "memo", "tags": ["a", "a"]}'""",
    )
    assert found(wrong) == {
        ("$.title", ProblemKind.BOUNDS),
        ("$.kind", ProblemKind.NOT_IN_ENUM),
        ("$.tags", ProblemKind.BOUNDS),
    }
    broken = check(OPENAPI_31, """curl -X PUT https://x.test/notes --json '{"title": '""")
    assert found(broken) == {("body", ProblemKind.INVALID_BODY)}


# ---- reading what was pasted ---------------------------------------------------------------------------------


def test_curl_is_read_like_a_shell_without_running_one() -> None:
    words = shell_words("""curl -X POST "https://a.test/x?q=1" \\\n  -H $'X-A: b\\'c' -d 'a b' -d "c\\"d" | jq .""")
    assert words == ["curl", "-X", "POST", "https://a.test/x?q=1", "-H", "X-A: b'c", "-d", "a b", "-d", 'c"d']
    flattened = shell_words("curl -XPOST https://a.test \\ -H 'A: b'")  # a chat app joined the lines
    assert flattened == ["curl", "-XPOST", "https://a.test", "-H", "A: b"]
    pasted = read_pasted(
        "why is this failing?\n```\n$ curl -sS -XPOST https://a.test/p --data-urlencode 'q=a b' -b 'sid=1'\n```"
    )
    assert (pasted.method, pasted.path, pasted.form, pasted.cookies) == ("POST", "/p", (("q", "a b"),), (("sid", "1"),))
    get = read_pasted("curl -G https://a.test/s -d q=1 -d r=2")
    assert (get.method, get.query, get.body) == ("GET", (("q", "1"), ("r", "2")), None)


def test_form_bracket_notation() -> None:
    pairs = (
        ("metadata[a]", "1"),
        ("expand[]", "x"),
        ("expand[]", "y"),
        ("items[1][price]", "p"),
        ("items[0][qty]", "2"),
    )
    assert form_values(pairs) == {
        "metadata": {"a": "1"},
        "expand": ["x", "y"],
        "items": [{"qty": "2"}, {"price": "p"}],
    }


def test_questions_that_carry_a_request() -> None:
    assert is_check_request("why is this request failing? curl -X POST https://a.test/pet -d 'x=1'")
    assert is_check_request('is this response valid for GET /pet/{petId} 200?\n{"id": 1}')
    assert is_check_request("this fails with 400:\nPOST /pet HTTP/1.1\nContent-Type: application/json\n\n{}")
    assert not is_check_request("give me a curl for creating a pet")
    assert not is_check_request("why does GET /pets return 404?")
    with pytest.raises(NothingToCheckError):
        read_pasted("hello there")


def test_secrets_are_masked_in_what_is_shown() -> None:
    secrets = ["sk_live_abcdefghijklmnop", "hunter2", "xoxb-1-2-abc", "tok3n-value", "c00kie", "pa55"]
    pasted = read_pasted(
        "curl -u sk_live_abcdefghijklmnop:hunter2 'https://me:pa55@a.test/x?access_token=tok3n-value&page=2' "
        "-H 'Authorization: Bearer xoxb-1-2-abc' -H 'X-Api-Key: tok3n-value' -b 'session=c00kie' "
        """--json '{"user": "ann", "password": "hunter2"}'"""
    )
    shown = shown_request(pasted)
    assert not any(secret in shown for secret in secrets), shown
    assert "page=2" in shown and '"user": "ann"' in shown and "Bearer [masked]" in shown


# ---- bounds --------------------------------------------------------------------------------------------------

EVIL_PATTERNS = st.sampled_from([r"^(a+)+$", r"^(a|aa)+$", r"(x+x+)+y", r"^(([a-z])+.)+[A-Z]([a-z])+$", r"(\w*)*$"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=EVIL_PATTERNS, length=st.integers(20, 5000), tail=st.sampled_from(["!", "b", "1", "A"]))
def test_a_spec_regex_never_hangs_a_check(pattern: str, length: int, tail: str) -> None:
    outcome = Outcome()
    started = time.monotonic()
    value = {"a": ("a" * length) + tail, "b": [("x" * length) + tail] * 20}
    schema = {
        "properties": {"a": {"pattern": pattern}, "b": {"items": {"pattern": pattern}}},
        "patternProperties": {pattern: {"type": "string"}},
        "additionalProperties": False,
    }
    validate(value, schema, direction="request", where="$", outcome=outcome)
    assert time.monotonic() - started < 5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(5, 40), width=st.integers(2, 6))
def test_nested_alternatives_stop_at_the_deadline(depth: int, width: int) -> None:
    # Each level offers `width` alternatives that all look inside the same value: work grows as width ** depth.
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        schema = {"anyOf": [{"items": schema, "minItems": n} for n in range(width)]}
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    outcome = Outcome()
    started, cpu_started = time.monotonic(), time.thread_time()
    validate(value, schema, direction="request", where="$", outcome=outcome, budget=Budget(seconds=0.3))
    elapsed, cpu = time.monotonic() - started, time.thread_time() - cpu_started
    # The work done is bounded by the 0.3 s budget: this thread's CPU time says so whatever else the shared machine
    # runs (wall time stretched to 3.7 s once under load, with the budget honoured). Wall time only must not hang.
    assert cpu < 3
    assert elapsed < 30
    if elapsed > 0.3:
        assert any("took longer" in note for note in outcome.notes)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("curl -XHd'\"\\$ \n{}[]/:?=&@<>|;`abc0")), max_size=3000))
def test_reading_any_paste_is_bounded(text: str) -> None:
    started = time.monotonic()
    with contextlib.suppress(NothingToCheckError):
        read_pasted(text)
    is_check_request(text)
    shell_words(text)
    assert time.monotonic() - started < 2


def test_worst_case_pastes_are_linear() -> None:
    for text in (
        "curl " + "'" * 20_000,
        "curl " + "\\" * 20_000,
        "curl " + "$'" * 10_000,
        "POST /" + "{a}/" * 5_000,
        "check " + "{" * 20_000,
        "curl -d " + "a[" * 10_000 + "=1 https://a.test",
        "curl " + "-H a:b " * 3_000,
    ):
        started = time.monotonic()
        try:
            pasted = read_pasted(text)
            shown_request(pasted)
        except NothingToCheckError:
            pass
        is_check_request(text)
        assert time.monotonic() - started < 2, text[:40]


def test_self_referencing_and_huge_schemas_are_bounded() -> None:
    document: dict[str, Any] = {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "components": {
            "schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"allOf": [{"$ref": "#/components/schemas/A"}]}}
        },
        "paths": {
            "/a": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
                }
            }
        },
    }
    outcome = check(document, "curl https://x.test/a --json '{}'")
    assert outcome.problems == [] and outcome.notes  # said it could not check, never hung or crashed
