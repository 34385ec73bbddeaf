"""The composition root: build the real services once from settings, and close them once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import SecretStr

from core.config import Settings
from core.embedding import CachedEmbedder, Embedder, EmbeddingDiskCache, SentenceTransformerEmbedder
from core.generation import GroqGenerator
from core.parsing.worker import ParsePool
from core.ratelimit import RateLimiter
from core.registry import SpecRegistry
from core.service import Assistant
from core.state import SharedState
from core.store import ChromaVectorStore, VectorStore


def build_store(settings: Settings) -> VectorStore:
    """Chroma server mode when CHROMA_HOST/CHROMA_PORT are set, else embedded under DATA_DIR."""
    if settings.chroma_host:
        return ChromaVectorStore.server(settings.chroma_host, settings.chroma_port or 8000)
    return ChromaVectorStore.embedded(settings.data_dir / "chroma")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


@asynccontextmanager
async def build_assistant(
    settings: Settings,
    embedder: Embedder | None = None,
    *,
    load_model: bool = False,
    check_model: bool = True,
    reindex_in_background: bool = False,
) -> AsyncIterator[Assistant]:
    """Wire an `Assistant`; pass `embedder` to share one already-loaded model (tests, benchmarks).

    `load_model` loads the embedding model before anything else (a server's readiness means it can answer);
    otherwise it loads on first use, which keeps short commands that never embed quick.

    `check_model` compares the embedding model with the one each spec was indexed with (`api-assistant reindex`
    turns it off: it rebuilds what it is asked to itself). Specs indexed with another model are re-indexed
    when `REINDEX_ON_MODEL_CHANGE` is on: before this yields, or with `reindex_in_background` while the caller
    goes on (a server, whose /ready says "reindex" until it is done); otherwise they are reported and left
    out of search.
    """
    model = embedder or SentenceTransformerEmbedder(settings.embedding_model, settings.embedding_batch_size)
    if load_model and isinstance(model, SentenceTransformerEmbedder):
        await model.load_now()
    disk_cache = EmbeddingDiskCache(settings.data_dir / "embedding-cache.sqlite3")
    state = SharedState.from_settings(settings)
    parser = ParsePool.from_settings(settings)
    assistant = Assistant(
        settings=settings,
        registry=SpecRegistry(settings.data_dir, _secret(settings.database_url)),
        store=build_store(settings),
        embedder=CachedEmbedder(model, disk_cache),
        state=state,
        limiter=RateLimiter.from_settings(settings, state.redis_client),
        generator=GroqGenerator.from_settings(settings) if settings.generation_enabled else None,
        parser=parser,
    )
    try:
        await assistant.sweep_leftovers()  # what a crash of an earlier run left behind
        await parser.start()  # warm: the first upload pays no start-up
        if check_model:
            await assistant.check_embedding_model(reindex=settings.reindex_on_model_change)
            if not reindex_in_background:
                await assistant.wait_for_model_reindex()
        yield assistant
    finally:
        await assistant.aclose()
        disk_cache.close()
