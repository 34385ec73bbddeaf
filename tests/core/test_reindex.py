"""Re-indexing from the stored originals, and what start-up does when the embedding model changed.

Real model, real specs from the corpus, embedded Chroma. A model change is made the way it happens: the
registry holds records written under another model's identity (a real fingerprint of another model folder),
or none at all (records from before identities were recorded).
"""

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bot.console import render_specs
from core import database, messages
from core.actions import AskQuestion, ForgetSpec, ListSpecs, Origin, PathAttachment, UploadSpec
from core.assistant import Assistant
from core.bootstrap import build_assistant
from core.config import Settings
from core.embedding import (
    BACKEND,
    CachedEmbedder,
    EmbeddingDiskCache,
    ModelIdentity,
    fingerprint_model_folder,
    resolve_model_path,
)
from core.errors import SpecNeedsReindexError, SpecNotFoundError, WorkspaceNotFoundError
from core.library import ReindexProgress
from core.registry import SpecRecord
from tests.core.test_assistant import FailingStore

TEAM_A = Origin("slack", "T-A", user="alice", user_name="Alice")
TEAM_B = Origin("discord", "G-B", user="bob", user_name="Bob")

QUESTIONS = {
    TEAM_A: ["how do I add a new pet to the store?", "find pets by status", "get the top stories", "user profile"],
    TEAM_B: ["search for an album", "get a playlist's tracks", "refund an order", "delete a customer"],
}


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> str:
    """The identity of a real other model folder: the packaged model with one config value changed."""
    folder = tmp_path_factory.mktemp("other-model") / "model"
    shutil.copytree(resolve_model_path("packaged:all-MiniLM-L6-v2"), folder)
    config = folder / "config_sentence_transformers.json"
    config.write_text(config.read_text().replace("{", '{"note": "fine-tuned", ', 1))
    return ModelIdentity(str(folder), BACKEND, fingerprint_model_folder(folder)).text


async def index_specs(assistant: Assistant, specs_dir: Path, example_spec: Path) -> None:
    for origin, path, name in [
        (TEAM_A, specs_dir / "petstore_openapi3.yaml", "petstore"),
        (TEAM_A, specs_dir / "hackernews_api.md", "hackernews"),
        (TEAM_B, specs_dir / "spotify_web_api_openapi3.yaml", "spotify"),
        (TEAM_B, example_spec, "shop"),
    ]:
        await assistant.ingest(UploadSpec(origin, PathAttachment(path), name))


