"""OpenAPI 3.0 / 3.1 and Swagger 2.0 parsing: hand-written traps first, then the real specs."""

from __future__ import annotations

import datetime as dt
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.documents import build_documents
from core.errors import InvalidSpecError
from core.models import ApiSpec, ItemKind, Operation, SchemaField, SpecFormat, ValueType
from core.models import SecurityRequirement as Req
from core.parsing.openapi import parse_openapi
from core.parsing.refs import RefResolver, ref_name
from core.parsing.schema import MAX_FIELD_DEPTH, MAX_FIELDS

# ---------------------------------------------------------------------------------------------- helpers


def spec3(paths: dict[str, Any], schemas: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": paths}
    if schemas is not None:
        document["components"] = {"schemas": schemas}
    document.update(top)
    return document


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def ok_json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": "OK", **json_body(schema)}}


def op(spec: ApiSpec, method: str, path: str) -> Operation:
    return next(o for o in spec.operations if o.method == method and o.path == path)


def fields_by_name(fields: tuple[SchemaField, ...]) -> dict[str, SchemaField]:
    return {f.name: f for f in fields}


def body_fields(operation: Operation) -> dict[str, SchemaField]:
    assert operation.request_body is not None
    return fields_by_name(operation.request_body.fields)


def response_fields(operation: Operation, status: str = "200") -> dict[str, SchemaField]:
    return fields_by_name(next(r for r in operation.responses if r.status == status).fields)


# ---------------------------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    "document",
    [{"foo": 1}, {"openapi": "4.0.0", "paths": {}}, {"swagger": "1.2", "paths": {}}],
)
def test_rejects_documents_that_are_not_openapi_3_or_swagger_2(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_openapi(document)
    assert "OpenAPI" in raised.value.user_message or "Swagger" in raised.value.user_message


def test_rejects_a_non_mapping_document() -> None:
    with pytest.raises(InvalidSpecError):
        parse_openapi(["openapi", "3.0.0"])  # type: ignore[arg-type]


def test_basic_operation_and_spec_fields() -> None:
    document = spec3(
        {
            "/pets/{id}": {
                "get": {
                    "operationId": "getPet",
                    "summary": "Get a pet",
                    "description": "<p>Returns <code>one</code> pet.</p>",
                    "tags": ["pets"],
                    "responses": {"200": {"description": "OK"}},
                },
                "x-internal": {"not": "an operation"},
                "summary": "path summary is not an operation",
            }
        },
        servers=[{"url": "https://{region}.example.com/v1", "variables": {"region": {"default": "eu"}}}],
    )
    document["info"]["description"] = "<b>Pets</b> API " + "x " * 3000
    spec = parse_openapi(document)
    assert spec.format is SpecFormat.OPENAPI3
    assert spec.format_version == "3.0.3"
    assert (spec.title, spec.version) == ("T", "1")
    assert spec.description.startswith("Pets API")
    assert len(spec.description) <= 2000
    assert spec.servers == ("https://eu.example.com/v1",)
    (operation,) = spec.operations
    assert operation.kind is ItemKind.OPERATION
    assert (operation.method, operation.path, operation.operation_id) == ("GET", "/pets/{id}", "getPet")
    assert operation.summary == "Get a pet"
    assert operation.description == "Returns `one` pet."
    assert operation.tags == ("pets",)
    assert operation.security is None
    assert operation.deprecated is False


def test_yaml_scalars_are_coerced_to_strings() -> None:
    # What unquoted YAML gives: `openapi: 3.0`, `version: 2023-08-16`, `200:` as an int key.
    document = {
        "openapi": 3.0,
        "info": {"title": "T", "version": dt.date(2023, 8, 16)},
        "paths": {
            "/x": {
                "get": {
                    "operationId": 12,
                    "tags": [2024],
                    "responses": {200: {"description": "OK", **json_body({"type": "object"})}},
                }
            }
        },
    }
    spec = parse_openapi(document)
    assert spec.format_version == "3.0"
    assert spec.version == "2023-08-16"
    operation = spec.operations[0]
    assert operation.operation_id == "12"
    assert operation.tags == ("2024",)
    assert operation.responses[0].status == "200"


# ---------------------------------------------------------------------------------------------- schemas


def test_openapi_31_type_arrays_and_const() -> None:
    document = spec3(
        {
            "/things": {
                "post": {
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "required": ["kind"],
                            "properties": {
                                "kind": {"type": "string", "const": "thing"},
                                "count": {"type": ["integer", "null"]},
                                "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                                "level": {"type": "integer", "oneOf": [{"const": 1}, {"const": 2}]},
                                "parent": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Ref"}]},
                            },
                        }
                    ),
                    "responses": {"204": {"description": "done"}},
                }
            }
        },
        {"Ref": {"type": "object", "properties": {"id": {"type": "string"}}}},
        openapi="3.1.0",
    )
    fields = body_fields(parse_openapi(document).operations[0])
    assert fields["kind"].type == "const 'thing'"
    assert fields["kind"].enum == ("thing",)
    assert fields["kind"].required is True
    assert fields["count"].type == "integer|null"
    assert fields["tags"].type == "array<string>|null"
    assert fields["level"].type == "integer"  # a oneOf of consts is an enum
    assert fields["level"].enum == ("1", "2")
    assert fields["parent"].type == "object (Ref)|null"
    assert "parent.id" in fields



