"""Parse a Postman Collection (v2.0 / v2.1) into the normalised model.

One `Operation` per request (leaf item), with folder paths, effective auth (inherited down folders),
parameters, bodies and saved example responses. Secret values (tokens, passwords, API keys) are never
copied into the model: only the names of the `{{variables}}` that hold them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote_plus

from core.errors import InvalidSpecError
from core.models import (
    ApiSpec,
    ItemKind,
    Operation,
    Parameter,
    RequestBody,
    Response,
    SchemaField,
    SecurityRequirement,
    SecurityScheme,
    SpecFormat,
    ValueType,
)
from core.parsing.text import (
    TEMPLATE_VARIABLE,
    first_sentence,
    identifier_words,
    split_userinfo,
    strip_userinfo,
    truncate,
)
from core.parsing.values import json_type, scalar_text, value_type_of

DESCRIPTION_LIMIT = 4000
BODY_EXAMPLE_LIMIT = 2000
FIELD_EXAMPLE_LIMIT = 200
MAX_RESPONSES = 10
MAX_FIELDS = 200
MAX_SCOPES = 50
JSON_FIELD_DEPTH = 2
_STRING = ValueType(("string",))  # what Postman's text fields, query parameters and headers hold

_SCHEMA_VERSION = re.compile(r"/v(\d+\.\d+\.\d+)/")
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Words that mark a name as holding a credential (matched on whole words, so `author_id` is fine).
_SECRET_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "auth", "authorization", "password", "passwd", "signature"}
    | {"cookie", "session", "credential", "credentials"}
)
_LINE_COMMENT = re.compile(r"^[^\S\n]*//.*$", re.M)  # not `^\s*`: that ran on through every blank line below
_JSON_STRING_PAIR = re.compile(r'"([^"\\]+)"(\s*:\s*)"([^"\\]*)"')
_UNQUOTED_VARIABLE = re.compile(r'(?<!")\{\{[^{}]+\}\}(?!")')

# Postman's raw-body `language` option -> media type.
_RAW_LANGUAGES = {
    "json": "application/json",
    "xml": "application/xml",
    "html": "text/html",
    "javascript": "application/javascript",
    "text": "text/plain",
    "graphql": "application/json",
}

# Auth attributes whose values are configuration, not credentials, so they may be shown to users.
_SAFE_AUTH_ATTRIBUTES = frozenset(
    {
        "signatureMethod",
        "version",
        "addParamsToHeader",
        "in",
        "headerPrefix",
        "addTokenTo",
        "grant_type",
        "authUrl",
        "accessTokenUrl",
        "scope",
        "algorithm",
        "service",
        "region",
    }
)


@dataclass
class _AuthUse:
    """What the collection says about one auth type, gathered across every place it is set."""

    first_attributes: dict[str, Any]
    variables: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # every OAuth 2 scope any block of this type asks for


@dataclass
class _Walk:
    """State shared while walking the item tree."""

    variables: dict[str, str]
    auth_uses: dict[str, _AuthUse] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_postman(document: dict[str, Any]) -> ApiSpec:
    """Parse a loaded Postman collection (v2.0 or v2.1 JSON) into an `ApiSpec`.

    Raises `InvalidSpecError` when the document is not a Postman collection.
    """
    if not isinstance(document, dict) or not isinstance(document.get("info"), dict):
        raise InvalidSpecError("This doesn't look like a Postman collection: it has no `info` section.")
    items = document.get("item")
    if not isinstance(items, list):
        raise InvalidSpecError("This doesn't look like a Postman collection: it has no `item` list.")
    info: dict[str, Any] = document["info"]

    walk = _Walk(variables=_collection_variables(document.get("variable")))
    collection_auth = _requirement(document.get("auth"), inherited=None)
    _record_auth(walk, document.get("auth"))
    _walk_items(walk, items, folders=[], folder_descriptions=[], inherited_auth=collection_auth)

    operations = _unique_keys(walk.operations, walk.warnings)
    server_counts = Counter(server for op in operations for server in op.servers)
    return ApiSpec(
        format=SpecFormat.POSTMAN,
        title=str(info.get("name") or "Postman collection"),
        version=_info_version(info.get("version")),
        description=truncate(_description_text(info.get("description")), DESCRIPTION_LIMIT),
        format_version=_format_version(info.get("schema")),
        servers=tuple(server for server, _ in server_counts.most_common()),
        operations=tuple(operations),
        security_schemes=tuple(_security_scheme(name, use) for name, use in walk.auth_uses.items()),
        security=((collection_auth,),) if collection_auth else (),
        warnings=tuple(walk.warnings),
    )


def _walk_items(
    walk: _Walk,
    items: list[Any],
    folders: list[str],
    folder_descriptions: list[str],
    inherited_auth: SecurityRequirement | None,
) -> None:
    for item in items:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or "")
        # Folder auth overrides what it inherits, exactly like request auth does.
        auth = _requirement(item.get("auth"), inherited=inherited_auth)
        _record_auth(walk, item.get("auth"))
        if isinstance(item.get("item"), list):
            _walk_items(
                walk,
                item["item"],
                [*folders, name or "(unnamed folder)"],
                [*folder_descriptions, _description_text(item.get("description"))],
                auth,
            )
        elif "request" in item:
            walk.operations.append(_request_operation(walk, item, folders, folder_descriptions, auth))


def _request_operation(
    walk: _Walk,
    item: dict[str, Any],
    folders: list[str],
    folder_descriptions: list[str],
    item_auth: SecurityRequirement | None,
) -> Operation:
    request = item["request"]
    if isinstance(request, str):  # v2 shorthand: the request is just its URL
        request = {"url": request, "method": "GET"}
    if not isinstance(request, dict):
        request = {}

    auth = _requirement(request.get("auth"), inherited=item_auth)
    _record_auth(walk, request.get("auth"))

    raw_url, url = _url_parts(request.get("url"))
    raw_url = _redacted_url(raw_url)
    path = _url_path(raw_url)
    server = _url_server(raw_url, url, walk.variables)
    headers = _headers(request.get("header"))
    body = _request_body(request.get("body"), headers)
    description = _operation_description(item, request, folders, folder_descriptions)

    return Operation(
        kind=ItemKind.POSTMAN,
        method=str(request.get("method") or "GET").upper(),
        path=path,
        summary=first_sentence(_description_text(request.get("description"))),
        description=description,
        tags=tuple(folders[:1]),
        parameters=_path_parameters(url, path) + _query_parameters(url) + _header_parameters(headers),
        request_body=body,
        responses=_responses(item.get("response")),
        security=((auth,),) if auth else (),
        servers=(server,) if server else (),
        name=str(item.get("name") or ""),
        folder="/".join(folders),
        url=raw_url,
    )


# --- auth ---------------------------------------------------------------------------------------------


def _auth_type(auth: Any) -> str:
    """The auth type a block sets: "" when it sets none (no block, `inherit` or `noauth`)."""
    if not isinstance(auth, dict) or not auth.get("type") or auth.get("type") in ("inherit", "noauth"):
        return ""
    return str(auth["type"])


def _requirement(auth: Any, inherited: SecurityRequirement | None) -> SecurityRequirement | None:
    """The effective auth: None means none; a missing block (or `inherit`) keeps the parent's, `noauth` drops it."""
    if not isinstance(auth, dict) or not auth.get("type") or auth.get("type") == "inherit":
        return inherited
    auth_type = _auth_type(auth)
    if not auth_type:
        return None
    scopes = _oauth2_scopes(_auth_attributes(auth)) if auth_type == "oauth2" else ()
    return SecurityRequirement(auth_type, scopes)


