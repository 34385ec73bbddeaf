"""Request bodies: from a raw example when the spec gives one, else a tree built from the flattened fields."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from core.models import Operation, SchemaField
from core.parsing.text import TEMPLATE_VARIABLE
from core.snippets.auth import Auth, is_auth_param, secret_env
from core.snippets.request import Body, Env, FileBody, FormBody, JsonBody, MultipartBody, RawBody, Value, names_note
from core.snippets.values import is_container, placeholder_value, scalar_text, typed_example

MAX_OPTIONAL_BODY_WITH_REQUIRED = 2  # optional body fields (with examples) shown next to the required ones
MAX_OPTIONAL_BODY_ALONE = 3  # optional body fields shown when none is required


def build_body(operation: Operation, auth: Auth, notes: list[str]) -> Body | None:
    """The body to send, shaped by the media type; None when the operation takes none."""
    body = operation.request_body
    if body is None:
        return None
    content_type = (body.content_type or "").split(";", 1)[0].strip().lower()
    fields = tuple(f for f in body.fields if not is_auth_param(f.name, "body", auth))
    if body.example not in (None, ""):
        from_example = _body_from_example(str(body.example), content_type, notes)
        if from_example is not None:
            return from_example
    if "multipart/" in content_type:
        return _multipart_body(fields, notes)
    if "x-www-form-urlencoded" in content_type:
        return FormBody(tuple(_form_pairs(tree_from_fields(fields, notes), "")))
    if "json" in content_type or (not content_type and fields):
        return JsonBody(tree_from_fields(fields, notes), content_type or "application/json")
    if content_type.startswith(("image/", "audio/", "video/")) or content_type in (
        "application/octet-stream",
        "application/pdf",
        "application/zip",
    ):
        return FileBody("file.bin", content_type)
    if content_type:
        return RawBody("<request body>", content_type)
    return None


def _body_from_example(example: str, content_type: str, notes: list[str]) -> Body | None:
    """A body from a raw example (Postman) or an example object; None when the fields should be used."""
    text = TEMPLATE_VARIABLE.sub(lambda m: f"<{m.group(1)}>", example)
    comment_lines = [line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("//")]
    code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//")).strip()
    notes.extend(line for line in comment_lines if line)
    parsed: Any = None
    try:
        parsed = json.loads(code) if code else None
    except ValueError:
        parsed = None
    if "x-www-form-urlencoded" in content_type:
        if isinstance(parsed, dict):
            return FormBody(tuple(_form_pairs(parsed, "")))
        return FormBody(tuple((k, (v,)) for k, v in parse_qsl(code, keep_blank_values=True)))
    if "multipart/" in content_type:
        return None  # built from the fields
    if not code:
        return None
    if parsed is not None and (not content_type or "json" in content_type or content_type == "text/plain"):
        return JsonBody(parsed, content_type if "json" in content_type else "application/json")
    return RawBody(code, content_type or "text/plain")


def _multipart_body(fields: tuple[SchemaField, ...], notes: list[str]) -> MultipartBody:
    file_fields = [f for f in fields if _is_file_field(f)]
    text_fields = tuple(f for f in fields if not _is_file_field(f))
    required_files = [f for f in file_fields if f.required] or file_fields[:1]
    files = tuple((f.name, f"{_last_key(f.name) or 'file'}.bin") for f in required_files)
    text_tree = tree_from_fields(text_fields, notes)
    return MultipartBody(tuple(_form_pairs(text_tree, "")), files)


def _is_file_field(schema_field: SchemaField) -> bool:
    return schema_field.value_type.binary


def _field_ancestors(name: str) -> list[str]:
    parts = name.split(".")
    result: list[str] = []
    for index in range(1, len(parts)):
        prefix = ".".join(parts[:index])
        result.append(prefix)
        if prefix.endswith("[]"):
            result.append(prefix[:-2])
    if name.endswith("[]"):
        result.append(name[:-2])
    return result


def _select_fields(fields: tuple[SchemaField, ...]) -> tuple[list[SchemaField], list[str]]:
    """The body fields to show (required ones, then a few optional) and the top-level names left out."""
    by_name = {f.name: f for f in fields}

    def effectively_required(schema_field: SchemaField) -> bool:
        ancestors = [by_name[a] for a in _field_ancestors(schema_field.name) if a in by_name]
        return schema_field.required and all(a.required for a in ancestors)

    required = [f for f in fields if effectively_required(f)]
    top_level = [f for f in fields if "." not in f.name and "[]" not in f.name and not f.required]
    if required:
        extras = [f for f in top_level if f.example is not None][:MAX_OPTIONAL_BODY_WITH_REQUIRED]
    else:
        ranked = sorted(top_level, key=lambda f: (f.example is None, is_container(f.value_type)))
        extras = ranked[:MAX_OPTIONAL_BODY_ALONE]
    left_out = [f.name for f in top_level if f not in extras]
    return required + extras, left_out


def tree_from_fields(fields: tuple[SchemaField, ...], notes: list[str], what: str = "body fields") -> dict[str, Any]:
    """A JSON tree of the chosen fields (dotted names nested back); the optional ones left out go in a note."""
    selected, left_out = _select_fields(fields)
    if left_out:
        notes.append(f"Other optional {what}: " + names_note(left_out) + ".")
    containers = {a for f in selected for a in _field_ancestors(f.name)}
    tree: dict[str, Any] = {}
    for schema_field in selected:
        if schema_field.name in containers:
            continue
        segments = _segments(schema_field.name)
        if segments:
            _insert(tree, segments, _field_value(schema_field))
    return tree


def _segments(name: str) -> list[str | int]:
    segments: list[str | int] = []
    for part in name.split("."):
        key = part
        brackets = 0
        while key.endswith("[]"):
            key = key[:-2]
            brackets += 1
        if key:
            segments.append(key)
        segments.extend([0] * brackets)
    return segments


def _insert(tree: dict[str, Any], segments: list[str | int], value: Any) -> None:
    node: Any = tree
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        child: Any = value if last else ([] if isinstance(segments[index + 1], int) else {})
        if isinstance(node, dict) and isinstance(segment, str):
            existing = node.get(segment)
            if last or not isinstance(existing, type(child)):
                node[segment] = child
            node = node[segment]
        elif isinstance(node, list) and isinstance(segment, int):
            if not node:
                node.append(child)
            elif last or not isinstance(node[0], type(child)):
                node[0] = child
            node = node[0]
        else:
            return


def _last_key(name: str) -> str:
    keys = [s for s in _segments(name) if isinstance(s, str)]
    return keys[-1] if keys else name


def _field_value(schema_field: SchemaField) -> Any:
    name = _last_key(schema_field.name)
    if schema_field.example is not None:
        return typed_example(schema_field.example, schema_field.value_type)
    if schema_field.enum:
        return typed_example(schema_field.enum[0], schema_field.value_type)
    secret = secret_env(name)
    if secret is not None:
        return secret
    placeholder = placeholder_value(name, schema_field.value_type)
    if schema_field.name.endswith("[]") and isinstance(placeholder, list) and placeholder:
        return placeholder[0]
    return placeholder


def _form_pairs(value: Any, prefix: str) -> list[tuple[str, Value]]:
    """Flatten a tree into form-encoding pairs with bracket notation: `metadata[order_id]`, `items[0][price]`."""
    pairs: list[tuple[str, Value]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            pairs.extend(_form_pairs(child, f"{prefix}[{key}]" if prefix else str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            pairs.extend(_form_pairs(child, f"{prefix}[{index}]"))
    elif isinstance(value, Env):
        pairs.append((prefix, (value,)))
    else:
        pairs.append((prefix, (scalar_text(value),)))
    return pairs
