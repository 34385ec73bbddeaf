"""Every diff rule on a hand-made pair of specs: OpenAPI 3, Swagger 2.0, Postman and GraphQL."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from core.diffs import VersionFile, diff_versions
from core.diffs.model import SpecDiff
from core.diffs.openapi import compare, surface
from core.diffs.parsed import compare_parsed
from core.models import SpecFormat
from core.parsing.loader import load_spec

ALL = frozenset({"json", "yaml", "yml", "graphql", "gql", "md"})


def petstore() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "1"},
        "servers": [{"url": "https://api.example.com/v1"}],
        "components": {
            "securitySchemes": {
                "oauth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "https://a.example/t",
                                                                             "scopes": {"read": "", "write": ""}}}},
                "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
            },
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string", "maxLength": 50},
                        "status": {"type": "string", "enum": ["available", "sold"]},
                        "tag": {"type": "string", "nullable": True},
                        "owner": {"$ref": "#/components/schemas/Owner"},
                    },
                },
                "Owner": {"type": "object", "properties": {"email": {"type": "string"}}},
                "NewPet": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 50},
                        "status": {"type": "string", "enum": ["available", "sold"]},
                        "age": {"type": "integer", "minimum": 0},
                        "note": {"type": "string"},
                    },
                },
            },
        },
        "security": [{"key": []}],
        "paths": {
            "/pets": {
                "get": {
                    "summary": "List pets",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["cat", "dog"]}},
                    ],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}}},
                },
                "post": {
                    "requestBody": {"content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}},
                        "application/xml": {"schema": {"$ref": "#/components/schemas/NewPet"}},
                    }},
                    "responses": {"201": {"description": "made", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Pet"}}}}},
                    "security": [{"oauth": ["write"]}],
                },
            },
            "/pets/{id}": {
                "get": {
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Pet"}}}}, "404": {"description": "none"}},
                },
                "delete": {
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"204": {"description": "gone"}},
                },
            },
        },
    }


def diff_of(old: dict[str, Any], new: dict[str, Any]) -> SpecDiff:
    return compare(surface(old), surface(new))


def rules(diff: SpecDiff) -> set[tuple[str, bool, str, str]]:
    return {(c.rule, c.breaking, c.where, c.subject) for c in diff.changes}


def test_the_same_spec_has_no_changes() -> None:
    assert diff_of(petstore(), petstore()).empty


def edited(edit: Any) -> dict[str, Any]:
    spec = copy.deepcopy(petstore())
    edit(spec)
    return spec


S = "#/components/schemas/"
schemas = lambda s: s["components"]["schemas"]  # noqa: E731
pets = lambda s: s["paths"]["/pets"]  # noqa: E731


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # operations and paths
        (lambda s: s["paths"]["/pets/{id}"].pop("delete"),
         ("api-removed-without-deprecation", True, "DELETE /pets/{id}", "")),
        (lambda s: s["paths"].pop("/pets/{id}"), ("api-path-removed-without-deprecation", True, "GET /pets/{id}", "")),
        (lambda s: s["paths"].__setitem__("/pet/{id}", s["paths"].pop("/pets/{id}")),
         ("api-path-removed-without-deprecation", True, "GET /pets/{id}", "")),
        (lambda s: pets(s).__setitem__("put", pets(s).pop("post")),
         ("api-removed-without-deprecation", True, "POST /pets", "")),
        (lambda s: pets(s).__setitem__("patch", {"responses": {}}), ("endpoint-added", False, "PATCH /pets", "")),
        # parameters
        (lambda s: pets(s)["get"]["parameters"].pop(0),
         ("request-parameter-removed", True, "GET /pets", "query limit")),
        (lambda s: pets(s)["get"]["parameters"][0].__setitem__("name", "max"),
         ("request-parameter-removed", True, "GET /pets", "query limit")),
        (lambda s: pets(s)["get"]["parameters"].append({"name": "X-Trace", "in": "header", "required": True,
                                                         "schema": {"type": "string"}}),
         ("new-required-request-parameter", True, "GET /pets", "header X-Trace")),
        (lambda s: pets(s)["get"]["parameters"].append({"name": "q", "in": "query", "schema": {"type": "string"}}),
         ("new-optional-request-parameter", False, "GET /pets", "query q")),
        (lambda s: pets(s)["get"]["parameters"][0].__setitem__("required", True),
         ("request-parameter-became-required", True, "GET /pets", "query limit")),
        (lambda s: pets(s)["get"]["parameters"][0]["schema"].__setitem__("type", "string"),
         ("request-parameter-type-changed", True, "GET /pets", "query limit")),
        (lambda s: pets(s)["get"]["parameters"][1]["schema"]["enum"].remove("dog"),
         ("request-parameter-enum-value-removed", True, "GET /pets", "query kind")),
        (lambda s: pets(s)["get"]["parameters"][1]["schema"]["enum"].append("bird"),
         ("request-parameter-enum-value-added", False, "GET /pets", "query kind")),
        # request body fields
        (lambda s: schemas(s)["NewPet"]["properties"].pop("note"),
         ("request-property-removed", True, "POST /pets", "note")),
        (lambda s: schemas(s)["NewPet"]["required"].append("age"),
         ("request-property-became-required", True, "POST /pets", "age")),
        (lambda s: schemas(s)["NewPet"].update(required=["name", "color"], properties={
            **schemas(s)["NewPet"]["properties"], "color": {"type": "string"}}),
         ("new-required-request-property", True, "POST /pets", "color")),
        (lambda s: schemas(s)["NewPet"]["properties"].__setitem__("color", {"type": "string"}),
         ("request-property-added", False, "POST /pets", "color")),
        (lambda s: schemas(s)["NewPet"]["required"].clear(),
         ("request-property-became-optional", False, "POST /pets", "name")),
        (lambda s: schemas(s)["NewPet"]["properties"]["age"].__setitem__("type", "string"),
         ("request-property-type-changed", True, "POST /pets", "age")),
        (lambda s: schemas(s)["NewPet"]["properties"]["age"].__setitem__("type", "number"),
         ("request-property-list-of-types-widened", False, "POST /pets", "age")),
        (lambda s: schemas(s)["NewPet"]["properties"]["status"]["enum"].remove("sold"),
         ("request-property-enum-value-removed", True, "POST /pets", "status")),
        (lambda s: schemas(s)["NewPet"]["properties"]["note"].__setitem__("enum", ["a"]),
         ("request-property-became-enum", True, "POST /pets", "note")),
        (lambda s: schemas(s)["NewPet"]["properties"]["name"].__setitem__("maxLength", 20),
         ("request-property-max-length-decreased", True, "POST /pets", "name")),
        (lambda s: schemas(s)["NewPet"]["properties"]["age"].__setitem__("minimum", 1),
         ("request-property-min-increased", True, "POST /pets", "age")),
        (lambda s: schemas(s)["NewPet"]["properties"]["note"].__setitem__("pattern", "^[a-z]+$"),
         ("request-property-pattern-added", True, "POST /pets", "note")),
        (lambda s: schemas(s)["NewPet"]["properties"]["note"].__setitem__("format", "email"),
         ("request-property-format-added", True, "POST /pets", "note")),
        (lambda s: schemas(s)["NewPet"]["properties"]["note"].__setitem__("description", "Free text."),
         ("request-property-description-updated", False, "POST /pets", "note")),
        # request body as a whole
        (lambda s: pets(s)["post"]["requestBody"].__setitem__("required", True),
         ("request-body-became-required", True, "POST /pets", "")),
        (lambda s: pets(s)["post"]["requestBody"]["content"].pop("application/xml"),
         ("request-body-media-type-removed", True, "POST /pets", "application/xml")),
        (lambda s: pets(s)["post"].pop("requestBody"), ("request-body-removed", True, "POST /pets", "")),
        (lambda s: s["paths"]["/pets/{id}"]["delete"].__setitem__("requestBody", {"required": True, "content": {
            "application/json": {"schema": {"type": "object"}}}}),
         ("added-required-request-body", True, "DELETE /pets/{id}", "")),
        # responses
        (lambda s: schemas(s)["Pet"]["properties"].pop("name"),
         ("response-required-property-removed", True, "GET /pets/{id}", "name")),
        (lambda s: schemas(s)["Pet"]["properties"].pop("status"),
         ("response-optional-property-removed", True, "GET /pets/{id}", "status")),
        (lambda s: schemas(s)["Owner"]["properties"].pop("email"),
         ("response-optional-property-removed", True, "GET /pets/{id}", "owner.email")),
        (lambda s: schemas(s)["Pet"]["required"].remove("name"),
         ("response-property-became-optional", True, "GET /pets/{id}", "name")),
        (lambda s: schemas(s)["Pet"]["properties"]["id"].__setitem__("type", "string"),
         ("response-property-type-changed", True, "GET /pets/{id}", "id")),
        (lambda s: schemas(s)["Pet"]["properties"]["id"].__setitem__("nullable", True),
         ("response-property-became-nullable", True, "GET /pets/{id}", "id")),
        (lambda s: schemas(s)["Pet"]["properties"]["tag"].pop("nullable"),
         ("response-property-list-of-types-narrowed", False, "GET /pets/{id}", "tag")),
        (lambda s: schemas(s)["Pet"]["properties"]["status"]["enum"].append("pending"),
         ("response-property-enum-value-added", False, "GET /pets/{id}", "status")),
        (lambda s: schemas(s)["Pet"]["properties"].__setitem__("born", {"type": "string"}),
         ("response-property-added", False, "GET /pets/{id}", "born")),
        (lambda s: schemas(s)["Pet"]["properties"]["name"].__setitem__("maxLength", 80),
         ("response-property-max-length-increased", True, "GET /pets/{id}", "name")),
        (lambda s: s["paths"]["/pets/{id}"]["get"]["responses"].pop("200"),
         ("response-success-status-removed", True, "GET /pets/{id}", "200")),
        (lambda s: s["paths"]["/pets/{id}"]["get"]["responses"].pop("404"),
         ("response-non-success-status-removed", False, "GET /pets/{id}", "404")),
        (lambda s: s["paths"]["/pets/{id}"]["get"]["responses"]["200"]["content"].__setitem__(
            "text/csv", s["paths"]["/pets/{id}"]["get"]["responses"]["200"]["content"].pop("application/json")),
         ("response-media-type-removed", True, "GET /pets/{id}", "200 application/json")),
        # auth and servers
        (lambda s: pets(s)["post"].__setitem__("security", [{"oauth": ["write", "admin"]}]),
         ("api-security-scope-added", True, "POST /pets", "")),
        (lambda s: pets(s)["post"].__setitem__("security", [{"key": []}]),
         ("api-security-changed", True, "POST /pets", "")),
        (lambda s: pets(s)["post"].__setitem__("security", [{"oauth": ["write"]}, {"key": []}]),
         ("api-security-alternative-added", False, "POST /pets", "")),
        (lambda s: s.__setitem__("security", [{"key": []}, {"oauth": ["read"]}]) or s.__setitem__("security", [
            {"oauth": ["read"]}]), ("api-global-security-changed", True, "", "")),
        (lambda s: s["components"]["securitySchemes"]["key"].__setitem__("name", "Authorization"),
         ("api-security-component-changed", True, "", "key")),
        (lambda s: s.__setitem__("servers", [{"url": "https://api.example.com/v2"}]),
         ("api-server-changed", True, "", "")),
        # descriptions and deprecation
        (lambda s: pets(s)["get"].__setitem__("summary", "List all pets"),
         ("api-summary-updated", False, "GET /pets", "")),
        (lambda s: pets(s)["get"].__setitem__("deprecated", True), ("api-deprecated", False, "GET /pets", "")),
    ],
)
def test_openapi_rules(edit: Any, expected: tuple[str, bool, str, str]) -> None:
    found = rules(diff_of(petstore(), edited(edit)))
    assert expected in found, sorted(found)


def test_security_added_where_none_was_needed() -> None:
    old = edited(lambda s: s.__setitem__("security", []))
    assert ("api-global-security-added", True, "", "") in rules(diff_of(old, petstore()))


def test_a_property_of_a_removed_parent_is_reported_once() -> None:
    found = diff_of(petstore(), edited(lambda s: schemas(s)["Pet"]["properties"].pop("owner")))
    removed = [c.subject for c in found.changes if c.where == "GET /pets/{id}" and "removed" in c.rule]
    assert removed == ["owner"]


def test_breaking_changes_come_first_and_the_order_is_stable() -> None:
    def edit(s: dict[str, Any]) -> None:
        pets(s)["get"]["summary"] = "changed"
        s["paths"]["/pets/{id}"].pop("delete")
        schemas(s)["NewPet"]["properties"]["color"] = {"type": "string"}

    first = diff_of(petstore(), edited(edit))
    assert [c.breaking for c in first.changes] == sorted((c.breaking for c in first.changes), reverse=True)
    assert first == diff_of(petstore(), edited(edit))
    assert first.removed == ("DELETE /pets/{id}",)


def test_read_only_fields_do_not_count_in_requests() -> None:
    def edit(s: dict[str, Any]) -> None:
        schemas(s)["NewPet"]["properties"]["note"]["readOnly"] = True

    after = edited(edit)
    assert "request-property-removed" not in {c.rule for c in diff_of(after, edited(lambda s: (
        edit(s), schemas(s)["NewPet"]["properties"].pop("note")))).changes}


# ---- Swagger 2.0 --------------------------------------------------------------------------------------------


def swagger() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "S", "version": "1"},
        "host": "api.example.com",
        "basePath": "/v1",
        "paths": {
            "/users": {
                "post": {
                    "consumes": ["application/x-www-form-urlencoded"],
                    "parameters": [
                        {"name": "name", "in": "formData", "type": "string", "required": True},
                        {"name": "nick", "in": "formData", "type": "string"},
                    ],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/User"}}},
                },
                "put": {
                    "parameters": [{"name": "body", "in": "body", "schema": {"$ref": "#/definitions/User"}}],
                    "responses": {"200": {"description": "ok"}},
                },
            },
        },
        "definitions": {"User": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer"}, "email": {"type": "string", "x-nullable": True}}}},
    }


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s["paths"]["/users"]["post"]["parameters"].pop(1),
         ("request-property-removed", True, "POST /users", "nick")),
        (lambda s: s["paths"]["/users"]["post"]["parameters"][1].__setitem__("required", True),
         ("request-property-became-required", True, "POST /users", "nick")),
        (lambda s: s["definitions"]["User"]["properties"].pop("email"),
         ("response-optional-property-removed", True, "POST /users", "email")),
        (lambda s: s["definitions"]["User"]["properties"]["email"].pop("x-nullable"),
         ("request-property-became-not-nullable", True, "PUT /users", "email")),
        (lambda s: s.__setitem__("host", "api.other.com"), ("api-server-changed", True, "", "")),
        (lambda s: s["paths"]["/users"].pop("put"), ("api-removed-without-deprecation", True, "PUT /users", "")),
    ],
)
def test_swagger2_rules(edit: Any, expected: tuple[str, bool, str, str]) -> None:
    new = copy.deepcopy(swagger())
    edit(new)
    found = rules(diff_of(swagger(), new))
    assert expected in found, sorted(found)


def test_a_swagger2_spec_compared_with_its_openapi3_rewrite_keeps_its_operations() -> None:
    old = VersionFile(SpecFormat.SWAGGER2, "s.json", json.dumps(swagger()).encode())
    new_doc = petstore()
    new = VersionFile(SpecFormat.OPENAPI3, "p.json", json.dumps(new_doc).encode())
    found = diff_versions(old, new)
    assert set(found.removed) == {"POST /users", "PUT /users"}
    assert len(found.added) == 4


# ---- Postman and GraphQL ------------------------------------------------------------------------------------


def postman(requests: list[dict[str, Any]]) -> bytes:
    return json.dumps({
        "info": {"name": "P", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [{"name": "Users", "item": requests}],
    }).encode()


def request(name: str, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"method": method, "url": {"raw": url}}
    if body is not None:
        found["body"] = {"mode": "raw", "raw": json.dumps(body), "options": {"raw": {"language": "json"}}}
    return {"name": name, "request": found}


def parsed(filename: str, data: bytes) -> Any:
    return load_spec(filename, data, max_bytes=10_000_000, allowed_extensions=ALL)


def test_postman_by_request_method_url_and_body_keys() -> None:
    old = postman([
        request("Create user", "POST", "https://api.example.com/users", {"name": "a", "email": "b"}),
        request("Get user", "GET", "https://api.example.com/users/1"),
        request("Delete user", "DELETE", "https://api.example.com/users/1"),
    ])
    new = postman([
        request("Create user", "POST", "https://api.example.com/users", {"name": "a", "role": "c"}),
        request("Get user", "GET", "https://api.example.com/v2/users/1"),
        request("List users", "GET", "https://api.example.com/users"),
    ])
    found = compare_parsed(parsed("old.json", old), parsed("new.json", new))
    by_rule = {(c.rule, c.breaking, c.subject) for c in found.changes}
    assert ("request-body-key-removed", True, "email") in by_rule
    assert ("request-body-key-added", False, "role") in by_rule
    assert ("request-url-changed", True, "") in by_rule
    assert ("request-removed", True, "") in by_rule
    assert ("request-added", False, "") in by_rule
    assert found.removed == ("Users/Delete user (DELETE https://api.example.com/users/1)",)


GRAPHQL_OLD = b"""
type Query { issue(id: ID!): Issue  issues(first: Int): [Issue!]!  viewer: User }
type Mutation { closeIssue(id: ID!, reason: String): Issue }
type Issue { id: ID! }
type User { id: ID! }
"""
GRAPHQL_NEW = b"""
type Query { issue(id: ID!, owner: String!): Issue  issues(first: Int, after: String): [Issue]  }
type Mutation { closeIssue(id: ID!, reason: String!): Issue  openIssue(id: ID!): Issue }
type Issue { id: ID! }
type User { id: ID! }
"""


def test_graphql_by_field_and_argument() -> None:
    found = compare_parsed(parsed("a.graphql", GRAPHQL_OLD), parsed("b.graphql", GRAPHQL_NEW))
    by_rule = {(c.rule, c.breaking, c.where, c.subject) for c in found.changes}
    assert ("graphql-field-removed", True, "query viewer", "") in by_rule
    assert ("graphql-new-required-argument", True, "query issue", "owner") in by_rule
    assert ("graphql-new-optional-argument", False, "query issues", "after") in by_rule
    assert ("graphql-field-type-changed", True, "query issues", "") in by_rule
    assert ("graphql-argument-became-required", True, "mutation closeIssue", "reason") in by_rule
    assert ("graphql-field-added", False, "mutation openIssue", "") in by_rule
    assert found.added == ("mutation openIssue",)
