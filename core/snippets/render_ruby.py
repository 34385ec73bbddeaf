"""Ruby: `net/http` from the standard library, secrets from `ENV.fetch` (which fails clearly when one is unset).

The script starts with the `frozen_string_literal` magic comment, so the title on the next line can never be
read as an encoding comment (Ruby looks for `coding: ...` on the first line only).
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
)
from core.snippets.source_text import (
    brace_unicode_escape,
    concatenation,
    escaped,
    has_repeats,
    header_comments,
    json_safe,
    plain_lines,
)

_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r", "\x1b": "\\e",
    '"': '\\"', "\\": "\\\\",
}
_INTERPOLATION = re.compile(r"#(?=[{$@])")
_CLASSES = {
    "GET": "Get", "HEAD": "Head", "POST": "Post", "PUT": "Put", "PATCH": "Patch", "DELETE": "Delete",
    "OPTIONS": "Options", "TRACE": "Trace",
}
_BODYLESS = {"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"}  # request classes that refuse a body
_WIDTH = 88
_SIGN_OAUTH1 = ("Sign it with an OAuth 1.0a library (e.g. the oauth gem) and add the Authorization header.",)


def ruby_string(text: str) -> str:
    """A double-quoted Ruby string: `#{`, `#$` and `#@` escaped so nothing is interpolated."""
    inside = escaped(text, _ESCAPES, str.isprintable, brace_unicode_escape)
    return '"' + _INTERPOLATION.sub(r"\\#", inside) + '"'


def _heredoc(text: str, tag: str) -> str | None:
    """A heredoc that keeps text of several lines exactly (`<<'TAG'` reads nothing inside it); None if it can't."""
    if "\n" not in text or not plain_lines(text) or any(line.strip() == tag for line in text.split("\n")):
        return None
    return f"<<'{tag}'.chomp\n{text}\n{tag}"


def _env(name: str) -> str:
    return f"ENV.fetch({ruby_string(name)})"


def _value(value: Value) -> str:
    return concatenation(value, _env, ruby_string, " + ", '""')


def ruby_value(value: Any, level: int = 0) -> str:
    """A Ruby literal for a JSON tree (string keys, `nil`, `true`), wrapped when long."""
    flat = _flat(value)
    if len(flat) + 2 * level <= _WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = "  " * (level + 1)
    if isinstance(value, dict):
        items = [f"{inner}{ruby_string(str(k))} => {ruby_value(v, level + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + "  " * level + "}"
    items = [f"{inner}{ruby_value(v, level + 1)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + "  " * level + "]"


def _flat(value: Any) -> str:
    if isinstance(value, Env):
        return _env(value.name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{ruby_string(str(k))} => {_flat(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return ruby_string(str(value))


def _pairs(pairs: list[tuple[str, Value]] | tuple[tuple[str, Value], ...]) -> str:
    """A hash of names to values, or an array of pairs when a name repeats; wrapped when long."""
    if has_repeats(pairs):
        items = [f"[{ruby_string(name)}, {_value(value)}]" for name, value in pairs]
        opener, closer = "[", "]"
    else:
        items = [f"{ruby_string(name)} => {_value(value)}" for name, value in pairs]
        opener, closer = "{ ", " }"
    flat = opener + ", ".join(items) + closer
    if len(flat) <= _WIDTH - 20:
        return flat
    return opener.strip() + "\n" + "\n".join(f"  {item}," for item in items) + "\n" + closer.strip()


def render_ruby(request: Request) -> str:
    """A Ruby (net/http) snippet for the request."""
    requires = {"net/http", "uri"}
    body = request.body
    code = [f"uri = URI({ruby_string(request.url)})"]
    if request.query:
        code.append(f"uri.query = URI.encode_www_form({_pairs(request.query)})")
    code.append("")

    if isinstance(body, GraphQLBody):
        code.append(f"query = {_heredoc(body.document, 'GRAPHQL') or ruby_string(body.document)}")
        code.append(f"variables = {ruby_value(json_safe(body.variables))}")
        code.append("")

    method = request.method
    klass = _CLASSES.get(method)
    if klass and not (body is not None and method in _BODYLESS):
        code.append(f"request = Net::HTTP::{klass}.new(uri)")
    else:  # a method net/http has no class for, or a body it would refuse
        has_response_body = "false" if method == "HEAD" else "true"
        code.append(f"request = Net::HTTPGenericRequest.new({ruby_string(method)}, true, {has_response_body}, uri)")
    if request.basic_auth:
        user, password = request.basic_auth
        code.append(f"request.basic_auth({_env(user)}, {_env(password)})")
    for name, value in request.headers:
        code.append(f"request[{ruby_string(name)}] = {_value(value)}")

    if isinstance(body, JsonBody):
        requires.add("json")
        code.append(f"request[\"Content-Type\"] = {ruby_string(body.content_type)}")
        code.append(f"request.body = JSON.generate({ruby_value(json_safe(body.data))})")
    elif isinstance(body, GraphQLBody):
        requires.add("json")
        code.append('request["Content-Type"] = "application/json"')
        code.append('request.body = JSON.generate({ "query" => query, "variables" => variables })')
    elif isinstance(body, FormBody):
        code.append(f"request.set_form_data({_pairs(body.pairs)})")
    elif isinstance(body, MultipartBody):
        items = [f"[{ruby_string(name)}, {_value(value)}]" for name, value in body.fields]
        items.extend(
            f'[{ruby_string(name)}, File.open({ruby_string(filename)}), {{ filename: {ruby_string(filename)} }}]'
            for name, filename in body.files
        )
        code.append("request.set_form([")
        code.extend(f"  {item}," for item in items)
        code.append('], "multipart/form-data")')
    elif isinstance(body, FileBody):
        code.append(f"request[\"Content-Type\"] = {ruby_string(body.content_type)}")
        code.append(f"request.body = File.binread({ruby_string(body.filename)})")
    elif isinstance(body, RawBody):
        code.append(f"request[\"Content-Type\"] = {ruby_string(body.content_type)}")
        code.append(f"request.body = {_heredoc(body.text, 'BODY') or ruby_string(body.text)}")

    code.extend([
        "",
        'response = Net::HTTP.start(uri.hostname, uri.port, use_ssl: uri.scheme == "https") do |http|',
        "  http.request(request)",
        "end",
        'raise "Request failed: #{response.code} #{response.body}" unless response.is_a?(Net::HTTPSuccess)',
        "",
        "puts response.body" if request.returns_body else "puts response.code",
    ])

    lines = ["# frozen_string_literal: true", ""]
    comments = header_comments(request, "#", oauth1_note=_SIGN_OAUTH1)
    if comments:
        lines.extend([*comments, ""])
    lines.extend(f'require "{name}"' for name in sorted(requires))
    lines.append("")
    lines.extend(code)
    return "\n".join(lines) + "\n"
