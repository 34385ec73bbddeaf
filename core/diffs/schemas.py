"""JSON schemas (OpenAPI 3.x, Swagger 2.0) flattened to comparable facts, within fixed bounds.

A schema becomes a map from a dotted path (`""` for the schema itself, `address.city`, `items[].id`,
`metadata.*` for map values) to `Facts`: its types, format, enum, bounds, pattern and whether it is required.
Specs are uploaded by anyone, so every walk is bounded: `MAX_DEPTH` levels, `MAX_NODES` paths per schema,
`MAX_MERGE` members per `allOf`/`oneOf`/`anyOf`, and a `$ref` already being expanded above a node is not
expanded again (recursive schemas stay finite). A schema cut by a bound is marked `complete=False`, and the
diff then compares only the paths both versions have, so a bound never shows up as a removed field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.parsing.refs import RefResolver
from core.parsing.values import as_dict, as_list, is_true

MAX_DEPTH = 8  # `a.b.c.d.e.f.g.h` at most
MAX_NODES = 1500  # paths per schema (a request body, a response, a parameter)
MAX_MERGE = 50  # members of one allOf / oneOf / anyOf looked at
MAX_MERGE_DEPTH = 8  # allOf inside allOf inside ...
MAX_ENUM = 500
MAX_WORK = 20_000  # schema nodes looked at (merges included) per flattened schema
MAX_DOCUMENT_WORK = 3_000_000  # ... and per document: past it, every further schema is cut short
MAX_ENUM_VALUE_CHARS = 200


@dataclass(frozen=True)
class Facts:
    """What a client can rely on about one value of a schema."""

    types: frozenset[str] = frozenset()  # JSON Schema type names, "null" when nullable; empty: any
    format: str = ""
    enum: frozenset[str] | None = None  # canonical JSON of each allowed value; None: no enum
    required: bool = False
    min_length: float | None = None
    max_length: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_items: float | None = None
    max_items: float | None = None
    pattern: str = ""
    read_only: bool = False
    write_only: bool = False
    description: str = ""


@dataclass
class Flattened:
    """A schema as facts by path; `complete` is False when a bound cut it short."""

    facts: dict[str, Facts] = field(default_factory=dict)
    complete: bool = True


@dataclass
class _Merged:
    """A schema node with its `$ref`s followed and its `allOf`/`oneOf`/`anyOf` members folded in."""

    schema: dict[str, Any]
    types: set[str]
    properties: dict[str, Any]
    required: set[str]
    items: Any
    values: Any
    refs: tuple[str, ...]
    recursive: bool
    enum: list[Any] | None
    cut: bool = False  # a bound stopped the folding: members were left out
    format: str = ""


class SchemaFacts:
    """Flattens the schemas of one document; results for a `$ref` root are memoised."""

    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver
        self._memo: dict[tuple[str, bool], Flattened] = {}
        self._work = 0  # nodes looked at in the schema being flattened
        self.document_work = 0

    def flatten(self, schema: Any, *, required: bool = False, swagger2: bool = False) -> Flattened:
        """`schema` as facts by path, the root at `""` (its `required` is the caller's: body or parameter)."""
        key = schema.get("$ref") if isinstance(schema, dict) and len(schema) == 1 else None
        if isinstance(key, str) and (key, required) in self._memo:
            return self._memo[(key, required)]
        result = Flattened()
        self._work = 0
        self._walk(schema, "", required, (), 0, result, swagger2)
        self.document_work += self._work
        if isinstance(key, str):
            self._memo[(key, required)] = result
        return result

    def _walk(
        self, node: Any, path: str, required: bool, chain: tuple[str, ...], depth: int, out: Flattened, sw2: bool
    ) -> None:
        # Breadth would need a queue of the same size; the depth bound keeps this recursion shallow.
        if len(out.facts) >= MAX_NODES or self._spent():
            out.complete = False
            return
        merged = self._merge(node, chain, 0)
        if merged.cut:
            out.complete = False
        out.facts[path] = _facts(merged, required, sw2)
        if merged.recursive:
            return
        if depth >= MAX_DEPTH:
            if merged.properties or merged.items is not None or merged.values is not None:
                out.complete = False
            return
        inner = chain + merged.refs
        for name in sorted(merged.properties):
            child = f"{path}.{name}" if path else str(name)
            self._walk(merged.properties[name], child, name in merged.required, inner, depth + 1, out, sw2)
        if merged.items is not None:
            self._walk(merged.items, path + "[]", False, inner, depth + 1, out, sw2)
        if merged.values is not None:
            self._walk(merged.values, path + ".*", False, inner, depth + 1, out, sw2)

    def _spent(self) -> bool:
        return self._work >= MAX_WORK or self.document_work + self._work >= MAX_DOCUMENT_WORK

    def _merge(self, node: Any, chain: tuple[str, ...], level: int) -> _Merged:
        self._work += 1
        resolved = self.resolver.follow(node, chain)
        schema = as_dict(resolved.node)
        refs = (resolved.ref,) if resolved.ref else ()
        merged = _Merged(
            schema=schema,
            types=set(_types(schema)),
            properties=dict(as_dict(schema.get("properties"))),
            required={str(r) for r in as_list(schema.get("required"))},
            items=schema.get("items") if isinstance(schema.get("items"), dict) else None,
            values=schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None,
            refs=refs,
            recursive=resolved.recursive,
            enum=list(schema["enum"]) if isinstance(schema.get("enum"), list) else None,
            format=str(schema.get("format") or ""),
        )
        if resolved.recursive:
            return merged
        if level >= MAX_MERGE_DEPTH or self._spent():
            merged.cut = bool(schema.get("allOf") or schema.get("oneOf") or schema.get("anyOf"))
            return merged
        inner = chain + refs
        for member in as_list(schema.get("allOf"))[:MAX_MERGE]:
            part = self._merge(member, inner, level + 1)
            merged.cut |= part.cut
            merged.types = merged.types & part.types if merged.types and part.types else merged.types | part.types
            merged.properties.update(part.properties)
            merged.required |= part.required
            merged.items = merged.items if merged.items is not None else part.items
            merged.values = merged.values if merged.values is not None else part.values
            merged.enum = merged.enum if merged.enum is not None else part.enum
            merged.format = merged.format or part.format
        alternatives = [*as_list(schema.get("oneOf")), *as_list(schema.get("anyOf"))][:MAX_MERGE]
        if alternatives:
            # A value may be any alternative: every property any of them has, the union of their types.
            # A property several alternatives have may be any of their schemas; it is required when all require it.
            types: set[str] = set()
            choices: dict[str, list[Any]] = {}
            required: set[str] | None = None
            formats: set[str] = set()
            for member in alternatives:
                part = self._merge(member, inner, level + 1)
                merged.cut |= part.cut
                types |= part.types or {"any"}
                formats.add(part.format if part.types - {"null"} else "")
                for name, prop in part.properties.items():
                    choices.setdefault(name, []).append(prop)
                required = part.required if required is None else required & part.required
                merged.items = merged.items if merged.items is not None else part.items
            for name, schemas in choices.items():
                merged.properties.setdefault(name, schemas[0] if len(schemas) == 1 else {"anyOf": schemas})
            merged.required |= required or set()
            if "any" not in types and not _types(schema):
                merged.types |= types
            if not merged.format:  # `oneOf: [null, {$ref: snowflake}]` is a snowflake (or null)
                formats = {part_format for part_format in formats if part_format}
                merged.format = formats.pop() if len(formats) == 1 else ""
        if not merged.types:
            if merged.properties:
                merged.types.add("object")
            elif merged.items is not None:
                merged.types.add("array")
        return merged


def _types(schema: dict[str, Any]) -> list[str]:
    raw = schema.get("type")
    found = [str(t) for t in raw[:10]] if isinstance(raw, list) else [str(raw)] if isinstance(raw, str) else []
    if is_true(schema.get("nullable")) or is_true(schema.get("x-nullable")):
        found.append("null")
    return found


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _enum(values: list[Any] | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset(_canonical(v)[:MAX_ENUM_VALUE_CHARS] for v in values[:MAX_ENUM])


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _facts(merged: _Merged, required: bool, swagger2: bool) -> Facts:
    schema = merged.schema
    types = set(merged.types)
    if "integer" in types and "number" in types:
        types.discard("integer")  # `number` already allows integers
    return Facts(
        types=frozenset(types),
        format=merged.format,
        enum=_enum(merged.enum),
        required=required,
        min_length=_number(schema.get("minLength")),
        max_length=_number(schema.get("maxLength")),
        minimum=_number(schema.get("minimum")),
        maximum=_number(schema.get("maximum")),
        min_items=_number(schema.get("minItems")),
        max_items=_number(schema.get("maxItems")),
        pattern=str(schema.get("pattern") or "")[:MAX_ENUM_VALUE_CHARS],
        read_only=is_true(schema.get("readOnly")),
        write_only=is_true(schema.get("writeOnly")),
        description=str(schema.get("description") or "")[:MAX_ENUM_VALUE_CHARS],
    )
