"""One pasted request (or response) checked against one operation: parameters, content type, body, auth, placeholders.

Parameter values arrive as text; each is read as the type its schema asks for (`limit=10` as an integer,
`expand[]=a` as a list, Stripe's `created[gte]=1` as an object) before it is validated, and so are form body
fields. Secrets are never quoted in a problem (see `core.checks.secrets`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from core import messages
from core.checks.contract import RawOperation, RawSpec, SchemaConverter, media_matches, media_type
from core.checks.pasted import FORM, JSON, MAX_BODY_DEPTH, MULTIPART, PastedRequest, form_values
from core.checks.schemas import Budget, Outcome, Problem, ProblemKind, validate
from core.checks.secrets import is_secret_field, is_secret_name
from core.paths import is_placeholder

MAX_COERCE_DEPTH = 16
_INTEGER = re.compile(r"[+-]?\d{1,40}")
_NUMBER = re.compile(r"[+-]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][+-]?\d{1,4})?")
# Swagger 2 parameters carry their schema keywords on the parameter itself.
_PARAMETER_SCHEMA_KEYS = frozenset(
    {"type", "format", "items", "enum", "default", "pattern", "minimum", "maximum", "exclusiveMinimum",
     "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "multipleOf", "x-nullable"}
)  # fmt: skip
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})  # OpenAPI: described elsewhere


def check_operation(
    spec: RawSpec, operation: RawOperation, request: PastedRequest, *, prefix: str = "", budget: Budget | None = None
) -> Outcome:
    """Everything wrong with `request` for `operation` (`prefix`: the server base path the URL starts with)."""
    outcome = Outcome()
    budget = budget or Budget()
    declared = api_key_names(spec)
    if request.is_response:
        _check_response(spec, operation, request, outcome, budget, declared)
        return outcome
    if request.source != "body":  # a body with the operation named has no real URL to look at
        _check_placeholders(request, outcome)
        _check_parameters(spec, operation, request, prefix, outcome, budget, declared)
        _check_auth(spec, operation, request, outcome)
    _check_body(spec, operation, request, outcome, budget, declared)
    return outcome


def api_key_names(spec: RawSpec) -> frozenset[str]:
    """The lower-case names of the spec's API-key headers, query parameters and cookies (their values are secrets)."""
    return frozenset(
        str(s.get("name")).lower()
        for s in spec.security_schemes().values()
        if s.get("type") == "apiKey" and s.get("name")
    )


# ---- placeholders and parameters -------------------------------------------------------------------------


def _check_placeholders(request: PastedRequest, outcome: Outcome) -> None:
    for segment in request.path.split("/"):
        if segment and is_placeholder(segment):
            outcome.add(Problem(ProblemKind.PLACEHOLDER, "URL path", messages.check_placeholder(segment)))
    for name, value in request.query:
        if value and is_placeholder(value):
            shown = "…" if is_secret_name(name) else value
            outcome.add(Problem(ProblemKind.PLACEHOLDER, f"query {name}", messages.check_placeholder(shown)))
    for name, value in request.headers:
        credential = value.split(" ", 1)[-1].strip()
        if credential and is_placeholder(credential):
            outcome.add(Problem(ProblemKind.PLACEHOLDER, f"header {name}", messages.check_placeholder(credential)))


