"""GraphQL requests: the endpoint, the example document and the variables its first operation declares."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse, print_ast

from core.models import ApiSpec, Operation, Parameter, SchemaField, ValueType
from core.snippets.bodies import tree_from_fields
from core.snippets.request import DEFAULT_BASE_URL, GraphQLBody
from core.snippets.values import placeholder_value, typed_example

_GRAPHQL_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([\[\]A-Za-z0-9_!]+)")


def graphql_url(spec: ApiSpec, operation: Operation) -> str:
    """The GraphQL endpoint: the server plus the operation's path (`/graphql` when it names none)."""
    if operation.path.startswith(("http://", "https://")):
        return operation.path
    base = spec.base_url(operation)
    if not base.startswith(("http://", "https://")):
        base = DEFAULT_BASE_URL
    path = "/" + operation.path.strip("/") if operation.path.strip("/") else "/graphql"
    return base if base.endswith(path) else base + path


def graphql_body(operation: Operation, notes: list[str]) -> GraphQLBody:
    """The document and values for its required variables (and the optional ones that have examples)."""
    document = operation.graphql_document.strip()
    if not document:
        keyword = operation.graphql_type or "query"
        document = f"{keyword} {{\n  {operation.name}\n}}"
        notes.append("Add the arguments and a selection of fields this field needs.")
    params = {p.name: p for p in operation.parameters}
    fields = operation.request_body.fields if operation.request_body else ()
    variables: dict[str, Any] = {}
    for name, type_text, has_default in _graphql_variable_definitions(document):
        param = params.get(name)
        required = type_text.endswith("!") and not has_default
        if not required and (param is None or param.example in (None, "")):
            continue  # optional variables may be left out
        variables[name] = _graphql_value(name, type_text, param, fields, notes)
    return GraphQLBody(document, variables)


def _graphql_variable_definitions(document: str) -> list[tuple[str, str, bool]]:
    """(name, type, has a default) for each variable the document's first operation declares."""
    try:
        parsed = parse(document)
    except GraphQLSyntaxError:
        header = document.split("{", 1)[0]
        return [(name, type_text, False) for name, type_text in _GRAPHQL_VARIABLE.findall(header)]
    for definition in parsed.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return [
                (d.variable.name.value, print_ast(d.type), d.default_value is not None)
                for d in definition.variable_definitions or ()
            ]
    return []


def _graphql_value(
    name: str, type_text: str, param: Parameter | None, fields: tuple[SchemaField, ...], notes: list[str]
) -> Any:
    if param is not None and param.example not in (None, ""):
        return typed_example(str(param.example), _graphql_scalar_type(type_text))
    if param is not None and param.enum:
        return param.enum[0]
    prefixed = tuple(replace(f, name=f.name[len(name) + 1 :]) for f in fields if f.name.startswith(name + "."))
    named = type_text.strip("[]!")
    is_list = type_text.startswith("[")
    if prefixed:
        value: Any = tree_from_fields(prefixed, notes, f"fields of ${name}")
    elif fields and named not in _GRAPHQL_SCALARS and param is None:
        value = tree_from_fields(tuple(fields), notes, f"fields of ${name}")
    elif named in _GRAPHQL_SCALARS or not named.endswith("Input"):
        value = placeholder_value(name, _graphql_scalar_type(named))
    else:
        notes.append(f"Fill in the fields of {named} for ${name}.")
        value = {}
    return [value] if is_list else value


_GRAPHQL_SCALARS = frozenset({"Int", "Float", "Boolean", "String", "ID"})


def _graphql_scalar_type(type_text: str) -> ValueType:
    named = type_text.strip("[]!")
    return ValueType(({"Int": "integer", "Float": "number", "Boolean": "boolean"}.get(named, "string"),))
