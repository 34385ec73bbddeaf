from __future__ import annotations

import json
from pathlib import Path

import graphql
import pytest

from core.errors import InvalidSpecError
from core.models import ApiSpec, ItemKind, Operation, SpecFormat, ValueType
from core.parsing.graphql import parse_graphql

GITHUB = "github_graphql_schema.graphql"

SDL = '''
"""The example schema."""
schema {
  query: Root
  mutation: Change
  subscription: Feed
}

directive @requiredCapabilities(requiredCapabilities: [String!]) on FIELD_DEFINITION

interface Node { id: ID! }

"""A thing."""
type Thing implements Node {
  id: ID!
  name: String!
  kind: Kind
  owner: User
  oldName: String @deprecated(reason: "Use `name`.")
  secret(token: String!): String
  related(first: Int, after: String): ThingConnection!
}

type User implements Node {
  id: ID!
  login: String!
  "Duplicated on purpose: build_schema() rejects this."
  login: String!
  best: Thing
}

type ThingConnection {
  totalCount: Int!
  nodes: [Thing]
  pageInfo: PageInfo!
}

type PageInfo { hasNextPage: Boolean! }

enum Kind { SMALL LARGE }

union SearchResult = Thing | User

type Root {
  "Look a thing up."
  thing(id: ID!): Thing
  things(first: Int, after: String, kind: Kind = SMALL): ThingConnection!
  search(query: String!): [SearchResult!]!
  node(id: ID!): Node
  version: String! @deprecated
}

extend type Root {
  viewer: User!
}

"""Filters nest: `and` refers back to the same input type."""
input ThingFilter {
  name: String
  and: [ThingFilter!]
  owner: OwnerFilter
}

input OwnerFilter { login: String, filter: ThingFilter }

input CreateThingInput {
  "The name."
  name: String!
  kind: Kind = SMALL
  filter: ThingFilter
  clientMutationId: String
}

type CreateThingPayload {
  clientMutationId: String
  thing: Thing
}

type Change {
  """Creates a thing."""
  createThing(input: CreateThingInput!): CreateThingPayload
  removeThing(id: ID!, reason: String): Boolean @deprecated(reason: "Things are forever.")
}

type Feed { thingAdded: Thing! }
'''


@pytest.fixture(scope="module")
def example() -> ApiSpec:
    return parse_graphql(SDL)


def _op(spec: ApiSpec, graphql_type: str, name: str) -> Operation:
    return next(op for op in spec.operations if (op.graphql_type, op.name) == (graphql_type, name))


def _valid_against(sdl: str, document: str) -> list[graphql.GraphQLError]:
    # assume_valid: the schemas themselves break rules (duplicates, deprecation mismatches) we tolerate.
    schema = graphql.build_ast_schema(graphql.parse(sdl), assume_valid=True, assume_valid_sdl=True)
    return graphql.validate(schema, graphql.parse(document))


def test_build_schema_rejects_the_example() -> None:
    with pytest.raises(TypeError):
        graphql.build_schema(SDL)


def test_root_fields_follow_schema_renaming_and_extensions(example: ApiSpec) -> None:
    assert example.format is SpecFormat.GRAPHQL
    assert [(op.graphql_type, op.name) for op in example.operations] == [
        ("query", "thing"),
        ("query", "things"),
        ("query", "search"),
        ("query", "node"),
        ("query", "version"),
        ("query", "viewer"),
        ("mutation", "createThing"),
        ("mutation", "removeThing"),
        ("subscription", "thingAdded"),
    ]
    op = _op(example, "query", "thing")
    assert (op.kind, op.method, op.path) == (ItemKind.GRAPHQL, "POST", "/graphql")
    assert op.item() == {"kind": "graphql", "type": "query", "field": "thing"}
    assert op.description == "Look a thing up."
    assert example.title == "The example schema."
    assert example.security_schemes == ()


def test_duplicates_are_merged_with_a_warning(example: ApiSpec) -> None:
    assert example.warnings == ("User.login is defined more than once; the first definition is used.",)


def test_deprecated_fields(example: ApiSpec) -> None:
    removed = _op(example, "mutation", "removeThing")
    assert removed.deprecated
    assert "Deprecated: Things are forever." in removed.description
    version = _op(example, "query", "version")
    assert version.deprecated and "No longer supported" in version.description
    assert not _op(example, "query", "thing").deprecated


