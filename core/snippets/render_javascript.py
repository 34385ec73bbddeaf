"""JavaScript: `fetch` in an ES module with top-level await (Node 18+), secrets from `process.env`."""

from __future__ import annotations

from core.snippets.literals import comment_lines, key_literal, literal, pairs_literal, string_literal, value_expression
from core.snippets.request import Body, FileBody, FormBody, GraphQLBody, JsonBody, MultipartBody, RawBody, Request


def render_javascript(request: Request) -> str:
    """A JavaScript (fetch) snippet for the request."""
    lines = comment_lines(request, "//")
    body = request.body
    if request.oauth1:
        lines.append("// Sign it with an OAuth 1.0a library (e.g. the `oauth-1.0a` npm package) and add the")
        lines.append("// resulting Authorization header below.")
    prelude: list[str] = []
    if (isinstance(body, MultipartBody) and body.files) or isinstance(body, FileBody):
        prelude.append('import { readFile } from "node:fs/promises";')
        prelude.append("")
    lines.append("")
    lines.extend(prelude)

    url_expression = string_literal(request.url)
    if request.query:
        lines.append(f"const params = new URLSearchParams({pairs_literal(request.query, 'javascript', 0)});")
        url_expression = string_literal(request.url + "?") + " + params"
    if isinstance(body, GraphQLBody):
        lines.append(f"const query = {_js_multiline(body.document)};")
        lines.append(f"const variables = {literal(body.variables, 'javascript', 0)};")
    if isinstance(body, MultipartBody):
        lines.extend(form_data_lines(body, "javascript"))

    headers = [(name, value_expression(value, "javascript")) for name, value in request.headers]
    if request.basic_auth:
        user, password = request.basic_auth
        headers.insert(0, ("Authorization", f'"Basic " + btoa(process.env.{user} + ":" + process.env.{password})'))
    content_type = fetch_content_type(body)
    if content_type:
        headers.append(("Content-Type", string_literal(content_type)))

    options: list[str] = []
    if request.method != "GET":
        options.append(f"method: {string_literal(request.method)},")
    if headers:
        options.append("headers: {")
        options.extend(f"  {key_literal(name, 'javascript')}: {expression}," for name, expression in headers)
        options.append("},")
    options.extend(fetch_body_option(body, "javascript", _js_multiline(body.text) if isinstance(body, RawBody) else ""))

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


def form_data_lines(body: MultipartBody, language: str) -> list[str]:
    """The `FormData` a fetch snippet sends for a multipart body (JavaScript and TypeScript); files read from disk."""
    lines = ["const form = new FormData();"]
    for name, value in body.fields:
        lines.append(f"form.append({string_literal(name)}, {value_expression(value, language)});")
    for name, filename in body.files:
        quoted = string_literal(filename)
        lines.append(f"form.append({string_literal(name)}, new Blob([await readFile({quoted})]), {quoted});")
    return lines


def fetch_content_type(body: Body | None) -> str:
    """The Content-Type a fetch snippet sets itself ("" when fetch sets it: forms and multipart, or no body)."""
    if isinstance(body, GraphQLBody):
        return "application/json"
    if isinstance(body, JsonBody | RawBody | FileBody):
        return body.content_type
    return ""


def fetch_body_option(body: Body | None, language: str, raw_text: str) -> list[str]:
    """The `body:` option of a fetch call (JavaScript and TypeScript); `raw_text` is a raw body's literal."""
    if body is None:
        return []
    if isinstance(body, JsonBody):
        return [f"body: JSON.stringify({literal(body.data, language, 1)}),"]
    if isinstance(body, GraphQLBody):
        return ["body: JSON.stringify({ query, variables }),"]
    if isinstance(body, FormBody):
        return [f"body: new URLSearchParams({pairs_literal(body.pairs, language, 1)}),"]
    if isinstance(body, MultipartBody):
        return ["body: form,"]
    if isinstance(body, FileBody):
        return [f"body: await readFile({string_literal(body.filename)}),"]
    return [f"body: {raw_text},"]


def _js_multiline(text: str) -> str:
    # A template literal keeps a multi-line body readable, and byte for byte: nothing added around it, and only
    # when there is no carriage return (a template literal reads CR and CRLF as LF).
    if "\n" in text and not any(c in text for c in ("`", "${", "\\", "\r")):
        return "`" + text + "`"
    return string_literal(text)
