"""OpenAPI 3.0 / 3.1 and Swagger 2.0 documents -> the normalised `ApiSpec`.

The input is an already-loaded dict (from JSON or YAML). Schemas are never fully inlined: request and
response bodies are flattened breadth-first into at most `MAX_FIELDS` dotted fields, `MAX_FIELD_DEPTH`
levels deep, which keeps self-referencing schemas (Stripe's `invoice`) finite and big specs fast.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidSpecError
from core.models import (
    ApiSpec,
    ItemKind,
    Operation,
    Parameter,
    RequestBody,
    Response,
    SchemaField,
    SecurityScheme,
    SpecFormat,
)
from core.parsing.refs import MAX_REF_DEPTH, RefResolver, ref_name
from core.parsing.text import first_sentence, strip_html, strip_userinfo, truncate

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

MAX_FIELD_DEPTH = 3  # `a.b.c` at most
MAX_FIELDS = 60  # per request / response body
MAX_ENUM = 20
MAX_SCOPES = 50
MAX_ALTERNATIVES = 4  # oneOf / anyOf members named in a type label
MAX_INFO_DESCRIPTION = 2000
MAX_OPERATION_DESCRIPTION = 4000
MAX_PARAM_DESCRIPTION = 500
MAX_RESPONSE_DESCRIPTION = 300
MAX_EXAMPLE = 1500
MAX_FIELD_EXAMPLE = 120

_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_JSON = "application/json"
_BODY_MEDIA_PREFERENCE = (_JSON, _FORM, _MULTIPART)


def parse_openapi(document: dict[str, Any]) -> ApiSpec:
    """Parse a loaded OpenAPI 3.x or Swagger 2.0 document into an `ApiSpec`.

    Raises `InvalidSpecError` when the document is neither, uses external `$ref`s, or has dangling ones.
    """
    if not isinstance(document, dict):
        raise InvalidSpecError("This file is not an OpenAPI or Swagger document (expected a mapping at the top).")
    if "openapi" in document:
        version = _text(document["openapi"])
        if not version.startswith("3."):
            raise InvalidSpecError(
                f"This spec says `openapi: {version}`, which is not a version I can read. "
                "OpenAPI 3.0 and 3.1 and Swagger 2.0 are supported."
            )
        spec_format = SpecFormat.OPENAPI3
    elif "swagger" in document:
        version = _text(document["swagger"])
        if not version.startswith("2"):
            raise InvalidSpecError(
                f"This spec says `swagger: {version}`; only Swagger 2.0 (and OpenAPI 3.x) is supported."
            )
        spec_format = SpecFormat.SWAGGER2
    else:
        raise InvalidSpecError(
            "This file has neither an `openapi` nor a `swagger` version key at the top, so it is not an "
            "OpenAPI 3.x or Swagger 2.0 spec."
        )
    if "paths" in document and not isinstance(document["paths"], dict | None):
        raise InvalidSpecError("This spec's `paths` is not a mapping of paths to operations.")
    resolver = RefResolver(document)
    resolver.check_refs()
    return _Parser(document, resolver, spec_format, version).parse()


@dataclass
class _Shape:
    """What the flattener needs to know about one schema node, computed once per node."""

    type: str
    description: str = ""
    enum: tuple[str, ...] = ()
    example: str | None = None
    # (property name, raw property schema, required); raw so that nested schemas are only looked at on demand
    properties: tuple[tuple[str, Any, bool], ...] = ()
    items: Any = None  # raw item schema when this is an array
    values: Any = None  # raw `additionalProperties` schema when this is a map
    # The refs this node stands for (its own `$ref`, a lone `allOf` member, the alternative whose fields are
    # shown); a child standing for a ref that is already being expanded above it is recursive.
    refs: tuple[str, ...] = ()
    name: str = ""  # the component name, when the node was a `$ref`


_NO_CUT: frozenset[str] = frozenset()


@dataclass
class _Built:
    shape: _Shape
    # Refs at which a cycle was cut while building (through items / allOf / oneOf; properties are never built
    # eagerly). A shape that cut a ref it did not enter itself depends on where it was reached from, so it
    # is not memoised.
    cut: frozenset[str] = _NO_CUT


class _Parser:
    def __init__(self, document: dict[str, Any], resolver: RefResolver, spec_format: SpecFormat, version: str) -> None:
        self.doc = document
        self.resolver = resolver
        self.format = spec_format
        self.version = version
        self.swagger2 = spec_format is SpecFormat.SWAGGER2
        # Memos keyed by id(); the node is stored alongside so its id cannot be reused while we run.
        self._shapes: dict[int, tuple[Any, _Shape]] = {}
        self._flattened: dict[Any, tuple[Any, tuple[SchemaField, ...]]] = {}
        self._building: set[int] = set()
        self.consumes = _str_list(document.get("consumes"))
        self.produces = _str_list(document.get("produces"))

    # ------------------------------------------------------------------ spec level

    def parse(self) -> ApiSpec:
        info = _dict(self.doc.get("info"))
        operations: list[Operation] = []
        for path, raw_item in _dict(self.doc.get("paths")).items():
            item = self.resolver.follow(raw_item).node
            if not isinstance(item, dict):
                self.resolver.warn(f"Path `{path}` is not a path item object; skipped.")
                continue
            for method, raw_op in item.items():
                method_str = str(method).lower()
                if method_str not in HTTP_METHODS:
                    continue
                if not isinstance(raw_op, dict):
                    self.resolver.warn(f"`{method_str.upper()} {path}` is not an operation object; skipped.")
                    continue
                operations.append(self._operation(str(path), method_str, raw_op, item))
        return ApiSpec(
            format=self.format,
            title=strip_html(_text(info.get("title"))) or "Untitled API",
            version=_text(info.get("version")),
            description=truncate(strip_html(_text(info.get("description"))), MAX_INFO_DESCRIPTION),
            format_version=self.version,
            servers=self._spec_servers(),
            operations=tuple(operations),
            security_schemes=self._security_schemes(),
            security=_security(self.doc.get("security")) or (),
            warnings=tuple(self.resolver.warnings),
        )

    def _spec_servers(self) -> tuple[str, ...]:
        if not self.swagger2:
            return _servers(self.doc.get("servers"))
        host = _text(self.doc.get("host")).rstrip("/")
        base_path = _text(self.doc.get("basePath"))
        if base_path and not base_path.startswith("/"):
            base_path = "/" + base_path
        if not host:
            return (base_path,) if base_path else ()
        schemes = _str_list(self.doc.get("schemes")) or ["https"]
        # https first: `base_url()` uses the first server, and nobody wants the http one by default
        schemes.sort(key=lambda s: s != "https")
        return tuple(strip_userinfo(f"{scheme}://{host}{base_path.rstrip('/')}") for scheme in schemes)

    def _security_schemes(self) -> tuple[SecurityScheme, ...]:
        if self.swagger2:
            raw_schemes = _dict(self.doc.get("securityDefinitions"))
        else:
            raw_schemes = _dict(_dict(self.doc.get("components")).get("securitySchemes"))
        schemes = []
        for name, raw in raw_schemes.items():
            scheme = _dict(self.resolver.follow(raw).node)
            if scheme:
                schemes.append(self._security_scheme(str(name), scheme))
        return tuple(schemes)

    def _security_scheme(self, name: str, raw: dict[str, Any]) -> SecurityScheme:
        kind = _text(raw.get("type"))
        scheme = _text(raw.get("scheme")).lower()
        flows: list[str] = []
        scopes: list[str] = []
        if self.swagger2 and kind == "basic":
            kind, scheme = "http", "basic"
        if kind == "oauth2":
            if self.swagger2:
                # Swagger 2 has one flow per scheme; name it as OpenAPI 3 does so both read the same
                flow_name = {"accessCode": "authorizationCode", "application": "clientCredentials"}.get(
                    _text(raw.get("flow")), _text(raw.get("flow"))
                )
                raw_flows: dict[str, Any] = {flow_name or "oauth2": raw}
            else:
                raw_flows = _dict(raw.get("flows"))
            for flow_name, raw_flow in raw_flows.items():
                flow = _dict(raw_flow)
                flows.append(_flow_label(str(flow_name), flow))
                for scope in _dict(flow.get("scopes")):
                    if str(scope) not in scopes:
                        scopes.append(str(scope))
        elif kind == "openIdConnect":
            flows.append(f"openIdConnect: {_text(raw.get('openIdConnectUrl'))}")
        return SecurityScheme(
            name=name,
            type=kind,
            scheme=scheme,
            location=_text(raw.get("in")),
            param_name=_text(raw.get("name")),
            bearer_format=_text(raw.get("bearerFormat")),
            description=truncate(strip_html(_text(raw.get("description"))), MAX_PARAM_DESCRIPTION),
            flows=tuple(flows),
            scopes=tuple(scopes[:MAX_SCOPES]),
        )

    # ------------------------------------------------------------------ operations

    def _operation(self, path: str, method: str, op: dict[str, Any], item: dict[str, Any]) -> Operation:
        raw_params = self._merged_parameters(item.get("parameters"), op.get("parameters"))
        if self.swagger2:
            parameters, request_body = self._swagger2_parameters(raw_params, op)
            servers: tuple[str, ...] = ()
        else:
            parameters = tuple(self._parameter(p) for p in raw_params)
            request_body = self._request_body(op.get("requestBody"))
            servers = _servers(op.get("servers")) or _servers(item.get("servers"))
        return Operation(
            kind=ItemKind.OPERATION,
            method=method.upper(),
            path=path,
            operation_id=_text(op.get("operationId")),
            summary=strip_html(_text(op.get("summary"))),
            description=truncate(strip_html(_text(op.get("description"))), MAX_OPERATION_DESCRIPTION),
            tags=tuple(_str_list(op.get("tags"))),
            parameters=parameters,
            request_body=request_body,
            responses=self._responses(op),
            security=_security(op.get("security")),
            deprecated=_truthy(op.get("deprecated")),
            servers=servers,
        )

    def _merged_parameters(self, path_level: Any, op_level: Any) -> list[dict[str, Any]]:
        """Path-item parameters first, each replaced in place by an operation one with the same name+in."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*_list(path_level), *_list(op_level)]:
            param = _dict(self.resolver.follow(raw).node)
            if param.get("name") is None:
                continue
            merged[(_text(param.get("name")), _text(param.get("in")))] = param
        return list(merged.values())

    def _parameter(self, param: dict[str, Any]) -> Parameter:
        location = _text(param.get("in"))
        if self.swagger2:
            schema: Any = param  # Swagger 2 puts type / items / enum on the parameter itself
        elif "schema" in param:
            schema = param["schema"]
        else:
            # OpenAPI 3 allows `content` instead of `schema`: one media type holding the schema
            media: Any = next(iter(_dict(param.get("content")).values()), None)
            schema = _dict(media).get("schema")
        shape = self._shape(schema)
        example = _first_example(param, self.resolver)
        return Parameter(
            name=_text(param.get("name")),
            location=location,
            required=location == "path" or _truthy(param.get("required")),
            type=shape.type,
            description=truncate(strip_html(_text(param.get("description"))), MAX_PARAM_DESCRIPTION)
            or shape.description,
            enum=shape.enum,
            example=_example_text(example, MAX_FIELD_EXAMPLE) if example is not _NO_EXAMPLE else shape.example,
        )

    def _swagger2_parameters(
        self, raw_params: list[dict[str, Any]], op: dict[str, Any]
    ) -> tuple[tuple[Parameter, ...], RequestBody | None]:
        """Swagger 2 puts the body in parameters: `in: body` is a JSON body, `in: formData` a form body."""
        consumes = _str_list(op.get("consumes")) or self.consumes
        parameters: list[Parameter] = []
        form: list[dict[str, Any]] = []
        body: RequestBody | None = None
        for param in raw_params:
            location = _text(param.get("in"))
            if location == "body":
                content_type = _JSON if not consumes or _JSON in consumes else consumes[0]
                body = RequestBody(
                    content_type=content_type,
                    fields=self._flatten(param.get("schema")),
                    required=_truthy(param.get("required")),
                    description=truncate(strip_html(_text(param.get("description"))), MAX_PARAM_DESCRIPTION),
                )
            elif location == "formData":
                form.append(param)
            else:
                parameters.append(self._parameter(param))
        if body is None and form:
            has_file = any(_text(p.get("type")) == "file" for p in form)
            multipart_only = _MULTIPART in consumes and _FORM not in consumes
            body = RequestBody(
                content_type=_MULTIPART if has_file or multipart_only else _FORM,
                fields=tuple(self._form_field(p) for p in form[:MAX_FIELDS]),
                required=any(_truthy(p.get("required")) for p in form),
            )
        return tuple(parameters), body

    def _form_field(self, param: dict[str, Any]) -> SchemaField:
        shape = self._shape(param)
        description = strip_html(_text(param.get("description")))
        return SchemaField(
            name=_text(param.get("name")),
            type=shape.type,
            required=_truthy(param.get("required")),
            description=first_sentence(description) if description else shape.description,
            enum=shape.enum,
            example=shape.example,
        )

    def _request_body(self, raw: Any) -> RequestBody | None:
        if raw is None:
            return None
        body = _dict(self.resolver.follow(raw).node)
        content = _dict(body.get("content"))
        if not content:
            return None
        content_type = _choose_media_type([str(k) for k in content])
        media = _dict(content.get(content_type))
        schema = media.get("schema")
        required = _truthy(body.get("required"))
        if not required and _is_empty_object(_dict(self.resolver.follow(schema).node)):
            return None  # Stripe declares an empty, optional form body on every GET and DELETE
        example = _first_example(media, self.resolver)
        description = strip_html(_text(body.get("description"))) or self._shape(schema).description
        return RequestBody(
            content_type=content_type,
            fields=self._flatten(schema),
            required=required,
            description=truncate(description, MAX_PARAM_DESCRIPTION),
            example=_example_text(example, MAX_EXAMPLE) if example is not _NO_EXAMPLE else None,
        )

    def _responses(self, op: dict[str, Any]) -> tuple[Response, ...]:
        responses = []
        for status, raw in _dict(op.get("responses")).items():
            response = _dict(self.resolver.follow(raw).node)
            status_str = str(status)
            fields: tuple[SchemaField, ...] = ()
            # Only success bodies are flattened: error bodies are mostly the same envelope on every operation.
            if status_str.startswith("2"):
                fields = self._flatten(self._response_schema(response, op))
            responses.append(
                Response(
                    status=status_str,
                    description=truncate(strip_html(_text(response.get("description"))), MAX_RESPONSE_DESCRIPTION),
                    fields=fields,
                )
            )
        return tuple(responses)

    def _response_schema(self, response: dict[str, Any], op: dict[str, Any]) -> Any:
        if self.swagger2:
            produces = _str_list(op.get("produces")) or self.produces
            if produces and not any("json" in p for p in produces):
                return None
            return response.get("schema")
        content = _dict(response.get("content"))
        json_types = [str(k) for k in content if "json" in str(k)]
        if not json_types:
            return None
        media_type = _JSON if _JSON in json_types else json_types[0]
        return _dict(content.get(media_type)).get("schema")

    # ------------------------------------------------------------------ schemas

    def _flatten(self, root: Any) -> tuple[SchemaField, ...]:
        """A body schema as dotted fields, breadth-first so that top-level fields survive the field cap."""
        if root is None:
            return ()
        key: Any = id(root)
        if _is_ref(root) and len(root) == 1:
            key = root["$ref"]  # many operations return the same component
        cached = self._flattened.get(key)
        if cached is not None:
            return cached[1]
        shape = self._shape(root)
        container, suffix = self._container(shape)
        found: list[tuple[tuple[int, ...], SchemaField]] = []
        queue: deque[tuple[str, _Shape, tuple[str, ...], int, tuple[int, ...]]] = deque()
        if container.properties:
            queue.append((suffix, container, shape.refs + container.refs, 1, ()))
        while queue and len(found) < MAX_FIELDS:
            prefix, parent, chain, depth, order = queue.popleft()
            for index, (prop, raw, required) in enumerate(parent.properties):
                if len(found) >= MAX_FIELDS:
                    break
                child = self._shape(raw)
                inner, child_suffix = self._container(child)
                name = f"{prefix}.{prop}" if prefix else prop
                label = child.type
                recursive = next((r for r in inner.refs + child.refs if r in chain), None)
                if recursive is not None:
                    label = _mark_recursive(label, ref_name(recursive))
                found.append(
                    (
                        (*order, index),
                        SchemaField(
                            name=name,
                            type=label,
                            required=required,
                            description=child.description,
                            enum=child.enum or inner.enum,
                            example=child.example,
                        ),
                    )
                )
                if recursive is None and inner.properties and depth < MAX_FIELD_DEPTH:
                    queue.append(
                        (
                            name + child_suffix,
                            inner,
                            chain + child.refs + inner.refs,
                            depth + 1,
                            (*order, index),
                        )
                    )
        # Breadth-first to choose, tree order to read: `address`, `address.city`, `name`.
        found.sort(key=lambda pair: pair[0])
        fields = tuple(f for _, f in found)
        self._flattened[key] = (root, fields)
        return fields

    def _container(self, shape: _Shape) -> tuple[_Shape, str]:
        """The shape whose properties become child fields, looking through arrays (`[]`) and maps (`.*`)."""
        suffix = ""
        for _ in range(MAX_FIELD_DEPTH):
            if shape.properties:
                break
            if shape.items is not None:
                shape, suffix = self._shape(shape.items), suffix + "[]"
            elif shape.values is not None:
                shape, suffix = self._shape(shape.values), suffix + ".*"
            else:
                break
        return shape, suffix

    def _shape(self, node: Any) -> _Shape:
        return self._build(node, ()).shape

    def _build(self, node: Any, active: tuple[str, ...]) -> _Built:
        """Describe one schema node, memoised; `active` holds the refs being built above it."""
        cached = self._shapes.get(id(node))
        if cached is not None:
            return _Built(cached[1])
        if id(node) in self._building and not _is_ref(node):
            # Only a YAML alias can make a node contain itself without a `$ref`; treat the repeat as opaque.
            # (A `$ref` node that repeats is caught, and named, as a recursive ref by `_build_uncached`.)
            return _Built(_Shape(type="any"), frozenset(("<alias cycle>",)))
        self._building.add(id(node))
        try:
            built = self._build_uncached(node, active)
        finally:
            self._building.discard(id(node))
        cut = built.cut - set(built.shape.refs)  # cycles back into this node itself are fine to remember
        if not cut:
            self._shapes[id(node)] = (node, built.shape)
        return _Built(built.shape, cut)

    def _build_uncached(self, node: Any, active: tuple[str, ...]) -> _Built:
        siblings = _dict(node)
        resolved = self.resolver.follow(node)
        if resolved.ref and resolved.ref in active:
            recursive = _Shape(type=f"object (recursive: {resolved.name})", name=resolved.name)
            return _Built(recursive, frozenset((resolved.ref,)))
        if len(active) >= MAX_REF_DEPTH:
            # A very long chain of distinct refs through items / unions: stop before Python's recursion limit.
            return _Built(_Shape(type="any", name=resolved.name), frozenset(("<too deep>",)))
        refs: tuple[str, ...] = (resolved.ref,) if resolved.ref else ()
        active = active + refs
        cut = _NO_CUT
        schema = _dict(resolved.node)
        name = resolved.name
        if "allOf" in schema:
            schema, part_ref, cut = self._merge_all_of(schema, active)
            if part_ref:
                refs += (part_ref,)
                name = name or ref_name(part_ref)
        nullable = _truthy(siblings.get("nullable")) or _truthy(schema.get("nullable"))

        types = _type_list(schema.get("type"))
        if "null" in types:
            nullable = True
            types = [t for t in types if t != "null"]

        # oneOf / anyOf: `[{type: null}, X]` is just a nullable X; all-`const` members are an enum (Discord)
        union_key = "oneOf" if "oneOf" in schema else "anyOf" if "anyOf" in schema else ""
        alternatives = list(schema.get(union_key) or ()) if union_key else []
        non_null = [a for a in alternatives if _type_list(_dict(a).get("type")) != ["null"]]
        if len(non_null) < len(alternatives):
            nullable = True
        enum = tuple(_scalar_text(v) for v in (schema.get("enum") or ()) if v is not None)
        if "const" in schema:
            enum = (_scalar_text(schema["const"]),)
        if non_null and all(isinstance(a, dict) and "const" in a for a in non_null):
            enum = tuple(_scalar_text(a["const"]) for a in non_null)
            if not types:
                types = sorted({_json_type(a["const"]) for a in non_null})
            non_null = []

        properties = self._properties(schema)
        items = schema.get("items")
        if isinstance(items, list):  # old tuple-style `items: [...]`
            items = items[0] if items else None
        values = schema.get("additionalProperties")
        values = values if isinstance(values, dict) and not properties else None

        description = _description(siblings) if resolved.ref else ""
        description = description or _description(schema)
        example = _example_text(_schema_example(schema), MAX_FIELD_EXAMPLE)

        if len(non_null) == 1 and not properties and not types:
            # A wrapper around one real alternative: take it over wholesale, keeping this node's notes.
            inner = self._build(non_null[0], active)
            shape = inner.shape
            label = shape.type if not nullable or shape.type.endswith("|null") else f"{shape.type}|null"
            return _Built(
                _Shape(
                    type=label,
                    description=description or shape.description,
                    enum=enum or shape.enum,
                    example=example or shape.example,
                    properties=shape.properties,
                    items=shape.items,
                    values=shape.values,
                    refs=refs + shape.refs,
                    name=name or shape.name,
                ),
                cut=cut | inner.cut,
            )

        if "const" in schema:
            label = f"const {_const_text(schema['const'])}"
        elif non_null and not properties:
            shapes = []
            for alternative in non_null[:MAX_ALTERNATIVES]:
                inner = self._build(alternative, active)
                cut |= inner.cut
                shapes.append(inner.shape)
            labels = [alt.type for alt in shapes]
            # The fields shown are those of the first alternative with properties, else of the first list or map.
            chosen = next((alt for alt in shapes if alt.properties), None) or next(
                (alt for alt in shapes if alt.items is not None or alt.values is not None), None
            )
            if chosen is not None:
                properties, items, values = chosen.properties, chosen.items, chosen.values
                refs += chosen.refs
            if len(non_null) > MAX_ALTERNATIVES:
                labels.append("…")
            if nullable:
                labels.append("null")
            label = f"{union_key}({' | '.join(labels)})"
            nullable = False
        else:
            label, item_cut = self._base_label(schema, types, name, properties, items, values, active)
            cut |= item_cut
        if nullable:
            label += "|null"
        shape = _Shape(
            type=label,
            description=description,
            enum=enum[:MAX_ENUM],
            example=example,
            properties=properties,
            items=items,
            values=values,
            refs=refs,
            name=name,
        )
        return _Built(shape, cut=cut)

    def _base_label(
        self,
        schema: dict[str, Any],
        types: list[str],
        name: str,
        properties: tuple[tuple[str, Any, bool], ...],
        items: Any,
        values: Any,
        active: tuple[str, ...],
    ) -> tuple[str, frozenset[str]]:
        """The type label of a non-union schema: `string`, `array<object (card)>`, `map<string, integer>`."""
        if not types:
            if properties or values is not None or "additionalProperties" in schema:
                types = ["object"]
            elif items is not None:
                types = ["array"]
            else:
                return ("file" if _is_binary(schema) else "any"), _NO_CUT
        labels = []
        cut = _NO_CUT
        for kind in types:
            if kind == "array":
                item_label = "any"
                if items is not None:
                    inner = self._build(items, active)
                    item_label, cut = inner.shape.type, cut | inner.cut
                labels.append(f"array<{item_label}>")
            elif kind == "object":
                if values is not None and not properties:
                    inner = self._build(values, active)
                    labels.append(f"map<string, {inner.shape.type}>")
                    cut |= inner.cut
                else:
                    labels.append(f"object ({name})" if name else "object")
            elif kind == "string" and _is_binary(schema):
                labels.append("string (binary)")
            else:
                labels.append(kind)
        return "|".join(labels), cut

    def _properties(self, schema: dict[str, Any]) -> tuple[tuple[str, Any, bool], ...]:
        required = schema.get("required")
        required_names = {str(r) for r in required} if isinstance(required, list) else set()
        return tuple(
            (str(prop), raw, str(prop) in required_names) for prop, raw in _dict(schema.get("properties")).items()
        )

    def _merge_all_of(
        self, schema: dict[str, Any], active: tuple[str, ...]
    ) -> tuple[dict[str, Any], str, frozenset[str]]:
        """Merge `allOf` members into one schema: properties and `required` add up, own keys win.

        Also returns the ref of the only member, when there is just one: `allOf: [$ref X]` plus notes (the
        OpenAPI 3.0 way to describe a ref) is X itself, while several members make a new, unnamed object.
        """
        merged: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required: list[Any] = []
        member_refs: list[str] = []
        cut = _NO_CUT
        for part in schema.get("allOf") or ():
            resolved = self.resolver.follow(part)
            if resolved.ref and resolved.ref in active:
                cut |= {resolved.ref}  # a schema that includes itself through allOf: the repeat adds nothing
                continue
            member = _dict(resolved.node)
            member_refs += [resolved.ref] if resolved.ref else []
            if "allOf" in member:
                member_active = (*active, resolved.ref) if resolved.ref else active
                member, _, inner_cut = self._merge_all_of(member, member_active)
                cut |= inner_cut
            properties.update(_dict(member.get("properties")))
            if isinstance(member.get("required"), list):
                required.extend(member["required"])
            for key, value in member.items():
                if key not in ("properties", "required", "allOf"):
                    merged.setdefault(key, value)
        for key, value in schema.items():
            if key not in ("properties", "required", "allOf"):
                merged[key] = value
        properties.update(_dict(schema.get("properties")))
        if isinstance(schema.get("required"), list):
            required.extend(schema["required"])
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        only_ref = member_refs[0] if len(member_refs) == 1 and len(schema.get("allOf") or ()) == 1 else ""
        return merged, only_ref, cut