class Score(float):
    """A fused score that equals another within the vector store's float32 noise.

    Scores carry the dense similarity Chroma computes in float32; after vectors are rebuilt (re-index, restore)
    it can differ in the 7th digit while every ranking stays the same.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and abs(self - other) <= 1e-5

    __hash__ = float.__hash__


async def results(assistant: Assistant) -> dict[str, list[tuple[str, str, Score]]]:
    found = {}
    for origin, questions in QUESTIONS.items():
        for question in questions:
            items = await assistant.search(origin, question)
            found[f"{origin.scope} {question}"] = [(i.spec, i.document.key, Score(i.score)) for i in items]
    return found


def all_records(assistant: Assistant) -> dict[tuple[str, str], SpecRecord]:
    registry = assistant.registry
    return {(r.workspace, r.name): r for scope in registry.workspaces() for r in registry.list_records(scope)}


def mark_indexed_with(assistant: Assistant, identity_text: str, *names: str) -> None:
    """Rewrite records as if their vectors had come from the model `identity_text` names."""
    for record in all_records(assistant).values():
        if record.name in names:
            assistant.registry.put(replace(record, embedding_model=identity_text))


async def test_reindex_rebuilds_every_spec_and_retrieval_is_identical(settings, embedder, specs_dir, example_spec):
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        before = await results(assistant)
        assert all(before.values())
        old = all_records(assistant)
        identity = await embedder.identity()
        assert {r.embedding_model for r in old.values()} == {identity.text}

        seen: list[ReindexProgress] = []
        report = await assistant.reindex(progress=seen.append)

        assert (len(report.indexed), report.failed, report.skipped) == (4, (), 0)
        new = all_records(assistant)
        assert new.keys() == old.keys()
        for key, record in new.items():
            previous = old[key]
            assert record.index_version != previous.index_version  # a fresh version, made live
            assert record.embedding_model == identity.text
            # The upload as the team knows it is unchanged: who, when, what.
            assert (record.uploaded_by, record.uploader_name, record.indexed_at, record.content_hash) == (
                previous.uploaded_by,
                previous.uploader_name,
                previous.indexed_at,
                previous.content_hash,
            )
            assert record.operation_count == previous.operation_count
            assert assistant.registry.count_documents(record.workspace, previous.index_version) == 0
        for scope in (TEAM_A.scope, TEAM_B.scope):
            live = {r.index_version for r in new.values() if r.workspace == scope}
            assert await assistant.store.versions(scope) == live  # old vectors cleaned up
            assert assistant.registry.live_versions(scope) == live

        finished = [e for e in seen if e.step is None]
        assert [(e.position, e.stage) for e in finished] == [(1, "started"), (1, "indexed"), (2, "started"),
                                                             (2, "indexed"), (3, "started"), (3, "indexed"),
                                                             (4, "started"), (4, "indexed")]
        assert {e.total for e in seen} == {4}
        assert "[4/4] slack:T-A/petstore: re-indexed, 19 operations in " in finished[7].message
        assert {e.step.stage for e in seen if e.step is not None} >= {"parsing", "embedding", "storing"}
        assert report.summary.startswith("Re-indexed 4 specs in ")

        assert await results(assistant) == before
    # And in a fresh process-like assistant, whose lexical indexes are built from the new documents.
    async with build_assistant(settings, embedder) as assistant:
        assert await results(assistant) == before


async def test_reindex_selects_by_workspace_and_spec(settings, embedder, specs_dir, example_spec):
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        await assistant.ingest(UploadSpec(TEAM_A, PathAttachment(example_spec), "shop"))  # `shop` in both

        def rebuilt(report) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
            return {(r.workspace, r.name) for r in report.indexed}

        only_a = await assistant.reindex(workspace=TEAM_A.scope)
        assert rebuilt(only_a) == {(TEAM_A.scope, "petstore"), (TEAM_A.scope, "hackernews"), (TEAM_A.scope, "shop")}
        every_shop = await assistant.reindex(spec="shop")
        assert rebuilt(every_shop) == {(TEAM_A.scope, "shop"), (TEAM_B.scope, "shop")}
        one = await assistant.reindex(workspace=TEAM_B.scope, spec="shop")
        assert rebuilt(one) == {(TEAM_B.scope, "shop")}

        with pytest.raises(WorkspaceNotFoundError) as unknown_workspace:
            await assistant.reindex(workspace="slack:T-NOPE")
        assert "`slack:T-NOPE`" in unknown_workspace.value.user_message
        assert "`discord:G-B`, `slack:T-A`" in unknown_workspace.value.user_message
        with pytest.raises(SpecNotFoundError) as unknown_spec:
            await assistant.reindex(workspace=TEAM_B.scope, spec="petstore")  # exists, but in the other workspace
        assert "no spec called `petstore`" in unknown_spec.value.user_message
        assert "`shop`, `spotify`" in unknown_spec.value.user_message


async def test_a_spec_that_cannot_be_rebuilt_keeps_its_previous_version(settings, embedder, example_spec, specs_dir):
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        before = await results(assistant)
        old = all_records(assistant)
        lost = old[(TEAM_A.scope, "hackernews")]
        with database.write(assistant.registry.engine) as db:  # lost from the store
            table = database.originals
            db.execute(sa.delete(table).where(table.c.workspace == lost.workspace, table.c.name == lost.original_path))

        real_store = assistant.store
        assistant.store = FailingStore(real_store)  # every vector write fails half-way
        outage = await assistant.reindex(workspace=TEAM_B.scope)
        assistant.store = real_store
        assert outage.indexed == () and len(outage.failed) == 2
        assert "unexpected error" in outage.failed[0][2]

        seen: list[ReindexProgress] = []
        report = await assistant.reindex(workspace=TEAM_A.scope, progress=seen.append)
        [(scope, name, why)] = report.failed
        assert (scope, name) == (TEAM_A.scope, "hackernews") and "missing" in why
        assert [r.name for r in report.indexed] == ["petstore"]
        failure = next(e for e in seen if e.stage == "failed")
        assert "its previous index is still live" in failure.message
        assert "1 failed" in report.summary

        after = all_records(assistant)
        for key in [(TEAM_A.scope, "hackernews"), (TEAM_B.scope, "spotify"), (TEAM_B.scope, "shop")]:
            assert after[key] == old[key]  # still the previous version, live
        for scope in (TEAM_A.scope, TEAM_B.scope):  # and nothing half-written is left behind
            live = {r.index_version for r in after.values() if r.workspace == scope}
            assert await real_store.versions(scope) == live
        assert await results(assistant) == before


async def test_a_changed_model_is_re_indexed_at_start_up(settings, embedder, specs_dir, example_spec, other_model):
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        before = await results(assistant)
        mark_indexed_with(assistant, other_model, "petstore", "spotify")
        mark_indexed_with(assistant, "", "shop")  # indexed before models were recorded
        old = all_records(assistant)

    with capture_logs() as logs:
        async with build_assistant(settings, embedder) as assistant:  # REINDEX_ON_MODEL_CHANGE defaults to true
            new = all_records(assistant)
            current = (await embedder.identity()).text
            assert {r.embedding_model for r in new.values()} == {current}
            for key in [(TEAM_A.scope, "petstore"), (TEAM_B.scope, "spotify"), (TEAM_B.scope, "shop")]:
                assert new[key].index_version != old[key].index_version
            assert new[(TEAM_A.scope, "hackernews")] == old[(TEAM_A.scope, "hackernews")]  # it was current
            assert await results(assistant) == before
            assert assistant.stale_specs(TEAM_A.scope) == assistant.stale_specs(TEAM_B.scope) == []
    changed = next(e for e in logs if e["event"] == "embedding_model_changed")
    assert changed["stale_specs"] == 3 and changed["log_level"] == "warning"
    lines = [e["line"] for e in logs if e["event"] == "model_reindex_progress"]
    assert lines[0] == "[1/3] discord:G-B/shop: re-indexing…"
    assert len(lines) == 6 and "[3/3] slack:T-A/petstore: re-indexed, 19 operations" in lines[-1]


async def test_start_up_re_index_runs_in_the_background_and_ready_waits_for_it(
    settings, embedder, specs_dir, example_spec, other_model
):
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        mark_indexed_with(assistant, other_model, "petstore", "shop")

    gate = asyncio.Event()
    async with build_assistant(settings, embedder, reindex_in_background=True) as assistant:
        real_parser = assistant.parser

        class GatedParser:
            async def parse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                await gate.wait()
                return await real_parser.parse(*args, **kwargs)

        assistant.parser = GatedParser()  # type: ignore[assignment]  # before the background re-index parses
        verdicts = await assistant.readiness.evaluate()
        assert not verdicts["reindex"].ready
        assert "re-indexing after an embedding model change (0/2)" in verdicts["reindex"].detail
        assert assistant.reindexing

        # Meanwhile the stale specs are out of search, and say why; the current ones answer.
        with pytest.raises(SpecNeedsReindexError) as waiting:
            await assistant.search(TEAM_A, "add a pet", spec="petstore")
        assert "under way" in waiting.value.user_message
        items = await assistant.search(TEAM_A, "add a new pet to the store")
        assert {i.spec for i in items} == {"hackernews"}

        gate.set()
        report = await assistant.wait_for_model_reindex()
        assert report is not None and len(report.indexed) == 2
        assert (await assistant.readiness.evaluate())["reindex"].ready
        items = await assistant.search(TEAM_A, "add a new pet to the store")
        assert items[0].spec == "petstore"
        assistant.parser = real_parser  # closed with the assistant


async def test_a_start_up_re_index_stopped_by_shutdown_leaves_the_previous_versions(
    settings, embedder, specs_dir, example_spec, other_model
):
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        mark_indexed_with(assistant, other_model, "spotify")
        old = all_records(assistant)

    holding = asyncio.Event()

    class StuckStore(FailingStore):
        """Writes half the vectors, then hangs (until the re-index is cancelled)."""

        async def add(self, workspace, spec, index_version, documents, embeddings):  # type: ignore[no-untyped-def]
            half = len(documents) // 2
            await self.inner.add(workspace, spec, index_version, documents[:half], embeddings[:half])
            holding.set()
            await asyncio.Event().wait()

    async with build_assistant(settings, embedder, reindex_in_background=True) as assistant:
        assistant.store = StuckStore(assistant.store)  # type: ignore[assignment]
        await asyncio.wait_for(holding.wait(), 60)
        assert assistant.reindexing
        assistant.store = assistant.store.inner  # type: ignore[attr-defined]
    # Closing cancelled it: the half-written version is gone and the previous one is live.
    async with build_assistant(settings, embedder, check_model=False) as assistant:
        after = all_records(assistant)
        assert after == old
        assert await assistant.store.versions(TEAM_B.scope) == {r.index_version for r in after.values()
                                                                 if r.workspace == TEAM_B.scope}


async def test_with_reindex_off_stale_specs_are_reported_and_left_out_of_search(
    tmp_path, embedder, specs_dir, example_spec, other_model
):
    settings = Settings(data_dir=tmp_path / "data", reindex_on_model_change=False, _env_file=None)
    async with build_assistant(settings, embedder) as assistant:
        await index_specs(assistant, specs_dir, example_spec)
        mark_indexed_with(assistant, other_model, "petstore")
        mark_indexed_with(assistant, "", "spotify")
        old = all_records(assistant)

    with capture_logs() as logs:
        async with build_assistant(settings, embedder) as assistant:
            assert all_records(assistant) == old  # nothing re-indexed
            assert "reindex" not in assistant.readiness.components
            assert assistant.stale_specs(TEAM_A.scope) == ["petstore"]
            assert assistant.stale_specs(TEAM_B.scope) == ["spotify"]

            # Never searched: not by name, and not as part of the workspace (no mixing of two models' vectors).
            with pytest.raises(SpecNeedsReindexError) as named:
                await assistant.search(TEAM_A, "add a pet", spec="petstore")
            assert "`petstore` was indexed with a different embedding model" in named.value.user_message
            assert "`api-assistant reindex`" in named.value.user_message
            for question in QUESTIONS[TEAM_A]:
                assert {i.spec for i in await assistant.search(TEAM_A, question)} <= {"hackernews"}
            answer = await assistant.ask(AskQuestion(TEAM_B, "search for an album"))
            assert all(c.spec == "shop" for c in answer.citations)

            # Shown as needing re-index wherever specs are listed.
            table = render_specs(await assistant.list_specs(ListSpecs(TEAM_A)), assistant.stale_specs(TEAM_A.scope))
            petstore_line = next(line for line in table.splitlines() if line.startswith("petstore"))
            assert petstore_line.endswith(f"({messages.needs_reindex_marker()})")
            assert messages.needs_reindex_marker() not in next(line for line in table.splitlines()
                                                                 if line.startswith("hackernews"))
            listing = await assistant.ask(AskQuestion(TEAM_A, "what specs do you have?"))
            petstore = ("`petstore`: Swagger Petstore - OpenAPI 3.0 1.0.27-SNAPSHOT "
                        "(OpenAPI 3, 19 operations, 1 version kept)")
            assert f"{petstore}, needs re-index" in listing.as_markdown()
            hackernews = next(line for line in listing.as_markdown().splitlines() if "`hackernews`" in line)
            assert messages.needs_reindex_marker() not in hackernews

            # The command the warning names puts it back.
            report = await assistant.reindex(workspace=TEAM_A.scope, spec="petstore")
            assert len(report.indexed) == 1 and assistant.stale_specs(TEAM_A.scope) == []
            assert (await assistant.search(TEAM_A, "add a new pet to the store"))[0].spec == "petstore"

    warnings = {e["spec"]: e for e in logs if e["event"] == "spec_needs_reindex"}
    assert set(warnings) == {"petstore", "spotify"}
    assert warnings["petstore"]["run"] == "api-assistant reindex --workspace slack:T-A --spec petstore"
    assert warnings["petstore"]["log_level"] == "warning"
    assert warnings["petstore"]["indexed_with"].endswith(f"(torch, {other_model.rsplit('|', 1)[1][:12]})")
    assert warnings["spotify"]["indexed_with"] == "unrecorded"


async def test_the_disk_cache_never_hands_out_another_models_vectors(embedder, tmp_path):
    cache = EmbeddingDiskCache(tmp_path / "cache.sqlite3")
    text = "create a customer"
    bogus = [1.0] + [0.0] * 383
    # What an older release stored under the model's name, and what another model stored under its own key.
    cache.put_many("packaged:all-MiniLM-L6-v2", {EmbeddingDiskCache.text_hash(text): bogus})
    cache.put_many(f"{BACKEND}:{'0' * 64}", {EmbeddingDiskCache.text_hash(text): bogus})
    cached = CachedEmbedder(embedder, cache)
    [vector] = await cached.embed_documents([text])
    assert (cached.hits, cached.misses) == (0, 1)
    assert vector != bogus and vector == pytest.approx(await embedder.embed_query(text), abs=1e-5)
    [again] = await cached.embed_documents([text])
    assert cached.hits == 1 and again == vector
    assert (await cached.identity()) == (await embedder.identity())
    cache.close()


def test_identity_is_stable_and_covers_what_decides_the_vectors(tmp_path):
    packaged = Path(resolve_model_path("packaged:all-MiniLM-L6-v2"))
    copy = tmp_path / "copy"
    shutil.copytree(packaged, copy)
    fingerprint = fingerprint_model_folder(packaged)
    assert fingerprint_model_folder(copy) == fingerprint  # another path (another machine): the same model

    (copy / "README.md").write_text("notes")  # documentation and other runtimes' exports change nothing
    (copy / "onnx").mkdir()
    (copy / "onnx" / "model.onnx").write_bytes(b"\x00" * 16)
    assert fingerprint_model_folder(copy) == fingerprint

    tokenizer = copy / "tokenizer_config.json"
    tokenizer.write_text(tokenizer.read_text().replace("true", "false", 1))
    assert fingerprint_model_folder(copy) != fingerprint

    weights = packaged / "model.safetensors"
    (copy / "model.safetensors").unlink()
    shutil.copy(packaged / "tokenizer_config.json", copy / "tokenizer_config.json")
    (copy / "model.safetensors").write_bytes(weights.read_bytes()[:-1] + b"\x01")  # one byte of the weights
    assert fingerprint_model_folder(copy) != fingerprint

    identity = ModelIdentity("packaged:all-MiniLM-L6-v2", BACKEND, fingerprint)
    assert ModelIdentity.parse(identity.text) == identity
    assert identity.same_vectors(ModelIdentity(str(copy), BACKEND, fingerprint).text)  # same files, other name
    assert not identity.same_vectors(ModelIdentity("x", "onnx", fingerprint).text)  # another backend
    assert not identity.same_vectors("")
    assert not identity.same_vectors("garbage")


async def test_a_spec_forgotten_while_it_is_rebuilt_waits_for_the_rebuild_then_stays_forgotten(
    assistant, example_spec
):
    await assistant.ingest(UploadSpec(TEAM_A, PathAttachment(example_spec), "shop"))
    await assistant.ingest(UploadSpec(TEAM_A, PathAttachment(example_spec), "books"))
    real_parser = assistant.parser
    parsing, go_on = asyncio.Event(), asyncio.Event()

    class GatedParser:
        async def parse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            parsing.set()
            await go_on.wait()
            return await real_parser.parse(*args, **kwargs)

    assistant.parser = GatedParser()
    try:
        rebuilding = asyncio.create_task(assistant.reindex(workspace=TEAM_A.scope, spec="shop"))
        await asyncio.wait_for(parsing.wait(), 30)
        forgetting = asyncio.create_task(assistant.forget(ForgetSpec(TEAM_A, "shop")))
        await asyncio.sleep(0.5)
        assert not forgetting.done()  # the forget waits for the spec's lock, which the rebuild holds
        go_on.set()
        report = await rebuilding
        await asyncio.wait_for(forgetting, 30)
    finally:
        assistant.parser = real_parser
    assert len(report.indexed) == 1 and report.skipped == 0
    assert [r.name for r in await assistant.list_specs(ListSpecs(TEAM_A))] == ["books"]
    [books] = await assistant.list_specs(ListSpecs(TEAM_A))
    assert await assistant.store.versions(TEAM_A.scope) == {books.index_version}  # the rebuilt one was dropped
    assert assistant.registry.versions_of(TEAM_A.scope) == {books.index_version}
    # shared with the forgotten spec: still used by `books`
    assert assistant.registry.original_names(TEAM_A.scope) == [books.original_path]


@given(
    name=st.text(max_size=300),
    backend=st.text(alphabet=st.characters(blacklist_characters="|"), min_size=1, max_size=20),
    fingerprint=st.text(alphabet="0123456789abcdef", min_size=1, max_size=64),
)
@settings(max_examples=300, deadline=None)
def test_stored_identities_read_back_whatever_the_name(name, backend, fingerprint):
    identity = ModelIdentity(name or "m", backend, fingerprint)  # names are paths or hub ids: `|` is possible
    assert ModelIdentity.parse(identity.text) == identity
    assert identity.same_vectors(identity.text)
    assert not identity.same_vectors(name.replace("|", ""))  # a bare name (as older releases keyed) never matches
