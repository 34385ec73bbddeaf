"""curl: one command, secrets as shell expansions of environment variables."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from core.snippets.literals import comment_lines
from core.snippets.request import (
    Body,
    Env,
    FileBody,
    FormBody,
    GraphQLBody,
    JsonBody,
    MultipartBody,
    Part,
    Request,
    Value,
    merge_literals,
)
from core.snippets.source_text import json_parts

_SHELL_DOUBLE_QUOTE_UNSAFE = re.compile(r"[$`\"\\!]")


def _single_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _shell_word(value: Value) -> str:
    """One shell word: literals in quotes, environment variables as "$NAME" expansions."""
    parts = [p for p in value if p != ""]
    if not any(isinstance(p, Env) for p in parts):
        return _single_quote("".join(p for p in parts if isinstance(p, str)))
    literals = "".join(p for p in parts if isinstance(p, str))
    if not _SHELL_DOUBLE_QUOTE_UNSAFE.search(literals):
        out = ""
        for index, part in enumerate(parts):
            if isinstance(part, Env):
                following = parts[index + 1] if index + 1 < len(parts) else ""
                needs_braces = isinstance(following, str) and re.match(r"[A-Za-z0-9_]", following) is not None
                out += "${" + part.name + "}" if needs_braces else "$" + part.name
            else:
                out += part
        return '"' + out + '"'
    return "".join(f'"${{{p.name}}}"' if isinstance(p, Env) else _single_quote(p) for p in parts)


def _encode_query(pairs: list[tuple[str, Value]]) -> Value:
    parts: list[Part] = []
    for index, (name, value) in enumerate(pairs):
        parts.append(("&" if index else "") + quote(name, safe="[]") + "=")
        for part in value:
            parts.append(quote(part, safe=",:@/") if isinstance(part, str) else part)
    return merge_literals(parts)


def render_curl(request: Request) -> str:
    """A curl command for the request."""
    lines = comment_lines(request, "#")
    body = request.body
    if request.oauth1:
        lines.append("# curl cannot sign OAuth 1.0a requests itself: generate the Authorization header with an")
        lines.append("# OAuth 1.0a library (or Postman) and add it with -H.")
    if lines:
        lines.append("")
    url: Value = (request.url,)
    if request.query:
        url = merge_literals([request.url + "?", *_encode_query(request.query)])
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
        args.append("-H " + _shell_word(merge_literals([f"{name}: ", *value])))
    args.extend(_curl_body_args(body))
    lines.append("curl " + " \\\n  ".join(args))
    return "\n".join(lines) + "\n"


def _curl_body_args(body: Body | None) -> list[str]:
    if body is None:
        return []
    if isinstance(body, JsonBody | GraphQLBody):
        if isinstance(body, GraphQLBody):
            document = body.document
            if '"' not in document and "#" not in document:
                document = " ".join(document.split())
            data: Any = {"query": document, "variables": body.variables}
            content_type = "application/json"
        else:
            data = body.data
            content_type = body.content_type
        return [f"-H {_single_quote('Content-Type: ' + content_type)}", "--data-raw " + _json_shell_word(data)]
    if isinstance(body, FormBody):
        return [
            "--data-urlencode " + _shell_word(merge_literals([quote(name, safe="[]") + "=", *value]))
            for name, value in body.pairs
        ]
    if isinstance(body, MultipartBody):
        args = ["--form-string " + _shell_word(merge_literals([name + "=", *value])) for name, value in body.fields]
        args.extend("-F " + _single_quote(f"{name}=@{filename}") for name, filename in body.files)
        return args
    if isinstance(body, FileBody):
        return [
            f"-H {_single_quote('Content-Type: ' + body.content_type)}",
            "--data-binary " + _single_quote("@" + body.filename),
        ]
    return [f"-H {_single_quote('Content-Type: ' + body.content_type)}", "--data-raw " + _single_quote(body.text)]


def _json_shell_word(data: Any) -> str:
    """JSON as one shell word; environment variables are spliced in as "$NAME" expansions.

    The JSON is written around the `Env` leaves (`json_parts`), never by marking them in the text and finding
    the marks again: a spec value that looks like a mark must stay text, not read the user's environment.
    """
    value = json_parts(data, indent=None, ascii_only=False)
    if len("".join(p if isinstance(p, str) else p.name for p in value)) > 80:
        value = json_parts(data, indent=2, ascii_only=False)
    if not any(isinstance(p, Env) for p in value):
        return _single_quote("".join(p for p in value if isinstance(p, str)))
    out = ""
    for part in value:
        # A JSON string whose text is the variable: the quotes stay in the single-quoted JSON.
        out += '"\'"${' + part.name + '}"\'"' if isinstance(part, Env) else part.replace("'", "'\\''")
    return "'" + out + "'"
