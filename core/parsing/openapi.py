"""OpenAPI 3.0 / 3.1 and Swagger 2.0 documents -> the normalised `ApiSpec`.

The input is an already-loaded dict (from JSON or YAML). Request and response body schemas are flattened
into dotted fields by `core.parsing.schema`.
"""

from __future__ import annotations

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
    Security,
    SecurityRequirement,
    SecurityScheme,
    SpecFormat,
)
from core.parsing.refs import RefResolver
from core.parsing.schema import MAX_FIELD_EXAMPLE, MAX_FIELDS, NO_EXAMPLE, SchemaFlattener, example_text
from core.parsing.text import first_sentence, strip_html, strip_userinfo, truncate
from core.parsing.values import as_dict, as_list, as_text, is_true, str_list

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

MAX_SCOPES = 50
MAX_SECURITY_ALTERNATIVES = 10  # real specs offer two or three ways to authenticate
MAX_SCHEMES_PER_ALTERNATIVE = 10
MAX_INFO_DESCRIPTION = 2000
MAX_OPERATION_DESCRIPTION = 4000
MAX_PARAM_DESCRIPTION = 500
MAX_RESPONSE_DESCRIPTION = 300
MAX_EXAMPLE = 1500

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
        version = as_text(document["openapi"])
        if not version.startswith("3."):
            raise InvalidSpecError(
                f"This spec says `openapi: {version}`, which is not a version I can read. "
                "OpenAPI 3.0 and 3.1 and Swagger 2.0 are supported."
            )
        spec_format = SpecFormat.OPENAPI3
    elif "swagger" in document:
        version = as_text(document["swagger"])
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