def _check_parameters(
    spec: RawSpec,
    operation: RawOperation,
    request: PastedRequest,
    prefix: str,
    outcome: Outcome,
    budget: Budget,
    declared: frozenset[str],
) -> None:
    said = [s for s in request.path[len(prefix) :].strip("/").split("/") if s]
    template = [s for s in operation.path.strip("/").split("/") if s]
    for parameter in spec.parameters(operation):
        name = str(parameter["name"])
        location = str(parameter.get("in") or "")
        value: Any = None
        if location == "path":
            value = _path_value(name, said, template)
            if value is not None and is_placeholder(value):
                continue  # reported as a placeholder already
        elif location == "query":
            value = _query_value(name, parameter, request.query)
        elif location == "header":
            if name.lower() in _IGNORED_HEADERS:
                continue
            value = request.header(name)
        elif location == "cookie":
            value = next((v for k, v in request.cookies if k == name), None)
        else:
            continue  # Swagger 2 body and formData: the body's check
        where = f"{location} parameter {name}"
        if value is None:
            if parameter.get("required") is True or location == "path":
                outcome.add(Problem(ProblemKind.MISSING_PARAMETER, where, messages.check_missing_parameter()))
            continue
        raw_schema = _parameter_schema(spec, parameter)
        if raw_schema is None:
            continue
        coerced = coerce(spec, value, raw_schema, split_lists=True)
        converted = SchemaConverter(spec).convert(raw_schema)
        hidden = name.lower() in declared or is_secret_name(name)
        validate(
            coerced, converted.schema, direction="request", where=where, outcome=outcome,
            secret=_always(hidden), budget=budget,
        )  # fmt: skip
        for note in converted.notes:
            outcome.note(note)


def _always(answer: bool) -> Callable[[str], bool]:
    def secret(where: str) -> bool:
        return answer

    return secret


def _path_value(name: str, said: list[str], template: list[str]) -> str | None:
    token = "{" + name + "}"
    for index, segment in enumerate(template):
        if token in segment and index < len(said):
            if segment == token:
                return said[index]
            head, _, tail = segment.partition(token)
            value = said[index]
            if value.startswith(head) and value.endswith(tail) and len(value) > len(head) + len(tail):
                return value[len(head) : len(value) - len(tail)] if tail else value[len(head) :]
            return value
    return None


def _query_value(name: str, parameter: dict[str, Any], query: tuple[tuple[str, str], ...]) -> Any:
    plain = [v for k, v in query if k in (name, name + "[]")]
    nested = tuple((k, v) for k, v in query if k.startswith(name + "[") and k != name + "[]")
    if nested:
        return form_values(nested).get(name)
    if not plain:
        return None
    return plain if len(plain) > 1 or any(k == name + "[]" for k, _ in query) else plain[0]


def _parameter_schema(spec: RawSpec, parameter: dict[str, Any]) -> Any:
    if spec.swagger2:
        return {k: v for k, v in parameter.items() if k in _PARAMETER_SCHEMA_KEYS}
    if "schema" in parameter:
        return parameter["schema"]
    content = parameter.get("content")
    if isinstance(content, dict) and content:
        media = next(iter(content.values()))
        return media.get("schema") if isinstance(media, dict) else None
    return None


def coerce(spec: RawSpec, value: Any, schema: Any, *, split_lists: bool = False, depth: int = 0) -> Any:
    """Text from a URL or a form read as the types `schema` asks for; anything it cannot read stays text.

    `split_lists`: a single text value for an array is comma-separated (OpenAPI's form style without explode).
    """
    schema = spec.follow(schema)
    if depth > MAX_COERCE_DEPTH or not isinstance(schema, dict):
        return value
    members = [spec.follow(m) for key in ("allOf", "anyOf", "oneOf") for m in _as_list(schema.get(key))]
    members = [m for m in members if isinstance(m, dict)]
    types = _types(schema)
    for member in members:
        types |= _types(member)
    if isinstance(value, str):
        if "integer" in types and _INTEGER.fullmatch(value):
            return int(value)
        if "number" in types and _NUMBER.fullmatch(value):
            return float(value)
        if "boolean" in types and value in ("true", "false"):
            return value == "true"
        if "array" in types and "string" not in types and split_lists:
            items = _first(schema, members, "items")
            return [coerce(spec, part, items, depth=depth + 1) for part in value.split(",")]
        return value
    if isinstance(value, list):
        if "array" not in types and types and len(value) == 1:
            return coerce(spec, value[0], schema, split_lists=split_lists, depth=depth + 1)
        items = _first(schema, members, "items")
        return [coerce(spec, part, items, depth=depth + 1) if part is not None else part for part in value]
    if isinstance(value, dict):
        properties: dict[str, Any] = {}
        for holder in (schema, *members):
            for key, sub in _as_dict(holder.get("properties")).items():
                properties.setdefault(str(key), sub)
        extra = _first(schema, members, "additionalProperties")
        return {
            key: coerce(spec, item, properties.get(key, extra if isinstance(extra, dict) else None), depth=depth + 1)
            for key, item in value.items()
        }
    return value


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(k) for k in kind}
    if "properties" in schema or "additionalProperties" in schema:
        return {"object"}
    return {"array"} if "items" in schema else set()


