r"""Java: `java.net.http.HttpClient` (Java 11+; JSON bodies as text blocks from Java 15), secrets from `System.getenv`.

One class, run as it is with `java Main.java`. The JDK has no JSON or multipart writer, so JSON is written as
text (a value read from the environment is quoted by a small `json` method) and multipart bodies by two small
methods. The source is ASCII only: javac reads source files in the platform's encoding, and it turns `\uXXXX`
into characters before anything else, even in comments, so comments double their backslashes.
"""

from __future__ import annotations

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
    ascii_printable,
    concatenation,
    encoded_pairs,
    escaped,
    header_comments,
    json_parts,
    lines_literal,
    multipart_name,
)

_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
_SHORTCUTS = {"GET", "DELETE"}  # builder methods without a body
_INDENT = "        "  # statements inside `main`
_CONTINUATION = _INDENT + "    "


def java_string(text: str) -> str:
    r"""A Java string literal in ASCII.

    Below U+0100 unprintable characters are octal escapes, never `\uXXXX`: javac would turn `\u000a` or
    `\u0022` into a real line break or quote before reading the literal.
    """
    return '"' + escaped(text, _ESCAPES, ascii_printable, _java_escape) + '"'


def _java_escape(code: int) -> str:
    return f"\\{code:03o}" if code < 0x100 else _unicode_escape(chr(code))


def _comment_text(text: str) -> str:
    """Comment text that javac reads as written.

    Backslashes are doubled (so none starts a unicode escape), then everything outside ASCII is written as a
    unicode escape, which javac reads back as the character itself.
    """
    doubled = text.replace("\\", "\\\\")
    return "".join(c if ord(c) < 0x80 else _unicode_escape(c) for c in doubled)


def _unicode_escape(char: str) -> str:
    r"""`\uXXXX`, or a surrogate pair of them above U+FFFF."""
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def _env(name: str) -> str:
    return f"System.getenv({java_string(name)})"


def _value(value: Value) -> str:
    return concatenation(value, _env, java_string, " + ", '""')


def _encoded(value: Value) -> str:
    """A query or form string: literal parts encoded already, environment variables encoded when it runs."""
    pieces = [
        f"URLEncoder.encode({_env(p.name)}, StandardCharsets.UTF_8)" if isinstance(p, Env) else java_string(p)
        for p in value
        if p != ""
    ]
    return " + ".join(pieces) or '""'


def _lines_literal(text: str, indent: str) -> str:
    return lines_literal(text, indent, java_string)


def _json_expression(parts: Value, indent: str) -> str:
    """JSON text: a text block when it is all literal, else literal lines and `json(System.getenv(...))`."""
    if all(isinstance(p, str) for p in parts):
        text = "".join(p for p in parts if isinstance(p, str))
        if "\n" not in text:
            return java_string(text)
        block = text.replace("\\", "\\\\").replace('"""', '\\"""')
        return '"""\n' + "\n".join(indent + line for line in block.split("\n")) + "\n" + indent + '"""'
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, Env):
            pieces.append(f"json({_env(part.name)})")
        else:
            pieces.extend(java_string(line) for line in _split_keeping_newlines(part))
    return f"\n{indent}+ ".join(pieces)


def _split_keeping_newlines(text: str) -> list[str]:
    return [line for line in text.splitlines(keepends=True) if line] if text else []