def test_fields_and_parameters_carry_their_types_beside_the_labels() -> None:
    # Labels are for people; snippets read `value_type`, which says the same thing in structure.
    document = spec3(
        {
            "/things/{id}": {
                "post": {
                    "parameters": [
                        {"name": "id", "in": "path", "schema": {"type": "integer"}},
                        {"name": "expand", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                    ],
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "properties": {
                                "kind": {"type": "string", "const": "thing"},
                                "size": {"const": 3},
                                "count": {"type": ["integer", "null"]},
                                "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                                "grid": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                                "level": {"type": "integer", "oneOf": [{"const": 1}, {"const": 2}]},
                                "parent": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Ref"}]},
                                "source": {"anyOf": [{"type": "object"}, {"type": "string"}]},
                                "ids": {"oneOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "string"}]},
                                "nested": {"anyOf": [{"oneOf": [{"type": "number"}, {"type": "string"}]}, {}]},
                                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                                "upload": {"type": "string", "format": "binary"},
                                "uploads": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                "blob": {"format": "binary"},
                                "anything": {},
                                "self": {"$ref": "#/components/schemas/Loop"},
                            },
                        }
                    ),
                    "responses": {"204": {"description": "done"}},
                }
            }
        },
        {
            "Ref": {"type": "object", "properties": {"id": {"type": "string"}}},
            "Loop": {"type": "object", "properties": {"again": {"$ref": "#/components/schemas/Loop"}}},
        },
        openapi="3.1.0",
    )
    operation = parse_openapi(document).operations[0]
    fields = body_fields(operation)
    expected = {
        "kind": ("const 'thing'", ValueType(("string",))),
        "size": ("const 3", ValueType(("integer",))),
        "count": ("integer|null", ValueType(("integer", "null"))),
        "tags": ("array<string>|null", ValueType(("array", "null"), ("string",))),
        "grid": ("array<array<integer>>", ValueType(("array",), ("array",))),
        "level": ("integer", ValueType(("integer",))),
        "parent": ("object (Ref)|null", ValueType(("object", "null"))),
        "source": ("anyOf(object | string)", ValueType(("object", "string"))),
        "ids": ("oneOf(array<integer> | string)", ValueType(("array", "string"), ("integer",))),
        "nested": ("anyOf(oneOf(number | string) | any)", ValueType(("number", "string"))),
        "metadata": ("map<string, string>", ValueType(("object",))),
        "upload": ("string (binary)", ValueType(("string",), binary=True)),
        "uploads": ("array<string (binary)>", ValueType(("array",), ("string",), binary=True)),
        "blob": ("file", ValueType(binary=True)),
        "anything": ("any", ValueType()),
        "self": ("object (Loop)", ValueType(("object",))),
        "self.again": ("object (recursive: Loop)", ValueType(("object",))),
    }
    assert {name: (f.type, f.value_type) for name, f in fields.items() if name in expected} == expected
    assert fields["parent"].value_type.primary == "object"
    assert ValueType(("null", "string")).primary == "string" and ValueType().primary == ""
    id_param, expand = operation.parameters
    assert (id_param.type, id_param.value_type) == ("integer", ValueType(("integer",)))
    assert (expand.type, expand.value_type) == ("array<string>", ValueType(("array",), ("string",)))

def test_ref_with_sibling_description_keeps_the_sibling() -> None:
    document = spec3(
        {
            "/users": {
                "get": {
                    "responses": ok_json(
                        {
                            "type": "object",
                            "properties": {
                                "owner": {
                                    "$ref": "#/components/schemas/User",
                                    "description": "The owner of the thing. More words.",
                                },
                                "author": {"$ref": "#/components/schemas/User"},
                            },
                        }
                    )
                }
            }
        },
        {"User": {"type": "object", "description": "A user.", "properties": {"id": {"type": "string"}}}},
        openapi="3.1.0",
    )
    fields = response_fields(parse_openapi(document).operations[0])
    assert fields["owner"].description == "The owner of the thing."
    assert fields["owner"].type == "object (User)"
    assert fields["author"].description == "A user."
    assert fields["owner.id"].type == "string"


def test_all_of_merges_properties_and_required() -> None:
    document = spec3(
        {
            "/pets": {
                "post": {
                    "requestBody": json_body(
                        {
                            "allOf": [
                                {"$ref": "#/components/schemas/Base"},
                                {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}},
                                },
                            ]
                        }
                    ),
                    "responses": {"201": {"description": "created"}},
                }
            }
        },
        {
            "Base": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "integer"}, "note": {"type": "string"}},
            }
        },
    )
    fields = body_fields(parse_openapi(document).operations[0])
    assert list(fields) == ["id", "note", "name"]
    assert fields["id"].required and fields["name"].required and not fields["note"].required


def test_one_of_takes_the_first_object_alternative() -> None:
    document = spec3(
        {
            "/pay": {
                "post": {
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "properties": {
                                "source": {
                                    "anyOf": [
                                        {"type": "string"},
                                        {"$ref": "#/components/schemas/Card"},
                                        {"$ref": "#/components/schemas/Bank"},
                                    ],
                                    "nullable": True,
                                }
                            },
                        }
                    ),
                    "responses": {"204": {"description": "ok"}},
                }
            }
        },
        {
            "Card": {"type": "object", "properties": {"number": {"type": "string"}}},
            "Bank": {"type": "object", "properties": {"iban": {"type": "string"}}},
        },
    )
    fields = body_fields(parse_openapi(document).operations[0])
    assert fields["source"].type == "anyOf(string | object (Card) | object (Bank) | null)"
    assert "source.number" in fields
    assert "source.iban" not in fields


