"""PHP: the curl extension (`php-curl`), secrets from `getenv`.

Strings are single-quoted (nothing is interpolated) unless they hold unprintable characters, which need a
double-quoted string's escapes; there `$` is escaped too. `?>` would end PHP mode even inside a `//` comment,
so comments never hold it as it is.
"""

from __future__ import annotations

import re
from typing import Any

from core.snippets.request import (
    Env,
    FileBody,
    FormBody,
    GraphQLBody,
    JsonBody,
    MultipartBody,
    RawBody,
    Request,
    Value,
    merge_literals,
)
from core.snippets.source_text import (
    brace_unicode_escape,
    concatenation,
    encoded_pairs,
    escaped,
    has_repeats,
    header_comments,
    json_safe,
    plain_lines,
    without_surrogates,
)

_ESCAPES = {
    "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\",
    "$": "\\$",
}
# PHP turns array keys that read as decimal integers into integers; json_encode then may write a list.
_INTEGER_KEY = re.compile(r"0|-?[1-9][0-9]{0,17}")
_WIDTH = 88


def php_string(text: str) -> str:
    """A PHP string literal: single-quoted when every character is printable, else double-quoted with escapes."""
    text = without_surrogates(text)
    if text.isprintable():
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return '"' + escaped(text, _ESCAPES, str.isprintable, brace_unicode_escape) + '"'


def _comment_text(text: str) -> str:
    return text.replace("?>", "? >")


def _nowdoc(text: str, tag: str) -> str | None:
    """A nowdoc (nothing inside is read as code or escapes) for text of several lines; None when it can't be one."""
    if "\n" not in text or not plain_lines(text):
        return None
    # PHP 7.3+ ends a nowdoc at any line starting (after spaces) with the tag not followed by a name character.
    closing = re.compile(rf"^[ \t]*{tag}(?![A-Za-z0-9_\x80-\U0010ffff])")
    if any(closing.match(line) for line in text.split("\n")):
        return None
    return f"<<<'{tag}'\n{text}\n{tag}"


def _env(name: str) -> str:
    return f"getenv({php_string(name)})"


def _value(value: Value) -> str:
    return concatenation(value, _env, php_string, " . ", "''")


def php_value(value: Any, level: int = 1) -> str:
    """A PHP expression for a JSON tree for `json_encode` (objects stay objects, even empty ones)."""
    flat = _flat(value)
    if len(flat) + 4 * level <= _WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = "    " * (level + 1)
    if isinstance(value, dict):
        items = [f"{inner}{php_string(str(k))} => {php_value(v, level + 1)}," for k, v in value.items()]
        opener = "(object) [" if _needs_object(value) else "["
        return opener + "\n" + "\n".join(items) + "\n" + "    " * level + "]"
    items = [f"{inner}{php_value(v, level + 1)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + "    " * level + "]"


def _needs_object(value: dict[Any, Any]) -> bool:
    return not value or any(_INTEGER_KEY.fullmatch(str(k)) for k in value)


def _flat(value: Any) -> str:
    if isinstance(value, Env):
        return _env(value.name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return "new stdClass()"
        items = ", ".join(f"{php_string(str(k))} => {_flat(v)}" for k, v in value.items())
        return ("(object) [" if _needs_object(value) else "[") + items + "]"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return php_string(str(value))


def _array(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...], level: int) -> str:
    items = [f"{php_string(name)} => {_value(value)}" for name, value in pairs]
    flat = "[" + ", ".join(items) + "]"
    if len(flat) + 4 * level <= _WIDTH:
        return flat
    inner = "    " * (level + 1)
    return "[\n" + "\n".join(f"{inner}{item}," for item in items) + "\n" + "    " * level + "]"