def test_arguments_become_parameters(example: ApiSpec) -> None:
    params = {p.name: p for p in _op(example, "query", "things").parameters}
    assert {p.location for p in params.values()} == {"argument"}
    assert params["first"].type == "Int" and not params["first"].required
    assert params["kind"].enum == ("SMALL", "LARGE")
    assert "(default: SMALL)" in params["kind"].description
    (thing_id,) = _op(example, "query", "thing").parameters
    assert (thing_id.type, thing_id.required) == ("ID!", True)


def test_signatures(example: ApiSpec) -> None:
    assert _op(example, "mutation", "createThing").graphql_signature == (
        "createThing(input: CreateThingInput!): CreateThingPayload"
    )
    assert _op(example, "query", "things").graphql_signature == (
        "things(first: Int, after: String, kind: Kind = SMALL): ThingConnection!"
    )
    assert _op(example, "query", "viewer").graphql_signature == "viewer: User!"


def test_input_flattening_is_bounded_and_cycle_safe(example: ApiSpec) -> None:
    body = _op(example, "mutation", "createThing").request_body
    assert body is not None and body.content_type == "application/json"
    fields = {f.name: f for f in body.fields}
    assert list(fields) == [
        "input.name",
        "input.kind",
        "input.filter",
        "input.filter.name",
        "input.filter.and",
        "input.filter.owner",
        "input.clientMutationId",
    ]
    assert fields["input.name"].required and fields["input.name"].description == "The name."
    assert not fields["input.kind"].required  # has a default
    assert fields["input.kind"].enum == ("SMALL", "LARGE")
    assert _op(example, "mutation", "removeThing").request_body is None



def test_arguments_and_fields_carry_the_json_types_they_are_sent_as(example: ApiSpec) -> None:
    params = {p.name: p.value_type for p in _op(example, "query", "things").parameters}
    assert params == {"first": ValueType(("integer",)), "after": ValueType(("string",)), "kind": ValueType(("string",))}
    body = _op(example, "mutation", "createThing").request_body
    assert body is not None
    fields = {f.name: f.value_type for f in body.fields}
    assert fields["input.name"] == ValueType(("string",))
    assert fields["input.filter"] == ValueType(("object",))
    assert fields["input.filter.and"] == ValueType(("array",), ("object",))
    thing = {f.name: f.value_type for f in _op(example, "query", "thing").responses[0].fields}
    assert thing["id"] == ValueType(("string",)) and thing["related"] == ValueType(("object",))
    odd = parse_graphql(
        "scalar DateTime\n"
        "type Query { at(when: DateTime!, grid: [[Int!]], ok: Boolean, ratio: Float): [DateTime] }"
    )
    assert [p.value_type for p in odd.operations[0].parameters] == [
        ValueType(),  # a custom scalar could be sent as anything
        ValueType(("array",), ("array",)),
        ValueType(("boolean",)),
        ValueType(("number",)),
    ]

def test_generated_documents(example: ApiSpec) -> None:
    create = _op(example, "mutation", "createThing").graphql_document
    assert create.startswith("mutation CreateThing($input: CreateThingInput!) {\n  createThing(input: $input) {")
    assert "thing { id name kind }" in create
    things = _op(example, "query", "things").graphql_document
    assert "things(first: $first)" in things and "totalCount" in things and "nodes" in things
    search = _op(example, "query", "search").graphql_document
    assert "__typename" in search and "... on Thing { id }" in search
    thing = _op(example, "query", "thing").graphql_document
    assert "secret" not in thing  # required arguments: skipped
    assert "oldName" not in thing  # deprecated: skipped
    assert "related" not in thing  # nested connections need pagination: skipped
    assert _op(example, "query", "node").graphql_document.count("__typename") == 1
    for op in example.operations:
        assert _valid_against(SDL, op.graphql_document) == [], op.graphql_document


@pytest.mark.parametrize(
    "text",
    ["", "type Query {", "query { viewer { id } }", "type Thing { id: ID! }", "# just a comment"],
)
def test_not_usable_sdl(text: str) -> None:
    with pytest.raises(InvalidSpecError):
        parse_graphql(text)