# ---------------------------------------------------------------------- helpers


_NO_EXAMPLE: Any = object()
# Field descriptions keep one sentence (<= 200 chars); cleaning only this much of the raw text is plenty.
_DESCRIPTION_SCAN = 1000


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    """A string from a YAML/JSON scalar (YAML turns `version: 1.0` into a float and dates into dates)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return ""
    return str(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "null" if value is None else _text(value)


def _const_text(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else _scalar_text(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _str_list(value: Any) -> list[str]:
    return [_text(v) for v in value if _text(v)] if isinstance(value, list) else []


def _type_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [_text(v) for v in value if _text(v)]
    return [_text(value)] if _text(value) else []


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def _is_empty_object(schema: dict[str, Any]) -> bool:
    """An object schema that allows no properties at all (`properties: {}`, `additionalProperties: false`)."""
    return (
        "properties" in schema
        and not schema["properties"]
        and schema.get("additionalProperties") is False
        and not any(key in schema for key in ("allOf", "oneOf", "anyOf", "items"))
    )


def _is_binary(schema: dict[str, Any]) -> bool:
    return (
        _text(schema.get("type")) == "file"
        or _text(schema.get("format")) == "binary"
        or _text(schema.get("contentEncoding")) == "binary"
    )


def _description(schema: dict[str, Any]) -> str:
    """The first sentence of a schema's description; only its start is cleaned, which is all we keep."""
    text = _text(schema.get("description"))
    return first_sentence(strip_html(text[:_DESCRIPTION_SCAN])) if text else ""


