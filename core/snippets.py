"""Deterministic, ready-to-run code snippets for calling an operation (curl, Python httpx, JavaScript fetch).

Snippets are built from the normalised model only, never by an LLM. Every request is first described as a
small language-neutral `_Request` (URL, query, headers, auth, body, notes) and then rendered per language.
Secrets always come from environment variables (`API_TOKEN`, `API_KEY`, `API_USER`, ...), never literals.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse, print_ast

from core.models import ApiSpec, ItemKind, Operation, Parameter, SchemaField, SecurityScheme
from core.parsing.text import first_sentence

LANGUAGES = ("curl", "python", "javascript")

_LANGUAGE_ALIASES = {
    "curl": "curl",
    "shell": "curl",
    "sh": "curl",
    "bash": "curl",
    "zsh": "curl",
    "terminal": "curl",
    "cli": "curl",
    "command line": "curl",
    "python": "python",
    "python3": "python",
    "py": "python",
    "requests": "python",
    "httpx": "python",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
    "node.js": "javascript",
    "typescript": "javascript",
    "ts": "javascript",
    "fetch": "javascript",
    "ecmascript": "javascript",
    "deno": "javascript",
}

MAX_OPTIONAL_QUERY = 2  # optional query parameters shown (only those with examples)
MAX_OPTIONAL_HEADERS = 2  # optional header parameters shown (only those with examples)
MAX_OPTIONAL_BODY_WITH_REQUIRED = 2  # optional body fields (with examples) shown next to the required ones
MAX_OPTIONAL_BODY_ALONE = 3  # optional body fields shown when none is required
MAX_NAMES_IN_NOTE = 6
DEFAULT_BASE_URL = "https://api.example.com"
COMMENT_WIDTH = 100

_TOKEN_PARAM_NAMES = frozenset({"token", "access_token", "auth_token", "bearer_token"})
_KEY_PARAM_NAMES = frozenset({"api_key", "apikey", "api-key", "x-api-key", "key_id"})

# The name starts and ends with a non-space: `\s*([^{}]+?)\s*` split a run of spaces three ways (cubic time).
_TEMPLATE_VAR = re.compile(r"\{\{\s*([^{}\s](?:[^{}]*[^{}\s])?)\s*\}\}")
_BRACE_VAR = re.compile(r"\{([^{}/]+)\}")
_COLON_VAR = re.compile(r"(?<=/):([A-Za-z_][A-Za-z0-9_]*)")
_ANGLE_VAR = re.compile(r"<([A-Za-z_][A-Za-z0-9_-]*)>")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_JS_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_GRAPHQL_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([\[\]A-Za-z0-9_!]+)")
_SHELL_DOUBLE_QUOTE_UNSAFE = re.compile(r"[$`\"\\!]")
_ENV_MARKER = "@@ENV:{}@@"
_ENV_MARKER_RE = re.compile(r'"@@ENV:([A-Za-z0-9_]+)@@"')


# --------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------


def normalise_language(text: str) -> str | None:
    """Map a user's word for a language ("py", "node", "bash", "requests", ...) to a `LANGUAGES` value."""
    cleaned = text.strip().strip("`'\".,:;!?()[]").lower()
    if cleaned in _LANGUAGE_ALIASES:
        return _LANGUAGE_ALIASES[cleaned]
    for word in re.split(r"[^a-z0-9.+#]+", cleaned):
        word = word.strip(".")
        if word in _LANGUAGE_ALIASES:
            return _LANGUAGE_ALIASES[word]
    return None


def can_build_snippet(operation: Operation) -> bool:
    """Whether the operation names something callable (doc sections without a path do not)."""
    if operation.kind is ItemKind.DOC_SECTION:
        return bool(operation.path)
    return operation.kind in (ItemKind.OPERATION, ItemKind.POSTMAN, ItemKind.GRAPHQL)


def build_snippet(spec: ApiSpec, operation: Operation, language: str) -> str:
    """A ready-to-run snippet calling `operation` in `language` (one of `LANGUAGES`).

    Raises ValueError for an unknown language. Items that name no endpoint (a doc section without a path)
    still get a snippet calling the base URL, with a note saying so.
    """
    normalised = language if language in LANGUAGES else normalise_language(language)
    if normalised is None:
        raise ValueError(f"unknown snippet language {language!r}; expected one of {', '.join(LANGUAGES)}")
    request = _build_request(spec, operation)
    if normalised == "curl":
        return _render_curl(request)
    if normalised == "python":
        return _render_python(request)
    return _render_javascript(request)


# --------------------------------------------------------------------------------------------------------
# The language-neutral request
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Env:
    """A value read from an environment variable."""

    name: str


Part = str | _Env
Value = tuple[Part, ...]  # literal text and environment variables, concatenated


@dataclass(frozen=True)
class _JsonBody:
    data: Any  # a JSON-compatible tree whose leaves may be `_Env`
    content_type: str = "application/json"


@dataclass(frozen=True)
class _FormBody:
    pairs: tuple[tuple[str, Value], ...]


@dataclass(frozen=True)
class _MultipartBody:
    fields: tuple[tuple[str, Value], ...]
    files: tuple[tuple[str, str], ...]  # (field name, local file name)


@dataclass(frozen=True)
class _RawBody:
    text: str
    content_type: str


@dataclass(frozen=True)
class _FileBody:
    filename: str
    content_type: str


@dataclass(frozen=True)
class _GraphQLBody:
    document: str
    variables: dict[str, Any]


Body = _JsonBody | _FormBody | _MultipartBody | _RawBody | _FileBody | _GraphQLBody


