"""The diff of two real Discord specs eleven months apart (`$SHARED_DIR/specs/versions/SOURCES.md`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.diffs import VersionFile, diff_versions
from core.models import SpecFormat
from tests.conftest import SHARED_DIR

OLD = SHARED_DIR / "specs" / "versions" / "discord_api_v10_openapi3.1_2025-08-26.json"
NEW_NAME = "discord_api_v10_openapi3.1.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(path: Path) -> set[str]:
    """Straight from the JSON: every method under every path, the way a reader would count them."""
    paths = json.loads(path.read_text())["paths"]
    return {f"{method.upper()} {route}" for route, item in paths.items() for method in item if method in METHODS}


def test_discord_removed_operations_are_breaking_and_added_ones_counted(specs_dir: Path) -> None:
    new_path = specs_dir / NEW_NAME
    if not OLD.is_file():
        pytest.skip(f"no earlier Discord spec at {OLD}; set SHARED_DIR to a folder with specs/versions")
    expected_removed = operations(OLD) - operations(new_path)
    expected_added = operations(new_path) - operations(OLD)
    assert (len(expected_removed), len(expected_added)) == (2, 21)  # as SOURCES.md says

    old = VersionFile(SpecFormat.OPENAPI3, OLD.name, OLD.read_bytes())
    new = VersionFile(SpecFormat.OPENAPI3, new_path.name, new_path.read_bytes())
    diff = diff_versions(old, new)

    assert set(diff.removed) == expected_removed
    assert set(diff.added) == expected_added
    removals = {c.where for c in diff.breaking if c.rule.startswith("api-") and "removed" in c.rule}
    assert removals == expected_removed
    assert diff.breaking[0].breaking and not any(c.breaking for c in diff.non_breaking)
    # The two parameters SOURCES.md mentions stopped being required; neither is reported as breaking.
    relaxed = {(c.where, c.subject) for c in diff.changes if c.rule == "request-parameter-became-optional"}
    assert ("GET /applications/{application_id}/entitlements", "query sku_ids") in relaxed
    assert diff == diff_versions(old, new)  # deterministic