def _first(schema: dict[str, Any], members: list[dict[str, Any]], key: str) -> Any:
    return next((holder[key] for holder in (schema, *members) if key in holder), None)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---- auth ------------------------------------------------------------------------------------------------------


def _check_auth(spec: RawSpec, operation: RawOperation, request: PastedRequest, outcome: Outcome) -> None:
    alternatives = spec.security(operation)
    if not alternatives or any(not alternative for alternative in alternatives):
        return  # no auth, or "no auth" is one of the alternatives
    schemes = spec.security_schemes()
    if any(all(_sent(schemes.get(name), request) for name in alternative) for alternative in alternatives):
        return
    ways = list(
        dict.fromkeys(_way(name, schemes.get(name), scopes) for alt in alternatives for name, scopes in alt.items())
    )
    authorization = request.header("authorization")
    if authorization:
        scheme = authorization.split(" ", 1)[0][:20]
        outcome.add(Problem(ProblemKind.MISSING_AUTH, "header Authorization", messages.check_wrong_auth(scheme, ways)))
    else:
        outcome.add(Problem(ProblemKind.MISSING_AUTH, "auth", messages.check_missing_auth(ways)))


def _http_scheme(scheme: dict[str, Any]) -> str:
    kind = str(scheme.get("type") or "").lower()
    if kind == "basic":
        return "basic"  # Swagger 2
    if kind in ("oauth2", "openidconnect"):
        return "bearer"
    return str(scheme.get("scheme") or "").lower() if kind == "http" else ""


def _sent(scheme: dict[str, Any] | None, request: PastedRequest) -> bool:
    if scheme is None:
        return True  # an undeclared scheme: nothing to compare with
    kind = str(scheme.get("type") or "").lower()
    if kind == "apikey":
        name = str(scheme.get("name") or "")
        location = str(scheme.get("in") or "")
        if location == "query":
            return any(k == name for k, _ in request.query)
        if location == "cookie":
            return any(k == name for k, _ in request.cookies)
        return request.header(name) is not None
    wanted = _http_scheme(scheme)
    if not wanted:
        return True  # mutual TLS and the like: not visible in a request
    authorization = (request.header("authorization") or "").strip()
    if wanted == "basic" and request.user is not None:
        return True
    return authorization.lower().startswith(wanted + " ")


def _way(name: str, scheme: dict[str, Any] | None, scopes: list[str]) -> str:
    if scheme is None:
        return f"`{name}`"
    kind = str(scheme.get("type") or "").lower()
    if kind == "apikey":
        location = str(scheme.get("in") or "header")
        return f"the API key in {location} `{scheme.get('name')}` ({name})"
    wanted = _http_scheme(scheme)
    scope_text = f", scopes {', '.join(scopes[:5])}" if scopes else ""
    if wanted == "basic":
        return f"HTTP basic auth (`-u user:password`, {name})"
    if kind in ("oauth2", "openidconnect"):
        return f"an OAuth 2 token in `Authorization: Bearer …` ({name}{scope_text})"
    return f"`Authorization: {wanted.capitalize()} …` ({name}{scope_text})"


# ---- bodies ----------------------------------------------------------------------------------------------------