@dataclass
class _Request:
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
        if isinstance(self.body, _FormBody | _MultipartBody):
            pairs = self.body.pairs if isinstance(self.body, _FormBody) else self.body.fields
            values.extend(v for _, v in pairs)
        for value in values:
            names.extend(p.name for p in value if isinstance(p, _Env))
        if isinstance(self.body, _JsonBody):
            names.extend(_env_in_tree(self.body.data))
        if isinstance(self.body, _GraphQLBody):
            names.extend(_env_in_tree(self.body.variables))
        if self.basic_auth:
            names.extend(self.basic_auth)
        if self.oauth1 and signs_oauth1:
            names.extend(_OAUTH1_ENV)
        return list(dict.fromkeys(names))


_OAUTH1_ENV = ("API_CONSUMER_KEY", "API_CONSUMER_SECRET", "API_ACCESS_TOKEN", "API_ACCESS_TOKEN_SECRET")


def _env_in_tree(data: Any) -> list[str]:
    if isinstance(data, _Env):
        return [data.name]
    if isinstance(data, dict):
        return [name for v in data.values() for name in _env_in_tree(v)]
    if isinstance(data, list):
        return [name for v in data for name in _env_in_tree(v)]
    return []


@dataclass
class _Auth:
    """What the chosen security alternative adds to a request."""

    headers: list[tuple[str, Value]] = field(default_factory=list)
    query: list[tuple[str, Value]] = field(default_factory=list)
    cookies: list[tuple[str, Value]] = field(default_factory=list)
    basic_auth: tuple[str, str] | None = None
    oauth1: bool = False
    notes: list[str] = field(default_factory=list)
    covers_token: bool = False  # a scheme carries the token, so `token` parameters are not sent separately
    env_names: set[str] = field(default_factory=set)

    def env(self, preferred: str, scheme_name: str) -> _Env:
        """A fresh environment variable: the obvious name first, then one named after the scheme."""
        name = preferred
        if name in self.env_names:
            name = _upper_snake(scheme_name) or preferred
        while name in self.env_names:
            name += "_2"
        self.env_names.add(name)
        return _Env(name)


def _build_request(spec: ApiSpec, operation: Operation) -> _Request:
    method = (operation.method or ("POST" if operation.kind is ItemKind.GRAPHQL else "GET")).upper()
    auth = _build_auth(spec, operation)
    request = _Request(method=method, url="", title=_title(operation), returns_body=_returns_body(operation, method))
    if operation.deprecated:
        request.notes.append("Note: this operation is deprecated.")
    if not can_build_snippet(operation):
        request.notes.append("This item names no endpoint; the snippet only calls the API's base URL.")

    if operation.kind is ItemKind.GRAPHQL:
        request.url = _graphql_url(spec, operation)
        request.body = _graphql_body(operation, request.notes)
        if not spec.effective_security(operation) and not spec.security_schemes:
            request.notes.append(
                "The schema does not describe the API's authentication; add the credentials it needs "
                "(often an Authorization header)."
            )
    else:
        url, given_query = _resolve_url(spec, operation)
        request.url = url
        request.query.extend(given_query)
        given_names = {name for name, _ in given_query}
        request.query.extend(_query_params(operation, auth, given_names, request.notes))
        request.body = _body(operation, auth, request.notes)

    if request.url.startswith(DEFAULT_BASE_URL) and not (operation.servers or spec.servers):
        request.notes.append(f"The spec names no server; replace {DEFAULT_BASE_URL} with the API's base URL.")
    auth_query_names = {name for name, _ in auth.query}
    request.query = [(name, value) for name, value in request.query if name not in auth_query_names]
    request.query.extend(auth.query)
    request.headers.extend(_header_params(operation, auth))
    cookies = _cookie_params(operation, auth) + auth.cookies
    if cookies:
        cookie_value: list[Part] = []
        for index, (name, value) in enumerate(cookies):
            cookie_value.append(("; " if index else "") + f"{name}=")
            cookie_value.extend(value)
        request.headers.append(("Cookie", _merge_literals(cookie_value)))
    request.headers = auth.headers + request.headers
    request.basic_auth = auth.basic_auth
    request.oauth1 = auth.oauth1
    request.notes.extend(auth.notes)
    return request


def _returns_body(operation: Operation, method: str) -> bool:
    if method == "HEAD":
        return False
    success = [r.status for r in operation.responses if r.status.startswith("2")]
    if success:
        return any(status != "204" for status in success)
    return method != "DELETE"


def _title(operation: Operation) -> str:
    described = ""
    if operation.kind in (ItemKind.OPERATION, ItemKind.GRAPHQL):  # Postman and Markdown items have names
        described = operation.summary or operation.description
    summary = first_sentence(described, 100).rstrip(".") if described else ""
    label = operation.label
    if operation.kind is ItemKind.POSTMAN:
        label = f"{operation.name} ({operation.method} {_strip_query(operation.url or operation.path)})"
    elif operation.kind is ItemKind.DOC_SECTION and operation.path:
        label = f"{operation.name} ({operation.method or 'GET'} {operation.path})"
    text = f"{summary}: {label}" if summary and summary != operation.name else label
    return " ".join(text.split())


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


# --------------------------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------------------------


def _build_auth(spec: ApiSpec, operation: Operation) -> _Auth:
    auth = _Auth()
    alternatives = spec.effective_security(operation)
    if not alternatives:
        return auth
    for name in alternatives[0]:
        scheme = spec.scheme(name)
        if scheme is None and name.lower() in ("bearer", "basic", "oauth1", "oauth2", "apikey"):
            scheme = SecurityScheme(name=name, type=name)  # a Postman auth type used without a declaration
        if scheme is None:
            auth.notes.append(f"Authenticate with '{name}' (the spec does not describe this scheme).")
            continue
        _apply_scheme(auth, scheme)
    return auth


