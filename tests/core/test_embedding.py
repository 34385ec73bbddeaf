"""The embedding model wrapper: real model, on-disk cache, batched concurrent queries."""

import asyncio

import numpy as np
import pytest

from core.embedding import CachedEmbedder, EmbeddingDiskCache, SentenceTransformerEmbedder
from core.errors import ConfigError


async def test_concurrent_queries_match_single_queries(embedder):
    texts = [f"how do I refund order number {i}?" for i in range(12)]
    together = await asyncio.gather(*(embedder.embed_query(t) for t in texts))
    alone = [await embedder.embed_query(t) for t in texts[:3]]
    for a, b in zip(alone, together[:3], strict=False):
        assert np.allclose(a, b, atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in together}) == 12
    assert abs(np.linalg.norm(together[0]) - 1.0) < 1e-4  # normalised, ready for cosine


async def test_disk_cache_embeds_only_new_texts(embedder, tmp_path):
    cache = EmbeddingDiskCache(tmp_path / "cache.sqlite3")
    cached = CachedEmbedder(embedder, cache)
    progress = []
    first = await cached.embed_documents(["create a customer", "refund a charge"], lambda d, t: progress.append((d, t)))
    assert (cached.hits, cached.misses) == (0, 2) and progress[-1] == (2, 2)
    again = await cached.embed_documents(["refund a charge", "delete a coupon", "create a customer"])
    assert (cached.hits, cached.misses) == (2, 3)
    assert np.allclose(again[0], first[1]) and np.allclose(again[2], first[0])
    cache.close()
    reopened = CachedEmbedder(embedder, EmbeddingDiskCache(tmp_path / "cache.sqlite3"))
    await reopened.embed_documents(["delete a coupon"])
    assert (reopened.hits, reopened.misses) == (1, 0)  # survives restarts


async def test_load_now_and_a_model_that_cannot_load(embedder, tmp_path):
    same = SentenceTransformerEmbedder(embedder.model_id)
    assert same.loaded  # one copy per process: the session's model is already in memory
    await same.load_now()
    missing = SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))
    assert not missing.loaded
    with pytest.raises(ConfigError, match="EMBEDDING_MODEL"):
        await missing.load_now()
    assert not missing.loaded
