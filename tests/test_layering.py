"""The direction of imports: the core never imports an adapter or the benchmark tooling built on top of it."""

from __future__ import annotations

import ast

from tests.conftest import REPO_ROOT


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_neither_the_adapters_nor_the_evaluation_harness() -> None:
    offending = {}
    files = sorted((REPO_ROOT / "core").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        modules = imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        above = sorted(m for m in modules if m.split(".")[0] in {"bot", "evaluation", "benchmarks", "tests"})
        if above:
            offending[str(path.relative_to(REPO_ROOT))] = above
    assert offending == {}


def test_the_adapters_reach_the_evaluation_harness_only_lazily() -> None:
    """`evaluation` is benchmark tooling: importing it must never be part of starting a bot."""
    for path in sorted((REPO_ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        statements = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
        top_level = imported_modules(ast.Module(body=statements, type_ignores=[]))
        assert not any(m.split(".")[0] == "evaluation" for m in top_level), path
