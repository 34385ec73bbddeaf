"""TypeScript: typed `fetch` in an ES module with top-level await (Node 18+), secrets through a typed `env()`.

The same request as the JavaScript snippet, written so `tsc --strict` accepts it: environment variables are
read through `env(name): string`, which fails clearly when one is unset instead of sending "undefined", and
the headers and the response's JSON have declared types.
"""

from __future__ import annotations

import re

from core.snippets.literals import key_literal, literal, pairs_literal, string_literal, value_expression
from core.snippets.render_javascript import fetch_body_option, fetch_content_type, form_data_lines
from core.snippets.request import FileBody, GraphQLBody, MultipartBody, RawBody, Request
from core.snippets.source_text import header_comments, plain_lines

LANGUAGE = "typescript"
_DIRECTIVE = re.compile(r"^\s*@")
_SIGN_OAUTH1 = (
    "Sign it with an OAuth 1.0a library (e.g. the `oauth-1.0a` npm package) and add the",
    "resulting Authorization header below.",
)


def _clean_comment(text: str) -> str:
    # `// @ts-nocheck`, `// @ts-expect-error` and the like are compiler directives: spec text starting with
    # "@" is quoted so it stays a comment.
    return f"'{text}'" if _DIRECTIVE.match(text) else text


def render_typescript(request: Request) -> str:
    """A TypeScript (typed fetch) snippet for the request."""
    lines = header_comments(request, "//", _clean_comment, oauth1_note=_SIGN_OAUTH1)
    body = request.body
    lines.append("")
    if (isinstance(body, MultipartBody) and body.files) or isinstance(body, FileBody):
        lines.append('import { readFile } from "node:fs/promises";')
    else:
        lines.append("export {}; // an ES module, so `await` works at the top level")
    lines.append("")
    if request.env_vars() or request.basic_auth:
        lines.extend([
            "function env(name: string): string {",
            "  const value = process.env[name];",
            "  if (value === undefined) {",
            "    throw new Error(`Set ${name} in the environment.`);",
            "  }",
            "  return value;",
            "}",
            "",
        ])

    url_expression = string_literal(request.url)
    if request.query:
        lines.append(f"const params = new URLSearchParams({pairs_literal(request.query, LANGUAGE, 0)});")
        url_expression = string_literal(request.url + "?") + " + params.toString()"
    if isinstance(body, GraphQLBody):
        lines.append(f"const query: string = {_ts_multiline(body.document)};")
        lines.append(f"const variables: Record<string, unknown> = {literal(body.variables, LANGUAGE, 0)};")
    if isinstance(body, MultipartBody):
        lines.extend(form_data_lines(body, LANGUAGE))

    headers = [(name, value_expression(value, LANGUAGE)) for name, value in request.headers]
    if request.basic_auth:
        user, password = request.basic_auth
        credentials = f'env("{user}") + ":" + env("{password}")'
        headers.insert(0, ("Authorization", f'"Basic " + Buffer.from({credentials}).toString("base64")'))
    content_type = fetch_content_type(body)
    if content_type:
        headers.append(("Content-Type", string_literal(content_type)))
    if headers:
        lines.append("const headers: Record<string, string> = {")
        lines.extend(f"  {key_literal(name, LANGUAGE)}: {expression}," for name, expression in headers)
        lines.append("};")

    options: list[str] = []
    if request.method != "GET":
        options.append(f"method: {string_literal(request.method)},")
    if headers:
        options.append("headers,")
    raw_text = _ts_multiline(body.text, exact=True) if isinstance(body, RawBody) else ""
    options.extend(fetch_body_option(body, LANGUAGE, raw_text))
    if options:
        lines.append(f"const response: Response = await fetch({url_expression}, {{")
        lines.extend(f"  {option}" for option in options)
        lines.append("});")
    else:
        lines.append(f"const response: Response = await fetch({url_expression});")
    lines.append("if (!response.ok) {")
    lines.append("  throw new Error(`Request failed: ${response.status} ${await response.text()}`);")
    lines.append("}")
    if not request.returns_body:
        lines.append("console.log(response.status);")
    else:
        lines.append("const data: unknown = await response.json();")
        lines.append("console.log(data);")
    return "\n".join(lines) + "\n"


def _ts_multiline(text: str, exact: bool = False) -> str:
    """A template literal for text of several lines (not with carriage returns: they would be read as line feeds).

    `exact` keeps the text as it is; else (GraphQL, where whitespace does not count) it starts on a line of its own.
    """
    if "\n" in text and plain_lines(text) and "`" not in text and "${" not in text and "\\" not in text:
        return "`" + text + "`" if exact else "`\n" + text + "\n`"
    return string_literal(text)
