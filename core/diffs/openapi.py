"""OpenAPI 3.x and Swagger 2.0 diffs, from the documents themselves (not the flattened search model).

Each version becomes a `Surface`: its operations by method and path, each with its parameters, request body
and responses as schema facts (`core.diffs.schemas`), its effective security and servers. Two surfaces are
compared rule by rule (oasdiff's names): what a client of the old version sends must still be accepted, and
what it reads must still come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.diffs.model import ChangeList, SpecDiff
from core.diffs.schemas import Facts, Flattened, SchemaFacts
from core.parsing.openapi import HTTP_METHODS
from core.parsing.refs import RefResolver
from core.parsing.values import as_dict, as_list, as_text, is_true, str_list

MAX_OPERATIONS = 5000
MAX_PARAMETERS = 200  # per operation
MAX_RESPONSES = 50  # per operation
MAX_MEDIA_TYPES = 20
MAX_SCHEMES = 100
MAX_ALTERNATIVES = 20

_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"

# An alternative: the schemes that apply together, each with the scopes it needs.
Alternative = frozenset[tuple[str, frozenset[str]]]


@dataclass
class Body:
    """A request or response body: its media types and the chosen one's schema facts."""

    media_types: tuple[str, ...]
    schema: Flattened
    required: bool = False


@dataclass
class OperationSurface:
    """What a client of one operation depends on."""

    method: str
    path: str
    operation_id: str = ""
    summary: str = ""
    description: str = ""
    deprecated: bool = False
    security: frozenset[Alternative] | None = None  # None: the spec's default
    servers: tuple[str, ...] = ()
    parameters: dict[tuple[str, str], Flattened] = field(default_factory=dict)  # (in, name)
    body: Body | None = None
    responses: dict[str, Body] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`POST /pets`."""
        return f"{self.method} {self.path}"


@dataclass
class Surface:
    """One version of an OpenAPI / Swagger spec, as the diff compares it."""

    servers: tuple[str, ...] = ()
    security: frozenset[Alternative] = frozenset()
    schemes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> its identifying properties
    operations: dict[str, OperationSurface] = field(default_factory=dict)  # by label
    complete: bool = True


def surface(document: dict[str, Any]) -> Surface:
    """The surface of a loaded OpenAPI 3.x / Swagger 2.0 document (already accepted by the parser)."""
    return _Reader(document).read()


class _Reader:
    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document
        self.swagger2 = "swagger" in document and "openapi" not in document
        self.resolver = RefResolver(document)
        self.schemas = SchemaFacts(self.resolver)
        self.consumes = str_list(document.get("consumes"))
        self.produces = str_list(document.get("produces"))

    def read(self) -> Surface:
        found = Surface(servers=self._servers(), security=_security(self.doc.get("security")) or frozenset())
        found.schemes = self._schemes()
        for path, raw_item in as_dict(self.doc.get("paths")).items():
            item = as_dict(self.resolver.follow(raw_item).node)
            for method, raw_op in item.items():
                if str(method).lower() not in HTTP_METHODS or not isinstance(raw_op, dict):
                    continue
                if len(found.operations) >= MAX_OPERATIONS:
                    found.complete = False
                    break
                operation = self._operation(str(path), str(method).upper(), raw_op, item)
                found.operations[operation.label] = operation
        found.complete = found.complete and all(
            f.complete for op in found.operations.values() for f in _flattened(op)
        )
        return found

    def _servers(self) -> tuple[str, ...]:
        if self.swagger2:
            host = as_text(self.doc.get("host"))
            base = as_text(self.doc.get("basePath"))
            schemes = str_list(self.doc.get("schemes")) or ["https"]
            return tuple(sorted(f"{s}://{host}{base}".rstrip("/") for s in schemes)) if host else ()
        return _server_urls(self.doc.get("servers"))

    def _schemes(self) -> dict[str, tuple[str, ...]]:
        raw = as_dict(self.doc.get("securityDefinitions")) if self.swagger2 else as_dict(
            as_dict(self.doc.get("components")).get("securitySchemes")
        )
        found: dict[str, tuple[str, ...]] = {}
        for name, value in list(raw.items())[:MAX_SCHEMES]:
            scheme = as_dict(self.resolver.follow(value).node)
            flows = as_dict(scheme.get("flows"))
            urls = sorted(
                f"{flow}:{as_text(as_dict(body).get(key))}"
                for flow, body in flows.items()
                for key in ("authorizationUrl", "tokenUrl")
                if as_dict(body).get(key)
            )
            for key in ("authorizationUrl", "tokenUrl", "flow", "openIdConnectUrl"):
                if scheme.get(key):
                    urls.append(f"{key}:{as_text(scheme.get(key))}")
            found[str(name)] = (
                as_text(scheme.get("type")),
                as_text(scheme.get("scheme")).lower(),
                as_text(scheme.get("in")),
                as_text(scheme.get("name")),
                *urls,
            )
        return found

    def _operation(self, path: str, method: str, op: dict[str, Any], item: dict[str, Any]) -> OperationSurface:
        found = OperationSurface(
            method=method,
            path=path,
            operation_id=as_text(op.get("operationId")),
            summary=as_text(op.get("summary"))[:500],
            description=as_text(op.get("description"))[:4000],
            deprecated=is_true(op.get("deprecated")),
            security=_security(op.get("security")),
            servers=() if self.swagger2 else (_server_urls(op.get("servers")) or _server_urls(item.get("servers"))),
        )
        parameters: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*as_list(item.get("parameters")), *as_list(op.get("parameters"))][:MAX_PARAMETERS]:
            param = as_dict(self.resolver.follow(raw).node)
            if param.get("name") is not None:
                parameters[(as_text(param.get("in")), as_text(param.get("name")))] = param
        form: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for (location, name), param in parameters.items():
            required = location == "path" or is_true(param.get("required"))
            if self.swagger2 and location == "body":
                media = tuple(str_list(op.get("consumes")) or self.consumes or [_JSON])[:MAX_MEDIA_TYPES]
                schema = self.schemas.flatten(param.get("schema"), required=required, swagger2=True)
                found.body = Body(media, schema, required)
            elif self.swagger2 and location == "formData":
                form["properties"][name] = param
                if required:
                    form["required"].append(name)
            else:
                schema_node: Any = param if self.swagger2 else param.get("schema")
                if not self.swagger2 and schema_node is None:
                    media_node = next(iter(as_dict(param.get("content")).values()), None)
                    schema_node = as_dict(media_node).get("schema")
                found.parameters[(location, name)] = self.schemas.flatten(
                    schema_node, required=required, swagger2=self.swagger2
                )
        if form["properties"]:
            media = tuple(str_list(op.get("consumes")) or self.consumes or [_FORM])[:MAX_MEDIA_TYPES]
            required = bool(form["required"])
            found.body = Body(media, self.schemas.flatten(form, required=required), required)
        if not self.swagger2 and op.get("requestBody") is not None:
            raw_body = as_dict(self.resolver.follow(op.get("requestBody")).node)
            required = is_true(raw_body.get("required"))
            found.body = self._content_body(as_dict(raw_body.get("content")), required)
        for status, raw_response in list(as_dict(op.get("responses")).items())[:MAX_RESPONSES]:
            response = as_dict(self.resolver.follow(raw_response).node)
            if self.swagger2:
                media = tuple(str_list(op.get("produces")) or self.produces or [_JSON])[:MAX_MEDIA_TYPES]
                raw_schema = response.get("schema")
                flattened = self.schemas.flatten(raw_schema, swagger2=True)
                body = Body(media if raw_schema is not None else (), flattened)
            else:
                body = self._content_body(as_dict(response.get("content")), False)
            found.responses[str(status)] = body
        return found

    def _content_body(self, content: dict[str, Any], required: bool) -> Body:
        media_types = tuple(sorted(str(m) for m in content))[:MAX_MEDIA_TYPES]
        chosen = _choose_media_type(media_types)
        schema = as_dict(content.get(chosen)).get("schema") if chosen else None
        return Body(media_types, self.schemas.flatten(schema, required=required), required)


def _flattened(op: OperationSurface) -> list[Flattened]:
    found = list(op.parameters.values()) + [r.schema for r in op.responses.values()]
    return found + ([op.body.schema] if op.body else [])


def _choose_media_type(media_types: tuple[str, ...]) -> str:
    for preferred in (_JSON, _FORM):
        if preferred in media_types:
            return preferred
    json_like = [m for m in media_types if m.endswith("+json") or m.endswith("/json")]
    return json_like[0] if json_like else (media_types[0] if media_types else "")


def _server_urls(value: Any) -> tuple[str, ...]:
    return tuple(sorted({as_text(as_dict(s).get("url")).rstrip("/") for s in as_list(value)[:MAX_MEDIA_TYPES]} - {""}))


def _security(value: Any) -> frozenset[Alternative] | None:
    if value is None:
        return None
    alternatives = set()
    for requirement in as_list(value)[:MAX_ALTERNATIVES]:
        alternatives.add(
            frozenset(
                (str(name), frozenset(str_list(scopes)[:100]))
                for name, scopes in list(as_dict(requirement).items())[:MAX_ALTERNATIVES]
            )
        )
    return frozenset(alternatives)


# ---- comparing ---------------------------------------------------------------------------------------------


def compare(old: Surface, new: Surface) -> SpecDiff:
    """Every change from `old` to `new`."""
    changes = ChangeList()
    removed_servers = sorted(set(old.servers) - set(new.servers))
    if removed_servers and old.servers:
        changes.add("api-server-changed", True, "", "", ", ".join(old.servers), ", ".join(new.servers) or "none")
    elif set(new.servers) - set(old.servers):
        changes.add("api-server-added", False, "", "", "", ", ".join(sorted(set(new.servers) - set(old.servers))))
    _compare_security(changes, "", old.security, new.security, global_=True)
    for name in sorted(set(old.schemes) & set(new.schemes)):
        if old.schemes[name] != new.schemes[name]:
            changes.add("api-security-component-changed", True, "", name, _scheme(old.schemes[name]),
                        _scheme(new.schemes[name]))
    for name in sorted(set(new.schemes) - set(old.schemes)):
        changes.add("api-security-component-added", False, "", name)
    for name in sorted(set(old.schemes) - set(new.schemes)):
        changes.add("api-security-component-removed", False, "", name)
    removed = sorted(set(old.operations) - set(new.operations))
    added = sorted(set(new.operations) - set(old.operations))
    old_paths = {op.path for op in old.operations.values()}
    new_paths = {op.path for op in new.operations.values()}
    for label in removed:
        op = old.operations[label]
        rule = "api-path-removed-without-deprecation" if op.path not in new_paths else "api-removed-without-deprecation"
        if op.deprecated:
            rule = "api-removed-after-deprecation"
        changes.add(rule, True, label)
    for label in added:
        changes.add("endpoint-added" if new.operations[label].path in old_paths else "api-path-added", False, label)
    for label in sorted(set(old.operations) & set(new.operations)):
        _compare_operation(changes, old, new, old.operations[label], new.operations[label])
    return changes.result(added, removed, truncated=not (old.complete and new.complete))


def _scheme(properties: tuple[str, ...]) -> str:
    return " ".join(p for p in properties if p)


def _compare_operation(
    changes: ChangeList, old_spec: Surface, new_spec: Surface, old: OperationSurface, new: OperationSurface
) -> None:
    where = old.label
    if old.deprecated != new.deprecated:
        changes.add("api-deprecated" if new.deprecated else "api-reactivated", False, where)
    if old.operation_id != new.operation_id:
        changes.add("api-operation-id-updated", False, where, "", old.operation_id, new.operation_id)
    if old.summary != new.summary:
        changes.add("api-summary-updated", False, where)
    if old.description != new.description:
        changes.add("api-description-updated", False, where)
    if old.servers != new.servers and (old.servers or new.servers):
        old_servers = old.servers or old_spec.servers
        new_servers = new.servers or new_spec.servers
        if set(old_servers) - set(new_servers):
            changes.add("api-server-changed", True, where, "", ", ".join(old_servers), ", ".join(new_servers))
    if old.security is not None or new.security is not None:
        old_security = old_spec.security if old.security is None else old.security
        new_security = new_spec.security if new.security is None else new.security
        _compare_security(changes, where, old_security, new_security, global_=False)
    _compare_parameters(changes, where, old, new)
    _compare_request_body(changes, where, old.body, new.body)
    _compare_responses(changes, where, old.responses, new.responses)


def _compare_security(
    changes: ChangeList, where: str, old: frozenset[Alternative], new: frozenset[Alternative], *, global_: bool
) -> None:
    if old == new:
        return
    prefix = "api-global-security" if global_ else "api-security"
    old_open = not old or frozenset() in old
    if frozenset() in new or not new:
        changes.add(f"{prefix}-removed", False, where, "", _alternatives(old), _alternatives(new))
        return
    if old_open:
        changes.add(f"{prefix}-added", True, where, "", _alternatives(old), _alternatives(new))
        return
    # A client using an old alternative still works if some new alternative asks for no more than it has.
    broken = False
    for alternative in sorted(old, key=_alternative_text):
        if any(_satisfies(alternative, candidate) for candidate in new):
            continue
        broken = True
        same_schemes = [c for c in new if {s for s, _ in c} == {s for s, _ in alternative}]
        rule = f"{prefix}-scope-added" if same_schemes else f"{prefix}-changed"
        changes.add(rule, True, where, "", _alternative_text(alternative), _alternatives(new))
    if not broken:
        changes.add(f"{prefix}-alternative-added", False, where, "", _alternatives(old), _alternatives(new))


def _satisfies(has: Alternative, needs: Alternative) -> bool:
    held = dict(has)
    return all(scheme in held and scopes <= held[scheme] for scheme, scopes in needs)


def _alternative_text(alternative: Alternative) -> str:
    parts = sorted(f"{s}" + (f" [{', '.join(sorted(scopes))}]" if scopes else "") for s, scopes in alternative)
    return " + ".join(parts) or "no auth"


def _alternatives(alternatives: frozenset[Alternative]) -> str:
    return " or ".join(sorted(_alternative_text(a) for a in alternatives)) or "no auth"


def _compare_parameters(changes: ChangeList, where: str, old: OperationSurface, new: OperationSurface) -> None:
    for key in sorted(set(old.parameters) | set(new.parameters)):
        location, name = key
        subject = f"{location} {name}"
        before, after = old.parameters.get(key), new.parameters.get(key)
        if after is None:
            changes.add("request-parameter-removed", True, where, subject)
            continue
        root_after = after.facts.get("", Facts())
        if before is None:
            if location == "path":
                changes.add("new-request-path-parameter", True, where, subject)
            elif root_after.required:
                changes.add("new-required-request-parameter", True, where, subject)
            else:
                changes.add("new-optional-request-parameter", False, where, subject)
            continue
        root_before = before.facts.get("", Facts())
        if not root_before.required and root_after.required:
            changes.add("request-parameter-became-required", True, where, subject)
        elif root_before.required and not root_after.required:
            changes.add("request-parameter-became-optional", False, where, subject)
        _compare_facts(changes, where, "request-parameter", subject, root_before, root_after, request=True)


def _compare_request_body(changes: ChangeList, where: str, old: Body | None, new: Body | None) -> None:
    if old is None and new is None:
        return
    if new is None:
        changes.add("request-body-removed", True, where)
        return
    if old is None:
        changes.add("added-required-request-body" if new.required else "added-optional-request-body",
                    new.required, where)
        return
    if not old.required and new.required:
        changes.add("request-body-became-required", True, where)
    elif old.required and not new.required:
        changes.add("request-body-became-optional", False, where)
    for media in sorted(set(old.media_types) - set(new.media_types)):
        changes.add("request-body-media-type-removed", True, where, media)
    for media in sorted(set(new.media_types) - set(old.media_types)):
        changes.add("request-body-media-type-added", False, where, media)
    _compare_schema(changes, where, old.schema, new.schema, request=True, prefix="request")


def _compare_responses(changes: ChangeList, where: str, old: dict[str, Body], new: dict[str, Body]) -> None:
    for status in sorted(set(old) - set(new)):
        success = status.startswith("2")
        rule = "response-success-status-removed" if success else "response-non-success-status-removed"
        changes.add(rule, success, where, status)
    for status in sorted(set(new) - set(old)):
        changes.add("response-success-status-added" if status.startswith("2") else
                    "response-non-success-status-added", False, where, status)
    for status in sorted(set(old) & set(new)):
        before, after = old[status], new[status]
        for media in sorted(set(before.media_types) - set(after.media_types)):
            changes.add("response-media-type-removed", True, where, f"{status} {media}")
        for media in sorted(set(after.media_types) - set(before.media_types)):
            changes.add("response-media-type-added", False, where, f"{status} {media}")
        _compare_schema(changes, where, before.schema, after.schema, request=False, prefix=f"response {status}")


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("[]"))
    return path[:cut] if cut > 0 else ""


def _compare_schema(
    changes: ChangeList, where: str, old: Flattened, new: Flattened, *, request: bool, prefix: str
) -> None:
    """Field by field; when a bound cut either side, only the paths both have are compared."""
    complete = old.complete and new.complete
    noun = "request-property" if request else "response-property"
    body_noun = "request-body" if request else "response-body"
    # What a client never sends (request) or never reads (response) does not matter to it.
    hidden = (lambda f: f.read_only) if request else (lambda f: f.write_only)
    for path in sorted(set(old.facts) | set(new.facts)):
        before, after = old.facts.get(path), new.facts.get(path)
        subject = path or ""
        if before is not None and after is not None:
            if path == "":
                _compare_facts(changes, where, body_noun, prefix, before, after, request=request)
                continue
            if hidden(before) and hidden(after):
                continue
            _compare_required(changes, where, noun, subject, before, after, request=request)
            _compare_facts(changes, where, noun, subject, before, after, request=request)
            continue
        if not complete:
            continue
        parent = _parent(path)
        if path and (parent not in old.facts or parent not in new.facts):
            continue  # its parent came or went: reported there
        if after is None and before is not None:
            if hidden(before):
                continue
            if request:
                changes.add("request-property-removed", True, where, subject)
            elif before.required:
                changes.add("response-required-property-removed", True, where, subject)
            else:
                changes.add("response-optional-property-removed", True, where, subject)
        elif after is not None and before is None:
            if hidden(after):
                continue
            if request and after.required:
                changes.add("new-required-request-property", True, where, subject)
            else:
                changes.add(f"{noun}-added", False, where, subject)


def _compare_required(
    changes: ChangeList, where: str, noun: str, subject: str, before: Facts, after: Facts, *, request: bool
) -> None:
    if before.required == after.required:
        return
    if request:
        rule = "request-property-became-required" if after.required else "request-property-became-optional"
        changes.add(rule, after.required, where, subject)
    else:
        rule = "response-property-became-optional" if before.required else "response-property-became-required"
        changes.add(rule, before.required, where, subject)


def _types_text(facts: Facts) -> str:
    text = " | ".join(sorted(facts.types)) or "any"
    return f"{text} ({facts.format})" if facts.format else text


def _compare_facts(
    changes: ChangeList, where: str, noun: str, subject: str, before: Facts, after: Facts, *, request: bool
) -> None:
    """Types, enum, bounds and pattern of one value; `request`: the client sends it, else it reads it."""
    old_types, new_types = before.types, after.types
    if old_types != new_types:
        # A request must still accept what was sent; a response must not send what was never expected.
        accepted, offered = (new_types, old_types) if request else (old_types, new_types)
        if not accepted:  # any type
            changes.add(f"{noun}-type-generalized", False, where, subject, _types_text(before), _types_text(after))
        elif offered and _covers(accepted, offered):
            rule = f"{noun}-list-of-types-widened" if request else f"{noun}-list-of-types-narrowed"
            changes.add(rule, False, where, subject, _types_text(before), _types_text(after))
        elif offered and accepted < offered and (offered - accepted) == {"null"}:
            rule = f"{noun}-became-not-nullable" if request else f"{noun}-became-nullable"
            changes.add(rule, True, where, subject, _types_text(before), _types_text(after))
        elif offered and accepted < offered:
            rule = f"{noun}-list-of-types-narrowed" if request else f"{noun}-list-of-types-widened"
            changes.add(rule, True, where, subject, _types_text(before), _types_text(after))
        else:
            changes.add(f"{noun}-type-changed", True, where, subject, _types_text(before), _types_text(after))
    elif before.format != after.format:
        if before.format and after.format:
            changes.add(f"{noun}-type-changed", True, where, subject, _types_text(before), _types_text(after))
        elif after.format:  # a narrower value: what requests sent may no longer pass
            changes.add(f"{noun}-format-added", request, where, subject, "", after.format)
        else:
            changes.add(f"{noun}-format-removed", not request, where, subject, before.format)
    if before.enum != after.enum:
        if after.enum is None:
            changes.add(f"{noun}-enum-removed", False, where, subject)
        elif before.enum is None:
            changes.add(f"{noun}-became-enum", request, where, subject, "", _values(after.enum))
        else:
            gone, new_values = before.enum - after.enum, after.enum - before.enum
            if gone:
                changes.add(f"{noun}-enum-value-removed", request, where, subject, _values(gone))
            if new_values:
                changes.add(f"{noun}-enum-value-added", False, where, subject, "", _values(new_values))
    for label, old_value, new_value, tighter in (
        ("max-length", before.max_length, after.max_length, "decreased"),
        ("min-length", before.min_length, after.min_length, "increased"),
        ("max", before.maximum, after.maximum, "decreased"),
        ("min", before.minimum, after.minimum, "increased"),
        ("max-items", before.max_items, after.max_items, "decreased"),
        ("min-items", before.min_items, after.min_items, "increased"),
    ):
        if old_value == new_value:
            continue
        upper = tighter == "decreased"
        narrowed = _narrower(old_value, new_value, upper=upper)
        # Tighter limits break requests; looser ones break responses (a client may rely on the old ones).
        breaking = narrowed if request else not narrowed
        direction = tighter if narrowed else ("increased" if upper else "decreased")
        changes.add(f"{noun}-{label}-{direction}", breaking, where, subject, _number(old_value), _number(new_value))
    if before.pattern != after.pattern:
        if not before.pattern:
            changes.add(f"{noun}-pattern-added", request, where, subject, "", after.pattern)
        elif not after.pattern:
            changes.add(f"{noun}-pattern-removed", not request, where, subject, before.pattern)
        else:
            changes.add(f"{noun}-pattern-changed", False, where, subject, before.pattern, after.pattern)
    if before.description != after.description:
        changes.add(f"{noun}-description-updated", False, where, subject)


def _covers(accepted: frozenset[str], offered: frozenset[str]) -> bool:
    """Whether every type in `offered` is accepted (an integer is a number)."""
    return all(t in accepted or (t == "integer" and "number" in accepted) for t in offered)


def _narrower(old: float | None, new: float | None, *, upper: bool) -> bool:
    """Whether the new limit allows less than the old one (no limit allows everything)."""
    if new is None:
        return False
    if old is None:
        return True
    return new < old if upper else new > old


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return str(int(value)) if value == int(value) else str(value)


def _values(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))
