"""The schema diagram: one schema and the schemas it references, bounded in depth and in nodes.

OpenAPI 3 (`components/schemas`) and Swagger 2 (`definitions`) are read from the uploaded document; GraphQL from
its SDL (object, input and interface types). Each node lists the schema's first `MAX_FIELDS` fields with their
types and counts the rest; an edge joins a field to the schema it references. References are followed
breadth-first `MAX_DEPTH` levels deep and at most `MAX_NODES` schemas are drawn (Stripe's `customer` reaches
hundreds of schemas within three levels), so every diagram stays readable; what was cut is said in a note.
Every walk is bounded: schemas nest at most `MAX_NESTING` levels inside a node, `allOf`/`anyOf`/`oneOf` are read
up to `MAX_MEMBERS` members, and a `$ref` is resolved only to `#/…` pointers of the same document.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, parse
from graphql.language import ast

from core import messages
from core.diagrams import SCHEMA, Diagram
from core.diagrams.dot import digraph, text
from core.errors import DiagramError

MAX_DEPTH = 2  # levels of references followed from the asked schema
MAX_NODES = 14  # schemas drawn
MAX_FIELDS = 14  # fields listed per schema
MAX_NESTING = 6  # levels looked into within one schema (items of items, allOf members, …)
MAX_MEMBERS = 20  # members of an allOf / anyOf / oneOf read
MAX_NAME_CHARS = 100
MAX_SCHEMA_NAMES = 100_000  # names compared when suggesting close matches
GRAPHQL_MAX_TOKENS = 2_000_000  # the upload's own parse allowed this much already


@dataclass(frozen=True)
class SchemaField:
    """A field of a schema as drawn: its name, its type label, and the schemas it references."""

    name: str
    type: str
    refs: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class SchemaNode:
    """A schema with its fields, in the spec's order."""

    name: str
    kind: str  # "object", "input", "enum", "string", ...
    fields: tuple[SchemaField, ...]


class SchemaSource:
    """The named schemas of one document, read on demand."""

    def names(self) -> list[str]:
        """Every schema's name."""
        raise NotImplementedError

    def node(self, name: str) -> SchemaNode | None:
        """The schema called `name`, if there is one."""
        raise NotImplementedError


