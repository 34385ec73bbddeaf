"""Go: `net/http` from the standard library (Go 1.18+), secrets from `os.Getenv`.

A whole program (`go run snippet.go`). JSON bodies are Go maps marshalled with `encoding/json` (which writes
object keys in sorted order); forms and queries are `url.Values`; multipart bodies use `mime/multipart`.
"""

from __future__ import annotations

import math
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
    concatenation,
    escaped,
    header_comments,
    json_safe,
    plain_lines,
)

_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}
_INT64 = range(-(2**63), 2**63)
_WIDTH = 88


def go_string(text: str) -> str:
    """A Go interpreted string literal: escapes for quotes, backslashes and every unprintable character."""
    return '"' + escaped(text, _ESCAPES, str.isprintable, _go_escape) + '"'


def _go_escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _go_multiline(text: str) -> str:
    r"""A raw string for text of several lines, when it holds nothing a raw string cannot (backquotes, `\r`)."""
    if "\n" in text and "`" not in text and plain_lines(text):
        return "`" + text + "`"
    return go_string(text)


def _env(name: str) -> str:
    return f"os.Getenv({go_string(name)})"


def _value(value: Value) -> str:
    return concatenation(value, _env, go_string, "+", '""')  # gofmt writes no spaces around `+` in arguments


def go_value(value: Any, level: int = 1) -> str:
    """A Go expression for a JSON tree (`map[string]any`, `[]any`, ...) for `json.Marshal`.

    Wrapped when long, and laid out as gofmt lays it out.
    """
    flat = _flat(value)
    if len(flat) + 4 * level <= _WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = "\t" * (level + 1)
    closing = "\n" + "\t" * level + "}"
    if isinstance(value, list):
        return "[]any{\n" + "\n".join(f"{inner}{go_value(v, level + 1)}," for v in value) + closing
    entries = [(go_string(str(k)) + ":", go_value(v, level + 1)) for k, v in value.items()]
    lines: list[str] = []
    for section in _alignment_sections(entries):
        width = max(len(key) for key, _ in section)
        lines.extend(f"{inner}{key.ljust(width)} {val}," for key, val in section)
    return "map[string]any{\n" + "\n".join(lines) + closing


