"""What a quality report holds: findings by kind, with their locations."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

INVALID = "invalid"
NO_SUMMARY = "operation-without-summary"
NO_DESCRIPTION = "operation-without-description"
PARAMETER_NO_DESCRIPTION = "parameter-without-description"
FIELD_NO_DESCRIPTION = "field-without-description"
REQUEST_NO_EXAMPLE = "request-without-example"
RESPONSE_NO_EXAMPLE = "response-without-example"
WRITE_NO_SECURITY = "write-without-security"
NO_ERROR_RESPONSES = "no-error-responses"
UNUSED_SCHEMA = "unused-schema"
UNDEFINED_REFERENCE = "undefined-reference"
DUPLICATE_OPERATION_ID = "duplicate-operation-id"

KINDS = (
    INVALID, NO_DESCRIPTION, NO_SUMMARY, WRITE_NO_SECURITY, NO_ERROR_RESPONSES, PARAMETER_NO_DESCRIPTION,
    FIELD_NO_DESCRIPTION, REQUEST_NO_EXAMPLE, RESPONSE_NO_EXAMPLE, UNUSED_SCHEMA, UNDEFINED_REFERENCE,
    DUPLICATE_OPERATION_ID,
)
MAX_KEPT_PER_KIND = 5000  # findings kept per kind; beyond this they are only counted


@dataclass(frozen=True)
class Finding:
    """One gap at one location."""

    kind: str
    pointer: str  # JSON pointer into the uploaded document ("" for formats that have none)
    where: str = ""  # `POST /v1/customers`, a schema's name, a Postman request
    detail: str = ""


@dataclass
class Findings:
    """Findings collected so far, counted by kind (each kind keeps at most `MAX_KEPT_PER_KIND`)."""

    items: list[Finding] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, pointer: str, where: str = "", detail: str = "") -> None:
        """Record a finding."""
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_KEPT_PER_KIND:
            self.items.append(Finding(kind, pointer, where, detail))


def escape_pointer(token: str) -> str:
    """One JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: object) -> str:
    """`#/paths/~1pets/get` from its tokens."""
    return "#/" + "/".join(escape_pointer(str(t)) for t in tokens) if tokens else "#"