def _oauth2_scopes(attributes: dict[str, Any]) -> tuple[str, ...]:
    """The scopes an OAuth 2 block asks for: its space-separated `scope`, without `{{variables}}`."""
    scope = attributes.get("scope")
    words = scope.split(maxsplit=MAX_SCOPES)[:MAX_SCOPES] if isinstance(scope, str) else []
    return tuple(dict.fromkeys(word for word in words if not TEMPLATE_VARIABLE.search(word)))


def _auth_attributes(auth: dict[str, Any]) -> dict[str, Any]:
    """The attributes of an auth block: a list of {key, value} in v2.1, a plain mapping in v2.0."""
    attributes = auth.get(str(auth.get("type")))
    if isinstance(attributes, dict):
        return dict(attributes)
    result: dict[str, Any] = {}
    if isinstance(attributes, list):
        for entry in attributes:
            if isinstance(entry, dict) and "key" in entry:
                result[str(entry["key"])] = entry.get("value")
    return result


def _record_auth(walk: _Walk, auth: Any) -> None:
    """Note an auth block's type and the variables it reads; blocks that set no auth are ignored."""
    auth_type = _auth_type(auth)
    if not auth_type:
        return
    attributes = _auth_attributes(auth)
    use = walk.auth_uses.setdefault(auth_type, _AuthUse(first_attributes=attributes))
    if auth_type == "oauth2":
        for scope in _oauth2_scopes(attributes):
            if scope not in use.scopes and len(use.scopes) < MAX_SCOPES:
                use.scopes.append(scope)
    for value in attributes.values():
        if isinstance(value, str):
            for variable in TEMPLATE_VARIABLE.findall(value):
                if variable not in use.variables:
                    use.variables.append(variable)


