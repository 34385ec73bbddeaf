"""The documents an operator reads agree with the code: every variable with its default, and the links."""

from __future__ import annotations

import re

from core.config import Settings, settings_table
from tests.conftest import REPO_ROOT

DEPLOYMENT = REPO_ROOT / "docs" / "DEPLOYMENT.md"
START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) + len(start) : text.index(end, text.index(start))]


def _variables(table: str) -> list[str]:
    return re.findall(r"^\| `([A-Z0-9_]+)`", table, flags=re.MULTILINE)


def test_deployment_lists_every_setting_with_its_default() -> None:
    table = _between(DEPLOYMENT.read_text(encoding="utf-8"), START, END)
    assert sorted(_variables(table)) == sorted(name.upper() for name in Settings.model_fields)
    assert table.strip() == settings_table(), (
        "docs/DEPLOYMENT.md's variable table is out of date: replace the lines between the settings-table "
        "markers with the output of `python -m core.config`"
    )


def test_settings_table_renders_defaults_and_secrets() -> None:
    rows = {row.split(" | ")[0].strip("| `"): row for row in settings_table().splitlines()[2:]}
    assert "| unset | **Secret.**" in rows["SLACK_BOT_TOKEN"]
    assert "| `10485760` |" in rows["LOG_FILE_MAX_BYTES"] and "| `5` |" in rows["LOG_FILE_BACKUPS"]
    assert "| `false` |" in rows["DEBUG"] and "| `30` |" in rows["GROQ_TIMEOUT_SECONDS"]
    assert "One of `development`, `production`, `test`." in rows["ENVIRONMENT"]


def test_readme_configuration_names_only_real_variables_and_links_the_docs() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = _between(readme, "## Configuration", "\n## ")
    named = {v for cell in re.findall(r"^\| ([^|]+) \|", section, flags=re.MULTILINE)
             for v in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    fields = {name.upper() for name in Settings.model_fields}
    assert named and named <= fields, named - fields
    assert {"LOG_FILE", "LOG_FILE_MAX_BYTES", "LOG_FILE_BACKUPS", "LOG_LEVEL", "DEBUG"} <= named
    for doc in ("ARCHITECTURE.md", "DEPLOYMENT.md", "OPERATIONS.md"):
        assert f"(docs/{doc})" in readme, doc
        assert (REPO_ROOT / "docs" / doc).is_file()
