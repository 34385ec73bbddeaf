"""Documentation coverage of a spec: what a reader of it would miss.

OpenAPI 3 and Swagger 2 are read from the uploaded document (locations are JSON pointers into it); Postman
collections, GraphQL SDL and Markdown docs from the parsed model (locations are their operations' labels).
Every walk is bounded: `MAX_NODES` nodes of the document in all, `MAX_NESTING` levels inside one schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.lint.model import (
    DUPLICATE_OPERATION_ID,
    FIELD_NO_DESCRIPTION,
    NO_DESCRIPTION,
    NO_ERROR_RESPONSES,
    NO_SUMMARY,
    PARAMETER_NO_DESCRIPTION,
    REQUEST_NO_EXAMPLE,
    RESPONSE_NO_EXAMPLE,
    UNDEFINED_REFERENCE,
    UNUSED_SCHEMA,
    WRITE_NO_SECURITY,
    Findings,
    pointer,
)
from core.models import ApiSpec, ItemKind

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
MAX_NODES = 3_000_000  # the loader's own bound on a document's nodes
MAX_NESTING = 12  # levels of inline schemas walked for field descriptions
MAX_REF_HOPS = 16  # `$ref`s followed in a row
MAX_POINTER_TOKENS = 64


class Document:
    """An OpenAPI 3 or Swagger 2 document, with local `$ref`s resolved within bounds."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.root = document
        self.swagger2 = "swagger" in document and "openapi" not in document
        self.schemas_at: tuple[str, ...] = ("definitions",) if self.swagger2 else ("components", "schemas")
        container: Any = document
        for token in self.schemas_at:
            container = container.get(token) if isinstance(container, dict) else None
        self.schemas: dict[str, Any] = container if isinstance(container, dict) else {}

    def lookup(self, ref: str) -> tuple[bool, Any]:
        """(found, node) for a local `#/…` pointer."""
        if ref == "#":
            return True, self.root
        if not ref.startswith("#/"):
            return False, None
        node: Any = self.root
        tokens = ref[2:].split("/")
        if len(tokens) > MAX_POINTER_TOKENS:
            return False, None
        for raw in tokens:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return False, None
        return True, node

    def follow(self, node: Any) -> tuple[Any, str]:
        """`node` with its `$ref`s followed (at most `MAX_REF_HOPS`), and the pointer it was found at ("" inline)."""
        where = ""
        for _ in range(MAX_REF_HOPS):
            if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
                return node, where
            where = node["$ref"]
            found, node = self.lookup(where)
            if not found:
                return None, where
        return None, where


def lint_document(document: dict[str, Any]) -> tuple[Findings, int]:
    """The coverage findings of an OpenAPI 3 / Swagger 2 document, and how many operations it has."""
    doc = Document(document)
    findings = Findings()
    operations = _operations(doc, findings)
    _field_descriptions(doc, findings)
    _references(doc, findings)
    return findings, operations


def _operations(doc: Document, findings: Findings) -> int:
    paths = doc.root.get("paths")
    if not isinstance(paths, dict):
        return 0
    operation_ids: dict[str, str] = {}
    parameters_seen: set[str] = set()
    count = 0
    for path, raw_item in paths.items():
        item, _ = doc.follow(raw_item)
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            count += 1
            at = pointer("paths", path, method)
            where = f"{method.upper()} {path}"
            if not _text(operation.get("summary")):
                findings.add(NO_SUMMARY, at, where)
            if not _text(operation.get("description")):
                findings.add(NO_DESCRIPTION, at, where)
            operation_id = operation.get("operationId")
            if isinstance(operation_id, str) and operation_id:
                if operation_id in operation_ids:
                    findings.add(DUPLICATE_OPERATION_ID, pointer("paths", path, method, "operationId"), where,
                                 f"{operation_id} (also at {operation_ids[operation_id]})")
                else:
                    operation_ids[operation_id] = where
            _parameters(doc, findings, item, operation, path, method, parameters_seen)
            _examples(doc, findings, operation, path, method, where)
            if method in WRITE_METHODS and not _secured(doc, operation):
                findings.add(WRITE_NO_SECURITY, at, where)
            responses = operation.get("responses")
            codes = [str(code) for code in responses] if isinstance(responses, dict) else []
            if not any(code.startswith(("4", "5")) or code.lower() == "default" for code in codes):
                findings.add(NO_ERROR_RESPONSES, pointer("paths", path, method, "responses"), where)
    return count


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _parameters(
    doc: Document, findings: Findings, item: dict[str, Any], operation: dict[str, Any], path: str, method: str,
    seen: set[str],
) -> None:
    """Parameters without a description, each counted once where it is defined (a shared one once in all)."""
    sources = (("parameters",), item.get("parameters")), ((method, "parameters"), operation.get("parameters"))
    for prefix, parameters in sources:
        if not isinstance(parameters, list):
            continue
        for index, raw in enumerate(parameters):
            parameter, ref = doc.follow(raw)
            at = ref or pointer("paths", path, *prefix, index)
            if at in seen or not isinstance(parameter, dict):
                continue
            seen.add(at)
            # OpenAPI 3.1 lets a description sit beside the $ref.
            described = _text(parameter.get("description")) or (isinstance(raw, dict) and _text(raw.get("description")))
            if not described:
                name = parameter.get("name")
                findings.add(PARAMETER_NO_DESCRIPTION, at, f"{method.upper()} {path}",
                             f"{parameter.get('in', '?')} parameter `{name}`")