def _security_scheme(auth_type: str, use: _AuthUse) -> SecurityScheme:
    attributes = use.first_attributes
    safe = {k: v for k, v in attributes.items() if k in _SAFE_AUTH_ATTRIBUTES and v not in (None, "")}
    # OAuth URLs are shown to users; some are written with a client secret in their query.
    safe |= {k: _redacted_url(v) for k, v in safe.items() if k in ("authUrl", "accessTokenUrl") and isinstance(v, str)}
    notes = [f"Postman `{auth_type}` auth."]
    if use.variables:
        notes.append("Credentials come from the variables " + ", ".join(f"`{{{{{v}}}}}`" for v in use.variables) + ".")
    if safe:
        notes.append("Settings: " + ", ".join(f"{k}={v}" for k, v in safe.items()) + ".")

    scheme = {"bearer": "bearer", "basic": "basic", "digest": "digest"}.get(auth_type, "")
    location = param_name = ""
    if auth_type == "apikey":
        location = str(attributes.get("in") or "header")
        # For apikey, `key` is the header / query parameter name, not the secret (that is `value`).
        param_name = str(attributes.get("key") or "")
    flows: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    if auth_type == "oauth2":
        flows = tuple(
            f"{attributes.get('grant_type') or 'oauth2'}: {safe[k]}"
            for k in ("authUrl", "accessTokenUrl")
            if safe.get(k)
        )
        scopes = tuple(use.scopes)
    return SecurityScheme(
        name=auth_type,
        type=auth_type,
        scheme=scheme,
        location=location,
        param_name=param_name,
        description=" ".join(notes),
        flows=flows,
        scopes=scopes,
    )


# --- URL ----------------------------------------------------------------------------------------------


def _url_parts(url: Any) -> tuple[str, dict[str, Any]]:
    """`url.raw` as written, plus the structured URL (empty for v2.0's plain-string URLs)."""
    if isinstance(url, str):
        return url, {}
    if not isinstance(url, dict):
        return "", {}
    raw = url.get("raw")
    if isinstance(raw, str):
        return raw, url
    return _rebuild_raw(url), url


def _rebuild_raw(url: dict[str, Any]) -> str:
    """A raw URL from the structured parts, for the rare exports that omit `raw`."""
    host = url.get("host")
    host_text = ".".join(map(str, host)) if isinstance(host, list) else str(host or "")
    path = url.get("path")
    path_text = "/".join(_segment_text(s) for s in path) if isinstance(path, list) else str(path or "")
    raw = host_text + ("/" + path_text.lstrip("/") if path_text else "")
    if url.get("protocol"):
        raw = f"{url['protocol']}://{raw}"
    query = [q for q in url.get("query") or [] if isinstance(q, dict) and not q.get("disabled")]
    if query:
        raw += "?" + "&".join(f"{q.get('key', '')}={q.get('value') or ''}" for q in query)
    return raw


