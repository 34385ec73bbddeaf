"""An operation -> the language-neutral `Request`: URL, query, headers, cookies, auth, body and notes."""

from __future__ import annotations

from core.models import ApiSpec, ItemKind, Operation
from core.parsing.text import first_sentence
from core.snippets.auth import build_auth
from core.snippets.bodies import build_body
from core.snippets.graphql import graphql_body, graphql_url
from core.snippets.parameters import cookie_params, header_params, query_params, resolve_url
from core.snippets.request import DEFAULT_BASE_URL, Part, Request, merge_literals


def can_build_snippet(operation: Operation) -> bool:
    """Whether the operation names something callable (doc sections without a path do not)."""
    if operation.kind is ItemKind.DOC_SECTION:
        return bool(operation.path)
    return operation.kind in (ItemKind.OPERATION, ItemKind.POSTMAN, ItemKind.GRAPHQL)


def build_request(spec: ApiSpec, operation: Operation) -> Request:
    """Everything a snippet for `operation` sends, before it is rendered in a language."""
    method = (operation.method or ("POST" if operation.kind is ItemKind.GRAPHQL else "GET")).upper()
    auth = build_auth(spec, operation)
    request = Request(method=method, url="", title=_title(operation), returns_body=_returns_body(operation, method))
    if operation.deprecated:
        request.notes.append("Note: this operation is deprecated.")
    if not can_build_snippet(operation):
        request.notes.append("This item names no endpoint; the snippet only calls the API's base URL.")

    if operation.kind is ItemKind.GRAPHQL:
        request.url = graphql_url(spec, operation)
        request.body = graphql_body(operation, request.notes)
        if not spec.effective_security(operation) and not spec.security_schemes:
            request.notes.append(
                "The schema does not describe the API's authentication; add the credentials it needs "
                "(often an Authorization header)."
            )
    else:
        url, given_query = resolve_url(spec, operation)
        request.url = url
        request.query.extend(given_query)
        given_names = {name for name, _ in given_query}
        request.query.extend(query_params(operation, auth, given_names, request.notes))
        request.body = build_body(operation, auth, request.notes)

    if request.url.startswith(DEFAULT_BASE_URL) and not (operation.servers or spec.servers):
        request.notes.append(f"The spec names no server; replace {DEFAULT_BASE_URL} with the API's base URL.")
    auth_query_names = {name for name, _ in auth.query}
    request.query = [(name, value) for name, value in request.query if name not in auth_query_names]
    request.query.extend(auth.query)
    request.headers.extend(header_params(operation, auth))
    cookies = cookie_params(operation, auth) + auth.cookies
    if cookies:
        cookie_value: list[Part] = []
        for index, (name, value) in enumerate(cookies):
            cookie_value.append(("; " if index else "") + f"{name}=")
            cookie_value.extend(value)
        request.headers.append(("Cookie", merge_literals(cookie_value)))
    request.headers = auth.headers + request.headers
    request.basic_auth = auth.basic_auth
    request.oauth1 = auth.oauth1
    request.notes.extend(auth.notes)
    return request


def _returns_body(operation: Operation, method: str) -> bool:
    if method == "HEAD":
        return False
    success = [r.status for r in operation.responses if r.status.startswith("2")]
    if success:
        return any(status != "204" for status in success)
    return method != "DELETE"


def _title(operation: Operation) -> str:
    described = ""
    if operation.kind in (ItemKind.OPERATION, ItemKind.GRAPHQL):  # Postman and Markdown items have names
        described = operation.summary or operation.description
    summary = first_sentence(described, 100).rstrip(".") if described else ""
    label = operation.label
    if operation.kind is ItemKind.POSTMAN:
        label = f"{operation.name} ({operation.method} {_strip_query(operation.url or operation.path)})"
    elif operation.kind is ItemKind.DOC_SECTION and operation.path:
        label = f"{operation.name} ({operation.method or 'GET'} {operation.path})"
    text = f"{summary}: {label}" if summary and summary != operation.name else label
    return " ".join(text.split())


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]
