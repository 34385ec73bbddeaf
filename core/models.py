"""The normalised model every spec format is parsed into.

Parsers (OpenAPI 3.x, Swagger 2.0, Postman, GraphQL SDL, Markdown) all produce an `ApiSpec`; everything
downstream (documents, retrieval, snippets, answers) only ever sees these types.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar


class _PicklesByValue(StrEnum):
    """Members pickle as `Class(value)` on every Python patch release.

    Some 3.11 releases (Debian bookworm's 3.11.2, the image's Python) pickle enum members as
    `getattr(Class, name)`, which the parse worker's restricted unpickler rightly refuses.
    """

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        return type(self), (self.value,)


class SpecFormat(_PicklesByValue):
    """The source format a spec was parsed from."""

    OPENAPI3 = "openapi3"
    SWAGGER2 = "swagger2"
    POSTMAN = "postman"
    GRAPHQL = "graphql"
    MARKDOWN = "markdown"

    @property
    def label(self) -> str:
        """A human-readable name for the format."""
        return {
            "openapi3": "OpenAPI 3",
            "swagger2": "Swagger 2.0",
            "postman": "Postman collection",
            "graphql": "GraphQL SDL",
            "markdown": "Markdown API doc",
        }[self.value]


class ItemKind(_PicklesByValue):
    """What a retrievable item is; the values match the evaluation vocabulary."""

    OPERATION = "operation"  # an OpenAPI / Swagger (path x method) operation
    POSTMAN = "postman"  # a Postman request
    GRAPHQL = "graphql"  # a root field on Query / Mutation
    DOC_SECTION = "doc_section"  # a section of a Markdown API doc
    AUTH = "auth"  # a security scheme
    OVERVIEW = "overview"  # one per spec: title, servers, counts


@dataclass(frozen=True)
class ValueType:
    """What kind of value a field or parameter holds, as the parser read it from the spec.

    The `type` label next to it (`anyOf(object | string)`, `array<integer>|null`, `[String!]!`) is for people;
    code asks this instead. `types` are JSON Schema type names as the spec declares them, the alternative a
    label shows first first and "null" last when the value may be null: `("object", "string")`,
    `("string", "null")`; empty when the spec does not say (`any`). `items` are the types of an array's
    elements, for the first type. `binary` marks a file's bytes (`format: binary`, Swagger 2's `type: file`,
    a Postman file field), or a list, map or union of them.
    """

    types: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    binary: bool = False

    @property
    def primary(self) -> str:
        """The first type that is not "null"; "" when the type is unknown."""
        return next((kind for kind in self.types if kind != "null"), "")


@dataclass(frozen=True)
class SchemaField:
    """One field of a request or response body, flattened to a dotted name (`address.city`, `items[].id`)."""

    name: str
    type: str = ""  # the label answers show: `array<object (card)>`, `oneOf(string | integer)|null`, `Int!`
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] = ()
    example: str | None = None
    value_type: ValueType = ValueType()


@dataclass(frozen=True)
class Parameter:
    """A path, query, header or cookie parameter."""

    name: str
    location: str  # "path" | "query" | "header" | "cookie"
    required: bool = False
    type: str = "string"  # the label answers show (see `SchemaField.type`)
    description: str = ""
    enum: tuple[str, ...] = ()
    example: str | None = None
    value_type: ValueType = ValueType()


@dataclass(frozen=True)
class RequestBody:
    """A request body: its media type and its (flattened) fields."""

    content_type: str  # e.g. "application/json", "application/x-www-form-urlencoded"
    fields: tuple[SchemaField, ...] = ()
    required: bool = False
    description: str = ""
    example: str | None = None  # a raw example body, when the spec gives one (Postman raw bodies)


@dataclass(frozen=True)
class Response:
    """One documented response."""

    status: str
    description: str = ""
    fields: tuple[SchemaField, ...] = ()


@dataclass(frozen=True)
class SecurityScheme:
    """A way to authenticate, as declared by the spec."""

    name: str  # key in securitySchemes / securityDefinitions, or the Postman auth type
    type: str  # "http" | "apiKey" | "oauth2" | "openIdConnect" | "oauth1" | "basic" | "bearer" | ...
    scheme: str = ""  # for type http: "bearer" | "basic" | ...
    location: str = ""  # for apiKey: "header" | "query" | "cookie"
    param_name: str = ""  # for apiKey: the header / query parameter name
    bearer_format: str = ""
    description: str = ""
    flows: tuple[str, ...] = ()  # human-readable: "authorizationCode: https://auth.example.com/authorize"
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecurityRequirement:
    """One scheme a request must use, with the scopes it needs (OAuth 2 scopes, OpenID Connect roles, ...)."""

    scheme: str  # a `SecurityScheme.name` (Postman: the auth type)
    scopes: tuple[str, ...] = ()


# Alternatives, any one of which is enough; each is the requirements that apply together.
Security = tuple[tuple[SecurityRequirement, ...], ...]


@dataclass(frozen=True)
class Operation:
    """One callable thing: an HTTP operation, a Postman request, a GraphQL root field or a doc section.

    `security` is a list of alternatives, each a tuple of requirements that apply together; `None` means
    "the spec's default", `()` means "no auth needed", and an empty alternative means "or no auth at all".
    """

    kind: ItemKind
    method: str = ""  # upper-case HTTP method; "POST" for GraphQL fields; may be empty for doc sections
    path: str = ""  # path template exactly as written in the spec (Postman: the path part of url.raw)
    operation_id: str = ""
    summary: str = ""
    description: str = ""  # plain text, HTML stripped
    tags: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    request_body: RequestBody | None = None
    responses: tuple[Response, ...] = ()
    security: Security | None = None
    deprecated: bool = False
    servers: tuple[str, ...] = ()  # operation / path-level servers, overriding the spec's
    name: str = ""  # Postman request name, GraphQL field name, Markdown heading
    folder: str = ""  # Postman folder path, e.g. "Spaces/Spaces lookup"
    url: str = ""  # Postman url.raw, as in the file
    graphql_type: str = ""  # "query" | "mutation"
    graphql_signature: str = ""  # e.g. "createIssue(input: CreateIssueInput!): CreateIssuePayload"
    graphql_document: str = ""  # a ready-to-send example query/mutation document for this field

    @property
    def key(self) -> str:
        """A stable identifier, unique within its spec."""
        if self.kind is ItemKind.GRAPHQL:
            return f"graphql:{self.graphql_type}:{self.name}"
        if self.kind is ItemKind.POSTMAN:
            return f"postman:{self.folder}/{self.name}:{self.method} {self.url}"
        if self.kind is ItemKind.DOC_SECTION:
            return f"doc:{self.name}:{self.method} {self.path}"
        return f"op:{self.method} {self.path}"

    @property
    def label(self) -> str:
        """How the operation is cited to a user: `POST /v1/refunds`, `mutation createIssue`, ..."""
        if self.kind is ItemKind.GRAPHQL:
            return f"{self.graphql_type} {self.name}"
        if self.kind is ItemKind.POSTMAN:
            return f"{self.name} ({self.method} {self.url})"
        if self.kind is ItemKind.DOC_SECTION:
            return f"{self.name}" + (f" ({self.method} {self.path})" if self.path else "")
        return f"{self.method} {self.path}"

    def item(self) -> dict[str, str]:
        """The item in the evaluation vocabulary (see shared/eval/README.md)."""
        if self.kind is ItemKind.GRAPHQL:
            return {"kind": "graphql", "type": self.graphql_type, "field": self.name}
        if self.kind is ItemKind.POSTMAN:
            return {"kind": "postman", "method": self.method, "url": self.url, "name": self.name}
        if self.kind is ItemKind.DOC_SECTION:
            item = {"kind": "doc_section", "heading": self.name}
            if self.path:
                item |= {"method": self.method, "path": self.path}
            return item
        return {"kind": "operation", "method": self.method, "path": self.path}


@dataclass(frozen=True)
class ApiSpec:
    """A whole parsed spec."""

    format: SpecFormat
    title: str
    version: str = ""
    description: str = ""
    format_version: str = ""  # "3.1.0", "2.0", "v2.1.0", ...
    servers: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = ()
    security_schemes: tuple[SecurityScheme, ...] = ()
    security: Security = ()  # the default requirement for operations with security=None
    warnings: tuple[str, ...] = ()  # non-fatal problems found while parsing (e.g. unresolved refs)

    def effective_security(self, operation: Operation) -> Security:
        """The security alternatives that apply to an operation, with the spec default filled in."""
        return self.security if operation.security is None else operation.security

    def scheme(self, name: str) -> SecurityScheme | None:
        """The security scheme with this name, if declared."""
        return next((s for s in self.security_schemes if s.name == name), None)

    def base_url(self, operation: Operation | None = None) -> str:
        """The server URL to call, operation-level first; a placeholder when the spec names none."""
        servers = (operation.servers if operation else ()) or self.servers
        return servers[0].rstrip("/") if servers else "https://api.example.com"


def to_dict(value: Any) -> Any:
    """Turn a model object into plain JSON-compatible data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_dict(v) for v in value]
    return value