def _schema_example(schema: dict[str, Any]) -> Any:
    if "example" in schema:
        return schema["example"]
    examples = schema.get("examples")  # JSON Schema 2020-12 (OpenAPI 3.1): a list of values
    if isinstance(examples, list) and examples:
        return examples[0]
    return _NO_EXAMPLE


def _first_example(holder: dict[str, Any], resolver: RefResolver) -> Any:
    """`example`, or the `value` of the first entry of an OpenAPI 3 `examples` map (which may be a `$ref`)."""
    if "example" in holder:
        return holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict) and examples:
        try:
            first = _dict(resolver.follow(next(iter(examples.values()))).node)
        except InvalidSpecError:
            # Examples are not checked up front (they are data); a bad one just means no example.
            resolver.warn("An `examples` entry has an unresolvable `$ref`; ignored.")
            return _NO_EXAMPLE
        if "value" in first:
            return first["value"]
    return _NO_EXAMPLE


def _example_text(value: Any, limit: int) -> str | None:
    if value is _NO_EXAMPLE:
        return None
    return truncate(_scalar_text(value), limit)


def _mark_recursive(label: str, name: str) -> str:
    plain = f"object ({name})"
    if plain in label:
        return label.replace(plain, f"object (recursive: {name})", 1)
    return f"{label} (recursive: {name})"


