"""An operation's contract, read from the spec's original document: where it lives, and its schemas as JSON Schema.

The parsed `ApiSpec` keeps flattened fields for answers; checking needs the real schemas, so a check reads the
uploaded original again (`RawSpec`). Each schema a check needs is converted once into a self-contained JSON
Schema (draft 2020-12) whose `$ref`s point into its own `$defs` (`SchemaConverter`):

- OpenAPI 3.0 and Swagger 2.0: `nullable: true` (and Swagger's `x-nullable`) becomes a `null` type (and a
  `null` enum value), boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric form, `type: file` any
  value, and keywords next to a `$ref` are ignored, as those versions say;
- OpenAPI 3.1: schemas are JSON Schema already and are kept as they are (type arrays, `const`, siblings of a
  `$ref`), only their refs rewritten.

Conversion is bounded: at most `MAX_SCHEMA_NODES` nodes and `MAX_SCHEMA_DEPTH` levels within one schema
(beyond them a schema allows anything and a note says the check is partial); refs are converted once each from
a work list, so recursive schemas stay finite.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.errors import InvalidSpecError
from core.parsing.refs import RefResolver
from core.paths import segment_fits, segment_literals

MAX_SCHEMA_NODES = 200_000  # per converted schema, with everything it refers to
MAX_SCHEMA_DEPTH = 64  # nesting inside one schema (refs start again at the top)
MAX_OPERATIONS = 20_000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords whose value is a schema, a list of schemas, or a map of name -> schema.
_SCHEMA_VALUED = frozenset(
    {"additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames",
     "unevaluatedProperties", "unevaluatedItems", "additionalItems", "contentSchema"}
)  # fmt: skip
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
# Dropped: documentation only, or identifiers that would move where refs resolve inside the bundle.
_DROPPED = frozenset(
    {"description", "example", "examples", "externalDocs", "xml", "discriminator", "$id", "$schema", "$anchor",
     "$dynamicAnchor", "$comment", "$defs", "definitions", "title", "deprecated", "x-nullable", "nullable"}
)  # fmt: skip


@dataclass(frozen=True)
class RawOperation:
    """One operation of the original document."""

    method: str  # upper-case
    path: str  # the template as written
    node: dict[str, Any]
    item: dict[str, Any]  # its path item (path-level parameters, servers)
    pointer: str  # JSON pointer of the operation, for refs inside it

    @property
    def operation_id(self) -> str:
        """Its operationId ("" when none)."""
        value = self.node.get("operationId")
        return value if isinstance(value, str) else ""

    @property
    def label(self) -> str:
        """`POST /pet`."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class PathMatch:
    """The operations whose path template a request's path fits, best (most literal segments) first."""

    operations: tuple[RawOperation, ...]
    stripped_prefix: str = ""  # the server base path taken off the request's path ("/api/v3")


