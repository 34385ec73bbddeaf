"""The URL (path parameters filled in), the query, headers and cookies of a request."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote

from core.models import ApiSpec, ItemKind, Operation, Parameter
from core.parsing.text import TEMPLATE_VARIABLE
from core.snippets.auth import Auth, is_auth_param, secret_env
from core.snippets.request import DEFAULT_BASE_URL, Env, Part, Value, merge_literals, names_note, upper_snake
from core.snippets.values import placeholder_value, scalar_text

MAX_OPTIONAL_QUERY = 2  # optional query parameters shown (only those with examples)
MAX_OPTIONAL_HEADERS = 2  # optional header parameters shown (only those with examples)


_BRACE_VAR = re.compile(r"\{([^{}/]+)\}")
_COLON_VAR = re.compile(r"(?<=/):([A-Za-z_][A-Za-z0-9_]*)")
_ANGLE_VAR = re.compile(r"<([A-Za-z_][A-Za-z0-9_-]*)>")


def resolve_url(spec: ApiSpec, operation: Operation) -> tuple[str, list[tuple[str, Value]]]:
    """The absolute URL with path parameters filled in, and the query pairs written into it (Postman)."""
    if operation.kind is ItemKind.POSTMAN and operation.url:
        raw = operation.url.strip()
        leading = TEMPLATE_VARIABLE.match(raw)
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
        # errors="replace": a lone surrogate (a `\ud800` escape in a JSON spec) has no UTF-8 form to quote.
        if param is not None and param.example not in (None, ""):
            return quote(str(param.example), safe="", errors="replace")
        if param is not None and param.enum:
            return quote(param.enum[0], safe="", errors="replace")
        return upper_snake(name) or "VALUE"

    url = TEMPLATE_VARIABLE.sub(lambda m: value_for(m.group(1)), url)
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
    for match in TEMPLATE_VARIABLE.finditer(text):
        parts.append(text[position : match.start()])
        name = match.group(1)
        if re.search(r"token|secret|password|key", name, re.I):
            parts.append(Env(upper_snake(name)))
        else:
            parts.append(f"<{name}>")
        position = match.end()
    parts.append(text[position:])
    return merge_literals(parts)


def _param_value(param: Parameter) -> Value:
    if param.example not in (None, ""):
        return _template_value(str(param.example))
    if param.enum:
        return (param.enum[0],)
    secret = secret_env(param.name)
    if secret is not None:
        return (secret,)
    return (scalar_text(placeholder_value(param.name, param.value_type)),)


def query_params(operation: Operation, auth: Auth, given: set[str], notes: list[str]) -> list[tuple[str, Value]]:
    """Required query parameters and a few optional ones with examples; the rest are named in a note."""
    candidates = [
        p
        for p in operation.parameters
        if p.location == "query" and p.name not in given and not is_auth_param(p.name, "query", auth)
    ]
    chosen = [p for p in candidates if p.required]
    optional_with_examples = [p for p in candidates if not p.required and p.example not in (None, "")]
    chosen += optional_with_examples[:MAX_OPTIONAL_QUERY]
    left_out = [p.name for p in candidates if p not in chosen]
    if left_out:
        notes.append("Optional query parameters: " + names_note(left_out) + ".")
    return [(p.name, _param_value(p)) for p in chosen]


def header_params(operation: Operation, auth: Auth) -> list[tuple[str, Value]]:
    """Header parameters the auth does not already send: required ones, and a few with examples."""
    skip = {"content-type", "content-length", "cookie"}
    candidates = [
        p
        for p in operation.parameters
        if p.location == "header" and p.name.lower() not in skip and not is_auth_param(p.name, "header", auth)
    ]
    if operation.kind is ItemKind.POSTMAN:  # the headers a Postman request sets are part of it
        chosen = [p for p in candidates if p.required or p.example not in (None, "")]
    else:
        chosen = [p for p in candidates if p.required]
        chosen += [p for p in candidates if not p.required and p.example not in (None, "")][:MAX_OPTIONAL_HEADERS]
    return [(p.name, _param_value(p)) for p in chosen]


def cookie_params(operation: Operation, auth: Auth) -> list[tuple[str, Value]]:
    """Required cookie parameters the auth does not already send."""
    return [
        (p.name, _param_value(p))
        for p in operation.parameters
        if p.location == "cookie" and p.required and not is_auth_param(p.name, "cookie", auth)
    ]