def _query_string(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...], level: int) -> str:
    """`http_build_query([...])`, or (a name repeated, which an array cannot hold) the encoded text."""
    if not has_repeats(pairs):
        return f"http_build_query({_array(pairs, level)})"
    pieces = [f"urlencode({_env(p.name)})" if isinstance(p, Env) else php_string(p) for p in encoded_pairs(pairs)]
    return " . ".join(pieces)


def render_php(request: Request) -> str:
    """A PHP (curl extension) snippet for the request."""
    body = request.body
    code: list[str] = []
    url_expression = php_string(request.url)
    if request.query:
        code.append(f"$query = {_query_string(request.query, 0)};")
        url_expression = php_string(request.url + "?") + " . $query"
    if isinstance(body, GraphQLBody):
        code.append(f"$graphql = {_nowdoc(body.document, 'GRAPHQL') or php_string(body.document)};")
        code.append(f"$variables = {php_value(json_safe(body.variables), 0)};")
    if code:
        code.append("")

    options: list[str] = ["CURLOPT_RETURNTRANSFER => true"]
    method = request.method
    if method == "HEAD":
        options.append("CURLOPT_NOBODY => true")
    elif method != "GET" and not (method == "POST" and body is not None):
        options.append(f"CURLOPT_CUSTOMREQUEST => {php_string(method)}")
    headers = [_value(merge_literals([f"{name}: ", *value])) for name, value in request.headers]
    if isinstance(body, JsonBody | RawBody | FileBody):
        headers.append(php_string("Content-Type: " + body.content_type))
    if isinstance(body, GraphQLBody):
        headers.append(php_string("Content-Type: application/json"))
    if headers:
        options.append("CURLOPT_HTTPHEADER => [\n" + "".join(f"        {h},\n" for h in headers) + "    ]")
    if request.basic_auth:
        user, password = request.basic_auth
        options.append(f"CURLOPT_USERPWD => {_env(user)} . ':' . {_env(password)}")

    if isinstance(body, JsonBody):
        options.append(f"CURLOPT_POSTFIELDS => json_encode({php_value(json_safe(body.data))})")
    elif isinstance(body, GraphQLBody):
        options.append("CURLOPT_POSTFIELDS => json_encode(['query' => $graphql, 'variables' => $variables])")
    elif isinstance(body, FormBody):
        options.append(f"CURLOPT_POSTFIELDS => {_query_string(body.pairs, 1)}")
    elif isinstance(body, MultipartBody):
        fields = [(php_string(name), _value(value)) for name, value in body.fields]
        fields.extend(
            (php_string(name), f"new CURLFile({php_string(filename)}, 'application/octet-stream', "
             f"{php_string(filename)})")
            for name, filename in body.files
        )
        # An array is sent as multipart/form-data.
        options.append("CURLOPT_POSTFIELDS => [\n" + "".join(f"        {k} => {v},\n" for k, v in fields) + "    ]")
    elif isinstance(body, FileBody):
        options.append(f"CURLOPT_POSTFIELDS => file_get_contents({php_string(body.filename)})")
    elif isinstance(body, RawBody):
        options.append(f"CURLOPT_POSTFIELDS => {_nowdoc(body.text, 'BODY') or php_string(body.text)}")

    code.append(f"$curl = curl_init({url_expression});")
    code.append("curl_setopt_array($curl, [")
    code.extend(f"    {option}," for option in options)
    code.append("]);")
    code.extend([
        "$response = curl_exec($curl);",
        "if ($response === false) {",
        "    throw new RuntimeException(curl_error($curl));",
        "}",
        "$status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);",
        "curl_close($curl);",
        "if ($status < 200 || $status > 299) {",
        '    throw new RuntimeException("Request failed: $status $response");',
        "}",
        "echo $response, PHP_EOL;" if request.returns_body else "echo $status, PHP_EOL;",
    ])

    lines = ["<?php", ""]
    comments = header_comments(request, "//", _comment_text)
    if comments:
        lines.extend([*comments, ""])
    lines.extend(code)
    return "\n".join(lines) + "\n"