class RawSpec:
    """An OpenAPI 3.x or Swagger 2.0 document loaded from the uploaded original, ready to look operations up."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.swagger2 = "swagger" in document and "openapi" not in document
        self.version = str(document.get("openapi") or document.get("swagger") or "")
        self.openapi31 = self.version.startswith("3.1")
        self.resolver = RefResolver(document)
        self.operations = self._operations()
        self.base_paths = self._base_paths()

    def _operations(self) -> tuple[RawOperation, ...]:
        found: list[RawOperation] = []
        paths = self.document.get("paths")
        for path, raw_item in paths.items() if isinstance(paths, dict) else ():
            item = self.follow(raw_item)
            if not isinstance(item, dict):
                continue
            for method in HTTP_METHODS:
                node = item.get(method)
                if isinstance(node, dict) and len(found) < MAX_OPERATIONS:
                    pointer = "#/paths/" + _escape(str(path)) + "/" + method
                    found.append(RawOperation(method.upper(), str(path), node, item, pointer))
        return tuple(found)

    def _base_paths(self) -> tuple[str, ...]:
        """The path part of every server URL (Swagger 2: `basePath`), longest first, without a trailing slash."""
        if self.swagger2:
            base = str(self.document.get("basePath") or "")
            urls = [base]
        else:
            urls = [str(s.get("url") or "") for s in _dicts(self.document.get("servers"))]
            for operation in self.operations:
                urls += [str(s.get("url") or "") for s in _dicts(operation.node.get("servers"))]
                urls += [str(s.get("url") or "") for s in _dicts(operation.item.get("servers"))]
        found = set()
        for url in urls:
            try:
                path = urlsplit(url).path if "://" in url else url
            except ValueError:
                continue
            path = path.rstrip("/")
            if path.startswith("/"):
                found.add(path)
        return tuple(sorted(found, key=len, reverse=True))

    def follow(self, node: Any) -> Any:
        """`node`, or what its `$ref` points at ({} for a ref that cannot be followed)."""
        try:
            return self.resolver.follow(node).node
        except InvalidSpecError:
            return {}

    def by_operation_id(self, operation_id: str) -> RawOperation | None:
        """The operation with this operationId (any case)."""
        wanted = operation_id.lower()
        return next((op for op in self.operations if op.operation_id.lower() == wanted), None)

    def by_label(self, method: str, template: str) -> RawOperation | None:
        """The operation written exactly `METHOD /template`."""
        return next((op for op in self.operations if op.method == method and op.path == template), None)

    def match_path(self, path: str) -> PathMatch:
        """The operations whose template `path` fits, trying it as written and without each server base path."""
        candidates = [("", path)]
        for base in self.base_paths:
            if path == base or path.startswith(base + "/"):
                candidates.append((base, path[len(base) :] or "/"))
        for prefix, said in candidates:
            said_segments = _segments(said)
            scored = []
            for operation in self.operations:
                template = _segments(operation.path)
                if len(template) != len(said_segments):
                    continue
                if all(segment_fits(s, t) for s, t in zip(said_segments, template, strict=True)):
                    literal = sum(1 for t in template if len(segment_literals(t)) == 1)
                    scored.append((-literal, operation.path, operation))
            if scored:
                best = min(score for score, _, _ in scored)
                # Only the most literal template counts: `/pet/findByStatus` over `/pet/{petId}`.
                chosen = tuple(op for score, template, op in scored if score == best)
                return PathMatch(chosen, prefix)
        return PathMatch(())

    def security_schemes(self) -> dict[str, dict[str, Any]]:
        """The declared security schemes by name, refs followed."""
        if self.swagger2:
            raw = self.document.get("securityDefinitions")
        else:
            components = self.document.get("components")
            raw = components.get("securitySchemes") if isinstance(components, dict) else None
        schemes: dict[str, dict[str, Any]] = {}
        for name, scheme in raw.items() if isinstance(raw, dict) else ():
            followed = self.follow(scheme)
            if isinstance(followed, dict):
                schemes[str(name)] = followed
        return schemes

    def security(self, operation: RawOperation) -> list[dict[str, list[str]]]:
        """The operation's effective security: its own requirement alternatives, else the document's."""
        raw = operation.node.get("security", self.document.get("security"))
        if not isinstance(raw, list):
            return []
        return [
            {str(k): [str(s) for s in v] if isinstance(v, list) else [] for k, v in alt.items()}
            for alt in raw
            if isinstance(alt, dict)
        ]

    def parameters(self, operation: RawOperation) -> list[dict[str, Any]]:
        """Path-item parameters, each replaced by an operation parameter of the same name and location."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*_list(operation.item.get("parameters")), *_list(operation.node.get("parameters"))]:
            parameter = self.follow(raw)
            if isinstance(parameter, dict) and isinstance(parameter.get("name"), str):
                merged[(parameter["name"], str(parameter.get("in") or ""))] = parameter
        return list(merged.values())


@dataclass
class ConvertedSchema:
    """A self-contained JSON Schema (draft 2020-12) and what conversion had to leave out."""

    schema: dict[str, Any] | bool
    notes: list[str] = field(default_factory=list)