def test_arrays_maps_enums_and_examples() -> None:
    document = spec3(
        {
            "/orders": {
                "post": {
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {"sku": {"type": "string", "example": "A-1"}},
                                    },
                                },
                                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                                "status": {"type": "string", "enum": [f"s{i}" for i in range(30)]},
                                "flag": {"type": "boolean", "example": True},
                                "upload": {"type": "string", "format": "binary"},
                            },
                        }
                    ),
                    "responses": {"204": {"description": "ok"}},
                }
            }
        }
    )
    fields = body_fields(parse_openapi(document).operations[0])
    assert fields["items"].type == "array<object>"
    assert fields["items[].sku"].example == "A-1"
    assert fields["metadata"].type == "map<string, string>"
    assert len(fields["status"].enum) == 20
    assert fields["flag"].example == "true"
    assert fields["upload"].type == "string (binary)"


def field_depth(name: str) -> int:
    """Property levels in a flattened name: `[]` (a root array) and `*` (map keys) are not levels."""
    return sum(1 for part in name.replace("[]", "").split(".") if part not in ("", "*"))


def test_fields_are_bounded_in_depth_and_count_and_top_level_fields_survive() -> None:
    def chain(depth: int) -> dict[str, Any]:
        if depth == 0:
            return {"type": "string"}
        return {"type": "object", "properties": {f"l{depth}": chain(depth - 1)}}

    wide = {f"f{i:03d}": {"type": "object", "properties": {"x": {"type": "string"}}} for i in range(50)}
    document = spec3(
        {
            "/deep": {"post": {"requestBody": json_body(chain(10)), "responses": {}}},
            "/wide": {
                "post": {
                    "requestBody": json_body(
                        {"type": "object", "properties": {"first": chain(5), **wide, "last": {"type": "string"}}}
                    ),
                    "responses": {},
                }
            },
        }
    )
    spec = parse_openapi(document)
    deep = op(spec, "POST", "/deep").request_body
    assert deep is not None
    assert [f.name for f in deep.fields] == ["l10", "l10.l9", "l10.l9.l8"]
    wide_body = op(spec, "POST", "/wide").request_body
    assert wide_body is not None
    names = [f.name for f in wide_body.fields]
    assert len(names) == MAX_FIELDS
    # breadth-first selection: all 52 top-level fields, then 8 second-level ones ...
    assert sum(1 for n in names if "." not in n) == 52
    assert "last" in names
    assert "first.l5.l4" not in names
    # ... shown in tree order: a parent, then its children
    assert names[:3] == ["first", "first.l5", "f000"]
    assert names[3] == "f000.x"


# ---------------------------------------------------------------------------------------------- cycles


def test_self_referencing_schema_terminates_and_is_marked_recursive() -> None:
    document = spec3(
        {"/nodes": {"get": {"responses": ok_json({"$ref": "#/components/schemas/Node"})}}},
        {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "parent": {"$ref": "#/components/schemas/Node"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                },
            }
        },
    )
    fields = response_fields(parse_openapi(document).operations[0])
    assert list(fields) == ["name", "parent", "children"]
    assert fields["parent"].type == "object (recursive: Node)"
    assert fields["children"].type == "array<object (recursive: Node)>"


def test_mutual_cycle_terminates() -> None:
    document = spec3(
        {"/a": {"get": {"responses": ok_json({"$ref": "#/components/schemas/A"})}}},
        {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
            "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}, "n": {"type": "integer"}}},
        },
    )
    fields = response_fields(parse_openapi(document).operations[0])
    assert fields["b"].type == "object (B)"
    assert fields["b.a"].type == "object (recursive: A)"
    assert fields["b.n"].type == "integer"
    assert "b.a.b" not in fields


def test_cycles_through_items_all_of_and_one_of_terminate() -> None:
    document = spec3(
        {
            "/t": {"get": {"responses": ok_json({"$ref": "#/components/schemas/Tree"})}},
            "/l": {"get": {"responses": ok_json({"$ref": "#/components/schemas/Loop"})}},
            "/e": {"get": {"responses": ok_json({"$ref": "#/components/schemas/Err"})}},
        },
        {
            "Tree": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
            "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop2"}, {"properties": {"x": {"type": "string"}}}]},
            "Loop2": {"allOf": [{"$ref": "#/components/schemas/Loop"}]},
            # Discord's ErrorDetails: a oneOf whose first member maps to itself
            "Err": {
                "oneOf": [
                    {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Err"}},
                    {"type": "object", "properties": {"code": {"type": "string"}}},
                ]
            },
        },
    )
    spec = parse_openapi(document)
    assert len(spec.operations) == 3
    assert op(spec, "GET", "/t").responses[0].fields == ()  # arrays all the way down: no named fields
    assert "x" in response_fields(op(spec, "GET", "/l"))
    err = response_fields(op(spec, "GET", "/e"))
    assert list(err) == ["code"]  # the map alternative has no fields; the first with properties is used


def test_array_of_itself_is_labelled_recursive() -> None:
    document = spec3(
        {"/t": {"get": {"responses": ok_json({"properties": {"tree": {"$ref": "#/components/schemas/Tree"}}})}}},
        {"Tree": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}},
    )
    fields = response_fields(parse_openapi(document).operations[0])
    assert fields["tree"].type == "array<object (recursive: Tree)>"


def test_yaml_alias_that_contains_itself_terminates() -> None:
    node: dict[str, Any] = {"type": "array"}
    node["items"] = node  # what `&a {type: array, items: *a}` loads to
    tree: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}}
    tree["properties"]["child"] = tree
    document = spec3({"/a": {"get": {"responses": ok_json({"properties": {"list": node, "tree": tree}})}}})
    fields = response_fields(parse_openapi(document).operations[0])
    assert fields["list"].type.startswith("array<")
    assert "tree.child.name" in fields


