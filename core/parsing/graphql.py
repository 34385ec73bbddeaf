"""Parse GraphQL SDL into the normalised model: one `Operation` per root field.

The SDL is read with `graphql.parse()` and walked as an AST instead of being built into a schema, because
real schemas are not always valid: GitHub's defines `EnterpriseOwnerInfo.repositoryDeployKeySetting`
twice, which `build_schema()` rejects. Duplicates are merged (first definition wins) and reported in
`ApiSpec.warnings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, cast

from graphql import GraphQLError, parse, print_ast
from graphql.language import ast

from core.errors import InvalidSpecError
from core.models import (
    ApiSpec,
    ItemKind,
    Operation,
    Parameter,
    RequestBody,
    Response,
    SchemaField,
    SpecFormat,
    ValueType,
)
from core.parsing.text import first_sentence, truncate

DESCRIPTION_LIMIT = 4000
FIELD_DESCRIPTION_LIMIT = 300
MAX_ENUM_VALUES = 50
MAX_RESPONSE_FIELDS = 60
INPUT_DEPTH = 2  # `input.title` is depth 1, `input.author.name` depth 2
SELECTION_DEPTH = 2  # levels of object fields below the root field in generated documents
MAX_SELECTIONS = 8  # fields per level in generated documents
MAX_LEAVES = 6  # leaves on the root field's type, leaving room for a couple of object fields
MAX_NESTED_LEAVES = 4  # leaves on nested objects: enough to identify them (`issue { id title number url }`)
MAX_UNION_MEMBERS = 3

BUILTIN_SCALARS = frozenset({"Int", "Float", "String", "Boolean", "ID"})
ROOT_DEFAULTS = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}

# Leaf fields worth showing first in a generated document, in this order; the rest follow in schema order.
_PREFERRED_LEAVES = (
    "id",
    "name",
    "login",
    "title",
    "number",
    "url",
    "state",
    "nameWithOwner",
    "slug",
    "key",
    "totalCount",
    "clientMutationId",
    "success",
)

_TypeNode = (
    ast.ObjectTypeDefinitionNode
    | ast.ObjectTypeExtensionNode
    | ast.InterfaceTypeDefinitionNode
    | ast.InterfaceTypeExtensionNode
    | ast.InputObjectTypeDefinitionNode
    | ast.InputObjectTypeExtensionNode
    | ast.EnumTypeDefinitionNode
    | ast.EnumTypeExtensionNode
    | ast.UnionTypeDefinitionNode
    | ast.UnionTypeExtensionNode
    | ast.ScalarTypeDefinitionNode
    | ast.ScalarTypeExtensionNode
)

_FieldNode = TypeVar("_FieldNode", ast.FieldDefinitionNode, ast.InputValueDefinitionNode)

_KINDS: dict[type, str] = {
    ast.ObjectTypeDefinitionNode: "object",
    ast.ObjectTypeExtensionNode: "object",
    ast.InterfaceTypeDefinitionNode: "interface",
    ast.InterfaceTypeExtensionNode: "interface",
    ast.InputObjectTypeDefinitionNode: "input",
    ast.InputObjectTypeExtensionNode: "input",
    ast.EnumTypeDefinitionNode: "enum",
    ast.EnumTypeExtensionNode: "enum",
    ast.UnionTypeDefinitionNode: "union",
    ast.UnionTypeExtensionNode: "union",
    ast.ScalarTypeDefinitionNode: "scalar",
    ast.ScalarTypeExtensionNode: "scalar",
}


@dataclass
class _Type:
    """One named type with every definition and extension of it merged."""

    name: str
    kind: str
    description: str = ""
    fields: dict[str, ast.FieldDefinitionNode] = field(default_factory=dict)
    input_fields: dict[str, ast.InputValueDefinitionNode] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)  # enum values
    members: list[str] = field(default_factory=list)  # union member types


@dataclass
class _Schema:
    types: dict[str, _Type]
    roots: dict[str, str]  # "query" -> type name
    description: str
    warnings: list[str]

    def kind(self, type_name: str) -> str:
        if type_name in BUILTIN_SCALARS:
            return "scalar"
        known = self.types.get(type_name)
        return known.kind if known else "scalar"  # an undefined type can only be selected as a leaf

    def is_leaf(self, type_name: str) -> bool:
        return self.kind(type_name) in ("scalar", "enum")


@dataclass(frozen=True)
class _Selection:
    """A field in a generated document: `name(args)` and its sub-selections (empty for leaves)."""

    text: str
    children: tuple[_Selection, ...] = ()


def parse_graphql(text: str) -> ApiSpec:
    """Parse GraphQL SDL text into an `ApiSpec` with one operation per Query/Mutation/Subscription field.

    Raises `InvalidSpecError` when the text is not SDL or defines no root fields.
    """
    try:
        document = parse(text, no_location=True)
    except GraphQLError as error:
        raise InvalidSpecError(f"This isn't valid GraphQL SDL: {error.message}") from error

    schema = _collect(document)
    operations: list[Operation] = []
    for graphql_type in ("query", "mutation", "subscription"):
        root = schema.types.get(schema.roots[graphql_type])
        if root is None or root.kind != "object":
            continue
        operations.extend(_operation(schema, graphql_type, node) for node in root.fields.values())
    if not operations:
        raise InvalidSpecError("This GraphQL file defines no Query, Mutation or Subscription fields.")

    return ApiSpec(
        format=SpecFormat.GRAPHQL,
        title=first_sentence(schema.description, 120) or "GraphQL API",
        description=truncate(schema.description, DESCRIPTION_LIMIT),
        operations=tuple(operations),
        warnings=tuple(schema.warnings),
    )


# --- collecting the type system -----------------------------------------------------------------------


def _collect(document: ast.DocumentNode) -> _Schema:
    types: dict[str, _Type] = {}
    roots = dict(ROOT_DEFAULTS)
    description = ""
    warnings: list[str] = []
    defined: set[str] = set()

    for definition in document.definitions:
        if isinstance(definition, ast.SchemaDefinitionNode | ast.SchemaExtensionNode):
            # `schema { query: RootQuery }` renames the root types.
            for operation_type in definition.operation_types or ():
                roots[operation_type.operation.value] = operation_type.type.name.value
            if isinstance(definition, ast.SchemaDefinitionNode) and definition.description:
                description = definition.description.value.strip()
            continue
        kind = _KINDS.get(type(definition))
        if kind is None:
            continue  # directive definitions, executable definitions
        node = cast(_TypeNode, definition)
        name = node.name.value
        is_extension = isinstance(node, ast.TypeExtensionNode)
        if not is_extension:
            if name in defined:
                warnings.append(f"Type {name} is defined more than once; the definitions were merged.")
            defined.add(name)
        merged = types.setdefault(name, _Type(name=name, kind=kind))
        if not is_extension and not merged.description:
            merged.description = _description(node)
        _merge(merged, node, warnings)

    return _Schema(types=types, roots=roots, description=description, warnings=warnings)


def _merge(merged: _Type, node: _TypeNode, warnings: list[str]) -> None:
    if isinstance(node, ast.InputObjectTypeDefinitionNode | ast.InputObjectTypeExtensionNode):
        for input_field in node.fields or ():
            _add_once(merged.input_fields, input_field.name.value, input_field, merged.name, warnings)
    elif isinstance(
        node,
        ast.ObjectTypeDefinitionNode
        | ast.ObjectTypeExtensionNode
        | ast.InterfaceTypeDefinitionNode
        | ast.InterfaceTypeExtensionNode,
    ):
        for field_node in node.fields or ():
            _add_once(merged.fields, field_node.name.value, field_node, merged.name, warnings)
    elif isinstance(node, ast.EnumTypeDefinitionNode | ast.EnumTypeExtensionNode):
        merged.values.extend(v.name.value for v in node.values or () if v.name.value not in merged.values)
    elif isinstance(node, ast.UnionTypeDefinitionNode | ast.UnionTypeExtensionNode):
        merged.members.extend(t.name.value for t in node.types or () if t.name.value not in merged.members)


def _add_once(target: dict[str, _FieldNode], name: str, node: _FieldNode, type_name: str, warnings: list[str]) -> None:
    if name in target:
        warnings.append(f"{type_name}.{name} is defined more than once; the first definition is used.")
        return
    target[name] = node


# --- operations ---------------------------------------------------------------------------------------


def _operation(schema: _Schema, graphql_type: str, node: ast.FieldDefinitionNode) -> Operation:
    name = node.name.value
    arguments = tuple(node.arguments or ())
    return_type = print_ast(node.type)
    reason = _deprecation_reason(node)

    description = _description(node)
    if reason is not None:
        description = f"{description}\n\nDeprecated: {reason}".strip()

    return Operation(
        kind=ItemKind.GRAPHQL,
        method="POST",
        path="/graphql",
        operation_id=name,
        summary=first_sentence(_description(node)),
        description=truncate(description, DESCRIPTION_LIMIT),
        parameters=tuple(_parameter(schema, argument) for argument in arguments),
        request_body=_input_body(schema, arguments),
        responses=(_response(schema, return_type),),
        deprecated=reason is not None,
        name=name,
        graphql_type=graphql_type,
        graphql_signature=_signature(name, arguments, return_type),
        graphql_document=_document(schema, graphql_type, node),
    )


def _parameter(schema: _Schema, argument: ast.InputValueDefinitionNode) -> Parameter:
    description = _description(argument)
    if argument.default_value is not None:
        description = f"{description} (default: {print_ast(argument.default_value)})".strip()
    return Parameter(
        name=argument.name.value,
        location="argument",
        required=_is_required(argument),
        type=print_ast(argument.type),
        value_type=_value_type(schema, argument.type),
        description=truncate(description, FIELD_DESCRIPTION_LIMIT),
        enum=_enum_values(schema, argument.type),
    )


def _input_body(schema: _Schema, arguments: tuple[ast.InputValueDefinitionNode, ...]) -> RequestBody | None:
    """Flatten a lone input-object argument (GitHub's `input: CreateIssueInput!`) into dotted fields."""
    if len(arguments) != 1 or schema.kind(_named_type(arguments[0].type)) != "input":
        return None
    argument = arguments[0]
    prefix = f"{argument.name.value}[]" if _is_list(argument.type) else argument.name.value
    fields = _input_fields(schema, _named_type(argument.type), prefix, depth=1, path=())
    return RequestBody(
        content_type="application/json",
        fields=tuple(fields),
        required=_is_required(argument),
        description=f"GraphQL variables: `{argument.name.value}` is a {print_ast(argument.type)}.",
    )


def _input_fields(schema: _Schema, type_name: str, prefix: str, depth: int, path: tuple[str, ...]) -> list[SchemaField]:
    input_type = schema.types[type_name]
    fields = []
    for name, node in input_type.input_fields.items():
        dotted = f"{prefix}.{name}"
        fields.append(
            SchemaField(
                name=dotted,
                type=print_ast(node.type),
                value_type=_value_type(schema, node.type),
                required=_is_required(node),
                description=truncate(_description(node), FIELD_DESCRIPTION_LIMIT),
                enum=_enum_values(schema, node.type),
            )
        )
        child = _named_type(node.type)
        # Input types may reference themselves (filters with `and`/`or`): never revisit one on the path.
        if schema.kind(child) == "input" and depth < INPUT_DEPTH and child not in (*path, type_name):
            child_prefix = f"{dotted}[]" if _is_list(node.type) else dotted
            fields.extend(_input_fields(schema, child, child_prefix, depth + 1, (*path, type_name)))
    return fields


def _response(schema: _Schema, return_type: str) -> Response:
    """The return type, with its fields one level deep, so answers can say what comes back."""
    named = schema.types.get(_strip_type(return_type))
    description = f"{return_type}" + (f": {named.description}" if named and named.description else "")
    fields: tuple[SchemaField, ...] = ()
    if named is not None:
        fields = tuple(
            SchemaField(
                name=name,
                type=print_ast(node.type),
                value_type=_value_type(schema, node.type),
                description=truncate(_description(node), FIELD_DESCRIPTION_LIMIT),
            )
            for name, node in list(named.fields.items())[:MAX_RESPONSE_FIELDS]
        )
    return Response(status="200", description=truncate(description, FIELD_DESCRIPTION_LIMIT), fields=fields)


def _signature(name: str, arguments: tuple[ast.InputValueDefinitionNode, ...], return_type: str) -> str:
    printed = []
    for argument in arguments:
        text = f"{argument.name.value}: {print_ast(argument.type)}"
        if argument.default_value is not None:
            text += f" = {print_ast(argument.default_value)}"
        printed.append(text)
    return f"{name}({', '.join(printed)}): {return_type}" if printed else f"{name}: {return_type}"


# --- generated documents ------------------------------------------------------------------------------


def _document(schema: _Schema, graphql_type: str, node: ast.FieldDefinitionNode) -> str:
    """A ready-to-send operation for a root field, with its required arguments as variables."""
    name = node.name.value
    return_name = _named_type(node.type)
    variables = [a for a in node.arguments or () if _is_required(a)]
    # Connections (GitHub's `search`, `securityAdvisories`) refuse to return nodes without `first`.
    if _is_connection(schema, return_name):
        variables += [a for a in node.arguments or () if a.name.value == "first" and a not in variables]

    header = graphql_type + " " + name[:1].upper() + name[1:]
    if variables:
        header += "(" + ", ".join(f"${a.name.value}: {print_ast(a.type)}" for a in variables) + ")"
    field_text = name
    if variables:
        field_text += "(" + ", ".join(f"{a.name.value}: ${a.name.value}" for a in variables) + ")"

    children: tuple[_Selection, ...] = ()
    if not schema.is_leaf(return_name):
        children = _selections(schema, return_name, SELECTION_DEPTH, (return_name,))
    root = _Selection(field_text, children)
    return header + " {\n" + "\n".join(_render(root, indent=1)) + "\n}"


def _selections(schema: _Schema, type_name: str, levels: int, path: tuple[str, ...]) -> tuple[_Selection, ...]:
    """What to select on an object/interface/union type, `levels` levels of object fields deep."""
    named = schema.types[type_name]
    if named.kind == "union":
        return _union_selections(schema, named)

    if _is_connection(schema, type_name):
        selections = []
        if "totalCount" in named.fields:
            selections.append(_Selection("totalCount"))
        node_type = _named_type(named.fields["nodes"].type)
        if levels > 1 and not schema.is_leaf(node_type):
            selections.append(_Selection("nodes", _selections(schema, node_type, levels - 1, (*path, node_type))))
        return tuple(selections) or (_Selection("__typename"),)

    usable = {
        name: node
        for name, node in named.fields.items()
        if not _has_required_arguments(node) and _deprecation_reason(node) is None
    }
    leaves = [name for name, node in usable.items() if schema.is_leaf(_named_type(node.type))]
    ordered = [n for n in _PREFERRED_LEAVES if n in leaves] + [n for n in leaves if n not in _PREFERRED_LEAVES]
    leaf_limit = MAX_LEAVES if levels == SELECTION_DEPTH else MAX_NESTED_LEAVES
    selections = [_Selection(n) for n in ordered[:leaf_limit]]

    if levels > 1:
        for name, node in usable.items():
            if len(selections) >= MAX_SELECTIONS:
                break
            child = _named_type(node.type)
            # Nested connections need pagination arguments and lists multiply the payload: skip both.
            if schema.is_leaf(child) or child in path or _is_list(node.type) or _is_connection(schema, child):
                continue
            sub = _selections(schema, child, levels - 1, (*path, child))
            if sub and sub != (_Selection("__typename"),):
                selections.append(_Selection(name, sub))

    if named.kind == "interface" or not selections:
        selections.append(_Selection("__typename"))
    return tuple(selections)


def _union_selections(schema: _Schema, union: _Type) -> tuple[_Selection, ...]:
    selections = [_Selection("__typename")]
    for member in union.members:
        member_type = schema.types.get(member)
        if member_type is None or "id" not in member_type.fields:
            continue
        selections.append(_Selection(f"... on {member}", (_Selection("id"),)))
        if len(selections) > MAX_UNION_MEMBERS:
            break
    return tuple(selections)


def _render(selection: _Selection, indent: int) -> list[str]:
    pad = "  " * indent
    if not selection.children:
        return [pad + selection.text]
    if all(not child.children for child in selection.children):
        # Small leaf-only selections read better on one line: `issue { id title url }`.
        inline = f"{pad}{selection.text} {{ {' '.join(child.text for child in selection.children)} }}"
        if len(inline) <= 100:
            return [inline]
    lines = [f"{pad}{selection.text} {{"]
    for child in selection.children:
        lines.extend(_render(child, indent + 1))
    lines.append(pad + "}")
    return lines


# --- small AST helpers --------------------------------------------------------------------------------


def _description(node: ast.Node) -> str:
    description = getattr(node, "description", None)
    return description.value.strip() if isinstance(description, ast.StringValueNode) else ""


def _deprecation_reason(node: ast.FieldDefinitionNode) -> str | None:
    """The @deprecated reason ("No longer supported" when none is given), or None if not deprecated."""
    for directive in node.directives or ():
        if directive.name.value != "deprecated":
            continue
        for argument in directive.arguments or ():
            if argument.name.value == "reason" and isinstance(argument.value, ast.StringValueNode):
                return argument.value.value
        return "No longer supported"
    return None


def _named_type(type_node: ast.TypeNode) -> str:
    while isinstance(type_node, ast.NonNullTypeNode | ast.ListTypeNode):
        type_node = type_node.type
    assert isinstance(type_node, ast.NamedTypeNode)
    return type_node.name.value


# The JSON a GraphQL type is sent and received as (custom scalars could be anything).
_JSON_TYPES = {"Int": "integer", "Float": "number", "Boolean": "boolean", "String": "string", "ID": "string"}
_KIND_JSON_TYPES = {"enum": "string", "input": "object", "object": "object", "interface": "object", "union": "object"}


def _value_type(schema: _Schema, type_node: ast.TypeNode) -> ValueType:
    """`[Int!]!` is an array of integers, `CreateIssueInput` an object, `DateTime` unknown."""
    if not _is_list(type_node):
        return ValueType(_json_type(schema, type_node))
    element = type_node.type if isinstance(type_node, ast.NonNullTypeNode) else type_node
    assert isinstance(element, ast.ListTypeNode)
    return ValueType(("array",), ("array",) if _is_list(element.type) else _json_type(schema, element.type))


def _json_type(schema: _Schema, type_node: ast.TypeNode) -> tuple[str, ...]:
    name = _named_type(type_node)
    kind = _JSON_TYPES.get(name) or _KIND_JSON_TYPES.get(schema.kind(name), "")
    return (kind,) if kind else ()


def _strip_type(printed: str) -> str:
    return printed.replace("[", "").replace("]", "").replace("!", "").strip()


def _is_list(type_node: ast.TypeNode) -> bool:
    if isinstance(type_node, ast.NonNullTypeNode):
        type_node = type_node.type
    return isinstance(type_node, ast.ListTypeNode)


def _is_required(node: ast.InputValueDefinitionNode) -> bool:
    return isinstance(node.type, ast.NonNullTypeNode) and node.default_value is None


def _has_required_arguments(node: ast.FieldDefinitionNode) -> bool:
    return any(_is_required(argument) for argument in node.arguments or ())


def _is_connection(schema: _Schema, type_name: str) -> bool:
    named = schema.types.get(type_name)
    return named is not None and named.kind == "object" and "nodes" in named.fields and "pageInfo" in named.fields


def _enum_values(schema: _Schema, type_node: ast.TypeNode) -> tuple[str, ...]:
    named = schema.types.get(_named_type(type_node))
    if named is None or named.kind != "enum":
        return ()
    return tuple(named.values[:MAX_ENUM_VALUES])
