"""Diagrams drawn from a spec, deterministically: its auth flows, an overview of its resources, one schema.

Each builder (`auth`, `overview`, `schemas`) turns the parsed spec (and, for OpenAPI / Swagger, the uploaded
document itself, which keeps what the parsed model drops: OAuth URLs per flow, `$ref`s between schemas) into
Graphviz DOT source, bounded in size whatever the spec holds; `render` turns DOT into a PNG with Graphviz's
`dot`, bounded in time and size. Nothing here calls an LLM or the network.
"""

from __future__ import annotations

from dataclasses import dataclass

AUTH = "auth"
OVERVIEW = "overview"
SCHEMA = "schema"


@dataclass(frozen=True)
class Diagram:
    """A diagram's DOT source, what it shows, and what it had to leave out."""

    kind: str  # AUTH | OVERVIEW | SCHEMA
    subject: str  # "auth flow", "overview", or the schema's name
    dot: str
    notes: tuple[str, ...] = ()  # "showing 30 of 117 resources", ...

    def filename(self, spec: str) -> str:
        """`stripe-schema-customer.png`, `stripe-auth.png`."""
        base = f"{spec}-{self.kind}" + (f"-{self.subject}" if self.kind == SCHEMA else "")
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in base)[:120] + ".png"