class OpenApiSchemas(SchemaSource):
    """`components/schemas` (OpenAPI 3) or `definitions` (Swagger 2)."""

    def __init__(self, document: dict[str, Any]) -> None:
        if "swagger" in document:
            found = document.get("definitions")
            self.prefix = "#/definitions/"
        else:
            components = document.get("components")
            found = components.get("schemas") if isinstance(components, dict) else None
            self.prefix = "#/components/schemas/"
        self.schemas: dict[str, Any] = found if isinstance(found, dict) else {}

    def names(self) -> list[str]:
        """Every schema's name."""
        return [str(name) for name in self.schemas]

    def node(self, name: str) -> SchemaNode | None:
        """The schema's fields (properties, with those of `allOf` members merged in)."""
        schema = self.schemas.get(name)
        if not isinstance(schema, dict):
            return None
        properties: dict[str, Any] = {}
        required: set[str] = set()
        self._collect(schema, properties, required, 0)
        fields = tuple(
            SchemaField(str(field), self._type(value, 0), tuple(dict.fromkeys(self._refs(value, 0))), field in required)
            for field, value in properties.items()
        )
        kind = str(schema.get("type") or ("object" if properties else "schema"))
        if not fields:  # a oneOf of schemas, an array of them: the references are the content
            refs = tuple(dict.fromkeys(self._refs(schema, 0)))
            if refs:
                fields = (SchemaField("(value)", self._type(schema, 0), refs),)
        return SchemaNode(name, kind, fields)

    def _collect(self, schema: dict[str, Any], properties: dict[str, Any], required: set[str], depth: int) -> None:
        if depth > MAX_NESTING:
            return
        own = schema.get("properties")
        if isinstance(own, dict):
            for key, value in own.items():
                properties.setdefault(str(key), value)
        names = schema.get("required")
        if isinstance(names, list):
            required.update(str(n) for n in names[:1000])
        members = schema.get("allOf")
        for member in members[:MAX_MEMBERS] if isinstance(members, list) else ():
            if isinstance(member, dict) and "$ref" not in member:
                self._collect(member, properties, required, depth + 1)

    def _ref_name(self, ref: Any) -> str | None:
        if isinstance(ref, str) and ref.startswith(self.prefix):
            name = ref[len(self.prefix):].replace("~1", "/").replace("~0", "~")
            return name if name in self.schemas else None
        return None

    def _refs(self, schema: Any, depth: int) -> list[str]:
        """The schemas `schema` references: directly, as array items, map values, or combinator members."""
        if not isinstance(schema, dict) or depth > MAX_NESTING:
            return []
        name = self._ref_name(schema.get("$ref"))
        if name is not None:
            return [name]
        found: list[str] = []
        for key in ("items", "additionalProperties", "not"):
            found += self._refs(schema.get(key), depth + 1)
        for key in ("allOf", "anyOf", "oneOf"):
            members = schema.get(key)
            for member in members[:MAX_MEMBERS] if isinstance(members, list) else ():
                found += self._refs(member, depth + 1)
        return found

    def _type(self, schema: Any, depth: int) -> str:
        if not isinstance(schema, dict) or depth > MAX_NESTING:
            return "any"
        name = self._ref_name(schema.get("$ref"))
        if name is not None:
            return name
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = "|".join(str(k) for k in kind[:4])
        if kind == "array":
            return f"{self._type(schema.get('items'), depth + 1)}[]"
        for key in ("anyOf", "oneOf", "allOf"):
            members = schema.get(key)
            if isinstance(members, list) and members:
                labels = [self._type(m, depth + 1) for m in members[:4]]
                return " | ".join(labels) + (" | …" if len(members) > 4 else "")
        if "enum" in schema:
            return f"{kind or 'enum'} (enum)"
        return str(kind or ("object" if "properties" in schema else "any"))


class GraphQLSchemas(SchemaSource):
    """Object, input and interface types of a GraphQL SDL (enums and scalars appear as field types)."""

    def __init__(self, sdl: str) -> None:
        try:
            document = parse(sdl, no_location=True, max_tokens=GRAPHQL_MAX_TOKENS)
        except GraphQLError:
            document = ast.DocumentNode(definitions=())
        self.types: dict[str, Any] = {}
        for definition in document.definitions:
            if isinstance(definition, ast.ObjectTypeDefinitionNode | ast.InputObjectTypeDefinitionNode
                          | ast.InterfaceTypeDefinitionNode | ast.UnionTypeDefinitionNode
                          | ast.EnumTypeDefinitionNode):
                self.types.setdefault(definition.name.value, definition)

    def names(self) -> list[str]:
        """Every type's name."""
        return list(self.types)

    def node(self, name: str) -> SchemaNode | None:
        """The type's fields with their GraphQL types."""
        definition = self.types.get(name)
        if definition is None:
            return None
        if isinstance(definition, ast.UnionTypeDefinitionNode):
            members = tuple(t.name.value for t in definition.types or ())[:MAX_MEMBERS]
            return SchemaNode(name, "union", (SchemaField("(one of)", " | ".join(members), members),))
        if isinstance(definition, ast.EnumTypeDefinitionNode):
            values = [v.name.value for v in definition.values or ()]
            return SchemaNode(name, "enum", tuple(SchemaField(v, "", ()) for v in values))
        kind = {ast.InputObjectTypeDefinitionNode: "input", ast.InterfaceTypeDefinitionNode: "interface"}.get(
            type(definition), "type")
        fields = []
        for field in definition.fields or ():
            named = _named_type(field.type)
            refs = (named,) if named in self.types else ()
            fields.append(SchemaField(field.name.value, _type_label(field.type), refs,
                                      isinstance(field.type, ast.NonNullTypeNode)))
        return SchemaNode(name, kind, tuple(fields))


def _named_type(node: ast.TypeNode) -> str:
    for _ in range(MAX_NESTING):
        if isinstance(node, ast.NamedTypeNode):
            return node.name.value
        node = node.type  # type: ignore[attr-defined]
    return ""


