"""Turn a parsed spec into retrievable documents: one per operation, one per auth scheme, one overview.

Each document has three texts with different jobs:
- `embed_text`: short and dense with meaning, because embedding time grows with length;
- `lexical_text`: longer, for BM25 (identifiers split into words, parameter names, description);
- the full `Operation` / `SecurityScheme`, kept in the payload, for answers and snippets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from core.models import ApiSpec, ItemKind, Operation, SecurityScheme, from_dict, to_dict
from core.parsing.text import first_sentence, identifier_words, truncate

EMBED_DESCRIPTION_CHARS = 240
LEXICAL_DESCRIPTION_CHARS = 1500

AUTH_WORDS = "authentication authenticate authorization credentials access token api key sign in login"


@dataclass(frozen=True)
class Document:
    """One retrievable unit of a spec."""

    key: str
    kind: ItemKind
    title: str
    embed_text: str
    lexical_text: str
    identifiers: tuple[str, ...] = ()
    operation: Operation | None = None
    scheme: SecurityScheme | None = None
    item: dict[str, str] = field(default_factory=dict)

    def to_payload(self) -> str:
        """Serialise for storage next to the vector."""
        return json.dumps(
            {
                "key": self.key,
                "kind": self.kind.value,
                "title": self.title,
                "embed_text": self.embed_text,
                "lexical_text": self.lexical_text,
                "identifiers": list(self.identifiers),
                "operation": to_dict(self.operation) if self.operation else None,
                "scheme": to_dict(self.scheme) if self.scheme else None,
                "item": self.item,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_payload(cls, payload: str) -> Document:
        """Rebuild a document from `to_payload` output."""
        data: dict[str, Any] = json.loads(payload)
        return cls(
            key=data["key"],
            kind=ItemKind(data["kind"]),
            title=data["title"],
            embed_text=data["embed_text"],
            lexical_text=data["lexical_text"],
            identifiers=tuple(data["identifiers"]),
            operation=from_dict(Operation, data["operation"]) if data["operation"] else None,
            scheme=from_dict(SecurityScheme, data["scheme"]) if data["scheme"] else None,
            item=data["item"],
        )


def build_documents(spec: ApiSpec) -> list[Document]:
    """All documents for a spec, in a stable order."""
    documents = [_overview_document(spec)]
    documents += [scheme_document(spec, scheme) for scheme in spec.security_schemes]
    seen: set[str] = set()
    for operation in spec.operations:
        if operation.key in seen:  # identical duplicates add nothing retrievable
            continue
        seen.add(operation.key)
        documents.append(_operation_document(operation))
    return documents


def _path_words(path: str) -> str:
    segments = [s for s in re.split(r"[/]", path) if s and not s.startswith(("{", ":", "<"))]
    return " ".join(identifier_words(s) for s in segments)


def _operation_document(op: Operation) -> Document:
    description = op.description
    headline = (
        op.summary
        or first_sentence(description, EMBED_DESCRIPTION_CHARS)
        or identifier_words(op.operation_id or op.name)
    )
    names = " ".join(filter(None, [identifier_words(op.operation_id), identifier_words(op.name)]))
    deprecated = " (deprecated)" if op.deprecated else ""
    if op.kind is ItemKind.GRAPHQL:
        where = f"GraphQL {op.graphql_type} {op.name}"
    elif op.kind is ItemKind.POSTMAN:
        where = f"{op.folder} / {op.name}: {op.method} {_path_words(op.path)}"
    elif op.kind is ItemKind.DOC_SECTION:
        where = f"{op.name}: {op.method} {op.path}".rstrip(": ")
    else:
        where = f"{op.method} {op.path} ({_path_words(op.path)})"
    detail = description if description != headline else ""
    embed_parts = [f"{headline}{deprecated}", where, names, truncate(detail, EMBED_DESCRIPTION_CHARS)]
    embed_text = "\n".join(p for p in embed_parts if p)

    parameter_names = " ".join(identifier_words(p.name) for p in op.parameters)
    body_names = ""
    if op.request_body:
        body_names = " ".join(identifier_words(f.name) for f in op.request_body.fields[:40])
    lexical_parts = [
        op.method,
        op.path,
        _path_words(op.path),
        op.operation_id,
        names,
        op.summary,
        op.folder,
        " ".join(op.tags),
        op.graphql_signature,
        truncate(description, LEXICAL_DESCRIPTION_CHARS),
        parameter_names,
        body_names,
    ]
    identifiers = {i for i in (op.operation_id, op.path, op.path.lstrip("/"), op.name) if i and len(i) > 2}
    return Document(
        key=op.key,
        kind=op.kind,
        title=op.label,
        embed_text=embed_text,
        lexical_text="\n".join(p for p in lexical_parts if p),
        identifiers=tuple(sorted(identifiers)),
        operation=op,
        item=op.item(),
    )


def describe_scheme(scheme: SecurityScheme, flows: bool = True) -> str:
    """A one-line, human description of how a scheme is used (`flows`: with OAuth 2's URLs)."""
    kind = scheme.type.lower()
    if (kind == "http" and scheme.scheme.lower() == "bearer") or kind == "bearer":
        fmt = f" ({scheme.bearer_format})" if scheme.bearer_format else ""
        return f"Bearer token{fmt} in the `Authorization: Bearer <token>` header"
    if (kind == "http" and scheme.scheme.lower() == "basic") or kind == "basic":
        return "HTTP Basic auth (username and password in the `Authorization` header)"
    if kind == "apikey":
        return f"API key in the `{scheme.param_name}` {scheme.location or 'header'}"
    if kind == "oauth2":
        listed = "; ".join(scheme.flows) if flows else ""
        return "OAuth 2.0 access token as a Bearer token" + (f" (flows: {listed})" if listed else "")
    if kind == "openidconnect":
        return "OpenID Connect access token as a Bearer token"
    if kind == "oauth1":
        return "OAuth 1.0a signed requests (consumer key/secret plus access token/secret)"
    return f"{scheme.type} {scheme.scheme}".strip()


def scheme_document(spec: ApiSpec, scheme: SecurityScheme) -> Document:
    """The document of one security scheme (only the spec's title is read besides the scheme)."""
    how = describe_scheme(scheme)
    scopes = f" Scopes include: {', '.join(scheme.scopes[:12])}." if scheme.scopes else ""
    embed_text = (
        f"How to authenticate to {spec.title}: {how}. Security scheme {scheme.name}.\n"
        f"{truncate(scheme.description, EMBED_DESCRIPTION_CHARS)}"
    ).strip()
    lexical = "\n".join(
        [
            AUTH_WORDS,
            scheme.name,
            identifier_words(scheme.name),
            scheme.type,
            scheme.scheme,
            scheme.param_name,
            how,
            truncate(scheme.description, LEXICAL_DESCRIPTION_CHARS),
            scopes,
        ]
    )
    return Document(
        key=f"auth:{scheme.name}",
        kind=ItemKind.AUTH,
        title=f"Auth: {scheme.name}",
        embed_text=embed_text,
        lexical_text=lexical,
        identifiers=(scheme.name,),
        scheme=scheme,
        item={"kind": "auth", "scheme": scheme.name},
    )


def _overview_document(spec: ApiSpec) -> Document:
    servers = ", ".join(spec.servers[:3])
    summary = f"{spec.title} {spec.version}: {spec.format.label} with {len(spec.operations)} operations" + (
        f", servers {servers}" if servers else ""
    )
    embed_text = f"Overview of the {spec.title} API. {truncate(spec.description, EMBED_DESCRIPTION_CHARS)}"
    return Document(
        key="overview",
        kind=ItemKind.OVERVIEW,
        title=f"{spec.title} overview",
        embed_text=embed_text.strip(),
        lexical_text="\n".join([spec.title, summary, truncate(spec.description, LEXICAL_DESCRIPTION_CHARS)]),
        item={"kind": "overview", "title": spec.title},
    )
