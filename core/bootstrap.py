"""The composition root: build the real services once from settings, inject them, and close them once.

Everything `build_assistant` builds it also closes, in reverse order, when its `async with` ends (or when a later
step of building fails): the parse worker processes, the embedding thread, the Groq, Redis and Chroma clients, and
the registry's and embedding cache's databases. What a caller passes in (a shared `embedder`) stays the caller's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from core import messages
from core.assistant import Assistant
from core.config import Settings
from core.embedding import CachedEmbedder, Embedder, EmbeddingDiskCache, LocalEmbedder, build_embedder
from core.generation import GroqGenerator
from core.metrics import AssistantCollector, Metrics
from core.parsing.worker import ParsePool
from core.phrasings import GroqPhraser
from core.ratelimit import ConcurrencyGuard, RateLimiter
from core.registry import SpecRegistry
from core.rerank import GroqReranker
from core.retrieval import HybridRetriever
from core.state import ConversationMemory, SharedState
from core.store import ChromaVectorStore
from core.threads import ThreadPresence


def build_store(settings: Settings) -> ChromaVectorStore:
    """Chroma server mode when CHROMA_HOST/CHROMA_PORT are set, else embedded under DATA_DIR."""
    if settings.chroma_host:
        return ChromaVectorStore.server(settings.chroma_host, settings.chroma_port or 8000)
    return ChromaVectorStore.embedded(settings.data_dir / "chroma")


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
    async with AsyncExitStack() as owned:
        # Each resource is registered for closing as soon as it exists, so a later failure closes it too.
        model = embedder
        if model is None:
            built = await build_embedder(
                settings.embedding_model,
                settings.embedding_backend,
                settings.embedding_batch_size,
                cache_dir=settings.data_dir / "models",
            )
            owned.push_async_callback(built.aclose)
            model = built
        if load_model and isinstance(model, LocalEmbedder):
            await model.load_now()
        disk_cache = EmbeddingDiskCache(settings.data_dir / "embedding-cache.sqlite3")
        owned.callback(disk_cache.close)
        registry = SpecRegistry(settings.data_dir, settings.registry_database_url)
        owned.callback(registry.close)
        store = build_store(settings)
        owned.push_async_callback(store.aclose)
        state = SharedState.from_settings(settings)
        owned.push_async_callback(state.aclose)
        # The limiters share the state's Redis client (its pool); closing them closes nothing of it.
        limiter = RateLimiter.from_settings(settings, state.redis_client)
        owned.push_async_callback(limiter.aclose)
        upload_limiter = RateLimiter.from_settings(
            settings,
            state.redis_client,
            requests_per_minute=settings.upload_rate_limit_per_hour / 60,
            burst=settings.upload_rate_limit_burst,
        )
        owned.push_async_callback(upload_limiter.aclose)
        generator = GroqGenerator.from_settings(settings) if settings.generation_enabled else None
        if generator is not None:
            owned.push_async_callback(generator.aclose)
        # The reranker borrows the generator's client (its connections and request counts); the generator closes it.
        reranker = (
            GroqReranker.from_settings(settings, generator.client, state)
            if generator is not None and settings.rerank_active
            else None
        )
        phraser = (
            GroqPhraser(generator.client, settings.groq_model, state)
            if generator is not None and settings.phrasings_active
            else None
        )
        parser = ParsePool.from_settings(settings)
        owned.push_async_callback(parser.aclose)
        embeddings = CachedEmbedder(model, disk_cache)
        telemetry = Metrics()
        assistant = Assistant(
            settings,
            registry=registry,
            store=store,
            embedder=embeddings,
            retriever=HybridRetriever(store, registry, embeddings, aliases=settings.phrasings_active),
            state=state,
            memory=ConversationMemory(state),
            threads=ThreadPresence(state),
            limiter=limiter,
            upload_limiter=upload_limiter,
            guard=ConcurrencyGuard(
                settings.llm_max_concurrent, settings.llm_max_queue, max_wait=settings.generation_deadline_seconds,
                timeout_message=messages.waited_too_long,
            ),
            ingest_guard=ConcurrencyGuard(
                settings.ingest_max_concurrent, settings.ingest_max_queue, busy_message=messages.ingest_busy
            ),
            parser=parser,
            generator=generator,
            telemetry=telemetry,
            reranker=reranker,
            phraser=phraser,
        )
        telemetry.watch(AssistantCollector(assistant))
        owned.push_async_callback(assistant.aclose)  # first out: its background re-index still uses the rest
        await assistant.sweep_leftovers()  # what a crash of an earlier run left behind
        await parser.start()  # warm: the first upload pays no start-up
        if check_model:
            await assistant.check_embedding_model(reindex=settings.reindex_on_model_change)
            if not reindex_in_background:
                await assistant.wait_for_model_reindex()
        yield assistant
