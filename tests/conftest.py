"""Session-wide fixtures: where the shared specs live, and one embedding model per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, start_redis

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


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged embedding model, loaded once for the whole session."""
    from core.embedding import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder()
    model.load()
    return model


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings on a fresh data dir, with no external services configured."""
    from core.config import Settings

    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def assistant(settings, embedder):  # type: ignore[no-untyped-def]
    """A real Assistant (embedded Chroma, real model) on a fresh data dir."""
    from core.bootstrap import build_assistant

    async with build_assistant(settings, embedder=embedder) as built:
        yield built


@pytest.fixture(scope="session")
def example_spec() -> Path:
    """The bundled example spec."""
    return REPO_ROOT / "core" / "examples" / "bookshop_openapi.yaml"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the module; tests get it flushed through `redis_url`."""
    with start_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of an empty Redis (the module's server, flushed)."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may kill and restart (outage tests)."""
    with start_redis() as server:
        yield server