# ---------------------------------------------------------------------------------------------- refs


def test_external_ref_is_rejected_without_fetching() -> None:
    document = spec3(
        {"/a": {"get": {"responses": ok_json({"$ref": "https://example.com/schemas.yaml#/Pet"})}}},
    )
    with pytest.raises(InvalidSpecError) as raised:
        parse_openapi(document)
    message = raised.value.user_message
    assert "https://example.com/schemas.yaml#/Pet" in message
    assert "never fetched" in message
    assert "redocly bundle" in message


def test_relative_file_ref_is_rejected() -> None:
    document = spec3({"/a": {"get": {"parameters": [{"$ref": "./params.yaml#/limit"}], "responses": {}}}})
    with pytest.raises(InvalidSpecError, match="external reference"):
        parse_openapi(document)


def test_broken_ref_names_the_ref_and_where_it_is_used() -> None:
    document = spec3(
        {"/a": {"get": {"responses": ok_json({"$ref": "#/components/schemas/Missing"})}}},
        {"Present": {"type": "object"}},
    )
    with pytest.raises(InvalidSpecError) as raised:
        parse_openapi(document)
    message = raised.value.user_message
    assert "#/components/schemas/Missing" in message
    assert "#/paths/~1a/get/responses/200/content/application~1json/schema" in message


def test_refs_in_examples_and_extensions_are_data_not_references() -> None:
    document = spec3(
        {
            "/a": {
                "get": {
                    "x-vendor": {"$ref": "https://vendor.example.com/thing"},
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "properties": {"example": {"type": "string"}}},
                                    "example": {"$ref": "http://example.com/not-a-ref"},
                                }
                            },
                        }
                    },
                }
            }
        }
    )
    assert "example" in response_fields(parse_openapi(document).operations[0])


def test_a_bad_ref_inside_examples_only_loses_the_example() -> None:
    media = {"schema": {"type": "object"}, "examples": {"one": {"$ref": "#/components/examples/missing"}}}
    document = spec3({"/a": {"post": {"requestBody": {"content": {"application/json": media}}, "responses": {}}}})
    spec = parse_openapi(document)
    body = spec.operations[0].request_body
    assert body is not None and body.example is None
    assert spec.warnings


def test_resolver_handles_pointer_escapes_and_reports_recursion() -> None:
    document: dict[str, Any] = {
        "components": {
            "schemas": {"a/b": {"type": "string"}, "t~x": {"type": "integer"}, "sp ace": {"type": "boolean"}}
        }
    }
    resolver = RefResolver(document)
    resolver.check_refs()
    assert resolver.resolve("#/components/schemas/a~1b") == {"type": "string"}
    assert resolver.resolve("#/components/schemas/t~0x") == {"type": "integer"}
    assert resolver.resolve("#/components/schemas/sp%20ace") == {"type": "boolean"}
    assert ref_name("#/components/schemas/a~1b") == "a/b"
    followed = resolver.follow({"$ref": "#/components/schemas/a~1b"})
    assert (followed.node, followed.name, followed.recursive) == ({"type": "string"}, "a/b", False)
    again = resolver.follow({"$ref": "#/components/schemas/a~1b"}, chain=("#/components/schemas/a~1b",))
    assert again.recursive and again.node == {}
    with pytest.raises(InvalidSpecError, match="broken reference"):
        resolver.resolve("#/components/schemas/nope")


def test_ref_alias_loop_is_a_warning_not_a_hang() -> None:
    document = spec3(
        {"/a": {"get": {"responses": ok_json({"$ref": "#/components/schemas/X"})}}},
        {"X": {"$ref": "#/components/schemas/Y"}, "Y": {"$ref": "#/components/schemas/X"}},
    )
    spec = parse_openapi(document)
    assert spec.operations[0].responses[0].fields == ()
    assert any("loop" in w for w in spec.warnings)


def test_parameters_bodies_responses_and_schemes_can_be_refs() -> None:
    document = spec3(
        {
            "/pets": {
                "post": {
                    "parameters": [{"$ref": "#/components/parameters/Limit"}],
                    "requestBody": {"$ref": "#/components/requestBodies/NewPet"},
                    "responses": {"201": {"$ref": "#/components/responses/Created"}},
                }
            }
        }
    )
    document["components"] = {
        "parameters": {"Limit": {"name": "limit", "in": "query", "schema": {"type": "integer"}, "example": 5}},
        "requestBodies": {"NewPet": {"required": True, **json_body({"properties": {"name": {"type": "string"}}})}},
        "responses": {
            "Created": {"description": "Created it", **json_body({"properties": {"id": {"type": "string"}}})}
        },
        "securitySchemes": {"Key": {"$ref": "#/components/x-schemes/Key"}},
        "x-schemes": {"Key": {"type": "apiKey", "in": "header", "name": "X-Key"}},
    }
    spec = parse_openapi(document)
    operation = spec.operations[0]
    (limit,) = operation.parameters
    assert (limit.name, limit.location, limit.type, limit.example) == ("limit", "query", "integer", "5")
    assert operation.request_body is not None and operation.request_body.required
    assert "name" in body_fields(operation)
    assert operation.responses[0].description == "Created it"
    assert "id" in response_fields(operation, "201")
    key = spec.scheme("Key")
    assert key is not None and (key.type, key.location, key.param_name) == ("apiKey", "header", "X-Key")


# ---------------------------------------------------------------------------------------------- operations