def _has_example(doc: Document, media: Any) -> bool:
    if not isinstance(media, dict):
        return False
    if "example" in media or media.get("examples"):
        return True
    schema, _ = doc.follow(media.get("schema"))
    return isinstance(schema, dict) and ("example" in schema or bool(schema.get("examples")))


def _examples(doc: Document, findings: Findings, operation: dict[str, Any], path: str, method: str,
              where: str) -> None:
    """A request body, and the first success response with a body, should each show an example."""
    if doc.swagger2:
        parameters = operation.get("parameters")
        resolved = [doc.follow(p)[0] for p in parameters] if isinstance(parameters, list) else []
        body = next((p for p in resolved if isinstance(p, dict) and p.get("in") == "body"), None)
        if body is not None and not _has_example(doc, body) and "x-examples" not in operation:
            findings.add(REQUEST_NO_EXAMPLE, pointer("paths", path, method), where)
    else:
        body, _ = doc.follow(operation.get("requestBody"))
        content = body.get("content") if isinstance(body, dict) else None
        if isinstance(content, dict) and content and not any(_has_example(doc, m) for m in content.values()):
            findings.add(REQUEST_NO_EXAMPLE, pointer("paths", path, method, "requestBody"), where)
    responses = operation.get("responses")
    if not isinstance(responses, dict):
        return
    for code, raw in responses.items():
        if not str(code).startswith("2"):
            continue
        response, _ = doc.follow(raw)
        if not isinstance(response, dict):
            continue
        if doc.swagger2:
            if "schema" in response and not response.get("examples") and not _has_example(doc, response):
                findings.add(RESPONSE_NO_EXAMPLE, pointer("paths", path, method, "responses", code), where)
        else:
            content = response.get("content")
            if isinstance(content, dict) and content and not any(_has_example(doc, m) for m in content.values()):
                findings.add(RESPONSE_NO_EXAMPLE, pointer("paths", path, method, "responses", code), where)
        if "schema" in response or response.get("content"):
            return  # the first success response with a body speaks for the operation


def _secured(doc: Document, operation: dict[str, Any]) -> bool:
    """Whether the operation needs credentials: some requirement applies and none of the alternatives is `{}`."""
    security = operation.get("security", doc.root.get("security"))
    if not isinstance(security, list) or not security:
        return False
    return all(isinstance(alternative, dict) and alternative for alternative in security)


def _field_descriptions(doc: Document, findings: Findings) -> None:
    """Properties without a description, in the named schemas and in schemas written inline in operations."""
    budget = [MAX_NODES]
    for name, schema in doc.schemas.items():
        _walk_fields(schema, (*doc.schemas_at, name), str(name), findings, 0, budget)
    paths = doc.root.get("paths")
    for path, item in paths.items() if isinstance(paths, dict) else ():
        for method in HTTP_METHODS:
            operation = item.get(method) if isinstance(item, dict) else None
            if not isinstance(operation, dict):
                continue
            where = f"{method.upper()} {path}"
            for tokens, schema in _inline_schemas(doc, operation):
                _walk_fields(schema, ("paths", path, method, *tokens), where, findings, 0, budget)


def _inline_schemas(doc: Document, operation: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Any]]:
    body = operation.get("requestBody")
    if isinstance(body, dict) and isinstance(body.get("content"), dict):
        for media_type, media in body["content"].items():
            if isinstance(media, dict):
                yield ("requestBody", "content", media_type, "schema"), media.get("schema")
    parameters = operation.get("parameters")
    for index, parameter in enumerate(parameters if isinstance(parameters, list) else ()):
        if isinstance(parameter, dict) and parameter.get("in") == "body":
            yield ("parameters", str(index), "schema"), parameter.get("schema")
    responses = operation.get("responses")
    for code, response in responses.items() if isinstance(responses, dict) else ():
        if not isinstance(response, dict):
            continue
        if "schema" in response:
            yield ("responses", str(code), "schema"), response.get("schema")
        content = response.get("content")
        for media_type, media in content.items() if isinstance(content, dict) else ():
            if isinstance(media, dict):
                yield ("responses", str(code), "content", media_type, "schema"), media.get("schema")