def _choose_media_type(media_types: list[str]) -> str:
    for preferred in _BODY_MEDIA_PREFERENCE:
        for media_type in media_types:
            if media_type.split(";")[0].strip().lower() == preferred:
                return media_type
    return media_types[0]


def _servers(value: Any) -> tuple[str, ...]:
    """Server URLs, with `{variables}` filled in from their defaults so the URL can be called."""
    urls = []
    for server in value if isinstance(value, list) else ():
        url = _text(_dict(server).get("url"))
        if not url:
            continue
        for var, spec in _dict(_dict(server).get("variables")).items():
            default = _text(_dict(spec).get("default"))
            if default:
                url = url.replace("{" + str(var) + "}", default)
        urls.append(strip_userinfo(url))  # `https://user:pass@host` would show a credential in every answer
    return tuple(urls)


def _security(value: Any) -> tuple[tuple[str, ...], ...] | None:
    """Security requirement alternatives; `None` when absent (spec default), `()` for an explicit `[]`."""
    if not isinstance(value, list):
        return None
    return tuple(tuple(str(name) for name in requirement) for requirement in value if isinstance(requirement, dict))


def _flow_label(flow_name: str, flow: dict[str, Any]) -> str:
    authorization_url = strip_userinfo(_text(flow.get("authorizationUrl")))
    token_url = strip_userinfo(_text(flow.get("tokenUrl")))
    if authorization_url and token_url:
        return f"{flow_name}: {authorization_url} (token URL: {token_url})"
    return f"{flow_name}: {authorization_url or token_url}".rstrip(": ")