def test_path_level_parameters_are_merged_and_overridden() -> None:
    document = spec3(
        {
            "/guilds/{guild_id}/members": {
                "parameters": [
                    {"name": "guild_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "description": "path-level", "schema": {"type": "integer"}},
                ],
                "get": {
                    "parameters": [
                        {"name": "limit", "in": "query", "description": "op-level", "schema": {"type": "string"}},
                        {"name": "after", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {},
                },
                "delete": {"responses": {}},
            }
        }
    )
    spec = parse_openapi(document)
    get = op(spec, "GET", "/guilds/{guild_id}/members")
    assert [(p.name, p.location) for p in get.parameters] == [
        ("guild_id", "path"),
        ("limit", "query"),
        ("after", "query"),
    ]
    limit = get.parameters[1]
    assert (limit.description, limit.type) == ("op-level", "string")
    assert get.parameters[0].required
    delete = op(spec, "DELETE", "/guilds/{guild_id}/members")
    assert [p.name for p in delete.parameters] == ["guild_id", "limit"]


def test_path_level_servers_and_operation_servers() -> None:
    document = spec3(
        {
            "/a": {"servers": [{"url": "https://path.example.com"}], "get": {"responses": {}}},
            "/b": {
                "servers": [{"url": "https://path.example.com"}],
                "get": {"servers": [{"url": "https://op.example.com"}], "responses": {}},
            },
            "/c": {"get": {"responses": {}}},
        },
        servers=[{"url": "https://api.example.com"}],
    )
    spec = parse_openapi(document)
    assert op(spec, "GET", "/a").servers == ("https://path.example.com",)
    assert op(spec, "GET", "/b").servers == ("https://op.example.com",)
    assert op(spec, "GET", "/c").servers == ()
    assert spec.base_url(op(spec, "GET", "/c")) == "https://api.example.com"


def test_credentials_in_server_urls_are_dropped() -> None:
    document = spec3(
        {"/a": {"servers": [{"url": "https://ada:s3cr3t@path.example.com/v1"}], "get": {"responses": {}}}},
        servers=[{"url": "https://{user}:{password}@api.example.com", "variables": {"password": {"default": "pw"}}}],
    )
    spec = parse_openapi(document)
    assert spec.servers == ("https://api.example.com",)
    assert op(spec, "GET", "/a").servers == ("https://path.example.com/v1",)
    swagger = {"swagger": "2.0", "info": {"title": "T", "version": "1"}, "host": "ada:pw@old.example.com", "paths": {}}
    swagger["paths"] = {"/x": {"get": {"responses": {}}}}
    assert parse_openapi(swagger).servers == ("https://old.example.com",)
    at_in_path = [{"url": "https://h.example.com/users/@me"}]
    users_me = parse_openapi(spec3({"/u": {"get": {"responses": {}}}}, servers=at_in_path))
    assert users_me.servers == ("https://h.example.com/users/@me",)  # an `@` in a path is not userinfo


def test_request_body_media_type_preference_and_form_bodies() -> None:
    schema = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}}
    document = spec3(
        {
            "/form": {
                "post": {
                    "requestBody": {
                        "content": {
                            "multipart/form-data": {"schema": schema},
                            "application/x-www-form-urlencoded": {"schema": schema},
                        }
                    },
                    "responses": {},
                }
            },
            "/json": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/x-www-form-urlencoded": {"schema": schema},
                            "application/json": {"schema": schema, "example": {"amount": 5}},
                        }
                    },
                    "responses": {},
                }
            },
            "/other": {"put": {"requestBody": {"content": {"image/png": {}}}, "responses": {}}},
            # Stripe puts an empty optional form body on GETs: that is no body at all
            "/empty": {
                "get": {
                    "requestBody": {
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {"type": "object", "properties": {}, "additionalProperties": False}
                            }
                        },
                        "required": False,
                    },
                    "responses": {},
                }
            },
        }
    )
    spec = parse_openapi(document)
    form = op(spec, "POST", "/form").request_body
    assert form is not None and form.content_type == "application/x-www-form-urlencoded"
    assert body_fields(op(spec, "POST", "/form"))["amount"].required
    json_one = op(spec, "POST", "/json").request_body
    assert json_one is not None and json_one.content_type == "application/json"
    assert json_one.example == '{"amount": 5}'
    other = op(spec, "PUT", "/other").request_body
    assert other is not None and other.content_type == "image/png" and other.fields == ()
    assert op(spec, "GET", "/empty").request_body is None


def test_only_success_json_responses_get_fields() -> None:
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    document = spec3(
        {
            "/a": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "Fine. Really.",
                            **json_body({"properties": {"id": {"type": "string"}}}),
                        },
                        "404": {"description": "Missing", **json_body(error)},
                        "default": {"description": "Error", **json_body(error)},
                    }
                }
            },
            "/b": {"get": {"responses": {"200": {"description": "CSV", "content": {"text/csv": {}}}}}},
        }
    )
    spec = parse_openapi(document)
    responses = {r.status: r for r in op(spec, "GET", "/a").responses}
    assert list(responses) == ["200", "404", "default"]
    assert [f.name for f in responses["200"].fields] == ["id"]
    assert responses["200"].description == "Fine. Really."
    assert responses["404"].fields == () and responses["default"].fields == ()
    assert op(spec, "GET", "/b").responses[0].fields == ()


