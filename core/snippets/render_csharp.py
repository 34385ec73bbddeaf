"""C#: `HttpClient` from System.Net.Http, secrets from `Environment.GetEnvironmentVariable`.

One class, written in C# 7 so it builds everywhere (.NET 6+ with `dotnet run`, .NET Framework, Mono's `mcs`):
`Main` waits for an async `RunAsync`, JSON is written as text (a value read from the environment is quoted by a
small `Json` method) rather than with a serializer not every runtime has. String literals are ASCII with
escapes, so the file reads the same in any encoding.
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
)

_ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    '"': '\\"', "\\": "\\\\",
}
_METHODS = {"GET": "Get", "POST": "Post", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "OPTIONS": "Options"}
_INDENT = "        "  # statements inside `RunAsync`
_CONTINUATION = _INDENT + "    "


def csharp_string(text: str) -> str:
    r"""A C# regular string literal in ASCII (`\uXXXX` has exactly four digits; `\x` would take more)."""
    return '"' + escaped(text, _ESCAPES, ascii_printable, _csharp_escape) + '"'


def _csharp_escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _env(name: str) -> str:
    return f"Environment.GetEnvironmentVariable({csharp_string(name)})"


def _value(value: Value) -> str:
    return concatenation(value, _env, csharp_string, " + ", '""')


def _lines_literal(text: str, indent: str) -> str:
    return lines_literal(text, indent, csharp_string)


def _json_expression(parts: Value, indent: str) -> str:
    """JSON text as a verbatim string, indented with the code (JSON ignores the spaces).

    Values from the environment are spliced in through `Json(...)`.
    """
    out = ""
    for part in parts:
        if isinstance(part, Env):
            out += f'" + Json({_env(part.name)}) + @"'
        else:
            out += part.replace('"', '""').replace("\n", "\n" + indent)
    return '@"' + out + '"'


def render_csharp(request: Request) -> str:
    """A C# (HttpClient) snippet for the request."""
    usings = {"System", "System.Net.Http", "System.Threading.Tasks"}
    body = request.body
    code: list[str] = []
    helpers: list[list[str]] = []
    needs_json = False

    url_expression = csharp_string(request.url)
    if request.query:
        pieces = [
            f"Uri.EscapeDataString({_env(p.name)})" if isinstance(p, Env) else csharp_string(p)
            for p in merge_literals([request.url + "?", *encoded_pairs(request.query)])
        ]
        url_expression = " + ".join(pieces)
    method = (
        f"HttpMethod.{_METHODS[request.method]}" if request.method in _METHODS else
        f"new HttpMethod({csharp_string(request.method)})"
    )
    code.append(f"var request = new HttpRequestMessage({method}, {url_expression});")
    if request.basic_auth:
        usings.update({"System.Net.Http.Headers", "System.Text"})
        user, password = request.basic_auth
        credentials = f'Encoding.UTF8.GetBytes({_env(user)} + ":" + {_env(password)})'
        code.append(
            f'request.Headers.Authorization = new AuthenticationHeaderValue("Basic", '
            f"Convert.ToBase64String({credentials}));"
        )
    for name, value in request.headers:
        code.append(f"request.Headers.TryAddWithoutValidation({csharp_string(name)}, {_value(value)});")

    if isinstance(body, JsonBody):
        usings.add("System.Text")
        parts = json_parts(body.data)
        needs_json = any(isinstance(p, Env) for p in parts)
        code.append(f"var json = {_json_expression(parts, _INDENT)};")
        code.append(f"request.Content = new StringContent(json, Encoding.UTF8, {csharp_string(body.content_type)});")
    elif isinstance(body, GraphQLBody):
        usings.add("System.Text")
        needs_json = True
        code.append(f"var query = {_lines_literal(body.document, _CONTINUATION)};")
        code.append(f"var variables = {_json_expression(json_parts(body.variables), _INDENT)};")
        code.append('var json = "{\\"query\\": " + Json(query) + ", \\"variables\\": " + variables + "}";')
        code.append('request.Content = new StringContent(json, Encoding.UTF8, "application/json");')
    elif isinstance(body, FormBody):
        usings.add("System.Collections.Generic")
        code.append("request.Content = new FormUrlEncodedContent(new KeyValuePair<string, string>[]")
        code.append("{")
        code.extend(
            f"    new KeyValuePair<string, string>({csharp_string(name)}, {_value(value)}),"
            for name, value in body.pairs
        )
        code.append("});")
    elif isinstance(body, MultipartBody):
        code.append("var form = new MultipartFormDataContent();")
        for name, value in body.fields:
            code.append(f"form.Add(new StringContent({_value(value)}), {csharp_string(name)});")
        for name, filename in body.files:
            usings.add("System.IO")
            quoted = csharp_string(filename)
            content = f"new ByteArrayContent(File.ReadAllBytes({quoted}))"
            code.append(f"form.Add({content}, {csharp_string(name)}, {quoted});")
        code.append("request.Content = form;")
    elif isinstance(body, FileBody):
        usings.update({"System.IO", "System.Net.Http.Headers"})
        code.append(f"request.Content = new ByteArrayContent(File.ReadAllBytes({csharp_string(body.filename)}));")
        code.append(
            f"request.Content.Headers.ContentType = new MediaTypeHeaderValue({csharp_string(body.content_type)});"
        )
    elif isinstance(body, RawBody):
        usings.add("System.Text")
        code.append(f"var text = {_lines_literal(body.text, _CONTINUATION)};")
        code.append(f"request.Content = new StringContent(text, Encoding.UTF8, {csharp_string(body.content_type)});")
    if needs_json:
        helpers.append(_JSON)

    code.extend([
        "",
        "var response = await Client.SendAsync(request);",
        "var body = await response.Content.ReadAsStringAsync();",
        "if (!response.IsSuccessStatusCode)",
        "{",
        '    throw new HttpRequestException("Request failed: " + (int)response.StatusCode + " " + body);',
        "}",
        "Console.WriteLine(body);" if request.returns_body else "Console.WriteLine((int)response.StatusCode);",
    ])

    comments = header_comments(request, "//")
    lines = [*comments, ""] if comments else []
    lines.extend(f"using {name};" for name in sorted(usings))
    lines.extend([
        "",
        "class Program",
        "{",
        "    static readonly HttpClient Client = new HttpClient();",
        "",
        "    static void Main() => RunAsync().GetAwaiter().GetResult();",
        "",
        "    static async Task RunAsync()",
        "    {",
    ])
    lines.extend(f"{_INDENT}{line}" if line else "" for line in code)
    lines.append("    }")
    for helper in helpers:
        lines.append("")
        lines.extend(f"    {line}" if line else "" for line in helper)
    lines.append("}")
    return "\n".join(lines) + "\n"


_JSON = [
    "// A JSON string holding the value (quotes, backslashes and control characters escaped).",
    "static string Json(string value)",
    "{",
    '    var result = new System.Text.StringBuilder("\\"");',
    "    foreach (var c in value)",
    "    {",
    "        if (c == '\"' || c == '\\\\') result.Append('\\\\').Append(c);",
    '        else if (c < \' \') result.Append("\\\\u").Append(((int)c).ToString("x4"));',
    "        else result.Append(c);",
    "    }",
    "    return result.Append('\"').ToString();",
    "}",
]
