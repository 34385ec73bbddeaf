"""Specs are attacker-supplied: schema comparison stays bounded on deep, wide and recursive schemas."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.diffs import schemas
from core.diffs.openapi import compare, surface


def spec(components: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": components},
        "paths": {"/x": {"post": {
            "requestBody": {"content": {"application/json": {"schema": root}}},
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": root}}}},
        }}},
    }


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for level in range(depth):
        node = {"type": "object", "properties": {f"p{level}": node, "q": {"type": "integer"}}}
    return node


def test_a_very_deep_schema_is_cut_at_the_depth_bound_without_reporting_removals() -> None:
    old, new = spec({}, nested(5000)), spec({}, nested(4999))
    started = time.perf_counter()
    found = compare(surface(old), surface(new))
    assert time.perf_counter() - started < 10
    assert found.truncated
    assert not any("removed" in c.rule for c in found.changes)


def test_self_and_mutually_recursive_refs_terminate() -> None:
    components = {
        "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"},
                                               "self": {"$ref": "#/components/schemas/A"}}},
        "B": {"allOf": [{"$ref": "#/components/schemas/A"}, {"oneOf": [{"$ref": "#/components/schemas/B"}]}]},
    }
    found = compare(surface(spec(components, {"$ref": "#/components/schemas/A"})),
                    surface(spec(components, {"$ref": "#/components/schemas/B"})))
    assert found is not None


def combinators(width: int, depth: int) -> dict[str, Any]:
    """A schema of allOf/oneOf/anyOf nested `depth` deep, `width` members each: width ** depth paths unbounded."""
    components = {}
    for level in range(depth):
        nxt = f"#/components/schemas/L{level + 1}" if level + 1 < depth else None
        member = {"$ref": nxt} if nxt else {"type": "object", "properties": {"leaf": {"type": "string"}}}
        components[f"L{level}"] = {
            "type": "object",
            "properties": {f"f{i}": member for i in range(width)},
            "allOf": [member] * width,
            "oneOf": [member] * width,
        }
    return components


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 60), depth=st.integers(1, 40), flip=st.booleans())
def test_wide_and_deep_combinators_stay_within_the_work_bound(width: int, depth: int, flip: bool) -> None:
    components = combinators(width, depth)
    other = dict(components)
    if flip:
        other["L0"] = {**components["L0"], "required": ["f0"]}
    started = time.perf_counter()
    old = surface(spec(components, {"$ref": "#/components/schemas/L0"}))
    new = surface(spec(other, {"$ref": "#/components/schemas/L0"}))
    found = compare(old, new)
    assert time.perf_counter() - started < 20
    for op in old.operations.values():
        assert op.body is not None and len(op.body.schema.facts) <= schemas.MAX_NODES
    assert len(found.changes) <= 25_000


@settings(max_examples=40, deadline=None)
@given(st.recursive(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "boolean"])}),
    lambda children: st.one_of(
        st.builds(lambda p: {"type": "object", "properties": p},
                  st.dictionaries(st.text("abc", min_size=1, max_size=3), children, max_size=6)),
        st.builds(lambda i: {"type": "array", "items": i}, children),
        st.builds(lambda m: {"oneOf": m}, st.lists(children, max_size=4)),
    ),
    max_leaves=200,
))
def test_any_schema_compared_with_itself_has_no_changes(schema: dict[str, Any]) -> None:
    assert compare(surface(spec({}, schema)), surface(spec({}, schema))).empty