def test_security_empty_list_means_no_auth_and_absent_means_default() -> None:
    document = spec3(
        {
            "/public": {"get": {"security": [], "responses": {}}},
            "/default": {"get": {"responses": {}}},
            "/either": {"get": {"security": [{"key": []}, {"oauth": ["read", "write"]}], "responses": {}}},
            "/both": {"get": {"security": [{"key": [], "oauth": []}], "responses": {}}},
            "/optional": {"get": {"security": [{}, {"key": []}], "responses": {}}},
        },
        security=[{"key": []}],
    )
    document["components"] = {
        "securitySchemes": {
            "key": {"type": "apiKey", "in": "query", "name": "api_key"},
            "oauth": {
                "type": "oauth2",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": "https://auth.example.com/authorize",
                        "tokenUrl": "https://auth.example.com/token",
                        "scopes": {"read": "Read", "write": "Write"},
                    },
                    "clientCredentials": {"tokenUrl": "https://auth.example.com/token", "scopes": {"admin": "x"}},
                },
            },
            "bearer": {"type": "http", "scheme": "Bearer", "bearerFormat": "JWT"},
            "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://auth.example.com/.well-known"},
        }
    }
    spec = parse_openapi(document)
    assert spec.security == ((Req("key"),),)
    public = op(spec, "GET", "/public")
    assert public.security == ()
    assert spec.effective_security(public) == ()
    default = op(spec, "GET", "/default")
    assert default.security is None
    assert spec.effective_security(default) == ((Req("key"),),)
    assert op(spec, "GET", "/either").security == ((Req("key"),), (Req("oauth", ("read", "write")),))
    assert op(spec, "GET", "/both").security == ((Req("key"), Req("oauth")),)
    assert op(spec, "GET", "/optional").security == ((), (Req("key"),))
    oauth = spec.scheme("oauth")
    assert oauth is not None
    assert oauth.flows == (
        "authorizationCode: https://auth.example.com/authorize (token URL: https://auth.example.com/token)",
        "clientCredentials: https://auth.example.com/token",
    )
    assert oauth.scopes == ("read", "write", "admin")
    bearer = spec.scheme("bearer")
    assert bearer is not None and (bearer.type, bearer.scheme, bearer.bearer_format) == ("http", "bearer", "JWT")
    oidc = spec.scheme("oidc")
    assert oidc is not None and oidc.flows == ("openIdConnect: https://auth.example.com/.well-known",)


def test_deprecated_flag() -> None:
    document = spec3(
        {
            "/old": {"get": {"deprecated": True, "responses": {}}},
            "/new": {"get": {"responses": {}}},
        }
    )
    spec = parse_openapi(document)
    assert op(spec, "GET", "/old").deprecated is True
    assert op(spec, "GET", "/new").deprecated is False


def test_every_http_method_is_an_operation() -> None:
    methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
    document = spec3({"/x": {m: {"responses": {}} for m in methods}})
    assert [o.method for o in parse_openapi(document).operations] == [m.upper() for m in methods]


def test_operations_without_summary_are_described_by_operation_id_path_and_description() -> None:
    # Discord: most operations have only an operationId; Stripe: HTML descriptions, no summary, no tags.
    document = spec3(
        {
            "/guilds/{guild_id}/bans/{user_id}": {"put": {"operationId": "ban_user_from_guild", "responses": {}}},
            "/v1/refunds": {
                "post": {
                    "operationId": "PostRefunds",
                    "description": "<p>Create a refund.</p><p>See <a href='/docs'>the docs</a>.</p>",
                    "responses": {},
                }
            },
            "/v1/ping": {"get": {"responses": {}}},  # nothing at all but the path
        },
        openapi="3.1.0",
    )
    spec = parse_openapi(document)
    ban = op(spec, "PUT", "/guilds/{guild_id}/bans/{user_id}")
    assert (ban.summary, ban.description, ban.tags) == ("", "", ())
    refunds = op(spec, "POST", "/v1/refunds")
    assert (refunds.summary, refunds.tags) == ("", ())
    assert refunds.description.startswith("Create a refund.") and "<" not in refunds.description
    texts = {d.title: d.embed_text for d in build_documents(spec)}
    assert texts["PUT /guilds/{guild_id}/bans/{user_id}"].startswith("ban user from guild\n")
    assert texts["POST /v1/refunds"].startswith("Create a refund.\n")
    assert "GET /v1/ping" in texts["GET /v1/ping"]