class _Parser:
    def __init__(self, document: dict[str, Any], resolver: RefResolver, spec_format: SpecFormat, version: str) -> None:
        self.doc = document
        self.resolver = resolver
        self.format = spec_format
        self.version = version
        self.swagger2 = spec_format is SpecFormat.SWAGGER2
        self.schemas = SchemaFlattener(resolver)
        self.consumes = str_list(document.get("consumes"))
        self.produces = str_list(document.get("produces"))

    # ------------------------------------------------------------------ spec level

    def parse(self) -> ApiSpec:
        info = as_dict(self.doc.get("info"))
        operations: list[Operation] = []
        for path, raw_item in as_dict(self.doc.get("paths")).items():
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
            title=strip_html(as_text(info.get("title"))) or "Untitled API",
            version=as_text(info.get("version")),
            description=truncate(strip_html(as_text(info.get("description"))), MAX_INFO_DESCRIPTION),
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
        host = as_text(self.doc.get("host")).rstrip("/")
        base_path = as_text(self.doc.get("basePath"))
        if base_path and not base_path.startswith("/"):
            base_path = "/" + base_path
        if not host:
            return (base_path,) if base_path else ()
        schemes = str_list(self.doc.get("schemes")) or ["https"]
        # https first: `base_url()` uses the first server, and nobody wants the http one by default
        schemes.sort(key=lambda s: s != "https")
        return tuple(strip_userinfo(f"{scheme}://{host}{base_path.rstrip('/')}") for scheme in schemes)

    def _security_schemes(self) -> tuple[SecurityScheme, ...]:
        if self.swagger2:
            raw_schemes = as_dict(self.doc.get("securityDefinitions"))
        else:
            raw_schemes = as_dict(as_dict(self.doc.get("components")).get("securitySchemes"))
        schemes = []
        for name, raw in raw_schemes.items():
            scheme = as_dict(self.resolver.follow(raw).node)
            if scheme:
                schemes.append(self._security_scheme(str(name), scheme))
        return tuple(schemes)

    def _security_scheme(self, name: str, raw: dict[str, Any]) -> SecurityScheme:
        kind = as_text(raw.get("type"))
        scheme = as_text(raw.get("scheme")).lower()
        flows: list[str] = []
        scopes: list[str] = []
        if self.swagger2 and kind == "basic":
            kind, scheme = "http", "basic"
        if kind == "oauth2":
            if self.swagger2:
                # Swagger 2 has one flow per scheme; name it as OpenAPI 3 does so both read the same
                flow_name = {"accessCode": "authorizationCode", "application": "clientCredentials"}.get(
                    as_text(raw.get("flow")), as_text(raw.get("flow"))
                )
                raw_flows: dict[str, Any] = {flow_name or "oauth2": raw}
            else:
                raw_flows = as_dict(raw.get("flows"))
            for flow_name, raw_flow in raw_flows.items():
                flow = as_dict(raw_flow)
                flows.append(_flow_label(str(flow_name), flow))
                for scope in as_dict(flow.get("scopes")):
                    if str(scope) not in scopes:
                        scopes.append(str(scope))
        elif kind == "openIdConnect":
            flows.append(f"openIdConnect: {as_text(raw.get('openIdConnectUrl'))}")
        return SecurityScheme(
            name=name,
            type=kind,
            scheme=scheme,
            location=as_text(raw.get("in")),
            param_name=as_text(raw.get("name")),
            bearer_format=as_text(raw.get("bearerFormat")),
            description=truncate(strip_html(as_text(raw.get("description"))), MAX_PARAM_DESCRIPTION),
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
            operation_id=as_text(op.get("operationId")),
            summary=strip_html(as_text(op.get("summary"))),
            description=truncate(strip_html(as_text(op.get("description"))), MAX_OPERATION_DESCRIPTION),
            tags=tuple(str_list(op.get("tags"))),
            parameters=parameters,
            request_body=request_body,
            responses=self._responses(op),
            security=_security(op.get("security")),
            deprecated=is_true(op.get("deprecated")),
            servers=servers,
        )

    def _merged_parameters(self, path_level: Any, op_level: Any) -> list[dict[str, Any]]:
        """Path-item parameters first, each replaced in place by an operation one with the same name+in."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*as_list(path_level), *as_list(op_level)]:
            param = as_dict(self.resolver.follow(raw).node)
            if param.get("name") is None:
                continue
            merged[(as_text(param.get("name")), as_text(param.get("in")))] = param
        return list(merged.values())

    def _parameter(self, param: dict[str, Any]) -> Parameter:
        location = as_text(param.get("in"))
        if self.swagger2:
            schema: Any = param  # Swagger 2 puts type / items / enum on the parameter itself
        elif "schema" in param:
            schema = param["schema"]
        else:
            # OpenAPI 3 allows `content` instead of `schema`: one media type holding the schema
            media: Any = next(iter(as_dict(param.get("content")).values()), None)
            schema = as_dict(media).get("schema")
        shape = self.schemas.shape(schema)
        example = _first_example(param, self.resolver)
        return Parameter(
            name=as_text(param.get("name")),
            location=location,
            required=location == "path" or is_true(param.get("required")),
            type=shape.type,
            value_type=shape.value_type,
            description=truncate(strip_html(as_text(param.get("description"))), MAX_PARAM_DESCRIPTION)
            or shape.description,
            enum=shape.enum,
            example=example_text(example, MAX_FIELD_EXAMPLE) if example is not NO_EXAMPLE else shape.example,
        )

    def _swagger2_parameters(
        self, raw_params: list[dict[str, Any]], op: dict[str, Any]
    ) -> tuple[tuple[Parameter, ...], RequestBody | None]:
        """Swagger 2 puts the body in parameters: `in: body` is a JSON body, `in: formData` a form body."""
        consumes = str_list(op.get("consumes")) or self.consumes
        parameters: list[Parameter] = []
        form: list[dict[str, Any]] = []
        body: RequestBody | None = None
        for param in raw_params:
            location = as_text(param.get("in"))
            if location == "body":
                content_type = _JSON if not consumes or _JSON in consumes else consumes[0]
                body = RequestBody(
                    content_type=content_type,
                    fields=self.schemas.flatten(param.get("schema")),
                    required=is_true(param.get("required")),
                    description=truncate(strip_html(as_text(param.get("description"))), MAX_PARAM_DESCRIPTION),
                )
            elif location == "formData":
                form.append(param)
            else:
                parameters.append(self._parameter(param))
        if body is None and form:
            has_file = any(as_text(p.get("type")) == "file" for p in form)
            multipart_only = _MULTIPART in consumes and _FORM not in consumes
            body = RequestBody(
                content_type=_MULTIPART if has_file or multipart_only else _FORM,
                fields=tuple(self._form_field(p) for p in form[:MAX_FIELDS]),
                required=any(is_true(p.get("required")) for p in form),
            )
        return tuple(parameters), body

    def _form_field(self, param: dict[str, Any]) -> SchemaField:
        shape = self.schemas.shape(param)
        description = strip_html(as_text(param.get("description")))
        return SchemaField(
            name=as_text(param.get("name")),
            type=shape.type,
            value_type=shape.value_type,
            required=is_true(param.get("required")),
            description=first_sentence(description) if description else shape.description,
            enum=shape.enum,
            example=shape.example,
        )

    def _request_body(self, raw: Any) -> RequestBody | None:
        if raw is None:
            return None
        body = as_dict(self.resolver.follow(raw).node)
        content = as_dict(body.get("content"))
        if not content:
            return None
        content_type = _choose_media_type([str(k) for k in content])
        media = as_dict(content.get(content_type))
        schema = media.get("schema")
        required = is_true(body.get("required"))
        if not required and _is_empty_object(as_dict(self.resolver.follow(schema).node)):
            return None  # Stripe declares an empty, optional form body on every GET and DELETE
        example = _first_example(media, self.resolver)
        description = strip_html(as_text(body.get("description"))) or self.schemas.shape(schema).description
        return RequestBody(
            content_type=content_type,
            fields=self.schemas.flatten(schema),
            required=required,
            description=truncate(description, MAX_PARAM_DESCRIPTION),
            example=example_text(example, MAX_EXAMPLE) if example is not NO_EXAMPLE else None,
        )

    def _responses(self, op: dict[str, Any]) -> tuple[Response, ...]:
        responses = []
        for status, raw in as_dict(op.get("responses")).items():
            response = as_dict(self.resolver.follow(raw).node)
            status_str = str(status)
            fields: tuple[SchemaField, ...] = ()
            # Only success bodies are flattened: error bodies are mostly the same envelope on every operation.
            if status_str.startswith("2"):
                fields = self.schemas.flatten(self._response_schema(response, op))
            responses.append(
                Response(
                    status=status_str,
                    description=truncate(strip_html(as_text(response.get("description"))), MAX_RESPONSE_DESCRIPTION),
                    fields=fields,
                )
            )
        return tuple(responses)

    def _response_schema(self, response: dict[str, Any], op: dict[str, Any]) -> Any:
        if self.swagger2:
            produces = str_list(op.get("produces")) or self.produces
            if produces and not any("json" in p for p in produces):
                return None
            return response.get("schema")
        content = as_dict(response.get("content"))
        json_types = [str(k) for k in content if "json" in str(k)]
        if not json_types:
            return None
        media_type = _JSON if _JSON in json_types else json_types[0]
        return as_dict(content.get(media_type)).get("schema")


# ---------------------------------------------------------------------- helpers


def _is_empty_object(schema: dict[str, Any]) -> bool:
    """An object schema that allows no properties at all (`properties: {}`, `additionalProperties: false`)."""
    return (
        "properties" in schema
        and not schema["properties"]
        and schema.get("additionalProperties") is False
        and not any(key in schema for key in ("allOf", "oneOf", "anyOf", "items"))
    )


def _first_example(holder: dict[str, Any], resolver: RefResolver) -> Any:
    """`example`, or the `value` of the first entry of an OpenAPI 3 `examples` map (which may be a `$ref`)."""
    if "example" in holder:
        return holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict) and examples:
        try:
            first = as_dict(resolver.follow(next(iter(examples.values()))).node)
        except InvalidSpecError:
            # Examples are not checked up front (they are data); a bad one just means no example.
            resolver.warn("An `examples` entry has an unresolvable `$ref`; ignored.")
            return NO_EXAMPLE
        if "value" in first:
            return first["value"]
    return NO_EXAMPLE


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
        url = as_text(as_dict(server).get("url"))
        if not url:
            continue
        for var, spec in as_dict(as_dict(server).get("variables")).items():
            default = as_text(as_dict(spec).get("default"))
            if default:
                url = url.replace("{" + str(var) + "}", default)
        urls.append(strip_userinfo(url))  # `https://user:pass@host` would show a credential in every answer
    return tuple(urls)


def _security(value: Any) -> Security | None:
    """Security requirement alternatives with their scopes; `None` when absent (spec default), `()` for `[]`.

    Each alternative is a mapping of scheme name to the scopes it needs (`{"slackAuth": ["chat:write:bot"]}`);
    `{}` is the alternative "no auth". Swagger 2.0 and OpenAPI 3.x write it the same way.
    """
    if not isinstance(value, list):
        return None
    alternatives = [requirement for requirement in value if isinstance(requirement, dict)]
    return tuple(
        tuple(
            SecurityRequirement(str(name), tuple(dict.fromkeys(str_list(scopes)))[:MAX_SCOPES])
            for name, scopes in list(requirement.items())[:MAX_SCHEMES_PER_ALTERNATIVE]
        )
        for requirement in alternatives[:MAX_SECURITY_ALTERNATIVES]
    )


def _flow_label(flow_name: str, flow: dict[str, Any]) -> str:
    authorization_url = strip_userinfo(as_text(flow.get("authorizationUrl")))
    token_url = strip_userinfo(as_text(flow.get("tokenUrl")))
    if authorization_url and token_url:
        return f"{flow_name}: {authorization_url} (token URL: {token_url})"
    return f"{flow_name}: {authorization_url or token_url}".rstrip(": ")