def _walk_fields(schema: Any, tokens: tuple[str, ...], where: str, findings: Findings, depth: int,
                 budget: list[int]) -> None:
    """Inline properties only: a `$ref` is counted where the referenced schema is defined."""
    if not isinstance(schema, dict) or "$ref" in schema or depth > MAX_NESTING or budget[0] <= 0:
        return
    budget[0] -= 1
    properties = schema.get("properties")
    for name, value in properties.items() if isinstance(properties, dict) else ():
        if not isinstance(value, dict):
            continue
        at = (*tokens, "properties", str(name))
        if "$ref" not in value and not _text(value.get("description")):
            findings.add(FIELD_NO_DESCRIPTION, pointer(*at), where, f"field `{name}`")
        _walk_fields(value, at, where, findings, depth + 1, budget)
    for key in ("items", "additionalProperties"):
        _walk_fields(schema.get(key), (*tokens, key), where, findings, depth + 1, budget)
    for key in ("allOf", "anyOf", "oneOf"):
        members = schema.get(key)
        for index, member in enumerate(members if isinstance(members, list) else ()):
            _walk_fields(member, (*tokens, key, str(index)), where, findings, depth + 1, budget)


def _references(doc: Document, findings: Findings) -> None:
    """`$ref`s that point nowhere, and named schemas nothing reaches from the paths (or other components)."""
    schema_prefix = pointer(*doc.schemas_at) + "/"
    outside: set[str] = set()  # schemas referenced from outside the named schemas
    inside: dict[str, set[str]] = {}  # schema -> the schemas it references
    budget = MAX_NODES
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc.root, ())]
    while stack and budget > 0:
        node, tokens = stack.pop()
        budget -= 1
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref.startswith("#") and not doc.lookup(ref)[0]:
                    findings.add(UNDEFINED_REFERENCE, pointer(*tokens, "$ref"), "", ref[:200])
                elif ref.startswith(schema_prefix):
                    target = ref[len(schema_prefix):].split("/")[0].replace("~1", "/").replace("~0", "~")
                    owner = _owner(doc, tokens)
                    if owner is None:
                        outside.add(target)
                    else:
                        inside.setdefault(owner, set()).add(target)
            for key, value in node.items():
                if isinstance(value, dict | list) and len(tokens) < MAX_POINTER_TOKENS:
                    stack.append((value, (*tokens, str(key))))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, dict | list) and len(tokens) < MAX_POINTER_TOKENS:
                    stack.append((value, (*tokens, str(index))))
    reached = set(outside)
    frontier = list(outside)
    while frontier:
        for target in inside.get(frontier.pop(), ()):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    for name in doc.schemas:
        if str(name) not in reached:
            findings.add(UNUSED_SCHEMA, pointer(*doc.schemas_at, name), str(name))


def _owner(doc: Document, tokens: tuple[str, ...]) -> str | None:
    """The named schema a location is inside, if any."""
    size = len(doc.schemas_at)
    if len(tokens) > size and tokens[:size] == doc.schemas_at:
        return tokens[size]
    return None


def lint_model(spec: ApiSpec) -> tuple[Findings, int]:
    """Coverage of a spec known only through its parsed model (Postman, GraphQL SDL, Markdown)."""
    findings = Findings()
    # Only Postman collections can declare auth; GraphQL SDL and Markdown docs have no way to.
    check_auth = spec.format.value == "postman"
    for operation in spec.operations:
        where = operation.label
        if operation.kind is ItemKind.DOC_SECTION:
            continue  # a Markdown section is its own description
        if not operation.summary.strip() and operation.kind is not ItemKind.GRAPHQL:
            findings.add(NO_SUMMARY, "", where)
        if not operation.description.strip():
            findings.add(NO_DESCRIPTION, "", where)
        for parameter in operation.parameters:
            if not parameter.description.strip():
                findings.add(PARAMETER_NO_DESCRIPTION, "", where, f"{parameter.location} parameter `{parameter.name}`")
        if check_auth and operation.method.lower() in WRITE_METHODS:
            alternatives = spec.effective_security(operation)
            if not alternatives or any(not alternative for alternative in alternatives):
                findings.add(WRITE_NO_SECURITY, "", where)
    return findings, len(spec.operations)