def _apply_scheme(auth: _Auth, scheme: SecurityScheme) -> None:
    kind = scheme.type.lower()
    http_scheme = scheme.scheme.lower()
    if kind in ("oauth2", "openidconnect", "bearer") or (kind == "http" and http_scheme == "bearer"):
        auth.headers.append(("Authorization", ("Bearer ", auth.env("API_TOKEN", scheme.name))))
        auth.covers_token = True
    elif kind == "basic" or (kind == "http" and http_scheme == "basic"):
        auth.basic_auth = (
            auth.env("API_USER", scheme.name + "_user").name,
            auth.env("API_PASSWORD", scheme.name + "_password").name,
        )
    elif kind == "apikey":
        _apply_api_key(auth, scheme)
    elif kind == "oauth1":
        auth.oauth1 = True
        auth.covers_token = True
        auth.notes.append("This request needs OAuth 1.0a signing (consumer key/secret, access token/secret).")
    elif kind == "noauth":
        return
    else:
        label = f"{scheme.type} {scheme.scheme}".strip()
        auth.notes.append(f"Authenticate with '{scheme.name}' ({label}); see the API's docs.")


def _apply_api_key(auth: _Auth, scheme: SecurityScheme) -> None:
    location = (scheme.location or "header").lower()
    param_name = scheme.param_name or ("X-API-Key" if location == "header" else "api_key")
    auth.covers_token = True
    if location == "header" and param_name.lower() == "authorization":
        prefix = "Bot " if scheme.name.lower().startswith("bot") or "bot token" in scheme.description.lower() else ""
        auth.headers.append(("Authorization", _merge_literals([prefix, auth.env("API_TOKEN", scheme.name)])))
    elif location == "query":
        auth.query.append((param_name, (auth.env("API_KEY", scheme.name),)))
    elif location == "cookie":
        auth.cookies.append((param_name, (auth.env("API_KEY", scheme.name),)))
    else:
        auth.headers.append((param_name, (auth.env("API_KEY", scheme.name),)))


def _is_auth_param(name: str, location: str, auth: _Auth) -> bool:
    """Whether a declared parameter is already sent by the auth (or is the token a scheme carries)."""
    lowered = name.lower()
    if location == "header" and lowered == "authorization" and (auth.headers or auth.basic_auth or auth.oauth1):
        return True
    sent = {n.lower() for n, _ in auth.headers} if location == "header" else set()
    sent |= {n.lower() for n, _ in auth.query} if location == "query" else set()
    sent |= {n.lower() for n, _ in auth.cookies} if location == "cookie" else set()
    if lowered in sent:
        return True
    return auth.covers_token and lowered in _TOKEN_PARAM_NAMES


def _secret_env(name: str) -> _Env | None:
    """An environment variable for a parameter that is a secret the auth does not already cover."""
    lowered = name.lower()
    if lowered in _TOKEN_PARAM_NAMES:
        return _Env("API_TOKEN")
    if lowered in _KEY_PARAM_NAMES:
        return _Env("API_KEY")
    return None


# --------------------------------------------------------------------------------------------------------
# URL, query, headers
# --------------------------------------------------------------------------------------------------------


def _resolve_url(spec: ApiSpec, operation: Operation) -> tuple[str, list[tuple[str, Value]]]:
    """The absolute URL with path parameters filled in, and the query pairs written into it (Postman)."""
    if operation.kind is ItemKind.POSTMAN and operation.url:
        raw = operation.url.strip()
        leading = _TEMPLATE_VAR.match(raw)
        if leading:  # {{baseUrl}}/path: the host is a variable
            raw = spec.base_url(operation) + raw[leading.end() :]
        elif not re.match(r"[a-z][a-z0-9+.-]*://", raw, re.I):
            raw = "https://" + raw.lstrip("/")
    elif operation.path.startswith(("http://", "https://")):
        raw = operation.path
    else:
        base = spec.base_url(operation)
        if not base.startswith(("http://", "https://")):
            base = DEFAULT_BASE_URL + ("/" + base.strip("/") if base.strip("/") else "")
        path = operation.path if operation.path.startswith("/") or not operation.path else "/" + operation.path
        raw = base + path
    url, _, query_text = raw.partition("?")
    url = url.split("#", 1)[0]
    url = _fill_path(url, operation)
    pairs = [(key, _template_value(value)) for key, value in parse_qsl(query_text, keep_blank_values=True)]
    return url, pairs


def _fill_path(url: str, operation: Operation) -> str:
    path_params = {p.name: p for p in operation.parameters if p.location == "path"}

    def value_for(name: str) -> str:
        param = path_params.get(name) or next((p for n, p in path_params.items() if n.lower() == name.lower()), None)
        if param is not None and param.example not in (None, ""):
            return quote(str(param.example), safe="")
        if param is not None and param.enum:
            return quote(param.enum[0], safe="")
        return _upper_snake(name) or "VALUE"

    url = _TEMPLATE_VAR.sub(lambda m: value_for(m.group(1)), url)
    url = _BRACE_VAR.sub(lambda m: value_for(m.group(1)), url)
    scheme, sep, rest = url.partition("://")
    if operation.kind in (ItemKind.POSTMAN, ItemKind.DOC_SECTION) or path_params:
        rest = _COLON_VAR.sub(
            lambda m: (
                value_for(m.group(1))
                if operation.kind is not ItemKind.OPERATION or m.group(1) in path_params
                else m.group(0)
            ),
            rest,
        )
    if operation.kind is ItemKind.DOC_SECTION:
        rest = _ANGLE_VAR.sub(lambda m: value_for(m.group(1)), rest)
    return scheme + sep + rest


