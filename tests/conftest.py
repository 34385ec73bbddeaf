"""Session-wide fixtures: where the shared specs live, and one embedding model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    configured = os.environ.get("SHARED_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared"


SHARED_DIR = _shared_dir()
SPECS_DIR = SHARED_DIR / "specs"
EVAL_DIR = SHARED_DIR / "eval"


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    """The real public specs in ../shared/specs (never copied into the repo)."""
    assert SPECS_DIR.is_dir(), f"shared specs not found at {SPECS_DIR}; set SHARED_DIR"
    return SPECS_DIR
