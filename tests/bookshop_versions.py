"""Two versions of the bundled bookshop example, for diff tests end to end (core, Slack, Discord).

The second drops `DELETE /customers/{customerId}` and makes `address` required when creating a customer (both
breaking), and adds `GET /gift-cards` (not breaking), so its diff has a summary and a full report to attach.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REMOVED = "DELETE /customers/{customerId}"
MADE_REQUIRED = "POST /customers"
ADDED = "GET /gift-cards"


def bookshop_versions(example_spec: Path) -> tuple[bytes, bytes]:
    """The example as it is, and the edited copy (as YAML bytes)."""
    original = example_spec.read_bytes()
    edited = yaml.safe_load(original)
    edited["info"]["version"] = "1.3.0"
    edited["paths"]["/customers/{customerId}"].pop("delete")
    schema = edited["paths"]["/customers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema["required"] = [*schema["required"], "address"]
    edited["paths"]["/gift-cards"] = {"get": {
        "operationId": "listGiftCards", "summary": "List gift cards", "responses": {"200": {"description": "ok"}},
    }}
    return original, yaml.safe_dump(edited, sort_keys=False).encode()