def request_media(spec: RawSpec, operation: RawOperation) -> tuple[dict[str, Any], bool]:
    """The operation's request body schemas by media type, and whether a body is required."""
    if spec.swagger2:
        parameters = spec.parameters(operation)
        consumes = operation.node.get("consumes") or spec.document.get("consumes") or []
        consumes = [str(c) for c in consumes] if isinstance(consumes, list) else []
        body = next((p for p in parameters if p.get("in") == "body"), None)
        if body is not None:
            types = consumes or [JSON]
            return {t: body.get("schema") for t in types}, body.get("required") is True
        form = [p for p in parameters if p.get("in") == "formData"]
        if not form:
            return {}, False
        schema = {
            "type": "object",
            "properties": {str(p["name"]): {k: v for k, v in p.items() if k in _PARAMETER_SCHEMA_KEYS} for p in form},
            "required": [str(p["name"]) for p in form if p.get("required") is True],
        }
        has_file = any(p.get("type") == "file" for p in form)
        types = consumes or ([MULTIPART] if has_file else [FORM])
        return {t: schema for t in types}, bool(schema["required"])
    body = spec.follow(operation.node.get("requestBody"))
    if not isinstance(body, dict):
        return {}, False
    content = body.get("content")
    if not isinstance(content, dict):
        return {}, False
    return {str(t): m.get("schema") if isinstance(m, dict) else None for t, m in content.items()}, body.get(
        "required"
    ) is True


def _check_body(
    spec: RawSpec,
    operation: RawOperation,
    request: PastedRequest,
    outcome: Outcome,
    budget: Budget,
    declared: frozenset[str],
) -> None:
    media, required = request_media(spec, operation)
    sent_body = request.body is not None or bool(request.form)
    if not media:
        if sent_body:
            outcome.note(messages.check_no_body_expected())
        return
    if not sent_body:
        if required:
            outcome.add(Problem(ProblemKind.MISSING_BODY, "body", messages.check_missing_body(list(media))))
        return
    looks_json = request.body is not None and _json_like(request.body)
    chosen = next((t for t in media if request.media_type and media_matches(request.media_type, t)), None)
    # `curl -d '{"a": 1}'` sends JSON labelled as a form: whether or not forms are accepted, that is the mistake
    misread = chosen is not None and looks_json and request.content_type_implied and "json" not in chosen
    if misread:
        chosen = None
    if chosen is None and request.source != "body":
        outcome.add(
            Problem(
                ProblemKind.CONTENT_TYPE,
                "header Content-Type",
                messages.check_content_type(
                    request.media_type,
                    list(media),
                    request.content_type_implied and request.source == "curl",
                    looks_json,
                ),
            )
        )
    if chosen is None:  # check the body against what it looks like
        wanted = JSON if looks_json else (FORM if request.form else "")
        chosen = next(
            (t for t in media if wanted and (media_type(t) == wanted or ("json" in t and wanted == JSON))), None
        )
        chosen = chosen or next(iter(media))
    instance = _instance(spec, request, media_type(chosen), media[chosen], outcome)
    if instance is _UNREADABLE:
        return
    schema = media[chosen]
    if schema is None:
        outcome.note(messages.check_no_schema("body"))
        return
    converted = SchemaConverter(spec).convert(schema)
    secret = _field_secret(declared)
    validate(instance, converted.schema, direction="request", where="$", outcome=outcome, secret=secret, budget=budget)
    for note in converted.notes:
        outcome.note(note)


_UNREADABLE: Any = object()


def _instance(spec: RawSpec, request: PastedRequest, chosen: str, schema: Any, outcome: Outcome) -> Any:
    """The body as a value to validate: JSON parsed, a form's pairs nested and read as their schema's types."""
    if request.form or chosen in (FORM, MULTIPART):
        pairs = request.form
        if not pairs and request.body is not None and not _json_like(request.body):
            from urllib.parse import parse_qsl

            pairs = tuple(parse_qsl(request.body, keep_blank_values=True))
        if pairs or not (request.body and _json_like(request.body)):
            return coerce(spec, form_values(pairs), schema)
    return parse_json(request.body or "", outcome)