def test_twilio_shaped_path_items_with_description_extensions_and_servers() -> None:
    form = {"type": "object", "required": ["To"], "properties": {"To": {"type": "string"}, "Body": {"type": "string"}}}
    document = spec3(
        {
            "/2010-04-01/Accounts/{AccountSid}/Messages.json": {
                "servers": [{"url": "https://api.twilio.example"}],
                "description": "A message sent from or received by your account.",
                "x-twilio": {"defaultOutputProperties": ["sid", "status"], "pathType": "list", "parent": "/Accounts"},
                "get": {"operationId": "ListMessage", "responses": {}},
                "post": {
                    "operationId": "CreateMessage",
                    "parameters": [
                        {"name": "AccountSid", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": form}}},
                    "responses": {},
                },
            }
        },
        servers=[{"url": "https://elsewhere.example"}],
    )
    spec = parse_openapi(document)
    assert [(o.method, o.operation_id) for o in spec.operations] == [("GET", "ListMessage"), ("POST", "CreateMessage")]
    create = op(spec, "POST", "/2010-04-01/Accounts/{AccountSid}/Messages.json")
    assert create.servers == ("https://api.twilio.example",)
    assert spec.base_url(create) == "https://api.twilio.example"
    assert [p.name for p in create.parameters] == ["AccountSid"]
    assert create.request_body is not None
    assert create.request_body.content_type == "application/x-www-form-urlencoded"
    assert body_fields(create)["To"].required
    assert spec.warnings == ()


# ---------------------------------------------------------------------------------------------- swagger 2


def swagger2() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Chat", "version": "1.7.0", "description": "RPC-style API."},
        "host": "chat.example.com",
        "basePath": "/api",
        "schemes": ["http", "https"],
        "consumes": ["application/x-www-form-urlencoded", "application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "chatAuth": {
                "type": "oauth2",
                "flow": "accessCode",
                "authorizationUrl": "https://chat.example.com/oauth/authorize",
                "tokenUrl": "https://chat.example.com/api/oauth.access",
                "scopes": {"chat:write": "Write", "none": "No scope required"},
            },
            "basic": {"type": "basic"},
            "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
        },
        "security": [{"basic": []}],
        "parameters": {"cursor": {"name": "cursor", "in": "query", "type": "string"}},
        "definitions": {
            "Message": {
                "type": "object",
                "required": ["ts"],
                "properties": {"ts": {"type": "string"}, "text": {"type": ["string", "null"]}},
            }
        },
        "paths": {
            "/chat.postMessage": {
                "post": {
                    "description": "Sends a message.",
                    "operationId": "chat_postMessage",
                    "tags": ["chat"],
                    "security": [{"chatAuth": ["chat:write"]}],
                    "parameters": [
                        {
                            "name": "token",
                            "in": "header",
                            "required": True,
                            "type": "string",
                            "description": "Authentication token. Requires scope: `chat:write`",
                        },
                        {"name": "channel", "in": "formData", "required": True, "type": "string"},
                        {"name": "mrkdwn", "in": "formData", "type": "boolean", "description": "Use markup."},
                        {"$ref": "#/parameters/cursor"},
                    ],
                    "responses": {
                        "200": {
                            "description": "Typical success response",
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "ok": {"type": "boolean", "enum": [True]},
                                    "message": {"$ref": "#/definitions/Message"},
                                },
                            },
                        },
                        "default": {"description": "Error", "schema": {"type": "object"}},
                    },
                }
            },
            "/files.upload": {
                "post": {
                    "parameters": [
                        {"name": "file", "in": "formData", "type": "file"},
                        {"name": "title", "in": "formData", "type": "string"},
                    ],
                    "responses": {"200": {"description": "OK"}},
                }
            },
            "/pets": {
                "put": {
                    "consumes": ["application/json"],
                    "parameters": [
                        {"name": "body", "in": "body", "required": True, "schema": {"$ref": "#/definitions/Message"}}
                    ],
                    "responses": {"200": {"description": "OK"}},
                }
            },
        },
    }


def test_swagger2_servers_security_definitions_and_metadata() -> None:
    spec = parse_openapi(swagger2())
    assert spec.format is SpecFormat.SWAGGER2
    assert spec.format_version == "2.0"
    assert spec.servers == ("https://chat.example.com/api", "http://chat.example.com/api")
    assert spec.base_url() == "https://chat.example.com/api"
    assert spec.security == ((Req("basic"),),)
    chat_auth = spec.scheme("chatAuth")
    assert chat_auth is not None
    assert chat_auth.type == "oauth2"
    assert chat_auth.flows == (
        "authorizationCode: https://chat.example.com/oauth/authorize "
        "(token URL: https://chat.example.com/api/oauth.access)",
    )
    assert chat_auth.scopes == ("chat:write", "none")
    basic = spec.scheme("basic")
    assert basic is not None and (basic.type, basic.scheme) == ("http", "basic")
    key = spec.scheme("key")
    assert key is not None and (key.type, key.location, key.param_name) == ("apiKey", "header", "X-Key")


def test_swagger2_header_token_form_data_and_body_params() -> None:
    spec = parse_openapi(swagger2())
    post = op(spec, "POST", "/chat.postMessage")
    assert [(p.name, p.location) for p in post.parameters] == [("token", "header"), ("cursor", "query")]
    assert post.parameters[0].required
    assert post.parameters[0].description == "Authentication token. Requires scope: `chat:write`"
    assert post.request_body is not None
    assert post.request_body.content_type == "application/x-www-form-urlencoded"
    fields = body_fields(post)
    assert list(fields) == ["channel", "mrkdwn"]
    assert fields["channel"].required and fields["mrkdwn"].type == "boolean"
    assert post.security == ((Req("chatAuth", ("chat:write",)),),)
    response = response_fields(post)
    assert response["ok"].enum == ("true",)
    assert response["message"].type == "object (Message)"
    assert response["message.text"].type == "string|null"
    assert next(r for r in post.responses if r.status == "default").fields == ()

    upload = op(spec, "POST", "/files.upload").request_body
    assert upload is not None and upload.content_type == "multipart/form-data"
    assert fields_by_name(upload.fields)["file"].type == "file"
    assert fields_by_name(upload.fields)["file"].value_type == ValueType(("file",), binary=True)

    put = op(spec, "PUT", "/pets")
    assert put.parameters == ()
    assert put.request_body is not None and put.request_body.content_type == "application/json"
    assert put.request_body.required
    assert body_fields(put)["ts"].required


def test_swagger2_without_host_has_relative_server() -> None:
    document = swagger2()
    del document["host"]
    assert parse_openapi(document).servers == ("/api",)


# ---------------------------------------------------------------------------------------------- real specs

REAL_SPECS = {
    "petstore_openapi3.yaml": 19,
    "stripe_openapi3_2023-09.yaml": 468,
    "twilio_api_v2010_openapi3.json": 197,
    "discord_api_v10_openapi3.1.json": 242,
    "spotify_web_api_openapi3.yaml": 97,
    "slack_web_api_swagger2.json": 174,
}
SLOW_SPECS = {"stripe_openapi3_2023-09.yaml"}  # 4 MB of YAML: ~2 s just to load


@cache
def _load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=yaml.CSafeLoader)