def render_java(request: Request) -> str:
    """A Java (java.net.http) snippet for the request."""
    imports = {"java.net.URI", "java.net.http.HttpClient", "java.net.http.HttpRequest", "java.net.http.HttpResponse"}
    body = request.body
    code: list[str] = []
    helpers: list[list[str]] = []
    publisher = ""
    content_type = ""
    needs_json = False

    url_expression = java_string(request.url)
    if request.query:
        url_expression = _encoded(merge_literals([request.url + "?", *encoded_pairs(request.query)]))
        if any(isinstance(p, Env) for _, value in request.query for p in value):
            imports.update({"java.net.URLEncoder", "java.nio.charset.StandardCharsets"})

    if isinstance(body, JsonBody):
        parts = json_parts(body.data)
        needs_json = any(isinstance(p, Env) for p in parts)
        code.append(f"String json = {_json_expression(parts, _CONTINUATION)};")
        publisher = "HttpRequest.BodyPublishers.ofString(json)"
        content_type = java_string(body.content_type)
    elif isinstance(body, GraphQLBody):
        needs_json = True
        code.append(f"String query = {_lines_literal(body.document, _CONTINUATION)};")
        code.append(f"String variables = {_json_expression(json_parts(body.variables), _CONTINUATION)};")
        code.append('String json = "{\\"query\\": " + json(query) + ", \\"variables\\": " + variables + "}";')
        publisher = "HttpRequest.BodyPublishers.ofString(json)"
        content_type = java_string("application/json")
    elif isinstance(body, FormBody):
        code.append(f"String form = {_encoded(encoded_pairs(body.pairs))};")
        if any(isinstance(p, Env) for _, value in body.pairs for p in value):
            imports.update({"java.net.URLEncoder", "java.nio.charset.StandardCharsets"})
        publisher = "HttpRequest.BodyPublishers.ofString(form)"
        content_type = java_string("application/x-www-form-urlencoded")
    elif isinstance(body, MultipartBody):
        imports.update({"java.io.ByteArrayOutputStream", "java.io.IOException", "java.nio.charset.StandardCharsets",
                        "java.util.UUID"})
        code.append('String boundary = "----snippet" + UUID.randomUUID();')
        code.append("ByteArrayOutputStream form = new ByteArrayOutputStream();")
        for name, value in body.fields:
            code.append(f"addField(form, boundary, {java_string(multipart_name(name))}, {_value(value)});")
        for name, filename in body.files:
            imports.update({"java.nio.file.Files", "java.nio.file.Path"})
            code.append(
                f"addFile(form, boundary, {java_string(multipart_name(name))}, Path.of({java_string(filename)}));"
            )
        code.append('form.write(("--" + boundary + "--\\r\\n").getBytes(StandardCharsets.UTF_8));')
        publisher = "HttpRequest.BodyPublishers.ofByteArray(form.toByteArray())"
        content_type = '"multipart/form-data; boundary=" + boundary'
        helpers.append(_ADD_FIELD)
        if body.files:
            helpers.append(_ADD_FILE)
    elif isinstance(body, FileBody):
        imports.add("java.nio.file.Path")
        publisher = f"HttpRequest.BodyPublishers.ofFile(Path.of({java_string(body.filename)}))"
        content_type = java_string(body.content_type)
    elif isinstance(body, RawBody):
        code.append(f"String text = {_lines_literal(body.text, _CONTINUATION)};")
        publisher = "HttpRequest.BodyPublishers.ofString(text)"
        content_type = java_string(body.content_type)
    if needs_json:
        helpers.append(_JSON)
    if code:
        code.append("")

    builder = [f"HttpRequest request = HttpRequest.newBuilder(URI.create({url_expression}))"]
    if request.basic_auth:
        imports.update({"java.nio.charset.StandardCharsets", "java.util.Base64"})
        user, password = request.basic_auth
        credentials = f'({_env(user)} + ":" + {_env(password)}).getBytes(StandardCharsets.UTF_8)'
        builder.append(f'.header("Authorization", "Basic " + Base64.getEncoder().encodeToString({credentials}))')
    builder.extend(f".header({java_string(name)}, {_value(value)})" for name, value in request.headers)
    if content_type:
        builder.append(f'.header("Content-Type", {content_type})')
    method = request.method
    if not publisher and method in _SHORTCUTS:
        builder.append(f".{method}()")
    elif method in ("POST", "PUT") and publisher:
        builder.append(f".{method}({publisher})")
    else:
        builder.append(f".method({java_string(method)}, {publisher or 'HttpRequest.BodyPublishers.noBody()'})")
    builder.append(".build();")
    code.append(builder[0])
    code.extend(f"    {line}" for line in builder[1:])
    code.extend([
        "HttpResponse<String> response = HttpClient.newHttpClient()",
        "    .send(request, HttpResponse.BodyHandlers.ofString());",
        "if (response.statusCode() < 200 || response.statusCode() > 299) {",
        '    throw new RuntimeException("Request failed: " + response.statusCode() + " " + response.body());',
        "}",
        f"System.out.println(response.{'body' if request.returns_body else 'statusCode'}());",
    ])

    comments = header_comments(request, "//", _comment_text)
    lines = [*comments, ""] if comments else []
    lines.extend(f"import {name};" for name in sorted(imports))
    lines.extend(["", "public class Main {", "    public static void main(String[] args) throws Exception {"])
    lines.extend(f"{_INDENT}{line}" if line else "" for line in code)
    lines.append("    }")
    for helper in helpers:
        lines.append("")
        lines.extend(f"    {line}" if line else "" for line in helper)
    lines.append("}")
    return "\n".join(lines) + "\n"


_JSON = [
    "/** A JSON string holding the value (quotes, backslashes and control characters escaped). */",
    "static String json(String value) {",
    '    StringBuilder out = new StringBuilder("\\"");',
    "    for (char c : value.toCharArray()) {",
    "        if (c == '\"' || c == '\\\\') {",
    "            out.append('\\\\').append(c);",
    "        } else if (c < ' ') {",
    '            out.append(String.format("\\\\u%04x", (int) c));',
    "        } else {",
    "            out.append(c);",
    "        }",
    "    }",
    "    return out.append('\"').toString();",
    "}",
]

_ADD_FIELD = [
    "static void addField(ByteArrayOutputStream form, String boundary, String name, String value) throws IOException {",
    '    String part = "--" + boundary + "\\r\\nContent-Disposition: form-data; name=\\"" + name + "\\"\\r\\n\\r\\n"',
    '        + value + "\\r\\n";',
    "    form.write(part.getBytes(StandardCharsets.UTF_8));",
    "}",
]

_ADD_FILE = [
    "static void addFile(ByteArrayOutputStream form, String boundary, String name, Path file) throws IOException {",
    '    String head = "--" + boundary + "\\r\\nContent-Disposition: form-data; name=\\"" + name + "\\"; filename=\\""',
    '        + file.getFileName() + "\\"\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n";',
    "    form.write(head.getBytes(StandardCharsets.UTF_8));",
    "    form.write(Files.readAllBytes(file));",
    '    form.write("\\r\\n".getBytes(StandardCharsets.UTF_8));',
    "}",
]