def _segment_text(segment: Any) -> str:
    if isinstance(segment, dict):  # v2.0 allows {"type": "string", "value": "users"}
        return str(segment.get("value") or "")
    return str(segment)


def _url_path(raw: str) -> str:
    """The path part of a raw URL, placeholders (`:id`, `{{var}}`) kept as written."""
    rest = _SCHEME_PREFIX.sub("", raw.strip())
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _url_server(raw: str, url: dict[str, Any], variables: dict[str, str]) -> str:
    """Scheme + host of the request, with collection variables resolved where they have a value."""
    rest = _SCHEME_PREFIX.sub("", raw.strip())
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    slash = rest.find("/")
    host = rest[:slash] if slash >= 0 else rest
    if not host:
        return ""
    scheme_match = _SCHEME_PREFIX.match(raw.strip())
    server = raw.strip()[: scheme_match.end()] + host if scheme_match else host
    server = _resolve(server, variables)
    if not _SCHEME_PREFIX.match(server) and "{{" not in server:
        server = f"{url.get('protocol') or 'https'}://{server}"
    # A variable may hold a whole URL; a server is only scheme and host, never credentials or a query.
    server = strip_userinfo(server).split("?", 1)[0].split("#", 1)[0]
    return server.rstrip("/")


def _redacted_url(raw: str) -> str:
    """The raw URL with its credentials replaced by `{{variables}}`, as if the author had used them.

    Userinfo (`https://ada:pw@host`) becomes `{{username}}:{{password}}`, and the value of a query
    parameter that is a credential (by name, `api_key=...`, or by shape, `xoxb-...`) becomes
    `{{api_key}}`, so labels, citations, prompts and snippets never carry the secret. Values that are
    already variables are left alone.
    """
    before, userinfo, after = split_userinfo(raw)
    if userinfo:
        user, colon, password = userinfo.partition(":")
        user = user if not user or _is_variable(user) else "{{username}}"
        password = password if not password or _is_variable(password) else "{{password}}"
        raw = f"{before}{user}{colon}{password}@{after}"
    head, question, rest = raw.partition("?")
    if not question:
        return raw
    query, hash_mark, fragment = rest.partition("#")
    return head + question + _redacted_query(query) + hash_mark + fragment


def _redacted_query(query: str) -> str:
    """`a=1&api_key=s3cr3t` -> `a=1&api_key={{api_key}}` (a query string or a form-encoded body)."""
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        name = unquote_plus(key).strip()
        literal = unquote_plus(value)
        if literal and not _is_variable(literal) and (_is_secret_name(name) or _looks_like_credential(literal)):
            pair = key + "={{" + _variable_name(name) + "}}"
        pairs.append(pair)
    return "&".join(pairs)


def _variable_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in name).strip("_")
    return cleaned or "secret"


def _is_variable(text: str) -> bool:
    """Whether text is exactly one `{{variable}}` (string checks, not a regex: values can be huge)."""
    text = text.strip()
    inner = text[2:-2]
    return text.startswith("{{") and text.endswith("}}") and bool(inner.strip()) and not any(c in inner for c in "{}")


# Well-known credential shapes: Slack, Groq, Stripe, GitHub, GitLab, Google API keys.
_CREDENTIAL_PREFIXES = (
    *("xoxb-", "xoxp-", "xoxa-", "xoxe-", "xoxs-", "xapp-", "gsk_"),
    *("sk_live_", "sk_test_", "rk_live_", "rk_test_", "ghp_", "gho_", "ghu_", "ghs_", "github_pat_", "glpat-", "AIza"),
)
# An HTTP auth scheme word followed by a literal credential: `Bearer eyJ...`, `Basic YWRh...`.
_AUTH_SCHEME_WORDS = frozenset({"bearer", "basic", "bot", "token", "digest"})


