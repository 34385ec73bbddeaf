"""Example values from types: placeholders for fields and parameters without examples, typed examples."""

from __future__ import annotations

import json
import re
from typing import Any


def _primary_type(type_text: str) -> str:
    """The first alternative of a type: `anyOf(object | string)` -> `object`, `string | null` -> `string`."""
    text = (type_text or "").strip()
    wrapped = re.fullmatch(r"(?:anyOf|oneOf|allOf)\((.*)\)", text)
    if wrapped:
        text = wrapped.group(1)
    alternatives: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char in "(<[":
            depth += 1
        elif char in ")>]":
            depth -= 1
        if char == "|" and depth == 0:
            alternatives.append(current.strip())
            current = ""
        else:
            current += char
    alternatives.append(current.strip())
    useful = [a for a in alternatives if a and a.lower() != "null"]
    return useful[0] if useful else "string"


def _base_type(type_text: str) -> str:
    match = re.match(r"\s*([A-Za-z]+)", _primary_type(type_text))
    return match.group(1).lower() if match else "string"


def _is_array_type(type_text: str) -> bool:
    lowered = _primary_type(type_text).lower()
    return lowered.startswith(("array", "list", "[")) or lowered.endswith("[]")


def is_container_type(type_text: str) -> bool:
    """Whether the type is a list or an object."""
    return _is_array_type(type_text) or _base_type(type_text) in ("object", "map", "dict")


def placeholder_value(name: str, type_text: str) -> Any:
    """A stand-in value of the type: `0`, `true`, `{}`, a list of one, or `<name>`."""
    type_text = _primary_type(type_text)
    if _is_array_type(type_text):
        inner = re.search(r"[\[<(]\s*([A-Za-z]+)", type_text or "")
        if not inner and (type_text or "").strip().endswith("[]"):
            inner = re.match(r"\s*([A-Za-z]+)", type_text)
        element_type = inner.group(1) if inner else "string"
        return [placeholder_value(name, element_type)]
    kind = _base_type(type_text)
    if kind in ("integer", "int", "long", "number", "float", "double", "decimal"):
        return 0
    if kind in ("boolean", "bool"):
        return True
    if kind in ("object", "map", "dict"):
        return {}
    return f"<{name}>"


def typed_example(example: str, type_text: str) -> Any:
    """An example (kept as text in the model) as a value of its type, when it reads as one."""
    kind = _base_type(type_text)
    stripped = example.strip()
    if kind in ("integer", "int", "long", "number", "float", "double", "decimal", "boolean", "bool") or (
        is_container_type(type_text) or stripped[:1] in ("{", "[")
    ):
        try:
            return json.loads(stripped)
        except ValueError:
            return example
    return example


def scalar_text(value: Any) -> str:
    """A value as it is written in a query string or form field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
