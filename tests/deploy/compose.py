"""Read a Compose file the way Docker Compose does, without Docker Compose: YAML (anchors and `<<` merges),
then variable interpolation, plus Compose's duration strings.

Interpolation follows the Compose specification: `$$` is a literal `$`; `$NAME` and `${NAME}` are the
variable (empty when unset); `${NAME:-default}` / `${NAME-default}` use the default when it is unset or empty /
unset; `${NAME:?message}` / `${NAME?message}` refuse the file when it is unset or empty / unset;
`${NAME:+other}` / `${NAME+other}` give `other` when it is set and non-empty / set. Defaults, messages and
replacements may themselves contain variables. Any other `$` is an error, as in Compose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MAX_TEMPLATE_CHARS = 10_000
MAX_NESTING = 10
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class InterpolationError(ValueError):
    """The file cannot be interpolated: a required variable is missing, or a `$` is malformed."""


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` whose body starts at `start` (nested `${...}` counted)."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed ${{ in {text!r}")


def _braced(body: str, env: Mapping[str, str], depth: int) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError(f"invalid variable in ${{{body}}}")
    name, rest = match.group(), body[match.end() :]
    value = env.get(name)
    if rest == "":
        return value or ""
    colon = rest.startswith(":")
    operator, argument = (rest[1:2], rest[2:]) if colon else (rest[:1], rest[1:])
    # With a colon an empty value counts as unset; without, only a missing variable does.
    missing = value is None or (colon and value == "")
    if operator == "-":
        return interpolate(argument, env, depth + 1) if missing else str(value)
    if operator == "?":
        if missing:
            message = interpolate(argument, env, depth + 1)
            raise InterpolationError(f"required variable {name} is missing a value: {message}")
        return str(value)
    if operator == "+":
        return "" if missing else interpolate(argument, env, depth + 1)
    raise InterpolationError(f"invalid variable in ${{{body}}}")


def interpolate(text: str, env: Mapping[str, str], depth: int = 0) -> str:
    """`text` with its variables replaced from `env`; `InterpolationError` as Compose would refuse it."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise InterpolationError(f"string longer than {MAX_TEMPLATE_CHARS} characters")
    if depth > MAX_NESTING:
        raise InterpolationError(f"variables nested more than {MAX_NESTING} deep")
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$")
            i = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            out.append(_braced(text[dollar + 2 : end], env, depth))
            i = end + 1
        else:
            match = _NAME.match(text, dollar + 1)
            if match is None:
                raise InterpolationError(f"invalid $ at position {dollar} of {text!r}: write $$ for a literal $")
            out.append(env.get(match.group()) or "")
            i = match.end()
    return "".join(out)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Every string value in a loaded YAML tree interpolated (keys are left as they are, as in Compose)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    return node


def load_raw(path: Path) -> dict[str, Any]:
    """The file's YAML, anchors and merge keys resolved, before interpolation."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


def load(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The file as Compose sees it with the variables in `env`."""
    loaded: dict[str, Any] = interpolate_tree(load_raw(path), env)
    return loaded


def duration_seconds(value: str | int | float) -> float:
    """A Compose duration (`30s`, `1m30s`, `500ms`) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    total, position = 0.0, 0
    while position < len(value):
        match = _DURATION_PART.match(value, position)
        if match is None:
            raise ValueError(f"not a Compose duration: {value!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(f"not a Compose duration: {value!r}")
    return total


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, as a mapping whichever of the two Compose forms it uses."""
    raw = service.get("environment") or {}
    pairs = [item.split("=", 1) for item in raw] if isinstance(raw, list) else list(raw.items())
    result = {}
    for pair in pairs:
        # `NAME` alone (or `NAME:` with no value) passes the host's variable through unchecked: not supported here.
        if len(pair) != 2 or pair[1] is None:
            raise ValueError(f"environment entry {pair[0]!r} has no value")
        result[pair[0]] = str(pair[1])
    return result
