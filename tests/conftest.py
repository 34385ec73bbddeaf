"""Session-wide fixtures: where the real specs and eval questions are, and one embedding model per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import NoReturn

import pytest

from tests import corpus
from tests.postgres_server import PostgresServer, start_postgres
from tests.redis_server import RedisServer, start_redis

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The session's shared model (`embedder`) runs on PyTorch, and so do the bots the tests start in subprocesses, each
# on a fresh DATA_DIR (the default, onnx-int8, would export the model into each first). The ONNX backends have
# their own session fixtures and tests (tests/core/test_embedding_backends.py).
os.environ.setdefault("EMBEDDING_BACKEND", "torch")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = corpus.shared_dir(os.environ)
EVAL_DIR = corpus.eval_dir(os.environ)

# Why real-spec or eval tests were skipped, repeated once at the end of the run (skips are silent under -q).
_SKIP_NOTES: dict[str, None] = {}


def skip_noted(note: str) -> NoReturn:
    """Skip a test, and repeat `note` once at the end of the run (a missing tool, named with how to install it)."""
    _SKIP_NOTES[note] = None
    pytest.skip(note)


@cache
def _corpus() -> Path | corpus.CorpusUnavailable | corpus.CorpusError:
    """Resolve the corpus once per session: a failed download is not retried by the next test."""
    try:
        return corpus.resolve_specs(os.environ, corpus.load_pins())
    except (corpus.CorpusUnavailable, corpus.CorpusError) as problem:
        return problem


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    """The real public specs: SPECS_DIR, ../shared/specs, or the pinned files downloaded (tests/corpus.py)."""
    found = _corpus()
    if isinstance(found, corpus.CorpusError):
        pytest.fail(f"spec corpus: {found}", pytrace=False)
    if isinstance(found, corpus.CorpusUnavailable):
        note = f"real-spec tests skipped: {found}"
        _SKIP_NOTES[note] = None
        pytest.skip(note)
    return found


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """The evaluation questions ($SHARED_DIR/eval); they are not public, so there is no download."""
    if not (EVAL_DIR / "dev.jsonl").is_file():
        note = f"eval tests skipped: no {EVAL_DIR / 'dev.jsonl'}; set SHARED_DIR to a folder with eval/dev.jsonl"
        _SKIP_NOTES[note] = None
        pytest.skip(note)
    return EVAL_DIR


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per reason the real-spec or eval tests were skipped."""
    for note in _SKIP_NOTES:
        terminalreporter.write_line(note, yellow=True)


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged embedding model, loaded once for the whole session."""
    from core.embedding import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder()
    model.load()
    return model


@pytest.fixture(scope="session")
def onnx_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA_DIR/models of the session: the packaged model exported to ONNX once (about 10 s, in a child process)."""
    from core.embedding import PACKAGED_MODEL, prepare_onnx

    cache_dir = tmp_path_factory.mktemp("models")
    prepare_onnx(PACKAGED_MODEL, "onnx", cache_dir)  # one export holds both ONNX backends' files
    return cache_dir


@pytest.fixture(scope="session")
def onnx_embedder(onnx_exports: Path):  # type: ignore[no-untyped-def]
    """The packaged model on ONNX Runtime (float32), loaded once for the whole session."""
    from core.embedding import PACKAGED_MODEL, OnnxEmbedder, prepare_onnx

    model = OnnxEmbedder(PACKAGED_MODEL, prepare_onnx(PACKAGED_MODEL, "onnx", onnx_exports))
    model.load()
    return model


@pytest.fixture(scope="session")
def onnx_int8_embedder(onnx_exports: Path):  # type: ignore[no-untyped-def]
    """The packaged model on ONNX Runtime with int8 weights, loaded once for the whole session."""
    from core.embedding import PACKAGED_MODEL, OnnxEmbedder, prepare_onnx

    model = OnnxEmbedder(PACKAGED_MODEL, prepare_onnx(PACKAGED_MODEL, "onnx-int8", onnx_exports))
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session; tests get a database of their own through `postgres_url`."""
    try:
        with start_postgres() as server:
            yield server
    except pytest.skip.Exception as skipped:
        _SKIP_NOTES[skipped.msg] = None  # repeated once at the end of the run
        raise


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh empty database, owned by the app role (not a superuser) and dropped after the test."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that configure logging: put back what the session had (handlers, level, structlog), close files."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        if isinstance(handler, logging.FileHandler):
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(**config)
