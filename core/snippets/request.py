"""The language-neutral request a snippet renders: URL, query, headers, auth, body and notes.

Values are tuples of literal text and `Env` parts, so every renderer decides on its own how to read an
environment variable (`os.environ[...]`, `process.env.X`, `"$X"`) and secrets are never literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_NAMES_IN_NOTE = 6
DEFAULT_BASE_URL = "https://api.example.com"

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class Env:
    """A value read from an environment variable."""

    name: str


Part = str | Env
Value = tuple[Part, ...]  # literal text and environment variables, concatenated


@dataclass(frozen=True)
class JsonBody:
    """A JSON body (or another JSON media type)."""

    data: Any  # a JSON-compatible tree whose leaves may be `Env`
    content_type: str = "application/json"


@dataclass(frozen=True)
class FormBody:
    """A form-encoded body (`application/x-www-form-urlencoded`)."""

    pairs: tuple[tuple[str, Value], ...]


@dataclass(frozen=True)
class MultipartBody:
    """A multipart form: text fields and files read from disk."""

    fields: tuple[tuple[str, Value], ...]
    files: tuple[tuple[str, str], ...]  # (field name, local file name)


@dataclass(frozen=True)
class RawBody:
    """A body sent as written (XML, plain text, ...)."""

    text: str
    content_type: str


@dataclass(frozen=True)
class FileBody:
    """A whole file as the body (images, PDFs, octet streams)."""

    filename: str
    content_type: str


@dataclass(frozen=True)
class GraphQLBody:
    """A GraphQL document and its variables, sent as JSON."""

    document: str
    variables: dict[str, Any]


Body = JsonBody | FormBody | MultipartBody | RawBody | FileBody | GraphQLBody


@dataclass
class Request:
    """Everything a snippet sends, before it is rendered in a language."""

    method: str
    url: str  # without the query string
    title: str = ""
    query: list[tuple[str, Value]] = field(default_factory=list)
    headers: list[tuple[str, Value]] = field(default_factory=list)
    basic_auth: tuple[str, str] | None = None  # environment variable names (user, password)
    oauth1: bool = False
    body: Body | None = None
    notes: list[str] = field(default_factory=list)
    returns_body: bool = True  # False for HEAD and operations whose success responses are all 204

    def env_vars(self, signs_oauth1: bool = False) -> list[str]:
        """Every environment variable the request reads, in order of first use."""
        names: list[str] = []
        values: list[Value] = [v for _, v in self.query] + [v for _, v in self.headers]
        if isinstance(self.body, FormBody | MultipartBody):
            pairs = self.body.pairs if isinstance(self.body, FormBody) else self.body.fields
            values.extend(v for _, v in pairs)
        for value in values:
            names.extend(p.name for p in value if isinstance(p, Env))
        if isinstance(self.body, JsonBody):
            names.extend(_env_in_tree(self.body.data))
        if isinstance(self.body, GraphQLBody):
            names.extend(_env_in_tree(self.body.variables))
        if self.basic_auth:
            names.extend(self.basic_auth)
        if self.oauth1 and signs_oauth1:
            names.extend(OAUTH1_ENV)
        return list(dict.fromkeys(names))


OAUTH1_ENV = ("API_CONSUMER_KEY", "API_CONSUMER_SECRET", "API_ACCESS_TOKEN", "API_ACCESS_TOKEN_SECRET")


def _env_in_tree(data: Any) -> list[str]:
    if isinstance(data, Env):
        return [data.name]
    if isinstance(data, dict):
        return [name for v in data.values() for name in _env_in_tree(v)]
    if isinstance(data, list):
        return [name for v in data for name in _env_in_tree(v)]
    return []


def merge_literals(parts: list[Part] | tuple[Part, ...]) -> Value:
    """A value with adjacent literal parts joined and empty ones dropped (`("",)` when nothing is left)."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged) if merged else ("",)


def names_note(names: list[str]) -> str:
    """Names for a note, without repeats, the first `MAX_NAMES_IN_NOTE` of them and a count of the rest."""
    unique = list(dict.fromkeys(names))
    shown = ", ".join(unique[:MAX_NAMES_IN_NOTE])
    if len(unique) > MAX_NAMES_IN_NOTE:
        shown += f" (+{len(unique) - MAX_NAMES_IN_NOTE} more)"
    return shown


def upper_snake(name: str) -> str:
    """An environment-variable-style name: `clientSecret` -> `CLIENT_SECRET`."""
    spaced = _CAMEL_BOUNDARY.sub("_", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").upper()
