"""Spec diffs: what changed between two versions of a spec, and which changes break a client.

`diff_versions` compares two uploaded originals: OpenAPI 3.x and Swagger 2.0 from the documents themselves
(`core.diffs.openapi`, every schema walk bounded), Postman collections by request, GraphQL SDL by field and
argument, Markdown docs and pairs of different formats by operation (`core.diffs.parsed`). It is pure and
deterministic (the same two files always give the same diff) and CPU-bound: callers run it off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.diffs.model import Change, SpecDiff
from core.diffs.openapi import compare, surface
from core.diffs.parsed import compare_parsed
from core.models import ApiSpec, SpecFormat
from core.parsing.loader import load_document

__all__ = ["Change", "SpecDiff", "VersionFile", "diff_versions", "needs_parse"]

_RAW_FORMATS = frozenset({SpecFormat.OPENAPI3, SpecFormat.SWAGGER2})


@dataclass(frozen=True)
class VersionFile:
    """One version's original: its format (as recorded at upload), file name and bytes.

    For the formats compared through the parsed model, `spec` is its parsed spec.
    """

    format: SpecFormat
    filename: str
    data: bytes
    spec: ApiSpec | None = None


def needs_parse(old: SpecFormat, new: SpecFormat) -> bool:
    """Whether a diff of these formats compares parsed specs (else the OpenAPI documents themselves)."""
    return not (old in _RAW_FORMATS and new in _RAW_FORMATS)


def diff_versions(old: VersionFile, new: VersionFile) -> SpecDiff:
    """Every change from `old` to `new`, breaking ones first."""
    if not needs_parse(old.format, new.format):
        before = load_document(old.filename, old.data)
        after = load_document(new.filename, new.data)
        return compare(surface(before), surface(after))
    if old.spec is None or new.spec is None:
        raise ValueError("these formats are compared through their parsed specs: pass them")
    return compare_parsed(old.spec, new.spec)