def _type_label(node: ast.TypeNode, depth: int = 0) -> str:
    if depth > MAX_NESTING:
        return "…"
    if isinstance(node, ast.NonNullTypeNode):
        return _type_label(node.type, depth + 1) + "!"
    if isinstance(node, ast.ListTypeNode):
        return f"[{_type_label(node.type, depth + 1)}]"
    return node.name.value if isinstance(node, ast.NamedTypeNode) else "?"


def find_schema(source: SchemaSource, wanted: str, spec: str) -> str:
    """The schema `wanted` names: exactly, else ignoring case; `DiagramError` with close names otherwise."""
    names = source.names()[:MAX_SCHEMA_NAMES]
    if wanted in names:
        return wanted
    lowered = {name.lower(): name for name in names}
    if wanted.lower() in lowered:
        return lowered[wanted.lower()]
    close = difflib.get_close_matches(wanted.lower()[:MAX_NAME_CHARS], list(lowered), n=3, cutoff=0.6)
    raise DiagramError(messages.diagram_schema_not_found(wanted[:MAX_NAME_CHARS], spec, [lowered[c] for c in close]))


def schema_diagram(source: SchemaSource, wanted: str, spec: str) -> Diagram:
    """The schema `wanted` and the schemas it references, breadth first, within the bounds."""
    root = find_schema(source, wanted, spec)
    drawn: dict[str, tuple[SchemaNode, int]] = {}
    queue: deque[tuple[str, int]] = deque([(root, 0)])
    seen = {root}
    left_out: set[str] = set()
    cut_by_depth = False
    while queue:
        name, depth = queue.popleft()
        if len(drawn) >= MAX_NODES:
            left_out.add(name)
            continue
        node = source.node(name)
        if node is None:
            continue
        drawn[name] = (node, depth)
        for field in node.fields[:MAX_FIELDS]:
            for ref in field.refs:
                if ref in seen:
                    continue
                if depth + 1 > MAX_DEPTH:
                    cut_by_depth = True
                    continue
                seen.add(ref)
                queue.append((ref, depth + 1))
    graph = digraph("schema", rankdir="LR")
    graph.attr("graph", label=text(f"{spec}: schema {root}"), labelloc="t", fontsize="14")
    graph.attr("node", shape="plaintext")
    ids = {name: f"s{index}" for index, name in enumerate(drawn)}
    for name, (node, _depth) in drawn.items():
        graph.node(ids[name], _html_table(node, root == name))
    for name, (node, _) in drawn.items():
        for index, field in enumerate(node.fields[:MAX_FIELDS]):
            for ref in field.refs:
                if ref in ids:
                    graph.edge(f"{ids[name]}:f{index}", f"{ids[ref]}:head", color="#4a6fa5")
    notes = []
    if left_out:
        notes.append(messages.diagram_more_schemas(len(left_out)))
    if cut_by_depth:
        notes.append(messages.diagram_depth_cut(MAX_DEPTH))
    return Diagram(SCHEMA, root, graph.source, tuple(notes))


def _html(value: str, limit: int = 60) -> str:
    """Spec text for an HTML-like label: one bounded line with &, <, >, " escaped."""
    line = " ".join(str(value).split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _html_table(node: SchemaNode, root: bool) -> str:
    colour = "#dfe9f7" if root else "#eef3fb"
    rows = [f'<TR><TD PORT="head" BGCOLOR="{colour}" COLSPAN="2"><B>{_html(node.name)}</B>'
            f' <FONT POINT-SIZE="9">{_html(node.kind, 20)}</FONT></TD></TR>']
    for index, field in enumerate(node.fields[:MAX_FIELDS]):
        name = _html(field.name, 40) + ("*" if field.required else "")
        rows.append(f'<TR><TD ALIGN="LEFT">{name}</TD><TD ALIGN="LEFT" PORT="f{index}">'
                    f'<FONT COLOR="#555555">{_html(field.type, 50)}</FONT></TD></TR>')
    more = len(node.fields) - MAX_FIELDS
    if more > 0:
        rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT"><I>… {more} more fields</I></TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">' + "".join(rows) + "</TABLE>>"
