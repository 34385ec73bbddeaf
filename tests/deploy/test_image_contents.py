"""The image installs every package the project ships: `pip install /src` only sees what the Dockerfile copies."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT


def shipped_packages() -> set[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.removesuffix("*") for pattern in patterns}


def test_every_shipped_package_is_copied_into_the_build_and_let_through_dockerignore() -> None:
    packages = shipped_packages()
    assert {"core", "bot", "evaluation"} <= packages  # `api-assistant eval` imports `evaluation` when it runs
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) /src/\1$", dockerfile, re.MULTILINE))
    ignore_rules = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    let_through = {rule[1:].rstrip("/") for rule in ignore_rules if rule.startswith("!")}
    assert packages <= copied, f"the Dockerfile does not copy {sorted(packages - copied)}"
    assert packages <= let_through, f".dockerignore keeps out {sorted(packages - let_through)}"
    for package in packages:
        assert (REPO_ROOT / package / "__init__.py").is_file(), package