def _template_value(text: str) -> Value:
    """A Postman value: `{{secret_var}}` becomes an environment variable, other `{{var}}`s placeholders."""
    parts: list[Part] = []
    position = 0
    for match in _TEMPLATE_VAR.finditer(text):
        parts.append(text[position : match.start()])
        name = match.group(1)
        if re.search(r"token|secret|password|key", name, re.I):
            parts.append(_Env(_upper_snake(name)))
        else:
            parts.append(f"<{name}>")
        position = match.end()
    parts.append(text[position:])
    return _merge_literals(parts)


def _merge_literals(parts: list[Part] | tuple[Part, ...]) -> Value:
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return tuple(merged) if merged else ("",)


def _param_value(param: Parameter) -> Value:
    if param.example not in (None, ""):
        return _template_value(str(param.example))
    if param.enum:
        return (param.enum[0],)
    secret = _secret_env(param.name)
    if secret is not None:
        return (secret,)
    return (_scalar_text(_placeholder(param.name, param.type)),)


def _query_params(operation: Operation, auth: _Auth, given: set[str], notes: list[str]) -> list[tuple[str, Value]]:
    candidates = [
        p
        for p in operation.parameters
        if p.location == "query" and p.name not in given and not _is_auth_param(p.name, "query", auth)
    ]
    chosen = [p for p in candidates if p.required]
    optional_with_examples = [p for p in candidates if not p.required and p.example not in (None, "")]
    chosen += optional_with_examples[:MAX_OPTIONAL_QUERY]
    left_out = [p.name for p in candidates if p not in chosen]
    if left_out:
        notes.append("Optional query parameters: " + _names_note(left_out) + ".")
    return [(p.name, _param_value(p)) for p in chosen]


def _header_params(operation: Operation, auth: _Auth) -> list[tuple[str, Value]]:
    skip = {"content-type", "content-length", "cookie"}
    candidates = [
        p
        for p in operation.parameters
        if p.location == "header" and p.name.lower() not in skip and not _is_auth_param(p.name, "header", auth)
    ]
    if operation.kind is ItemKind.POSTMAN:  # the headers a Postman request sets are part of it
        chosen = [p for p in candidates if p.required or p.example not in (None, "")]
    else:
        chosen = [p for p in candidates if p.required]
        chosen += [p for p in candidates if not p.required and p.example not in (None, "")][:MAX_OPTIONAL_HEADERS]
    return [(p.name, _param_value(p)) for p in chosen]


def _cookie_params(operation: Operation, auth: _Auth) -> list[tuple[str, Value]]:
    return [
        (p.name, _param_value(p))
        for p in operation.parameters
        if p.location == "cookie" and p.required and not _is_auth_param(p.name, "cookie", auth)
    ]


def _names_note(names: list[str]) -> str:
    unique = list(dict.fromkeys(names))
    shown = ", ".join(unique[:MAX_NAMES_IN_NOTE])
    if len(unique) > MAX_NAMES_IN_NOTE:
        shown += f" (+{len(unique) - MAX_NAMES_IN_NOTE} more)"
    return shown