@cache
def _parsed(path: Path) -> ApiSpec:
    return parse_openapi(_load(path))


def real(specs_dir: Path, name: str) -> ApiSpec:
    return _parsed(specs_dir / name)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        pytest.param(name, count, marks=[pytest.mark.slow] if name in SLOW_SPECS else [])
        for name, count in REAL_SPECS.items()
    ],
)
def test_real_spec_operation_counts(specs_dir: Path, name: str, count: int) -> None:
    spec = real(specs_dir, name)
    assert len(spec.operations) == count
    assert len({o.key for o in spec.operations}) == count
    assert spec.warnings == ()
    for operation in spec.operations:
        for body in [operation.request_body, *operation.responses]:
            fields = body.fields if body is not None else ()
            assert len(fields) <= MAX_FIELDS
            assert all(field_depth(f.name) <= MAX_FIELD_DEPTH for f in fields)


@pytest.mark.slow
def test_stripe_refunds_form_body_and_speed(specs_dir: Path) -> None:
    document = _load(specs_dir / "stripe_openapi3_2023-09.yaml")
    started = time.perf_counter()
    spec = parse_openapi(document)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.5, f"Stripe took {elapsed:.2f}s to parse"  # ~0.4 s normally; generous for busy CI
    refunds = op(spec, "POST", "/v1/refunds")
    assert refunds.request_body is not None
    assert refunds.request_body.content_type == "application/x-www-form-urlencoded"
    fields = body_fields(refunds)
    assert fields["charge"].type == "string"
    assert fields["reason"].enum == ("duplicate", "fraudulent", "requested_by_customer")
    assert refunds.description == "Create a refund."
    assert spec.security == ((Req("basicAuth"),), (Req("bearerAuth"),))
    assert op(spec, "GET", "/v1/refunds").request_body is None  # the empty form body on GETs is dropped
    invoice = response_fields(op(spec, "GET", "/v1/invoices/{invoice}"))
    assert "recursive: invoice" in invoice["latest_revision"].type
    assert "<p>" not in " ".join(o.description for o in spec.operations)


def test_slack_chat_post_message(specs_dir: Path) -> None:
    spec = real(specs_dir, "slack_web_api_swagger2.json")
    assert spec.format is SpecFormat.SWAGGER2
    assert spec.servers == ("https://slack.com/api",)
    post = op(spec, "POST", "/chat.postMessage")
    assert spec.base_url(post) == "https://slack.com/api"
    token = next(p for p in post.parameters if p.name == "token")
    assert (token.location, token.required) == ("header", True)
    assert post.request_body is not None
    assert post.request_body.content_type == "application/x-www-form-urlencoded"
    assert body_fields(post)["channel"].required
    # The scopes each operation needs are kept: they are what a user asks about ("what scopes does it need?").
    assert post.security == ((Req("slackAuth", ("chat:write:user", "chat:write:bot")),),)
    slack_auth = spec.scheme("slackAuth")
    assert slack_auth is not None and "none" in slack_auth.scopes and len(slack_auth.scopes) <= 50


def test_twilio_messages_path_level_servers(specs_dir: Path) -> None:
    spec = real(specs_dir, "twilio_api_v2010_openapi3.json")
    create = op(spec, "POST", "/2010-04-01/Accounts/{AccountSid}/Messages.json")
    assert create.servers == ("https://api.twilio.com",)
    assert create.request_body is not None
    assert create.request_body.content_type == "application/x-www-form-urlencoded"
    assert body_fields(create)["To"].required
    assert [p.name for p in create.parameters] == ["AccountSid"]
    assert spec.effective_security(create) == ((Req("accountSid_authToken"),),)
    basic = spec.scheme("accountSid_authToken")
    assert basic is not None and (basic.type, basic.scheme) == ("http", "basic")


def test_petstore_security_schemes(specs_dir: Path) -> None:
    spec = real(specs_dir, "petstore_openapi3.yaml")
    petstore_auth = spec.scheme("petstore_auth")
    assert petstore_auth is not None and petstore_auth.type == "oauth2"
    assert set(petstore_auth.scopes) == {"write:pets", "read:pets"}
    assert petstore_auth.flows and petstore_auth.flows[0].startswith("implicit: https://")
    api_key = spec.scheme("api_key")
    assert api_key is not None and (api_key.type, api_key.location, api_key.param_name) == (
        "apiKey",
        "header",
        "api_key",
    )
    add_pet = op(spec, "POST", "/pet")
    assert body_fields(add_pet)["name"].required
    assert body_fields(add_pet)["name"].example == "doggie"


def test_discord_31_features(specs_dir: Path) -> None:
    spec = real(specs_dir, "discord_api_v10_openapi3.1.json")
    assert spec.format_version == "3.1.0"
    ban = op(spec, "PUT", "/guilds/{guild_id}/bans/{user_id}")
    assert ban.operation_id == "ban_user_from_guild"
    assert [(p.name, p.location) for p in ban.parameters] == [("guild_id", "path"), ("user_id", "path")]
    assert body_fields(ban)["delete_message_seconds"].type == "integer|null"
    assert ban.security == ((Req("BotToken"),),)
    bot_token = spec.scheme("BotToken")
    assert bot_token is not None and (bot_token.location, bot_token.param_name) == ("header", "Authorization")


def test_spotify_deprecations(specs_dir: Path) -> None:
    spec = real(specs_dir, "spotify_web_api_openapi3.yaml")
    assert sum(o.deprecated for o in spec.operations) == 48
    assert op(spec, "PUT", "/me/tracks").deprecated
    assert not op(spec, "GET", "/me/tracks").deprecated