def parse_json(text: str, outcome: Outcome) -> Any:
    """A JSON body, or `_UNREADABLE` with a problem saying why not."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = messages.check_invalid_json(exc.lineno, exc.colno, exc.msg)
        outcome.add(Problem(ProblemKind.INVALID_BODY, "body", problem))
        return _UNREADABLE
    except RecursionError:
        value = _UNREADABLE
    if value is _UNREADABLE or _depth(value) > MAX_BODY_DEPTH:
        outcome.add(Problem(ProblemKind.INVALID_BODY, "body", messages.check_deep_body(MAX_BODY_DEPTH)))
        return _UNREADABLE
    return value


def _depth(value: Any) -> int:
    """How deep a parsed JSON value nests (iterative, stops counting past `MAX_BODY_DEPTH`)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_BODY_DEPTH:
            return level
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _json_like(text: str) -> bool:
    return text.lstrip().startswith(("{", "["))


def _field_secret(declared: frozenset[str]) -> Callable[[str], bool]:
    def secret(where: str) -> bool:
        last = re.split(r"[.\[\]\"]+", where.rstrip(']"'))[-1]
        return is_secret_field(last, declared)

    return secret


# ---- responses -------------------------------------------------------------------------------------------------


def _check_response(
    spec: RawSpec,
    operation: RawOperation,
    request: PastedRequest,
    outcome: Outcome,
    budget: Budget,
    declared: frozenset[str],
) -> None:
    responses = operation.node.get("responses")
    responses = responses if isinstance(responses, dict) else {}
    status = response_status(request.response_status, [str(k) for k in responses])
    if status is None:
        outcome.add(
            Problem(
                ProblemKind.NOT_ALLOWED, "status",
                messages.check_no_response(request.response_status, [str(k) for k in responses]),
            )
        )  # fmt: skip
        return
    response = spec.follow(responses.get(status, responses.get(int(status)) if status.isdigit() else None))
    schema = None
    if isinstance(response, dict):
        if spec.swagger2:
            schema = response.get("schema")
        else:
            content = response.get("content")
            content = content if isinstance(content, dict) else {}
            json_types = [t for t in content if "json" in str(t)] or list(content)
            if json_types:
                media = content[json_types[0]]
                schema = media.get("schema") if isinstance(media, dict) else None
    if schema is None:
        outcome.note(messages.check_no_schema("response"))
        return
    instance = parse_json(request.body or "", outcome)
    if instance is _UNREADABLE:
        return
    converted = SchemaConverter(spec, "response").convert(schema)
    validate(
        instance, converted.schema, direction="response", where="$", outcome=outcome,
        secret=_field_secret(declared), budget=budget,
    )  # fmt: skip
    for note in converted.notes:
        outcome.note(note)


def response_status(wanted: str, declared: list[str]) -> str | None:
    """The documented response a status falls under: itself, its `2XX` range, else `default`."""
    if wanted in declared:
        return wanted
    if wanted == "2XX":
        success = sorted(d for d in declared if d.startswith("2"))
        if success:
            return success[0]
    elif len(wanted) == 3 and wanted[0] + "XX" in declared:
        return wanted[0] + "XX"
    return "default" if "default" in declared else None


def servers_hosts(spec: RawSpec) -> list[str]:
    """The hosts of the spec's servers (Swagger 2: `host`)."""
    if spec.swagger2:
        host = str(spec.document.get("host") or "")
        return [host.lower().split(":")[0]] if host else []
    hosts = []
    servers = spec.document.get("servers")
    for server in servers if isinstance(servers, list) else ():
        url = str(server.get("url") or "") if isinstance(server, dict) else ""
        try:
            found = urlsplit(url).hostname or ""
        except ValueError:
            found = ""
        if found and "{" not in found:
            hosts.append(found.lower())
    return hosts