T = TypeVar("T")


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a model object from `to_dict` output."""
    return typing.cast(T, _build(cls, data))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # Resolving string annotations is slow, and documents are rebuilt from storage in bulk.
    return typing.get_type_hints(cls)


def _build(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(inner[0], data)
    if origin is tuple:
        args = typing.get_args(tp)
        item_type = args[0]
        return tuple(_build(item_type, v) for v in data)
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return tp(data)
    if tp is SecurityRequirement and isinstance(data, str):
        return SecurityRequirement(data)  # stored before scopes were kept: a requirement was its scheme's name
    if dataclasses.is_dataclass(tp):
        hints = _type_hints(typing.cast(type, tp))
        kwargs = {f.name: _build(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data}
        if "value_type" in hints and "value_type" not in data:
            kwargs["value_type"] = value_type_from_label(str(data.get("type") or ""))
        constructor: Any = tp
        return constructor(**kwargs)
    return data


# --------------------------------------------------------------------------------------------------------
# Documents stored before `ValueType`
# --------------------------------------------------------------------------------------------------------

# How many union wrappers (`anyOf(oneOf(...) | ...)`) are looked into for the first alternative.
_MAX_LABEL_NESTING = 8
_UNION_LABEL = re.compile(r"(?:anyOf|oneOf|allOf)\((.*)\)", re.S)
_LABEL_WORD = re.compile(r"\s*([A-Za-z]+)")
_LABEL_ELEMENT = re.compile(r"[\[<(]\s*([A-Za-z]+)")


def value_type_from_label(label: str) -> ValueType:
    """The `ValueType` a stored field or parameter had, read back from its label.

    Documents stored before fields carried a `ValueType` have only the label; their snippets must not change
    when they are loaded again, so this reads labels exactly the way snippets used to: the first
    alternative's leading word, `array<X>` / `[X]` / `X[]` as a list of X, "binary" anywhere as a file.
    """
    primary = label
    for _ in range(_MAX_LABEL_NESTING):
        inner = _first_alternative(primary)
        if inner == primary:
            break
        primary = inner
    binary = label.lower() == "file" or "binary" in label.lower()
    if _is_array_label(primary):
        element = _LABEL_ELEMENT.search(primary)
        if element is None and primary.strip().endswith("[]"):
            element = _LABEL_WORD.match(primary)
        word = element.group(1).lower() if element else "string"
        return ValueType(("array",), ("array" if _is_array_label(word) else word,), binary)
    word_match = _LABEL_WORD.match(primary)
    return ValueType((word_match.group(1).lower() if word_match else "string",), (), binary)


def _first_alternative(label: str) -> str:
    """`anyOf(object | string)` -> `object`, `string|null` -> `string` (bars inside brackets do not split)."""
    text = label.strip()
    wrapped = _UNION_LABEL.fullmatch(text)
    if wrapped:
        text = wrapped.group(1)
    alternatives: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char in "(<[":
            depth += 1
        elif char in ")>]":
            depth -= 1
        elif char == "|" and depth == 0:
            alternatives.append(text[start:index].strip())
            start = index + 1
    alternatives.append(text[start:].strip())
    useful = [a for a in alternatives if a and a.lower() != "null"]
    return useful[0] if useful else "string"


def _is_array_label(label: str) -> bool:
    lowered = label.lower()
    return lowered.startswith(("array", "list", "[")) or lowered.endswith("[]")