def _upper_snake(name: str) -> str:
    spaced = _CAMEL_BOUNDARY.sub("_", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").upper()


# --------------------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------------------


def _body(operation: Operation, auth: _Auth, notes: list[str]) -> Body | None:
    body = operation.request_body
    if body is None:
        return None
    content_type = (body.content_type or "").split(";", 1)[0].strip().lower()
    fields = tuple(f for f in body.fields if not _is_auth_param(f.name, "body", auth))
    if body.example not in (None, ""):
        from_example = _body_from_example(str(body.example), content_type, notes)
        if from_example is not None:
            return from_example
    if "multipart/" in content_type:
        return _multipart_body(fields, notes)
    if "x-www-form-urlencoded" in content_type:
        return _FormBody(tuple(_form_pairs(_tree_from_fields(fields, notes), "")))
    if "json" in content_type or (not content_type and fields):
        return _JsonBody(_tree_from_fields(fields, notes), content_type or "application/json")
    if content_type.startswith(("image/", "audio/", "video/")) or content_type in (
        "application/octet-stream",
        "application/pdf",
        "application/zip",
    ):
        return _FileBody("file.bin", content_type)
    if content_type:
        return _RawBody("<request body>", content_type)
    return None


def _body_from_example(example: str, content_type: str, notes: list[str]) -> Body | None:
    """A body from a raw example (Postman) or an example object; None when the fields should be used."""
    text = _TEMPLATE_VAR.sub(lambda m: f"<{m.group(1)}>", example)
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
            return _FormBody(tuple(_form_pairs(parsed, "")))
        return _FormBody(tuple((k, (v,)) for k, v in parse_qsl(code, keep_blank_values=True)))
    if "multipart/" in content_type:
        return None  # built from the fields
    if not code:
        return None
    if parsed is not None and (not content_type or "json" in content_type or content_type == "text/plain"):
        return _JsonBody(parsed, content_type if "json" in content_type else "application/json")
    return _RawBody(code, content_type or "text/plain")


def _multipart_body(fields: tuple[SchemaField, ...], notes: list[str]) -> _MultipartBody:
    file_fields = [f for f in fields if _is_file_field(f)]
    text_fields = tuple(f for f in fields if not _is_file_field(f))
    required_files = [f for f in file_fields if f.required] or file_fields[:1]
    files = tuple((f.name, f"{_last_key(f.name) or 'file'}.bin") for f in required_files)
    text_tree = _tree_from_fields(text_fields, notes)
    return _MultipartBody(tuple(_form_pairs(text_tree, "")), files)


def _is_file_field(schema_field: SchemaField) -> bool:
    kind = schema_field.type.lower()
    return kind == "file" or "binary" in kind


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
        ranked = sorted(top_level, key=lambda f: (f.example is None, _is_container_type(f.type)))
        extras = ranked[:MAX_OPTIONAL_BODY_ALONE]
    left_out = [f.name for f in top_level if f not in extras]
    return required + extras, left_out


def _tree_from_fields(fields: tuple[SchemaField, ...], notes: list[str], what: str = "body fields") -> dict[str, Any]:
    selected, left_out = _select_fields(fields)
    if left_out:
        notes.append(f"Other optional {what}: " + _names_note(left_out) + ".")
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
        return _typed_example(schema_field.example, schema_field.type)
    if schema_field.enum:
        return _typed_example(schema_field.enum[0], schema_field.type)
    secret = _secret_env(name)
    if secret is not None:
        return secret
    placeholder = _placeholder(name, schema_field.type)
    if schema_field.name.endswith("[]") and isinstance(placeholder, list) and placeholder:
        return placeholder[0]
    return placeholder


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


def _is_container_type(type_text: str) -> bool:
    return _is_array_type(type_text) or _base_type(type_text) in ("object", "map", "dict")


def _placeholder(name: str, type_text: str) -> Any:
    type_text = _primary_type(type_text)
    if _is_array_type(type_text):
        inner = re.search(r"[\[<(]\s*([A-Za-z]+)", type_text or "")
        if not inner and (type_text or "").strip().endswith("[]"):
            inner = re.match(r"\s*([A-Za-z]+)", type_text)
        element_type = inner.group(1) if inner else "string"
        return [_placeholder(name, element_type)]
    kind = _base_type(type_text)
    if kind in ("integer", "int", "long", "number", "float", "double", "decimal"):
        return 0
    if kind in ("boolean", "bool"):
        return True
    if kind in ("object", "map", "dict"):
        return {}
    return f"<{name}>"


def _typed_example(example: str, type_text: str) -> Any:
    kind = _base_type(type_text)
    stripped = example.strip()
    if kind in ("integer", "int", "long", "number", "float", "double", "decimal", "boolean", "bool") or (
        _is_container_type(type_text) or stripped[:1] in ("{", "[")
    ):
        try:
            return json.loads(stripped)
        except ValueError:
            return example
    return example


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _form_pairs(value: Any, prefix: str) -> list[tuple[str, Value]]:
    """Flatten a tree into form-encoding pairs with bracket notation: `metadata[order_id]`, `items[0][price]`."""
    pairs: list[tuple[str, Value]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            pairs.extend(_form_pairs(child, f"{prefix}[{key}]" if prefix else str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            pairs.extend(_form_pairs(child, f"{prefix}[{index}]"))
    elif isinstance(value, _Env):
        pairs.append((prefix, (value,)))
    else:
        pairs.append((prefix, (_scalar_text(value),)))
    return pairs


# --------------------------------------------------------------------------------------------------------
# GraphQL
# --------------------------------------------------------------------------------------------------------


def _graphql_url(spec: ApiSpec, operation: Operation) -> str:
    if operation.path.startswith(("http://", "https://")):
        return operation.path
    base = spec.base_url(operation)
    if not base.startswith(("http://", "https://")):
        base = DEFAULT_BASE_URL
    path = "/" + operation.path.strip("/") if operation.path.strip("/") else "/graphql"
    return base if base.endswith(path) else base + path


def _graphql_body(operation: Operation, notes: list[str]) -> _GraphQLBody:
    document = operation.graphql_document.strip()
    if not document:
        keyword = operation.graphql_type or "query"
        document = f"{keyword} {{\n  {operation.name}\n}}"
        notes.append("Add the arguments and a selection of fields this field needs.")
    params = {p.name: p for p in operation.parameters}
    fields = operation.request_body.fields if operation.request_body else ()
    variables: dict[str, Any] = {}
    for name, type_text, has_default in _graphql_variable_definitions(document):
        param = params.get(name)
        required = type_text.endswith("!") and not has_default
        if not required and (param is None or param.example in (None, "")):
            continue  # optional variables may be left out
        variables[name] = _graphql_value(name, type_text, param, fields, notes)
    return _GraphQLBody(document, variables)


def _graphql_variable_definitions(document: str) -> list[tuple[str, str, bool]]:
    """(name, type, has a default) for each variable the document's first operation declares."""
    try:
        parsed = parse(document)
    except GraphQLSyntaxError:
        header = document.split("{", 1)[0]
        return [(name, type_text, False) for name, type_text in _GRAPHQL_VARIABLE.findall(header)]
    for definition in parsed.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return [
                (d.variable.name.value, print_ast(d.type), d.default_value is not None)
                for d in definition.variable_definitions or ()
            ]
    return []


def _graphql_value(
    name: str, type_text: str, param: Parameter | None, fields: tuple[SchemaField, ...], notes: list[str]
) -> Any:
    if param is not None and param.example not in (None, ""):
        return _typed_example(str(param.example), _graphql_scalar_type(type_text))
    if param is not None and param.enum:
        return param.enum[0]
    prefixed = tuple(
        SchemaField(f.name[len(name) + 1 :], f.type, f.required, f.description, f.enum, f.example)
        for f in fields
        if f.name.startswith(name + ".")
    )
    named = type_text.strip("[]!")
    is_list = type_text.startswith("[")
    if prefixed:
        value: Any = _tree_from_fields(prefixed, notes, f"fields of ${name}")
    elif fields and named not in _GRAPHQL_SCALARS and param is None:
        value = _tree_from_fields(tuple(fields), notes, f"fields of ${name}")
    elif named in _GRAPHQL_SCALARS or not named.endswith("Input"):
        value = _placeholder(name, _graphql_scalar_type(named))
    else:
        notes.append(f"Fill in the fields of {named} for ${name}.")
        value = {}
    return [value] if is_list else value


_GRAPHQL_SCALARS = frozenset({"Int", "Float", "Boolean", "String", "ID"})


def _graphql_scalar_type(type_text: str) -> str:
    named = type_text.strip("[]!")
    return {"Int": "integer", "Float": "number", "Boolean": "boolean"}.get(named, "string")


# --------------------------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------------------------


def _string(text: str) -> str:
    """A double-quoted string literal valid in both Python and JavaScript."""
    return json.dumps(text, ensure_ascii=False)


def _literal(value: Any, language: str, indent: int, width: int = 88) -> str:
    """A Python or JavaScript literal for a JSON-like tree (leaves may be `_Env`), wrapped when long."""
    unit = "    " if language == "python" else "  "
    flat = _flat_literal(value, language)
    if len(flat) + len(unit) * indent <= width or not isinstance(value, dict | list) or not value:
        return flat
    inner = unit * (indent + 1)
    if isinstance(value, dict):
        items = [f"{inner}{_key(k, language)}: {_literal(v, language, indent + 1, width)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + unit * indent + "}"
    items = [f"{inner}{_literal(v, language, indent + 1, width)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + unit * indent + "]"


def _flat_literal(value: Any, language: str) -> str:
    if isinstance(value, _Env):
        return f'os.environ["{value.name}"]' if language == "python" else f"process.env.{value.name}"
    if isinstance(value, bool):
        return ("True" if value else "False") if language == "python" else ("true" if value else "false")
    if value is None:
        return "None" if language == "python" else "null"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{_key(k, language)}: {_flat_literal(v, language)}" for k, v in value.items())
        return "{" + items + "}" if language == "python" else "{ " + items + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_flat_literal(v, language) for v in value) + "]"
    return _string(str(value))


def _key(key: Any, language: str) -> str:
    text = str(key)
    if language == "javascript" and _JS_IDENTIFIER.fullmatch(text):
        return text
    return _string(text)


def _value_expression(value: Value, language: str) -> str:
    """A Python / JavaScript expression concatenating literal parts and environment variables."""
    pieces = [_flat_literal(part, language) for part in value if part != ""] or ['""']
    return " + ".join(pieces)


def _pairs_literal(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...], language: str, indent: int) -> str:
    """A dict / object literal from (name, value) pairs; duplicate names become a list of pairs."""
    names = [n for n, _ in pairs]
    unit = "    " if language == "python" else "  "
    inner = unit * (indent + 1)
    if len(set(names)) != len(names):  # repeated names: a list of pairs
        pair_open, pair_close = ("(", ")") if language == "python" else ("[", "]")
        items = [f"{pair_open}{_string(n)}, {_value_expression(v, language)}{pair_close}" for n, v in pairs]
        opener, closer = "[", "]"
    else:
        items = [f"{_key(n, language)}: {_value_expression(v, language)}" for n, v in pairs]
        opener, closer = "{", "}"
    flat = opener + ", ".join(items) + closer
    if language == "javascript" and opener == "{":
        flat = "{ " + ", ".join(items) + " }"
    if len(flat) + len(unit) * indent <= 80:
        return flat
    return opener + "\n" + "\n".join(f"{inner}{item}," for item in items) + "\n" + unit * indent + closer


def _comment_lines(request: _Request, prefix: str, signs_oauth1: bool = False) -> list[str]:
    lines = [request.title] if request.title else []
    env = request.env_vars(signs_oauth1)
    if env:
        lines.append("Reads " + ", ".join(env) + " from the environment.")
    lines.extend(request.notes)
    comments: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(" ".join(line.split()), COMMENT_WIDTH, break_long_words=False, break_on_hyphens=False)
        comments.extend(f"{prefix} {part}" for part in wrapped)
    return comments


# --------------------------------------------------------------------------------------------------------
# Python (httpx; requests + requests_oauthlib for OAuth 1.0a)
# --------------------------------------------------------------------------------------------------------


def _render_python(request: _Request) -> str:
    client = "requests" if request.oauth1 else "httpx"
    env = request.env_vars(signs_oauth1=True)
    lines = _comment_lines(request, "#", signs_oauth1=True)
    if request.oauth1:
        lines.append("# pip install requests requests-oauthlib")
    lines.append("")
    if env:
        lines.append("import os")
        lines.append("")
    lines.append(f"import {client}")
    if request.oauth1:
        lines.append("from requests_oauthlib import OAuth1")
    lines.append("")

    body = request.body
    if isinstance(body, _GraphQLBody):
        lines.append(f"query = {_python_multiline(body.document)}")
        lines.append(f"variables = {_literal(body.variables, 'python', 0)}")
        lines.append("")
    if request.oauth1:
        lines.append("auth = OAuth1(")
        lines.extend(f'    os.environ["{name}"],' for name in _OAUTH1_ENV)
        lines.append(")")
        lines.append("")

    args = [_string(request.url)]
    if request.query:
        args.append("params=" + _pairs_literal(request.query, "python", 1))
    headers = list(request.headers)
    if isinstance(body, _JsonBody) and body.content_type != "application/json":
        headers.append(("Content-Type", (body.content_type,)))
    if isinstance(body, _RawBody | _FileBody):
        headers.append(("Content-Type", (body.content_type,)))
    if headers:
        args.append("headers=" + _pairs_literal(headers, "python", 1))
    if request.basic_auth:
        user, password = request.basic_auth
        args.append(f'auth=(os.environ["{user}"], os.environ["{password}"])')
    if request.oauth1:
        args.append("auth=auth")
    args.extend(_python_body_args(body, client))

    method = request.method
    has_body = body is not None
    shortcut = method.lower() in ("get", "post", "put", "patch", "delete", "head", "options")
    if shortcut and not (has_body and method in ("GET", "DELETE", "HEAD", "OPTIONS")):
        call = f"{client}.{method.lower()}("
    else:
        call = f"{client}.request("
        args.insert(0, _string(method))
    if len(args) == 1 and len(call) + len(args[0]) < 80:
        lines.append(f"response = {call}{args[0]})")
    else:
        lines.append(f"response = {call}")
        lines.extend(f"    {arg}," for arg in args)
        lines.append(")")
    lines.append("response.raise_for_status()")
    if not request.returns_body:
        lines.append("print(response.status_code)")
    else:
        lines.append("print(response.json())")
    return "\n".join(lines) + "\n"


def _python_body_args(body: Body | None, client: str) -> list[str]:
    if body is None:
        return []
    if isinstance(body, _JsonBody):
        return ["json=" + _literal(body.data, "python", 1)]
    if isinstance(body, _GraphQLBody):
        return ['json={"query": query, "variables": variables}']
    if isinstance(body, _FormBody):
        return ["data=" + _pairs_literal(body.pairs, "python", 1)]
    if isinstance(body, _MultipartBody):
        args: list[str] = []
        file_items = [f'{_string(name)}: open({_string(filename)}, "rb")' for name, filename in body.files]
        if body.files:
            if body.fields:
                args.append("data=" + _pairs_literal(body.fields, "python", 1))
        else:  # no file: send the text fields as multipart parts anyway
            file_items = [f"{_string(name)}: (None, {_value_expression(v, 'python')})" for name, v in body.fields]
        args.append("files={" + ", ".join(file_items) + "}")
        return args
    if isinstance(body, _FileBody):
        return [f'{"data" if client == "requests" else "content"}=open({_string(body.filename)}, "rb").read()']
    keyword = "data" if client == "requests" else "content"
    return [f"{keyword}={_python_multiline(body.text)}"]


def _python_multiline(text: str) -> str:
    if "\n" in text and '"""' not in text and "\\" not in text and not text.endswith('"'):
        return '"""\n' + text + '\n"""'
    return _string(text)


# --------------------------------------------------------------------------------------------------------
# JavaScript (fetch, ES module with top-level await)
# --------------------------------------------------------------------------------------------------------


def _render_javascript(request: _Request) -> str:
    lines = _comment_lines(request, "//")
    body = request.body
    if request.oauth1:
        lines.append("// Sign it with an OAuth 1.0a library (e.g. the `oauth-1.0a` npm package) and add the")
        lines.append("// resulting Authorization header below.")
    prelude: list[str] = []
    if (isinstance(body, _MultipartBody) and body.files) or isinstance(body, _FileBody):
        prelude.append('import { readFile } from "node:fs/promises";')
        prelude.append("")
    lines.append("")
    lines.extend(prelude)

    url_expression = _string(request.url)
    if request.query:
        lines.append(f"const params = new URLSearchParams({_pairs_literal(request.query, 'javascript', 0)});")
        url_expression = _string(request.url + "?") + " + params"
    if isinstance(body, _GraphQLBody):
        lines.append(f"const query = {_js_multiline(body.document)};")
        lines.append(f"const variables = {_literal(body.variables, 'javascript', 0)};")
    if isinstance(body, _MultipartBody):
        lines.append("const form = new FormData();")
        for name, value in body.fields:
            lines.append(f"form.append({_string(name)}, {_value_expression(value, 'javascript')});")
        for name, filename in body.files:
            lines.append(
                f"form.append({_string(name)}, new Blob([await readFile({_string(filename)})]), {_string(filename)});"
            )

    headers = [(name, _value_expression(value, "javascript")) for name, value in request.headers]
    if request.basic_auth:
        user, password = request.basic_auth
        headers.insert(0, ("Authorization", f'"Basic " + btoa(process.env.{user} + ":" + process.env.{password})'))
    if isinstance(body, _JsonBody):
        headers.append(("Content-Type", _string(body.content_type)))
    if isinstance(body, _GraphQLBody):
        headers.append(("Content-Type", _string("application/json")))
    if isinstance(body, _RawBody | _FileBody):
        headers.append(("Content-Type", _string(body.content_type)))

    options: list[str] = []
    if request.method != "GET":
        options.append(f"method: {_string(request.method)},")
    if headers:
        options.append("headers: {")
        options.extend(f"  {_key(name, 'javascript')}: {expression}," for name, expression in headers)
        options.append("},")
    options.extend(_js_body_option(body))

    if options:
        lines.append(f"const response = await fetch({url_expression}, {{")
        lines.extend(f"  {option}" for option in options)
        lines.append("});")
    else:
        lines.append(f"const response = await fetch({url_expression});")
    lines.append("if (!response.ok) {")
    lines.append("  throw new Error(`Request failed: ${response.status} ${await response.text()}`);")
    lines.append("}")
    if not request.returns_body:
        lines.append("console.log(response.status);")
    else:
        lines.append("console.log(await response.json());")
    return "\n".join(lines) + "\n"


def _js_body_option(body: Body | None) -> list[str]:
    if body is None:
        return []
    if isinstance(body, _JsonBody):
        return [f"body: JSON.stringify({_literal(body.data, 'javascript', 1)}),"]
    if isinstance(body, _GraphQLBody):
        return ["body: JSON.stringify({ query, variables }),"]
    if isinstance(body, _FormBody):
        return [f"body: new URLSearchParams({_pairs_literal(body.pairs, 'javascript', 1)}),"]
    if isinstance(body, _MultipartBody):
        return ["body: form,"]
    if isinstance(body, _FileBody):
        return [f"body: await readFile({_string(body.filename)}),"]
    return [f"body: {_js_multiline(body.text)},"]


def _js_multiline(text: str) -> str:
    if "\n" in text and "`" not in text and "${" not in text and "\\" not in text:
        return "`\n" + text + "\n`"
    return _string(text)


# --------------------------------------------------------------------------------------------------------
# curl
# --------------------------------------------------------------------------------------------------------


def _single_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _shell_word(value: Value) -> str:
    """One shell word: literals in quotes, environment variables as "$NAME" expansions."""
    parts = [p for p in value if p != ""]
    if not any(isinstance(p, _Env) for p in parts):
        return _single_quote("".join(p for p in parts if isinstance(p, str)))
    literals = "".join(p for p in parts if isinstance(p, str))
    if not _SHELL_DOUBLE_QUOTE_UNSAFE.search(literals):
        out = ""
        for index, part in enumerate(parts):
            if isinstance(part, _Env):
                following = parts[index + 1] if index + 1 < len(parts) else ""
                needs_braces = isinstance(following, str) and re.match(r"[A-Za-z0-9_]", following) is not None
                out += "${" + part.name + "}" if needs_braces else "$" + part.name
            else:
                out += part
        return '"' + out + '"'
    return "".join(f'"${{{p.name}}}"' if isinstance(p, _Env) else _single_quote(p) for p in parts)


def _encode_query(pairs: list[tuple[str, Value]]) -> Value:
    parts: list[Part] = []
    for index, (name, value) in enumerate(pairs):
        parts.append(("&" if index else "") + quote(name, safe="[]") + "=")
        for part in value:
            parts.append(quote(part, safe=",:@/") if isinstance(part, str) else part)
    return _merge_literals(parts)


def _render_curl(request: _Request) -> str:
    lines = _comment_lines(request, "#")
    body = request.body
    if request.oauth1:
        lines.append("# curl cannot sign OAuth 1.0a requests itself: generate the Authorization header with an")
        lines.append("# OAuth 1.0a library (or Postman) and add it with -H.")
    if lines:
        lines.append("")
    url: Value = (request.url,)
    if request.query:
        url = _merge_literals([request.url + "?", *_encode_query(request.query)])
    first: list[str] = []
    if request.method == "HEAD":
        first.append("--head")
    elif request.method != "GET" or body is not None:
        method = request.method if request.method.isalpha() else _single_quote(request.method)
        first.append(f"-X {method}")
    if re.search(r"[\[\]{}]", "".join(p for p in url if isinstance(p, str))):
        first.append("--globoff")  # brackets in the URL are literal, not curl's URL globbing
    first.append(_shell_word(url))
    args = [" ".join(first)]
    if request.basic_auth:
        user, password = request.basic_auth
        args.append(f'-u "${user}:${password}"')
    for name, value in request.headers:
        args.append("-H " + _shell_word(_merge_literals([f"{name}: ", *value])))
    args.extend(_curl_body_args(body))
    lines.append("curl " + " \\\n  ".join(args))
    return "\n".join(lines) + "\n"


def _curl_body_args(body: Body | None) -> list[str]:
    if body is None:
        return []
    if isinstance(body, _JsonBody | _GraphQLBody):
        if isinstance(body, _GraphQLBody):
            document = body.document
            if '"' not in document and "#" not in document:
                document = " ".join(document.split())
            data: Any = {"query": document, "variables": body.variables}
            content_type = "application/json"
        else:
            data = body.data
            content_type = body.content_type
        return [f"-H {_single_quote('Content-Type: ' + content_type)}", "--data-raw " + _json_shell_word(data)]
    if isinstance(body, _FormBody):
        return [
            "--data-urlencode " + _shell_word(_merge_literals([quote(name, safe="[]") + "=", *value]))
            for name, value in body.pairs
        ]
    if isinstance(body, _MultipartBody):
        args = ["--form-string " + _shell_word(_merge_literals([name + "=", *value])) for name, value in body.fields]
        args.extend("-F " + _single_quote(f"{name}=@{filename}") for name, filename in body.files)
        return args
    if isinstance(body, _FileBody):
        return [
            f"-H {_single_quote('Content-Type: ' + body.content_type)}",
            "--data-binary " + _single_quote("@" + body.filename),
        ]
    return [f"-H {_single_quote('Content-Type: ' + body.content_type)}", "--data-raw " + _single_quote(body.text)]


def _json_shell_word(data: Any) -> str:
    """JSON as one shell word; environment variables are spliced in as "$NAME" expansions."""
    marked = _mark_env(data)
    text = json.dumps(marked, ensure_ascii=False)
    if len(text) > 80:
        text = json.dumps(marked, ensure_ascii=False, indent=2)
    parts: list[Part] = []
    position = 0
    for match in _ENV_MARKER_RE.finditer(text):
        parts.append(text[position : match.start()] + '"')
        parts.append(_Env(match.group(1)))
        parts.append('"')
        position = match.end()
    parts.append(text[position:])
    value = _merge_literals(parts)
    if not any(isinstance(p, _Env) for p in value):
        return _single_quote(text)
    return "".join(f'"${{{p.name}}}"' if isinstance(p, _Env) else _single_quote(p) for p in value)


def _mark_env(data: Any) -> Any:
    if isinstance(data, _Env):
        return _ENV_MARKER.format(data.name)
    if isinstance(data, dict):
        return {k: _mark_env(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_mark_env(v) for v in data]
    return data
