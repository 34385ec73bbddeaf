"""Reading values out of loaded JSON / YAML documents, for every parser that walks one (OpenAPI, Postman).

Specs are untrusted: any key may hold the wrong kind of value, so each helper takes `Any` and answers with a
value of the kind the caller asked for (an empty one when the document had something else).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from core.models import ValueType


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str:
    """A string from a YAML/JSON scalar (YAML turns `version: 1.0` into a float and dates into dates)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return ""
    return str(value)


def scalar_text(value: Any) -> str:
    """Any value as example text: scalars as written, `null`, and objects and lists as compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "null" if value is None else as_text(value)


def json_type(value: Any) -> str:
    """The JSON Schema type of a loaded value; "" for null (or anything else), which says nothing about it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return ""


def value_type_of(value: Any) -> ValueType:
    """The type an example value shows: `[1, 2]` is an array of integers; null says nothing."""
    kind = json_type(value)
    if kind == "array" and value:
        item = json_type(value[0])
        return ValueType(("array",), (item,) if item else ())
    return ValueType((kind,) if kind else ())


def str_list(value: Any) -> list[str]:
    """The non-empty strings of a list (scalars read as text); empty when the value is not a list."""
    return [as_text(v) for v in value if as_text(v)] if isinstance(value, list) else []


def is_true(value: Any) -> bool:
    """Whether a flag is set: `true`, or the string "true" some generators write."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
