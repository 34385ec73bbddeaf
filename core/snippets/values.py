"""Example values from types: placeholders for fields and parameters without examples, typed examples.

Types come from the parsers as `ValueType`s; the labels answers show are never read back here. Besides JSON
Schema's names, a few words specs write instead (`int`, `long`, `bool`, `map`, `list`, ...) mean the same.
"""

from __future__ import annotations

import json
from typing import Any

from core.models import ValueType

_NUMBERS = frozenset({"integer", "int", "long", "number", "float", "double", "decimal"})
_BOOLEANS = frozenset({"boolean", "bool"})
_OBJECTS = frozenset({"object", "map", "dict"})
_ARRAYS = frozenset({"array", "list"})


def is_container(value_type: ValueType) -> bool:
    """Whether the value is a list or an object."""
    return value_type.primary in _ARRAYS | _OBJECTS


def placeholder_value(name: str, value_type: ValueType) -> Any:
    """A stand-in value of the type: `0`, `true`, `{}`, a list of one, or `<name>`."""
    kind = value_type.primary
    if kind in _ARRAYS:
        return [placeholder_value(name, ValueType(value_type.items))]
    if kind in _NUMBERS:
        return 0
    if kind in _BOOLEANS:
        return True
    if kind in _OBJECTS:
        return {}
    return f"<{name}>"


def typed_example(example: str, value_type: ValueType) -> Any:
    """An example (kept as text in the model) as a value of its type, when it reads as one."""
    stripped = example.strip()
    if value_type.primary in _NUMBERS | _BOOLEANS | _ARRAYS | _OBJECTS or stripped[:1] in ("{", "["):
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
