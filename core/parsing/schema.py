"""Schemas -> flattened fields: the OpenAPI / Swagger schema flattener and the JSON Schema helpers it uses.

Schemas are never fully inlined: a body is flattened breadth-first into at most `MAX_FIELDS` dotted fields,
`MAX_FIELD_DEPTH` levels deep, which keeps self-referencing schemas (Stripe's `invoice`) finite and big specs
fast. Each schema node is described once (`Shape`: type label, description, enum, example, and the raw
children it would expand into) and memoised by identity.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.models import SchemaField, ValueType
from core.parsing.refs import MAX_REF_DEPTH, RefResolver, ref_name
from core.parsing.text import first_sentence, strip_html, truncate
from core.parsing.values import as_dict, as_text, is_true, json_type, scalar_text

MAX_FIELD_DEPTH = 3  # `a.b.c` at most
MAX_FIELDS = 60  # per request / response body
MAX_ENUM = 20
MAX_ALTERNATIVES = 4  # oneOf / anyOf members named in a type label
MAX_FIELD_EXAMPLE = 120

NO_EXAMPLE: Any = object()  # a schema or parameter without an example (None is an example: `null`)
# Field descriptions keep one sentence (<= 200 chars); cleaning only this much of the raw text is plenty.
_DESCRIPTION_SCAN = 1000


@dataclass
class Shape:
    """What the flattener needs to know about one schema node, computed once per node."""

    type: str  # the label answers show
    value_type: ValueType = field(default_factory=ValueType)  # the same, for code
    description: str = ""
    enum: tuple[str, ...] = ()
    example: str | None = None
    # (property name, raw property schema, required); raw so that nested schemas are only looked at on demand
    properties: tuple[tuple[str, Any, bool], ...] = ()
    items: Any = None  # raw item schema when this is an array
    values: Any = None  # raw `additionalProperties` schema when this is a map
    # The refs this node stands for (its own `$ref`, a lone `allOf` member, the alternative whose fields are
    # shown); a child standing for a ref that is already being expanded above it is recursive.
    refs: tuple[str, ...] = ()
    name: str = ""  # the component name, when the node was a `$ref`


_NO_CUT: frozenset[str] = frozenset()


@dataclass
class _Built:
    shape: Shape
    # Refs at which a cycle was cut while building (through items / allOf / oneOf; properties are never built
    # eagerly). A shape that cut a ref it did not enter itself depends on where it was reached from, so it
    # is not memoised.
    cut: frozenset[str] = _NO_CUT


class SchemaFlattener:
    """Describes and flattens the schemas of one document, each node once.

    Memos are keyed by id(); the node is stored alongside so its id cannot be reused while the parse runs.
    """

    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver
        self._shapes: dict[int, tuple[Any, Shape]] = {}
        self._flattened: dict[Any, tuple[Any, tuple[SchemaField, ...]]] = {}
        self._building: set[int] = set()

    def flatten(self, root: Any) -> tuple[SchemaField, ...]:
        """A body schema as dotted fields, breadth-first so that top-level fields survive the field cap."""
        if root is None:
            return ()
        key: Any = id(root)
        if _is_ref(root) and len(root) == 1:
            key = root["$ref"]  # many operations return the same component
        cached = self._flattened.get(key)
        if cached is not None:
            return cached[1]
        shape = self.shape(root)
        container, suffix = self._container(shape)
        found: list[tuple[tuple[int, ...], SchemaField]] = []
        queue: deque[tuple[str, Shape, tuple[str, ...], int, tuple[int, ...]]] = deque()
        if container.properties:
            queue.append((suffix, container, shape.refs + container.refs, 1, ()))
        while queue and len(found) < MAX_FIELDS:
            prefix, parent, chain, depth, order = queue.popleft()
            for index, (prop, raw, required) in enumerate(parent.properties):
                if len(found) >= MAX_FIELDS:
                    break
                child = self.shape(raw)
                inner, child_suffix = self._container(child)
                name = f"{prefix}.{prop}" if prefix else prop
                label = child.type
                recursive = next((r for r in inner.refs + child.refs if r in chain), None)
                if recursive is not None:
                    label = _mark_recursive(label, ref_name(recursive))
                found.append(
                    (
                        (*order, index),
                        SchemaField(
                            name=name,
                            type=label,
                            value_type=child.value_type,
                            required=required,
                            description=child.description,
                            enum=child.enum or inner.enum,
                            example=child.example,
                        ),
                    )
                )
                if recursive is None and inner.properties and depth < MAX_FIELD_DEPTH:
                    queue.append(
                        (
                            name + child_suffix,
                            inner,
                            chain + child.refs + inner.refs,
                            depth + 1,
                            (*order, index),
                        )
                    )
        # Breadth-first to choose, tree order to read: `address`, `address.city`, `name`.
        found.sort(key=lambda pair: pair[0])
        fields = tuple(f for _, f in found)
        self._flattened[key] = (root, fields)
        return fields

    def _container(self, shape: Shape) -> tuple[Shape, str]:
        """The shape whose properties become child fields, looking through arrays (`[]`) and maps (`.*`)."""
        suffix = ""
        for _ in range(MAX_FIELD_DEPTH):
            if shape.properties:
                break
            if shape.items is not None:
                shape, suffix = self.shape(shape.items), suffix + "[]"
            elif shape.values is not None:
                shape, suffix = self.shape(shape.values), suffix + ".*"
            else:
                break
        return shape, suffix

    def shape(self, node: Any) -> Shape:
        """What one schema node is (described once, then remembered)."""
        return self._build(node, ()).shape

    def _build(self, node: Any, active: tuple[str, ...]) -> _Built:
        """Describe one schema node, memoised; `active` holds the refs being built above it."""
        cached = self._shapes.get(id(node))
        if cached is not None:
            return _Built(cached[1])
        if id(node) in self._building and not _is_ref(node):
            # Only a YAML alias can make a node contain itself without a `$ref`; treat the repeat as opaque.
            # (A `$ref` node that repeats is caught, and named, as a recursive ref by `_build_uncached`.)
            return _Built(Shape(type="any"), frozenset(("<alias cycle>",)))
        self._building.add(id(node))
        try:
            built = self._build_uncached(node, active)
        finally:
            self._building.discard(id(node))
        cut = built.cut - set(built.shape.refs)  # cycles back into this node itself are fine to remember
        if not cut:
            self._shapes[id(node)] = (node, built.shape)
        return _Built(built.shape, cut)

    def _build_uncached(self, node: Any, active: tuple[str, ...]) -> _Built:
        siblings = as_dict(node)
        resolved = self.resolver.follow(node)
        if resolved.ref and resolved.ref in active:
            recursive = Shape(
                type=f"object (recursive: {resolved.name})", value_type=ValueType(("object",)), name=resolved.name
            )
            return _Built(recursive, frozenset((resolved.ref,)))
        if len(active) >= MAX_REF_DEPTH:
            # A very long chain of distinct refs through items / unions: stop before Python's recursion limit.
            return _Built(Shape(type="any", name=resolved.name), frozenset(("<too deep>",)))
        refs: tuple[str, ...] = (resolved.ref,) if resolved.ref else ()
        active = active + refs
        cut = _NO_CUT
        schema = as_dict(resolved.node)
        name = resolved.name
        if "allOf" in schema:
            schema, part_ref, cut = self._merge_all_of(schema, active)
            if part_ref:
                refs += (part_ref,)
                name = name or ref_name(part_ref)
        nullable = is_true(siblings.get("nullable")) or is_true(schema.get("nullable"))

        types = _type_list(schema.get("type"))
        if "null" in types:
            nullable = True
            types = [t for t in types if t != "null"]

        # oneOf / anyOf: `[{type: null}, X]` is just a nullable X; all-`const` members are an enum (Discord)
        union_key = "oneOf" if "oneOf" in schema else "anyOf" if "anyOf" in schema else ""
        alternatives = list(schema.get(union_key) or ()) if union_key else []
        non_null = [a for a in alternatives if _type_list(as_dict(a).get("type")) != ["null"]]
        if len(non_null) < len(alternatives):
            nullable = True
        enum = tuple(scalar_text(v) for v in (schema.get("enum") or ()) if v is not None)
        if "const" in schema:
            enum = (scalar_text(schema["const"]),)
        if non_null and all(isinstance(a, dict) and "const" in a for a in non_null):
            enum = tuple(scalar_text(a["const"]) for a in non_null)
            if not types:
                types = sorted({json_type(a["const"]) or "string" for a in non_null})
            non_null = []

        properties = self._properties(schema)
        items = schema.get("items")
        if isinstance(items, list):  # old tuple-style `items: [...]`
            items = items[0] if items else None
        values = schema.get("additionalProperties")
        values = values if isinstance(values, dict) and not properties else None

        description = _description(siblings) if resolved.ref else ""
        description = description or _description(schema)
        example = example_text(_schema_example(schema), MAX_FIELD_EXAMPLE)

        if len(non_null) == 1 and not properties and not types:
            # A wrapper around one real alternative: take it over wholesale, keeping this node's notes.
            inner = self._build(non_null[0], active)
            shape = inner.shape
            label = shape.type if not nullable or shape.type.endswith("|null") else f"{shape.type}|null"
            return _Built(
                Shape(
                    type=label,
                    value_type=_or_null(shape.value_type) if nullable else shape.value_type,
                    description=description or shape.description,
                    enum=enum or shape.enum,
                    example=example or shape.example,
                    properties=shape.properties,
                    items=shape.items,
                    values=shape.values,
                    refs=refs + shape.refs,
                    name=name or shape.name,
                ),
                cut=cut | inner.cut,
            )

        if "const" in schema:
            label = f"const {_const_text(schema['const'])}"
            value_type = ValueType(tuple(types) or (json_type(schema["const"]) or "string",))
        elif non_null and not properties:
            shapes = []
            for alternative in non_null[:MAX_ALTERNATIVES]:
                inner = self._build(alternative, active)
                cut |= inner.cut
                shapes.append(inner.shape)
            labels = [alt.type for alt in shapes]
            value_type = _union_value_type([alt.value_type for alt in shapes])
            # The fields shown are those of the first alternative with properties, else of the first list or map.
            chosen = next((alt for alt in shapes if alt.properties), None) or next(
                (alt for alt in shapes if alt.items is not None or alt.values is not None), None
            )
            if chosen is not None:
                properties, items, values = chosen.properties, chosen.items, chosen.values
                refs += chosen.refs
            if len(non_null) > MAX_ALTERNATIVES:
                labels.append("…")
            if nullable:
                labels.append("null")
            label = f"{union_key}({' | '.join(labels)})"
            value_type = _or_null(value_type) if nullable else value_type
            nullable = False
        else:
            label, value_type, item_cut = self._base_label(schema, types, name, properties, items, values, active)
            cut |= item_cut
        if nullable:
            label += "|null"
            value_type = _or_null(value_type)
        shape = Shape(
            type=label,
            value_type=value_type,
            description=description,
            enum=enum[:MAX_ENUM],
            example=example,
            properties=properties,
            items=items,
            values=values,
            refs=refs,
            name=name,
        )
        return _Built(shape, cut=cut)

    def _base_label(
        self,
        schema: dict[str, Any],
        types: list[str],
        name: str,
        properties: tuple[tuple[str, Any, bool], ...],
        items: Any,
        values: Any,
        active: tuple[str, ...],
    ) -> tuple[str, ValueType, frozenset[str]]:
        """The label (`string`, `array<object (card)>`, `map<string, integer>`) and type of a non-union schema."""
        binary = _is_binary(schema)
        if not types:
            if properties or values is not None or "additionalProperties" in schema:
                types = ["object"]
            elif items is not None:
                types = ["array"]
            else:
                return ("file" if binary else "any"), ValueType(binary=binary), _NO_CUT
        labels = []
        item_types: tuple[str, ...] = ()
        cut = _NO_CUT
        for kind in types:
            if kind == "array":
                item_label = "any"
                if items is not None:
                    inner = self._build(items, active)
                    item_label, cut = inner.shape.type, cut | inner.cut
                    item_types = item_types or inner.shape.value_type.types
                    binary = binary or inner.shape.value_type.binary
                labels.append(f"array<{item_label}>")
            elif kind == "object":
                if values is not None and not properties:
                    inner = self._build(values, active)
                    labels.append(f"map<string, {inner.shape.type}>")
                    binary = binary or inner.shape.value_type.binary
                    cut |= inner.cut
                else:
                    labels.append(f"object ({name})" if name else "object")
            elif kind == "string" and _is_binary(schema):
                labels.append("string (binary)")
            else:
                labels.append(kind)
        items_of_first = item_types if types[0] == "array" else ()
        return "|".join(labels), ValueType(tuple(types), items_of_first, binary), cut

    def _properties(self, schema: dict[str, Any]) -> tuple[tuple[str, Any, bool], ...]:
        required = schema.get("required")
        required_names = {str(r) for r in required} if isinstance(required, list) else set()
        return tuple(
            (str(prop), raw, str(prop) in required_names) for prop, raw in as_dict(schema.get("properties")).items()
        )

    def _merge_all_of(
        self, schema: dict[str, Any], active: tuple[str, ...]
    ) -> tuple[dict[str, Any], str, frozenset[str]]:
        """Merge `allOf` members into one schema: properties and `required` add up, own keys win.

        Also returns the ref of the only member, when there is just one: `allOf: [$ref X]` plus notes (the
        OpenAPI 3.0 way to describe a ref) is X itself, while several members make a new, unnamed object.
        """
        merged: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required: list[Any] = []
        member_refs: list[str] = []
        cut = _NO_CUT
        for part in schema.get("allOf") or ():
            resolved = self.resolver.follow(part)
            if resolved.ref and resolved.ref in active:
                cut |= {resolved.ref}  # a schema that includes itself through allOf: the repeat adds nothing
                continue
            member = as_dict(resolved.node)
            member_refs += [resolved.ref] if resolved.ref else []
            if "allOf" in member:
                member_active = (*active, resolved.ref) if resolved.ref else active
                member, _, inner_cut = self._merge_all_of(member, member_active)
                cut |= inner_cut
            properties.update(as_dict(member.get("properties")))
            if isinstance(member.get("required"), list):
                required.extend(member["required"])
            for key, value in member.items():
                if key not in ("properties", "required", "allOf"):
                    merged.setdefault(key, value)
        for key, value in schema.items():
            if key not in ("properties", "required", "allOf"):
                merged[key] = value
        properties.update(as_dict(schema.get("properties")))
        if isinstance(schema.get("required"), list):
            required.extend(schema["required"])
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        only_ref = member_refs[0] if len(member_refs) == 1 and len(schema.get("allOf") or ()) == 1 else ""
        return merged, only_ref, cut


def _or_null(value_type: ValueType) -> ValueType:
    """The same type, which may also be null."""
    if "null" in value_type.types:
        return value_type
    return ValueType((*value_type.types, "null"), value_type.items, value_type.binary)


def _union_value_type(alternatives: list[ValueType]) -> ValueType:
    """One type for `oneOf` / `anyOf`: every alternative's types in order, the first one's items."""
    types = tuple(dict.fromkeys(kind for alt in alternatives for kind in alt.types if kind != "null"))
    first = next((alt for alt in alternatives if alt.primary), ValueType())
    return ValueType(types, first.items, any(alt.binary for alt in alternatives))


def _const_text(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else scalar_text(value)


def _type_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [as_text(v) for v in value if as_text(v)]
    return [as_text(value)] if as_text(value) else []


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def _is_binary(schema: dict[str, Any]) -> bool:
    return (
        as_text(schema.get("type")) == "file"
        or as_text(schema.get("format")) == "binary"
        or as_text(schema.get("contentEncoding")) == "binary"
    )


def _description(schema: dict[str, Any]) -> str:
    """The first sentence of a schema's description; only its start is cleaned, which is all we keep."""
    text = as_text(schema.get("description"))
    return first_sentence(strip_html(text[:_DESCRIPTION_SCAN])) if text else ""


def _schema_example(schema: dict[str, Any]) -> Any:
    if "example" in schema:
        return schema["example"]
    examples = schema.get("examples")  # JSON Schema 2020-12 (OpenAPI 3.1): a list of values
    if isinstance(examples, list) and examples:
        return examples[0]
    return NO_EXAMPLE


def example_text(value: Any, limit: int) -> str | None:
    """An example as text, cut to `limit`; None for `NO_EXAMPLE`."""
    if value is NO_EXAMPLE:
        return None
    return truncate(scalar_text(value), limit)


def _mark_recursive(label: str, name: str) -> str:
    plain = f"object ({name})"
    if plain in label:
        return label.replace(plain, f"object (recursive: {name})", 1)
    return f"{label} (recursive: {name})"