class SchemaConverter:
    """Turns schemas of one document into self-contained JSON Schema, each referenced schema converted once."""

    def __init__(self, spec: RawSpec, direction: str = "request") -> None:
        """`direction` "request" leaves read-only fields out of `required`, "response" write-only ones."""
        self.spec = spec
        self.hidden = "readOnly" if direction == "request" else "writeOnly"
        self.defs: dict[str, Any] = {}
        self._names: dict[str, str] = {}
        self._pending: deque[tuple[str, str]] = deque()
        self.nodes = 0
        self.notes: list[str] = []

    def convert(self, schema: Any) -> ConvertedSchema:
        """`schema` (which may be a `$ref`) with every schema it refers to, as one JSON Schema document."""
        root = self._node(schema, 0)
        while self._pending:
            ref, name = self._pending.popleft()
            try:
                target = self.spec.resolver.resolve(ref)
            except InvalidSpecError:
                self._note("A `$ref` in this schema points outside the spec; that part was not checked.")
                target = {}
            self.defs[name] = self._node(target, 0)
        if isinstance(root, bool):
            document: dict[str, Any] | bool = root if not self.defs else {"allOf": [root], "$defs": self.defs}
        else:
            document = {**root, "$defs": self.defs} if self.defs else root
        return ConvertedSchema(document, self.notes)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _ref(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            self._note("A `$ref` in this schema points outside the spec; that part was not checked.")
            return {}
        name = self._names.get(ref)
        if name is None:
            name = f"s{len(self._names)}"
            self._names[ref] = name
            self._pending.append((ref, name))
        return {"$ref": f"#/$defs/{name}"}

    def _node(self, node: Any, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_SCHEMA_NODES or depth > MAX_SCHEMA_DEPTH:
            self._note("This schema is too large or too deeply nested to check completely; part of it was skipped.")
            return {}
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            pointer = self._ref(ref)
            if not self.spec.openapi31:
                return pointer  # OpenAPI 3.0 and Swagger 2.0 ignore keywords next to a $ref
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if not rest:
                return pointer
            converted = self._keywords(rest, depth)
            return {"allOf": [pointer], **converted} if isinstance(converted, dict) else converted
        return self._keywords(node, depth)

    def _keywords(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED or (isinstance(key, str) and key.startswith("x-")):
                continue
            if key in _SCHEMA_VALUED:
                if key == "items" and isinstance(value, list):
                    result["prefixItems"] = [self._node(v, depth + 1) for v in value]  # draft 4 tuple form
                else:
                    result[key] = self._node(value, depth + 1)
            elif key in _SCHEMA_LISTS:
                result[key] = [self._node(v, depth + 1) for v in _list(value)]
            elif key in _SCHEMA_MAPS:
                result[key] = {str(k): self._node(v, depth + 1) for k, v in _dict(value).items()}
            else:
                result[key] = value
        if isinstance(result.get("required"), list) and isinstance(node.get("properties"), dict):
            # OpenAPI: a required read-only field is required in responses only (write-only: in requests only)
            properties = node["properties"]
            result["required"] = [
                name for name in result["required"]
                if not (isinstance(name, str) and _flag(self.spec.follow(properties.get(name)), self.hidden))
            ]  # fmt: skip
        if not self.spec.openapi31:
            result = self._legacy(node, result)
        return result

    def _legacy(self, node: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """OpenAPI 3.0 / Swagger 2.0 keywords with another meaning in JSON Schema 2020-12."""
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            flag = result.get(bound)
            if isinstance(flag, bool):
                del result[bound]
                if flag and limit in result:
                    result[bound] = result.pop(limit)
        kind = result.get("type")
        if kind == "file":
            del result["type"]
        if "required" in result and not isinstance(result["required"], list):
            del result["required"]  # Swagger 2 parameters say `required: true` on the parameter, not a list
        nullable = node.get("nullable") is True or node.get("x-nullable") is True
        if nullable:
            if isinstance(kind, str) and kind != "file":
                result["type"] = [kind, "null"]
            if isinstance(result.get("enum"), list) and None not in result["enum"]:
                result["enum"] = [*result["enum"], None]
            if "type" not in result and any(k in result for k in ("allOf", "anyOf", "oneOf", "$ref")):
                return {"anyOf": [{"type": "null"}, result]}
        return result


def _flag(schema: Any, keyword: str) -> bool:
    """Whether a schema (or the single member of its `allOf`) sets `keyword: true`."""
    if not isinstance(schema, dict):
        return False
    if schema.get(keyword) is True:
        return True
    members = schema.get("allOf")
    return (
        isinstance(members, list)
        and len(members) == 1
        and isinstance(members[0], dict)
        and members[0].get(keyword) is True
    )


def _segments(path: str) -> list[str]:
    return [segment for segment in path.strip("/").split("/") if segment] if path.strip("/") else []


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_MEDIA_PARAMS = re.compile(r";.*$", re.S)


def media_type(value: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return _MEDIA_PARAMS.sub("", value).strip().lower()


def media_matches(sent: str, declared: str) -> bool:
    """Whether a sent media type fits a declared one (`application/*`, `*/*` and `+json` suffixes included)."""
    sent, declared = media_type(sent), media_type(declared)
    if declared in ("*/*", sent):
        return True
    if declared.endswith("/*"):
        return sent.split("/")[0] == declared[:-2]
    return False
