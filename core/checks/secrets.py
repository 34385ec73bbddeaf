"""Credentials in a pasted request, masked: what a check reply shows of the request never holds a secret.

Masked are: the Authorization and Proxy-Authorization headers (their scheme word stays: `Bearer [masked]`),
cookies, any header, query parameter or form field whose name says it holds a credential (token, key,
secret, password, signature, session, …) or that the spec declares as an API key, curl's `-u` user and
password, the credentials in a URL, and body fields named like passwords and tokens. As a last pass the text
goes through the log scrubber (`core.logs.scrub_text`), which knows credential shapes (Slack, Groq, JWT, AWS,
`Bearer …`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from core import messages
from core.checks.pasted import MAX_BODY_DEPTH, PastedRequest
from core.logs import scrub_text
from core.parsing.text import truncate

MASK = "[masked]"
MAX_SHOWN_CHARS = 1_500  # of the request as shown back in a reply

# A header, query parameter or form field whose lower-case name contains one of these holds a credential.
_SECRET_NAME_PARTS = (
    "token", "secret", "password", "passwd", "pwd", "apikey", "api_key", "api-key", "auth", "key", "signature",
    "session", "credential", "cookie", "cvc", "cvv", "sig", "jwt", "bearer",
)  # fmt: skip
# A JSON body field is masked when its name contains one of these (fewer: `key` names plain data in bodies).
_SECRET_FIELD_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "api_key",
    "private_key",
    "cvc",
    "cvv",
    "credential",
)


def is_secret_name(name: str, declared: Collection[str] = ()) -> bool:
    """Whether a header, query parameter or form field of this name holds a credential."""
    lowered = name.lower()
    return lowered in declared or any(part in lowered for part in _SECRET_NAME_PARTS)


def is_secret_field(name: str, declared: Collection[str] = ()) -> bool:
    """Whether a body field of this name holds a credential."""
    lowered = name.lower()
    return lowered in declared or any(part in lowered for part in _SECRET_FIELD_PARTS)


def mask_header(name: str, value: str, declared: Collection[str] = ()) -> str:
    """A header's value as shown: credentials masked, an auth scheme word kept (`Bearer [masked]`)."""
    lowered = name.lower()
    if lowered in ("authorization", "proxy-authorization"):
        scheme, space, _ = value.partition(" ")
        return f"{scheme} {MASK}" if space and scheme.isalpha() and len(scheme) <= 20 else MASK
    if lowered == "cookie":
        return "; ".join(f"{part.partition('=')[0].strip()}={MASK}" for part in value.split(";") if part.strip())
    return MASK if value and is_secret_name(name, declared) else value


def mask_value(name: str, value: str, declared: Collection[str] = ()) -> str:
    """A query parameter's or form field's value as shown."""
    return MASK if value and is_secret_name(name, declared) else value


def masked_url(request: PastedRequest, declared: Collection[str] = ()) -> str:
    """The request's URL with its query credentials and any `user:password@` masked."""
    try:
        parts = urlsplit(request.url)
    except ValueError:
        return scrub_text(request.url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode([(k, mask_value(k, v, declared)) for k, v in request.query], safe="[]{}:/,")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def masked_body(request: PastedRequest, declared: Collection[str] = ()) -> str:
    """The body as shown: a JSON body with its credential fields masked, a form body with its pairs masked."""
    if request.form:
        return "&".join(f"{k}={mask_value(k, v, declared)}" for k, v in request.form)
    if request.body is None:
        return ""
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        return request.body
    return json.dumps(masked_json(data, declared), ensure_ascii=False)


def masked_json(value: Any, declared: Collection[str] = (), depth: int = 0) -> Any:
    """A JSON value with the values of credential-named fields masked, at any depth (up to `MAX_BODY_DEPTH`)."""
    if depth > MAX_BODY_DEPTH:
        return MASK
    if isinstance(value, dict):
        return {
            k: MASK
            if is_secret_field(str(k), declared) and v not in (None, "")
            else masked_json(v, declared, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked_json(v, declared, depth + 1) for v in value]
    return value


def shown_request(request: PastedRequest, declared: Collection[str] = ()) -> str:
    """The request as a reply shows it (an HTTP message), every credential masked, at most `MAX_SHOWN_CHARS`.

    `declared` are the lower-case names the spec gives its API keys (`api_key`, `X-Custom-Auth`).
    """
    if request.is_response:
        lines = []
    else:
        if request.operation:
            lines = [request.operation]  # a body with its operation named: no URL was given
        else:
            target = masked_url(request, declared) if request.url else ""
            lines = [f"{request.method} {target}".strip()] if request.method or target else []
        lines[:1] = [scrub_text(line) for line in lines[:1]]
        lines += [f"{name}: {_shown_header(name, value, declared)}" for name, value in request.headers]
        if request.user is not None:
            # Stripe's key is the user name (`-u sk_test_…:`): both halves are credentials
            lines.append(f"(curl -u) {MASK}:{MASK if request.password else ''}")
        cookie_names = {k for k, _ in request.cookies}
        if cookie_names and request.header("cookie") is None:
            lines.append("Cookie: " + "; ".join(f"{name}={MASK}" for name in sorted(cookie_names)))
        if request.content_type_implied and request.content_type and request.source == "curl":
            lines.append(messages.curl_content_type(request.content_type))
    body = scrub_text(masked_body(request, declared))
    if body:
        lines += ["", body] if lines else [body]
    return truncate("\n".join(lines), MAX_SHOWN_CHARS)


def _shown_header(name: str, value: str, declared: Collection[str]) -> str:
    masked = mask_header(name, value, declared)
    return masked if masked != value else scrub_text(value)


def secrets_in(request: PastedRequest, declared: Collection[str] = ()) -> int:
    """How many credentials the request carries (a count for the log line, never the values)."""
    found = sum(1 for name, value in request.headers if value and mask_header(name, value, declared) != value)
    found += sum(1 for name, value in request.query if mask_value(name, value, declared) != value)
    found += len(request.cookies) + (1 if request.user is not None else 0)
    return found