def _looks_like_credential(value: str) -> bool:
    """Whether a literal value looks like a credential whatever it is called (`Bearer abc`, `xoxb-...`)."""
    text = value.strip()
    if _is_variable(text):
        return False
    word, _, rest = text.partition(" ")
    rest = rest.strip()
    # One opaque word with a digit after the scheme: `Bearer eyJhbGci0...`, not prose like "Basic plan".
    if word.lower() in _AUTH_SCHEME_WORDS and len(rest) >= 8 and not any(c.isspace() for c in rest):
        return any(c.isdigit() for c in rest) and not _is_variable(rest)
    is_aws_key = len(text) == 20 and text.startswith(("AKIA", "ASIA")) and text.isalnum() and text.isupper()
    return is_aws_key or (len(text) >= 16 and text.startswith(_CREDENTIAL_PREFIXES))


def _resolve(text: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        return variables.get(match.group(1)) or match.group(0)

    return TEMPLATE_VARIABLE.sub(substitute, text)


def _collection_variables(variables: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in variables or []:
        if not isinstance(entry, dict):
            continue
        key = entry.get("key") or entry.get("id")  # v2.0 exports use `id`
        value = entry.get("value")
        if key and isinstance(value, str) and value and not _is_secret_name(str(key)):
            result[str(key)] = value
    return result


# --- parameters ---------------------------------------------------------------------------------------


def _path_parameters(url: dict[str, Any], path: str) -> tuple[Parameter, ...]:
    declared: dict[str, dict[str, Any]] = {}
    for entry in url.get("variable") or []:
        if isinstance(entry, dict) and (entry.get("key") or entry.get("id")):
            declared[str(entry.get("key") or entry.get("id"))] = entry
    names = re.findall(r"(?<=/):([A-Za-z_][\w.-]*)", path)
    names += [name for name in declared if name not in names]
    params = []
    for name in names:
        entry = declared.get(name, {})
        value = entry.get("value")
        kind = str(entry.get("type") or "string")  # Postman's variable types: string, number, boolean, any
        params.append(
            Parameter(
                name=name,
                location="path",
                required=True,
                type=kind,
                value_type=ValueType(() if kind == "any" else (kind,)),
                description=_description_text(entry.get("description")),
                example=_safe_example(name, value),
            )
        )
    return tuple(params)


def _query_parameters(url: dict[str, Any]) -> tuple[Parameter, ...]:
    # Disabled entries are kept: in real collections they are how optional parameters are documented
    # (Twitter's `tweet.fields`, `expansions`, ... are all disabled).
    params = []
    for entry in url.get("query") or []:
        if not isinstance(entry, dict) or not entry.get("key"):
            continue
        description = _description_text(entry.get("description"))
        params.append(
            Parameter(
                name=str(entry["key"]),
                location="query",
                required=_says_required(description),
                value_type=_STRING,
                description=description,
                example=_safe_example(str(entry["key"]), entry.get("value")),
            )
        )
    return tuple(params)


def _headers(headers: Any) -> list[dict[str, Any]]:
    """Request headers as {key, value, description, disabled} dicts; v2.0 may give one `k: v` string."""
    if isinstance(headers, str):
        pairs = [line.split(":", 1) for line in headers.splitlines() if ":" in line]
        return [{"key": k.strip(), "value": v.strip()} for k, v in pairs]
    return [h for h in headers or [] if isinstance(h, dict) and h.get("key")]


def _header_parameters(headers: list[dict[str, Any]]) -> tuple[Parameter, ...]:
    params = []
    for header in headers:
        name = str(header["key"])
        if name.lower() == "authorization":
            continue
        value = header.get("value")
        description = _description_text(header.get("description"))
        params.append(
            Parameter(
                name=name,
                location="header",
                required=_says_required(description),
                value_type=_STRING,
                description=description,
                example=_safe_example(name, value),
            )
        )
    return tuple(params)


def _says_required(description: str) -> bool:
    # Postman has no `required` flag; Twitter (and many others) start the description with "Required."
    return description.lstrip().lower().startswith("required")


def _safe_example(name: str, value: Any) -> str | None:
    """An example value, unless the name suggests a credential and the value is not a `{{variable}}`."""
    if value in (None, ""):
        return None
    text = str(value)
    if (_is_secret_name(name) or _looks_like_credential(text)) and not _is_variable(text):
        return None
    return truncate(text, FIELD_EXAMPLE_LIMIT)


def _is_secret_name(name: str) -> bool:
    return not _SECRET_WORDS.isdisjoint(identifier_words(name).split())


# --- bodies -------------------------------------------------------------------------------------------


def _request_body(body: Any, headers: list[dict[str, Any]]) -> RequestBody | None:
    if not isinstance(body, dict) or body.get("disabled"):
        return None
    mode = body.get("mode")
    header_type = next(
        (str(h.get("value")) for h in headers if str(h["key"]).lower() == "content-type" and h.get("value")),
        "",
    )
    if mode == "raw":
        return _raw_body(body, header_type)
    if mode in ("urlencoded", "formdata"):
        entries = [e for e in body.get(mode) or [] if isinstance(e, dict) and e.get("key")]
        if not entries:
            return None
        default_type = "application/x-www-form-urlencoded" if mode == "urlencoded" else "multipart/form-data"
        return RequestBody(
            content_type=header_type or default_type,
            fields=tuple(_form_field(e) for e in entries),
        )
    if mode == "graphql" and isinstance(body.get("graphql"), dict):
        query = str(body["graphql"].get("query") or "")
        return RequestBody(
            content_type="application/json",
            fields=(
                SchemaField("query", "string", True, value_type=_STRING),
                SchemaField("variables", "object", value_type=ValueType(("object",))),
            ),
            example=truncate(query, BODY_EXAMPLE_LIMIT) or None,
        )
    if mode == "file":
        return RequestBody(content_type=header_type or "application/octet-stream")
    return None


def _raw_body(body: dict[str, Any], header_type: str) -> RequestBody | None:
    raw = body.get("raw")
    if not isinstance(raw, str) or not raw.strip():
        return None
    options = body.get("options")
    language = ""
    if isinstance(options, dict) and isinstance(options.get("raw"), dict):
        language = str(options["raw"].get("language") or "")
    parsed = _loads_postman_json(raw)
    content_type = header_type or _RAW_LANGUAGES.get(language, "")
    if not content_type:
        content_type = "application/json" if parsed is not None else "text/plain"
    fields = _json_fields(parsed) if isinstance(parsed, dict | list) else ()
    return RequestBody(content_type=content_type, fields=fields, example=_body_example(raw, parsed, content_type))


def _body_example(raw: str, parsed: Any, content_type: str) -> str | None:
    """The raw body as an example, credentials blanked; None when one could not be blanked reliably."""
    example = _redact(raw)
    if "x-www-form-urlencoded" in content_type:
        example = _redacted_query(example)
    # `_redact` only sees plain JSON strings; a secret with escapes in it (`"p\"w"`) must not slip through.
    if parsed is not None and _has_literal_secret(_loads_postman_json(example)):
        return None
    return truncate(example, BODY_EXAMPLE_LIMIT)


def _has_literal_secret(document: Any) -> bool:
    """Whether parsed JSON still holds a literal value under a credential-named key (walked without recursion)."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and value not in ("", "…") and not _is_variable(value):
                    if _is_secret_name(str(key)) or _looks_like_credential(value):
                        return True
                else:
                    stack.append(value)
    return False


def _redact(raw: str) -> str:
    """The raw body with literal values of credential-named JSON keys (`"password": "..."`) blanked."""

    def blank(match: re.Match[str]) -> str:
        key, value = match.group(1), match.group(3)
        if _is_secret_name(key) and value and not TEMPLATE_VARIABLE.fullmatch(value):
            return f'"{key}"{match.group(2)}"…"'
        return match.group(0)

    return _JSON_STRING_PAIR.sub(blank, raw)


def _loads_postman_json(raw: str) -> Any:
    """Parse a raw body as JSON the way Postman writes it; None when it is not JSON.

    Postman accepts `//` comment lines and unquoted `{{variables}}` in JSON bodies, so both are
    neutralised first.
    """
    text = _LINE_COMMENT.sub("", raw)
    for candidate in (text, _UNQUOTED_VARIABLE.sub("null", text)):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep ("[[[[…")
            continue
    return None


def _form_field(entry: dict[str, Any]) -> SchemaField:
    name = str(entry["key"])
    is_file = entry.get("type") == "file"
    return SchemaField(
        name=name,
        type="file" if is_file else "string",
        value_type=ValueType(("file",), binary=True) if is_file else _STRING,
        required=_says_required(_description_text(entry.get("description"))),
        description=_description_text(entry.get("description")),
        example=None if is_file else _safe_example(name, entry.get("value")),
    )


def _json_fields(value: Any, prefix: str = "", depth: int = 0) -> tuple[SchemaField, ...]:
    """Flatten example JSON into dotted fields (`reply.in_reply_to_tweet_id`, `rules[].value`)."""
    fields: list[SchemaField] = []
    if isinstance(value, list):
        # Arrays are described by their first element, as `items[].id`.
        first = value[0] if value else None
        if isinstance(first, dict):
            fields.extend(_json_fields(first, f"{prefix}[]", depth))
        return tuple(fields)
    if not isinstance(value, dict):
        return ()
    for key, child in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        fields.append(
            SchemaField(
                name=name,
                type=json_type(child),
                value_type=value_type_of(child),
                example=None if isinstance(child, dict) else _safe_example(str(key), scalar_text(child)),
            )
        )
        if isinstance(child, dict | list) and depth + 1 < JSON_FIELD_DEPTH:
            fields.extend(_json_fields(child, name, depth + 1))
        if len(fields) >= MAX_FIELDS:
            break
    return tuple(fields[:MAX_FIELDS])


def _responses(responses: Any) -> tuple[Response, ...]:
    """Saved example responses: status, example name, and the top-level shape of a JSON body."""
    result = []
    for saved in (responses or [])[:MAX_RESPONSES]:
        if not isinstance(saved, dict):
            continue
        status = str(saved.get("code") or saved.get("status") or "")
        try:
            parsed = json.loads(saved.get("body") or "")
        except (TypeError, ValueError, RecursionError):
            parsed = None
        result.append(
            Response(
                status=status,
                description=str(saved.get("name") or saved.get("status") or ""),
                fields=_json_fields(parsed) if isinstance(parsed, dict | list) else (),
            )
        )
    return tuple(result)


# --- text and bookkeeping -----------------------------------------------------------------------------


def _description_text(description: Any) -> str:
    """A description as Markdown text; v2.0 may wrap it as {"content": ..., "type": "text/markdown"}."""
    if isinstance(description, dict):
        description = description.get("content")
    return description.strip() if isinstance(description, str) else ""


def _operation_description(
    item: dict[str, Any], request: dict[str, Any], folders: list[str], folder_descriptions: list[str]
) -> str:
    parts = [_description_text(request.get("description"))]
    item_description = _description_text(item.get("description"))
    if item_description and item_description not in parts:
        parts.append(item_description)
    # The nearest folder's description often carries the context (e.g. "Stream (see description)").
    nearest = next(
        ((name, text) for name, text in zip(reversed(folders), reversed(folder_descriptions), strict=True) if text),
        None,
    )
    if nearest:
        parts.append(f"Folder {nearest[0]}: {nearest[1]}")
    return truncate("\n\n".join(p for p in parts if p), DESCRIPTION_LIMIT)


def _format_version(schema: Any) -> str:
    match = _SCHEMA_VERSION.search(str(schema or ""))
    return f"v{match.group(1)}" if match else ""


def _info_version(version: Any) -> str:
    if isinstance(version, dict):  # v2.0/v2.1 allow {"major": 1, "minor": 0, "patch": 0}
        return ".".join(str(version.get(part, 0)) for part in ("major", "minor", "patch"))
    return str(version or "")


def _unique_keys(operations: list[Operation], warnings: list[str]) -> list[Operation]:
    """Exact duplicates (same folder, name, method and URL) get a stable " (2)", " (3)" name suffix."""
    seen: Counter[str] = Counter()
    result = []
    for op in operations:
        seen[op.key] += 1
        if seen[op.key] > 1:
            renamed = replace(op, name=f"{op.name} ({seen[op.key]})")
            warnings.append(f"Duplicate request {op.label!r} in folder {op.folder!r} renamed to {renamed.name!r}.")
            op = renamed
        result.append(op)
    return result