def _alignment_sections(entries: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Runs of entries whose values gofmt aligns, as go/printer's exprList decides.

    A value of several lines stands alone, and a key much longer or shorter than those before it (over 40
    bytes, and 2.5 times their geometric mean) starts a new run.
    """
    sections: list[list[tuple[str, str]]] = []
    lnsum, count, size = 0.0, 0, 0
    for key, val in entries:
        previous = size
        size = len(key[:-1].encode()) if "\n" not in val else 0
        new_section = True
        if previous > 0 and size > 0:
            if count == 0 or (previous <= 40 and size <= 40):
                new_section = False
            else:
                ratio = size / math.exp(lnsum / count)
                new_section = 2.5 * ratio <= 1 or ratio >= 2.5
        if new_section or not sections:
            sections.append([])
        sections[-1].append((key, val))
        if size > 0:
            lnsum += math.log(size)
            count += 1
    return sections


def _flat(value: Any) -> str:
    if isinstance(value, Env):
        return _env(value.name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, int):
        # An untyped constant outside int64 does not compile; json.Number is written as it is.
        return str(value) if value in _INT64 else f'json.Number("{value}")'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        items = ", ".join(f"{go_string(str(k))}: {_flat(v)}" for k, v in value.items())
        return "map[string]any{" + items + "}"
    if isinstance(value, list):
        return "[]any{" + ", ".join(_flat(v) for v in value) + "}"
    return go_string(str(value))



def _clean_comment(text: str) -> str:
    # A comment line reading `// +build ...` is a (legacy) build constraint to the Go tools wherever it stands
    # in the header, and gofmt moves it above the package clause: spec text starting with "+build" is quoted.
    return f"'{text}'" if text.lstrip().startswith("+build") else text

def render_go(request: Request) -> str:
    """A Go (net/http) snippet for the request."""
    imports = {"fmt", "io", "log", "net/http"}
    body = request.body
    code: list[str] = []
    helpers: list[str] = []
    reader = "nil"
    url_expression = go_string(request.url)

    if request.query:
        imports.add("net/url")
        code.append("params := url.Values{}")
        code.extend(f"params.Add({go_string(name)}, {_value(value)})" for name, value in request.query)
        url_expression = go_string(request.url + "?") + "+params.Encode()"
        code.append("")

    content_type = ""
    if isinstance(body, JsonBody | GraphQLBody):
        imports.update({"bytes", "encoding/json"})
        if isinstance(body, GraphQLBody):
            code.append(f"query := {_go_multiline(body.document)}")
            code.append(f"variables := {go_value(json_safe(body.variables))}")
            code.append('payload, err := json.Marshal(map[string]any{"query": query, "variables": variables})')
            content_type = go_string("application/json")
        else:
            code.append(f"payload, err := json.Marshal({go_value(json_safe(body.data))})")
            content_type = go_string(body.content_type)
        code.append("check(err)")
        reader = "bytes.NewReader(payload)"
    elif isinstance(body, FormBody):
        imports.update({"net/url", "strings"})
        code.append("form := url.Values{}")
        code.extend(f"form.Add({go_string(name)}, {_value(value)})" for name, value in body.pairs)
        reader = "strings.NewReader(form.Encode())"
        content_type = go_string("application/x-www-form-urlencoded")
    elif isinstance(body, MultipartBody):
        imports.update({"bytes", "mime/multipart"})
        code.append("var payload bytes.Buffer")
        code.append("form := multipart.NewWriter(&payload)")
        code.extend(f"check(form.WriteField({go_string(name)}, {_value(value)}))" for name, value in body.fields)
        code.extend(f"addFile(form, {go_string(name)}, {go_string(filename)})" for name, filename in body.files)
        code.append("check(form.Close())")
        reader = "&payload"
        content_type = "form.FormDataContentType()"
        if body.files:
            imports.add("os")
            helpers.extend([
                "",
                "func addFile(form *multipart.Writer, field, path string) {",
                "\tcontent, err := os.ReadFile(path)",
                "\tcheck(err)",
                "\tpart, err := form.CreateFormFile(field, path)",
                "\tcheck(err)",
                "\t_, err = part.Write(content)",
                "\tcheck(err)",
                "}",
            ])
    elif isinstance(body, FileBody):
        imports.update({"bytes", "os"})
        code.append(f"content, err := os.ReadFile({go_string(body.filename)})")
        code.append("check(err)")
        reader = "bytes.NewReader(content)"
        content_type = go_string(body.content_type)
    elif isinstance(body, RawBody):
        imports.add("strings")
        code.append(f"payload := strings.NewReader({_go_multiline(body.text)})")
        reader = "payload"
        content_type = go_string(body.content_type)
    if body is not None:
        code.append("")

    method = f"http.Method{request.method.capitalize()}" if request.method in _METHODS else go_string(request.method)
    code.append(f"req, err := http.NewRequest({method}, {url_expression}, {reader})")
    code.append("check(err)")
    seen: set[str] = set()
    for name, value in request.headers:
        setter = "Add" if name.lower() in seen else "Set"
        seen.add(name.lower())
        code.append(f"req.Header.{setter}({go_string(name)}, {_value(value)})")
    if content_type:
        code.append(f'req.Header.Set("Content-Type", {content_type})')
    if request.basic_auth:
        user, password = request.basic_auth
        code.append(f"req.SetBasicAuth({_env(user)}, {_env(password)})")
    if request.env_vars():
        imports.add("os")

    code.extend([
        "",
        "resp, err := http.DefaultClient.Do(req)",
        "check(err)",
        "defer resp.Body.Close()",
        "body, err := io.ReadAll(resp.Body)",
        "check(err)",
        "if resp.StatusCode < 200 || resp.StatusCode > 299 {",
        '\tlog.Fatalf("request failed: %s %s", resp.Status, body)',
        "}",
        "fmt.Println(string(body))" if request.returns_body else "fmt.Println(resp.Status)",
    ])

    lines = ["package main", ""]
    # After the package clause: comment lines above it could be read as build constraints (`// +build`).
    comments = header_comments(request, "//", _clean_comment)
    if comments:
        lines.extend([*comments, ""])
    lines.append("import (")
    lines.extend(f'\t"{name}"' for name in sorted(imports))
    lines.append(")")
    lines.append("")
    lines.append("func main() {")
    lines.extend(f"\t{line}" if line else "" for i, line in enumerate(code) if line or (i and code[i - 1]))
    lines.append("}")
    lines.extend(helpers)
    lines.extend(["", "func check(err error) {", "\tif err != nil {", "\t\tlog.Fatal(err)", "\t}", "}"])
    return "\n".join(lines) + "\n"
