"""The ONNX embedding backends: PyTorch's vectors within the agreed bar, an export made once and checked, PyTorch
when no export can be had, and a backend switch that re-indexes instead of mixing vectors.

The models are the session's (`embedder`, `onnx_embedder`, `onnx_int8_embedder` in tests/conftest.py): one
export and one load of each per test session.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from core.documents import build_documents
from core.embedding import (
    BACKEND,
    ONNX_EXPORT_FOLDER,
    PACKAGED_MODEL,
    OnnxEmbedder,
    OnnxUnavailableError,
    SentenceTransformerEmbedder,
    build_embedder,
    fingerprint_model_folder,
    prepare_onnx,
    resolve_model_path,
)
from core.onnx_export import FILES, MANIFEST
from core.parsing.loader import load_spec
from tests.conftest import REPO_ROOT

TEAM = Origin("slack", "T-ONNX", user="alice")
QUESTIONS = ["how do I refund an order?", "list the books", "create an order", "authentication"]

# Short and long, cased and not, padded with spaces, empty, past the 256-token limit, non-ASCII.
TEXTS = [
    "how do I refund a charge?",
    "POST /v1/customers Create a customer with an email address",
    "GET /repos/{owner}/{repo}/pulls List pull requests",
    "   spaces around   ",
    "",
    "x",
    "Ünïcödé naïve café 東京 🎉",
    "DELETE a webhook endpoint and stop the events it receives. " * 40,
]


def texts_of(example_spec: Path) -> list[str]:
    spec = load_spec(
        example_spec.name, example_spec.read_bytes(), max_bytes=1 << 20, allowed_extensions=frozenset({"yaml"})
    )
    return TEXTS + [d.embed_text for d in build_documents(spec)]


def cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    return np.sum(np.asarray(a) * np.asarray(b), axis=1)


async def test_onnx_gives_pytorchs_vectors(embedder, onnx_embedder, example_spec):
    texts = texts_of(example_spec)
    expected = await embedder.embed_documents(texts)
    vectors = await onnx_embedder.embed_documents(texts)
    assert cosines(vectors, expected).min() >= 0.9999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    for text in TEXTS[:3]:
        query = await onnx_embedder.embed_query(text)
        assert float(np.dot(query, await embedder.embed_query(text))) >= 0.9999


async def test_int8_weights_stay_close_to_pytorch(embedder, onnx_int8_embedder, example_spec):
    texts = texts_of(example_spec)
    similarity = cosines(await onnx_int8_embedder.embed_documents(texts), await embedder.embed_documents(texts))
    # The bar the export itself checks (core.onnx_export.MIN_PROBE_COSINE), and a mean that says the vectors
    # moved only a little; retrieval quality is what decides the default (benchmarks/RESULTS.md).
    assert similarity.min() >= 0.95 and similarity.mean() >= 0.99


async def test_concurrent_onnx_queries_match_single_queries(onnx_embedder):
    texts = [f"how do I cancel subscription number {i}?" for i in range(12)]
    together = await asyncio.gather(*(onnx_embedder.embed_query(t) for t in texts))
    alone = [await onnx_embedder.embed_query(t) for t in texts[:3]]
    for a, b in zip(alone, together[:3], strict=True):
        assert np.allclose(a, b, atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in together}) == 12


async def test_each_backend_has_its_own_identity_and_an_export_is_made_once(
    embedder, onnx_embedder, onnx_int8_embedder, onnx_exports
):
    identities = [await m.identity() for m in (embedder, onnx_embedder, onnx_int8_embedder)]
    assert [i.backend for i in identities] == [BACKEND, "onnx", "onnx-int8"]
    assert len({i.key for i in identities}) == 3  # no two share vectors, the embedding cache or an index
    assert all(not a.same_vectors(b.text) for a in identities for b in identities if a is not b)
    assert len({i.name for i in identities}) == 1
    with capture_logs() as logs:  # found again, not made again: the same files, the same identity
        again = prepare_onnx(PACKAGED_MODEL, "onnx-int8", onnx_exports)
    assert again.fingerprint == identities[2].fingerprint
    assert not [e for e in logs if e["event"].startswith("onnx_export")]
    manifest = json.loads((again.folder / MANIFEST).read_text())
    assert manifest["source_fingerprint"] == fingerprint_model_folder(Path(resolve_model_path(PACKAGED_MODEL)))
    assert manifest["files"]["onnx"]["probe_min_cosine"] >= 0.999


def test_an_export_made_ahead_of_time_in_the_model_folder_is_used_as_is(onnx_exports, tmp_path):
    # The image's layout: the export inside the model's folder (the Dockerfile makes it at build time).
    folder = tmp_path / "model"
    shutil.copytree(resolve_model_path(PACKAGED_MODEL), folder)
    (folder / ONNX_EXPORT_FOLDER).symlink_to(next(onnx_exports.glob("onnx-*")))
    assert fingerprint_model_folder(folder) == fingerprint_model_folder(Path(resolve_model_path(PACKAGED_MODEL)))
    with capture_logs() as logs:
        found = prepare_onnx(str(folder), "onnx", tmp_path / "models")
    assert found.folder == folder / ONNX_EXPORT_FOLDER
    assert found.fingerprint == prepare_onnx(PACKAGED_MODEL, "onnx", onnx_exports).fingerprint  # same files: same
    assert not (tmp_path / "models").exists() and not [e for e in logs if e["event"].startswith("onnx_export")]


def fallback_event(logs: list[dict]) -> dict:
    [event] = [e for e in logs if e["event"] == "embedding_backend_fallback"]
    assert event["log_level"] == "error" and event["fallback"] == BACKEND
    return event


async def test_a_model_the_export_cannot_reproduce_falls_back_to_pytorch(tmp_path):
    # A real model folder whose pipeline pools by max: the ONNX runtime only reproduces mean or CLS pooling.
    folder = tmp_path / "max-pooled"
    shutil.copytree(resolve_model_path(PACKAGED_MODEL), folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}))
    with capture_logs() as logs:
        model = await build_embedder(str(folder), "onnx", cache_dir=tmp_path / "models")
    assert type(model) is SentenceTransformerEmbedder
    assert (await model.identity()).backend == BACKEND  # its vectors will be PyTorch's, and say so
    assert "pooling mode 'max'" in fallback_event(logs)["reason"]
    assert list((tmp_path / "models").iterdir()) == []  # the failed export left nothing behind
    await model.aclose()


async def test_an_export_past_its_time_limit_falls_back_to_pytorch(tmp_path):
    with capture_logs() as logs:
        model = await build_embedder(backend="onnx", cache_dir=tmp_path, export_timeout=0.5)
    assert type(model) is SentenceTransformerEmbedder
    assert fallback_event(logs)["reason"] == "the export took longer than 0.5 s"
    assert list(tmp_path.iterdir()) == []
    await model.aclose()


async def test_a_models_folder_that_cannot_be_written_falls_back_to_pytorch(tmp_path):
    (tmp_path / "data").write_text("a file where DATA_DIR's folder should be")
    with capture_logs() as logs:
        model = await build_embedder(backend="onnx-int8", cache_dir=tmp_path / "data" / "models")
    assert type(model) is SentenceTransformerEmbedder
    assert fallback_event(logs)["reason"] == f"{tmp_path / 'data' / 'models'} is not writable (NotADirectoryError)"
    await model.aclose()


def test_a_damaged_or_foreign_export_is_never_used(onnx_exports, tmp_path):
    source = next(onnx_exports.glob("onnx-*"))
    damaged = tmp_path / "damaged"
    shutil.copytree(source, damaged / source.name)
    weights = damaged / source.name / FILES["onnx-int8"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with capture_logs() as logs, pytest.raises(OnnxUnavailableError, match="longer than"):
        prepare_onnx(PACKAGED_MODEL, "onnx-int8", damaged, timeout=0.5)  # not used: a new export is started
    assert any(e["event"] == "onnx_export_damaged" for e in logs)

    older = tmp_path / "older"
    shutil.copytree(source, older / source.name)
    manifest = older / source.name / MANIFEST
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"format": 0}))  # another recipe's
    with pytest.raises(OnnxUnavailableError, match="longer than"):
        prepare_onnx(PACKAGED_MODEL, "onnx", older, timeout=0.5)


async def results(assistant) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[i.document.key for i in await assistant.search(TEAM, q)] for q in QUESTIONS]


async def test_switching_backend_re_indexes_and_never_mixes_vectors(
    tmp_path, embedder, onnx_embedder, onnx_int8_embedder, example_spec
):
    def settings(backend: str, **more: object) -> Settings:
        return Settings(data_dir=tmp_path / "data", embedding_backend=backend, _env_file=None, **more)  # type: ignore[arg-type]

    async with build_assistant(settings("torch"), embedder) as assistant:
        first = (await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "shop"))).record
        before = await results(assistant)
        documents = len(assistant.registry.documents(TEAM.scope, first.index_version))

    async with build_assistant(settings("onnx"), onnx_embedder) as assistant:  # REINDEX_ON_MODEL_CHANGE: on
        [record] = assistant.registry.list_records(TEAM.scope)
        assert record.embedding_model == (await onnx_embedder.identity()).text
        assert record.index_version != first.index_version
        # Every vector was made by ONNX Runtime: none of PyTorch's came out of the embedding cache.
        assert (assistant.embedder.hits, assistant.embedder.misses) == (0, documents)
        assert await results(assistant) == before  # float32: the same rankings
        answer = await assistant.ask(AskQuestion(TEAM, "how do I refund an order?"))
        assert answer.citations

    async with build_assistant(settings("torch"), embedder) as assistant:  # and back: PyTorch's cached vectors
        [record] = assistant.registry.list_records(TEAM.scope)
        assert record.embedding_model == (await embedder.identity()).text
        assert (assistant.embedder.hits, assistant.embedder.misses) == (documents, 0)
        assert await results(assistant) == before

    async with build_assistant(settings("onnx-int8", reindex_on_model_change=False), onnx_int8_embedder) as assistant:
        assert assistant.stale_specs(TEAM.scope) == ["shop"]  # left out of search until re-indexed
        assert (assistant.embedder.hits, assistant.embedder.misses) == (0, 0)


async def test_the_composition_root_builds_the_configured_backend(tmp_path, onnx_exports):
    settings = Settings(data_dir=tmp_path / "data", embedding_backend="onnx-int8", _env_file=None)
    models = settings.data_dir / "models"
    models.mkdir(parents=True)
    for export in onnx_exports.glob("onnx-*"):  # DATA_DIR/models as an earlier start left it
        (models / export.name).symlink_to(export)
    with capture_logs() as logs:
        async with build_assistant(settings, load_model=True) as assistant:
            identity = await assistant.embedder.identity()
            assert identity.backend == "onnx-int8" and assistant.embedder.loaded
            assert len(await assistant.embedder.embed_query("refund a charge")) == 384
    assert not [e for e in logs if e["event"] in ("onnx_export_started", "embedding_backend_fallback")]


def test_the_onnx_backend_runs_without_torch_in_the_process(onnx_exports):
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from core.embedding import build_embedder

        async def main():
            model = await build_embedder(backend="onnx-int8", cache_dir=Path({str(onnx_exports)!r}))
            vector = await model.embed_query("refund a charge")
            await model.aclose()
            heavy = [m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules]
            print(type(model).__name__, len(vector), heavy)

        asyncio.run(main())
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].split() == ["OnnxEmbedder", "384", "[]"]  # after the log lines


def test_the_setting_offers_exactly_the_backends_there_are():
    from typing import get_args

    from core.embedding import EmbeddingBackend

    assert get_args(Settings.model_fields["embedding_backend"].annotation) == get_args(EmbeddingBackend)


def test_onnx_embedder_wraps_a_checked_export(onnx_embedder):
    assert isinstance(onnx_embedder, OnnxEmbedder) and onnx_embedder.loaded
    assert onnx_embedder.export.file.name == FILES["onnx"]