# GitHub's traps without GitHub's 1.2 MB: no schema block and no Subscription, a custom directive on types,
# fields and inputs, multi-line block descriptions, and a field defined twice on a non-root type.
GITHUB_LIKE = '''
directive @requiredCapabilities(requiredCapabilities: [String!]) on OBJECT | SCALAR | ARGUMENT_DEFINITION | INTERFACE
  | INPUT_OBJECT | FIELD_DEFINITION | ENUM | ENUM_VALUE | UNION | INPUT_FIELD_DEFINITION

"""
Enterprise owner settings.
"""
type OwnerInfo @requiredCapabilities(requiredCapabilities: ["admin"]) {
  """
  The setting for deploy keys.
  """
  deployKeySetting: String!
  """
  The setting for deploy keys, again.
  """
  deployKeySetting: String!
  name: String @requiredCapabilities(requiredCapabilities: ["admin"])
}

type Query {
  """
  Look up an owner.

  Spans several lines.
  """
  owner(login: String! @requiredCapabilities(requiredCapabilities: ["read"])): OwnerInfo
    @requiredCapabilities(requiredCapabilities: ["read"])
  legacyOwner(login: String!): OwnerInfo @deprecated(reason: "Use `owner`.")
}

input RenameInput @requiredCapabilities(requiredCapabilities: ["write"]) {
  "The new name."
  name: String! @requiredCapabilities(requiredCapabilities: ["write"])
  clientMutationId: String
}

type RenamePayload {
  clientMutationId: String
  owner: OwnerInfo
}

type Mutation {
  rename(input: RenameInput!): RenamePayload @requiredCapabilities(requiredCapabilities: ["write"])
}
'''


def test_github_shaped_schema_without_subscription_or_schema_block() -> None:
    with pytest.raises(TypeError, match=r"OwnerInfo\.deployKeySetting"):
        graphql.build_schema(GITHUB_LIKE)
    spec = parse_graphql(GITHUB_LIKE)
    assert [(op.graphql_type, op.name) for op in spec.operations] == [
        ("query", "owner"),
        ("query", "legacyOwner"),
        ("mutation", "rename"),
    ]
    assert spec.warnings == ("OwnerInfo.deployKeySetting is defined more than once; the first definition is used.",)
    assert spec.security_schemes == () and spec.security == ()
    owner = _op(spec, "query", "owner")
    assert owner.description == "Look up an owner.\n\nSpans several lines."  # block string, indentation removed
    assert owner.graphql_signature == "owner(login: String!): OwnerInfo"  # the directive is not part of the API
    assert not owner.deprecated
    legacy = _op(spec, "query", "legacyOwner")
    assert legacy.deprecated and "Use `owner`." in legacy.description
    rename = _op(spec, "mutation", "rename")
    assert rename.request_body is not None
    fields = {f.name: f for f in rename.request_body.fields}
    assert fields["input.name"].required and fields["input.name"].description == "The new name."
    for op in spec.operations:
        assert "requiredCapabilities" not in op.graphql_document
        assert _valid_against(GITHUB_LIKE, op.graphql_document) == [], op.graphql_document


# --- the real GitHub schema ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def github_sdl(specs_dir: Path) -> str:
    return (specs_dir / GITHUB).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def github(github_sdl: str) -> ApiSpec:
    return parse_graphql(github_sdl)


def test_github_counts(github: ApiSpec) -> None:
    types = [op.graphql_type for op in github.operations]
    assert (types.count("query"), types.count("mutation"), types.count("subscription")) == (31, 247, 0)
    assert len({op.key for op in github.operations}) == 278
    assert sum(op.deprecated for op in github.operations) == 16
    assert github.title == "GraphQL API"
    assert github.security_schemes == ()
    assert any("EnterpriseOwnerInfo.repositoryDeployKeySetting " in w for w in github.warnings)


def test_github_create_issue(github: ApiSpec) -> None:
    op = _op(github, "mutation", "createIssue")
    assert op.graphql_signature == "createIssue(input: CreateIssueInput!): CreateIssuePayload"
    assert op.request_body is not None
    fields = {f.name: f for f in op.request_body.fields}
    assert fields["input.title"].required and fields["input.repositoryId"].required
    assert not fields["input.body"].required
    assert "issue {" in op.graphql_document and "clientMutationId" in op.graphql_document


def test_github_documents_parse_and_validate(github: ApiSpec, github_sdl: str) -> None:
    schema = graphql.build_ast_schema(graphql.parse(github_sdl), assume_valid=True, assume_valid_sdl=True)
    for op in github.operations:
        document = graphql.parse(op.graphql_document)
        assert graphql.validate(schema, document) == [], op.graphql_document


def test_github_gold_fields_exist(github: ApiSpec, eval_dir: Path) -> None:
    questions = [json.loads(line) for line in (eval_dir / "dev.jsonl").read_text().splitlines()]
    items = [op.item() for op in github.operations]
    for question in (q for q in questions if q["spec"] == GITHUB):
        for gold in question["gold"]:
            assert gold in items
