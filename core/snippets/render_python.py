"""Python: httpx, or requests with requests-oauthlib when the request needs OAuth 1.0a signing."""

from __future__ import annotations

import re

from core.snippets.literals import literal, pairs_literal, string_literal, value_expression
from core.snippets.request import (
    OAUTH1_ENV,
    Body,
    FileBody,
    FormBody,
    GraphQLBody,
    JsonBody,
    MultipartBody,
    RawBody,
    Request,
)
from core.snippets.source_text import header_comments

# PEP 263: a comment in the first two lines matching this declares the file's encoding. A title saying
# "coding: utf-7" would make Python decode the string literals below as UTF-7, where "+ACI-" is a quote.
_ENCODING_DECLARATION = re.compile(r"coding([:=])")


def _no_encoding_declaration(text: str) -> str:
    return _ENCODING_DECLARATION.sub(r"coding \1", text)


def render_python(request: Request) -> str:
    """A Python snippet for the request."""
    client = "requests" if request.oauth1 else "httpx"
    env = request.env_vars(signs_oauth1=True)
    lines = header_comments(request, "#", _no_encoding_declaration, signs_oauth1=True)
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
    if isinstance(body, GraphQLBody):
        lines.append(f"query = {_python_multiline(body.document)}")
        lines.append(f"variables = {literal(body.variables, 'python', 0)}")
        lines.append("")
    if request.oauth1:
        lines.append("auth = OAuth1(")
        lines.extend(f'    os.environ["{name}"],' for name in OAUTH1_ENV)
        lines.append(")")
        lines.append("")

    args = [string_literal(request.url)]
    if request.query:
        args.append("params=" + pairs_literal(request.query, "python", 1))
    headers = list(request.headers)
    if isinstance(body, JsonBody) and body.content_type != "application/json":
        headers.append(("Content-Type", (body.content_type,)))
    if isinstance(body, RawBody | FileBody):
        headers.append(("Content-Type", (body.content_type,)))
    if headers:
        args.append("headers=" + pairs_literal(headers, "python", 1))
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
        args.insert(0, string_literal(method))
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
    if isinstance(body, JsonBody):
        return ["json=" + literal(body.data, "python", 1)]
    if isinstance(body, GraphQLBody):
        return ['json={"query": query, "variables": variables}']
    if isinstance(body, FormBody):
        return ["data=" + pairs_literal(body.pairs, "python", 1)]
    if isinstance(body, MultipartBody):
        args: list[str] = []
        file_items = [
            f'{string_literal(name)}: open({string_literal(filename)}, "rb")' for name, filename in body.files
        ]
        if body.files:
            if body.fields:
                args.append("data=" + pairs_literal(body.fields, "python", 1))
        else:  # no file: send the text fields as multipart parts anyway
            file_items = [f"{string_literal(name)}: (None, {value_expression(v, 'python')})" for name, v in body.fields]
        args.append("files={" + ", ".join(file_items) + "}")
        return args
    if isinstance(body, FileBody):
        return [f'{"data" if client == "requests" else "content"}=open({string_literal(body.filename)}, "rb").read()']
    keyword = "data" if client == "requests" else "content"
    return [f"{keyword}={_python_multiline(body.text)}"]


def _python_multiline(text: str) -> str:
    # A triple-quoted string keeps a multi-line body readable, and byte for byte: nothing added around it, and
    # only without a carriage return (Python reads CR and CRLF in source as LF).
    if "\n" in text and '"""' not in text and "\\" not in text and "\r" not in text and not text.endswith('"'):
        return '"""' + text + '"""'
    return string_literal(text)
