"""The assistant end to end on the real model and an embedded Chroma store."""

import asyncio
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from core import database, messages
from core import library as library_module
from core.actions import (
    AskQuestion,
    BytesAttachment,
    ForgetSpec,
    ListSpecs,
    Origin,
    PathAttachment,
    PurgeWorkspace,
    UploadSpec,
)
from core.commands.catalogue import Invocation, command
from core.commands.handlers import show_help
from core.errors import BusyError, FileTooLargeError, InvalidSpecError, NothingIndexedError, SpecNotFoundError
from core.library import IngestProgress, SweepReport
from core.registry import process_owner
from core.replies import HelpReply, QuietSink
from core.store import collection_name

TEAM_A = Origin("slack", "T-A", user="alice")
TEAM_B = Origin("slack", "T-B", user="bob")


async def upload(assistant, origin, path: Path, name=None, progress=None):
    return await assistant.ingest(UploadSpec(origin, PathAttachment(path), name), progress)


async def test_ingest_list_search_forget(assistant, example_spec):
    seen: list[IngestProgress] = []
    report = await upload(assistant, TEAM_A, example_spec, "bookshop", seen.append)
    assert report.record.operation_count == 7
    assert report.scheme_names == ("apiKey",)
    assert {p.stage for p in seen} == {"parsing", "embedding", "storing"}
    embedding = [p for p in seen if p.stage == "embedding"]
    assert embedding[-1].done == embedding[-1].total == 9  # embedding reached 100%
    assert (seen[-1].stage, seen[-1].done) == ("storing", 9)

    [record] = await assistant.list_specs(ListSpecs(TEAM_A))
    assert (record.name, record.title, record.version) == ("bookshop", "Bookshop API", "1.2.0")
    assert assistant.registry.read_original(TEAM_A.scope, record.original_path) == example_spec.read_bytes()

    items = await assistant.search(TEAM_A, "how do I refund an order?")
    assert items[0].document.item == {"kind": "operation", "method": "POST", "path": "/orders/{orderId}/refund"}
    by_identifier = await assistant.search(TEAM_A, "what does `createCustomer` need?")
    assert by_identifier[0].document.item["path"] == "/customers"
    by_path = await assistant.search(TEAM_A, "GET /books/9780262033848 returns what?")
    assert by_path[0].document.item == {"kind": "operation", "method": "GET", "path": "/books/{isbn}"}
    auth = await assistant.search(TEAM_A, "how do I authenticate?")
    assert auth[0].document.item == {"kind": "auth", "scheme": "apiKey"}

    await assistant.forget(ForgetSpec(TEAM_A, "bookshop"))
    assert await assistant.list_specs(ListSpecs(TEAM_A)) == []
    assert await assistant.store.versions(TEAM_A.scope) == set()
    with pytest.raises(NothingIndexedError):
        await assistant.search(TEAM_A, "refund")


async def test_workspaces_are_isolated(assistant, example_spec):
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    assert await assistant.list_specs(ListSpecs(TEAM_B)) == []
    with pytest.raises(NothingIndexedError):
        await assistant.search(TEAM_B, "refund an order")
    with pytest.raises(SpecNotFoundError):
        await assistant.search(TEAM_B, "refund an order", spec="bookshop")
    with pytest.raises(SpecNotFoundError):
        await assistant.forget(ForgetSpec(TEAM_B, "bookshop"))
    # Same workspace id on another platform is another workspace.
    with pytest.raises(NothingIndexedError):
        await assistant.search(Origin("discord", "T-A"), "refund an order")
    assert len(await assistant.search(TEAM_A, "refund an order")) > 0


async def test_reupload_unchanged_is_a_no_op_and_new_version_replaces(assistant, example_spec, tmp_path):
    first = await upload(assistant, TEAM_A, example_spec, "bookshop")
    again = await upload(assistant, TEAM_A, example_spec, "bookshop")
    assert again.unchanged and again.record.index_version == first.record.index_version

    changed = tmp_path / "bookshop.yaml"
    changed.write_text(
        example_spec.read_text()
        .replace("version: 1.2.0", "version: 1.3.0")
        .replace("summary: Refund an order", "summary: Refund an order to the original card")
    )
    second = await upload(assistant, TEAM_A, changed, "bookshop")
    assert second.replaced and second.record.version == "1.3.0"
    assert await assistant.store.versions(TEAM_A.scope) == {second.record.index_version}
    items = await assistant.search(TEAM_A, "refund an order")
    assert items[0].document.operation.summary == "Refund an order to the original card"


class FailingStore:
    """Stores half the documents, then fails."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def add(self, workspace, spec, index_version, documents, embeddings):
        half = len(documents) // 2
        await self.inner.add(workspace, spec, index_version, documents[:half], embeddings[:half])
        raise RuntimeError("disk full")


async def test_failure_half_way_keeps_previous_version(assistant, example_spec, tmp_path):
    original = await upload(assistant, TEAM_A, example_spec, "bookshop")
    changed = tmp_path / "bookshop.yaml"
    changed.write_text(example_spec.read_text().replace("version: 1.2.0", "version: 2.0.0"))

    real_store = assistant.store
    assistant.store = FailingStore(real_store)
    with pytest.raises(RuntimeError, match="disk full"):
        await upload(assistant, TEAM_A, changed, "bookshop")
    assistant.store = real_store

    [record] = await assistant.list_specs(ListSpecs(TEAM_A))
    assert record.version == "1.2.0" and record.index_version == original.record.index_version
    assert await real_store.versions(TEAM_A.scope) == {original.record.index_version}  # partial write removed
    assert (await assistant.search(TEAM_A, "refund an order"))[0].document.item["path"] == "/orders/{orderId}/refund"


async def test_bad_uploads_change_nothing(assistant, example_spec):
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    before = await assistant.list_specs(ListSpecs(TEAM_A))
    bad = [
        BytesAttachment("bookshop.yaml", b"openapi: 3.0.0\ninfo: [broken\n"),
        BytesAttachment("bookshop.yaml", b""),
        BytesAttachment("bookshop.json", b"\x00\x01binary"),
    ]
    for attachment in bad:
        with pytest.raises(InvalidSpecError):
            await assistant.ingest(UploadSpec(TEAM_A, attachment, "bookshop"))
    assistant.settings.max_file_size_mb = 0.001
    with pytest.raises(FileTooLargeError):
        await upload(assistant, TEAM_A, example_spec, "bookshop")
    with pytest.raises(InvalidSpecError, match="can't be used as a spec name"):
        await assistant.ingest(UploadSpec(TEAM_A, BytesAttachment("x.json", b"{}"), "../../etc/passwd"))
    assert await assistant.list_specs(ListSpecs(TEAM_A)) == before
    assert len(await assistant.search(TEAM_A, "refund an order")) > 0


async def test_retrieval_only_answer_has_snippet_auth_and_citations(assistant, example_spec):
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    answer = await assistant.ask(AskQuestion(TEAM_A, "give me python for creating a customer"))
    text = answer.as_markdown()
    assert "POST /customers" in text
    assert "```python" in text and 'os.environ["API_KEY"]' in text
    assert "X-Api-Key" in text
    assert answer.citations[0].label == "POST /customers" and answer.citations[0].spec == "bookshop"
    assert "GROQ_API_KEY" in answer.notice


async def test_generation_off_is_said_once_per_thread_and_never_on_a_cached_answer(assistant, example_spec):
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    thread_one = replace(TEAM_A, channel="C1", thread="100.1")
    first = await assistant.ask(AskQuestion(thread_one, "how do I refund an order?"))
    again = await assistant.ask(AskQuestion(thread_one, "how do I create a customer?"))
    assert first.notice == messages.generation_off() and again.notice == ""
    # Another thread: said there once too, but not on an answer that comes from the cache.
    cached = await assistant.ask(AskQuestion(replace(TEAM_A, channel="C2", thread="200.1"),
                                             "how do I refund an order?"))
    fresh = await assistant.ask(AskQuestion(replace(TEAM_A, channel="C3", thread="300.1"),
                                            "how do I delete a customer?"))
    assert cached.notice == "" and fresh.notice == messages.generation_off()
    assert "POST /orders/{orderId}/refund" in cached.as_markdown()
    # The help says it to everyone who asks for it.
    help_reply = await show_help(assistant, Invocation(command("help"), TEAM_A), QuietSink())
    assert isinstance(help_reply, HelpReply) and help_reply.notes == (messages.generation_off_note(),)


async def test_duplicate_event_claimed_once(assistant):
    origin = Origin("slack", "T-A", event_id="Ev123")
    assert await assistant.claim_event(origin)
    assert not await assistant.claim_event(origin)
    assert await assistant.claim_event(Origin("slack", "T-A", event_id="Ev124"))


async def test_retrieval_answer_quoting_spec_text_cannot_ping(assistant, tmp_path):
    spec = tmp_path / "loud.yaml"
    spec.write_text(
        "openapi: 3.0.0\ninfo: {title: Loud, version: '1'}\npaths:\n  /alerts:\n    post:\n"
        "      summary: Send an alert\n      description: 'Pings @everyone and <!channel> and <@U123> when it fires.'\n"
        "      responses: {'200': {description: ok}}\n"
    )
    await assistant.ingest(UploadSpec(TEAM_A, PathAttachment(spec)))
    text = (await assistant.ask(AskQuestion(TEAM_A, "how do I send an alert?"))).as_markdown()
    assert "Pings @\u200beveryone" in text
    assert "@everyone" not in text and "<!channel>" not in text and "<@U123>" not in text


def changed_copy(example_spec: Path, folder: Path, version: str) -> Path:
    changed = folder / f"bookshop-{version}.yaml"
    changed.write_text(example_spec.read_text().replace("version: 1.2.0", f"version: {version}"))
    return changed


async def test_forget_deletes_the_original_once_no_other_spec_uses_it(assistant, example_spec):
    one = await upload(assistant, TEAM_A, example_spec, "one")
    two = await upload(assistant, TEAM_A, example_spec, "two")  # the same file: one shared original
    original = one.record.original_path
    assert two.record.original_path == original

    await assistant.forget(ForgetSpec(TEAM_A, "one"))
    assert assistant.registry.original_names(TEAM_A.scope) == [original]  # `two` still uses it
    await assistant.forget(ForgetSpec(TEAM_A, "two"))
    assert assistant.registry.original_names(TEAM_A.scope) == []
    assert await assistant.store.versions(TEAM_A.scope) == set()
    assert assistant.registry.documents(TEAM_A.scope, two.record.index_version) == []
    assert assistant.registry.stale_versions(older_than=0) == []  # nothing left for a sweep either


def kept_parses(assistant) -> set[str]:
    """The content hashes the parser keeps results of, in memory and on disk (they must agree)."""
    pool = assistant.parser
    in_memory = {key[0] for key in pool.cache._entries}
    on_disk = {entry.name.split("-", 1)[0] for entry in pool.disk_cache.directory.glob("*.pickle")}
    assert in_memory == on_disk
    return on_disk


async def test_parse_results_go_with_the_last_stored_copy_of_their_file(assistant, example_spec, tmp_path):
    """Kept parse results hold a spec's text: forgetting, replacing or purging drops them once no copy is left."""
    one = await upload(assistant, TEAM_A, example_spec, "one")
    await upload(assistant, TEAM_B, example_spec, "one")  # the same file in another workspace
    assert kept_parses(assistant) == {one.record.content_hash}

    await assistant.forget(ForgetSpec(TEAM_A, "one"))
    assert kept_parses(assistant) == {one.record.content_hash}  # TEAM_B still stores the file
    replaced = await upload(assistant, TEAM_B, changed_copy(example_spec, tmp_path, "1.3.0"), "one")
    # The replaced version's original is kept as history (SPEC_HISTORY), so is its parse (diffs read it).
    assert kept_parses(assistant) == {one.record.content_hash, replaced.record.content_hash}
    await upload(assistant, TEAM_A, example_spec, "again")
    await assistant.purge_workspace(PurgeWorkspace(TEAM_A, "app_uninstalled"))
    assert kept_parses(assistant) == {one.record.content_hash, replaced.record.content_hash}
    await assistant.forget(ForgetSpec(TEAM_B, "one"))  # its history goes with it
    assert kept_parses(assistant) == set()


async def test_replacing_a_spec_keeps_the_old_original_as_history_only(assistant, example_spec, tmp_path):
    first = await upload(assistant, TEAM_A, example_spec, "bookshop")
    second = await upload(assistant, TEAM_A, changed_copy(example_spec, tmp_path, "1.3.0"), "bookshop")
    assert second.replaced
    assert sorted(assistant.registry.original_names(TEAM_A.scope)) == sorted(
        [first.record.original_path, second.record.original_path]
    )  # for diffs (SPEC_HISTORY); its documents and vectors go: it is never searched
    assert assistant.registry.documents(TEAM_A.scope, first.record.index_version) == []


async def test_without_history_replacing_a_spec_deletes_the_old_original(assistant, example_spec, tmp_path):
    assistant.library.settings = assistant.settings.model_copy(update={"spec_history": 0})
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    second = await upload(assistant, TEAM_A, changed_copy(example_spec, tmp_path, "1.3.0"), "bookshop")
    assert assistant.registry.original_names(TEAM_A.scope) == [second.record.original_path]


async def test_purge_removes_everything_of_one_workspace_only(assistant, example_spec, tmp_path):
    in_thread = Origin("slack", "T-A", channel="C1", user="alice", thread="1700.1")
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    await upload(assistant, TEAM_A, changed_copy(example_spec, tmp_path, "2.0.0"), "v2")
    kept = await upload(assistant, TEAM_B, example_spec, "bookshop")
    await assistant.ask(AskQuestion(TEAM_A, "how do I refund an order?"))  # a cached answer
    await assistant.ask(AskQuestion(in_thread, "how do I list books?"))  # thread memory (and a cached answer)
    await assistant.ask(AskQuestion(TEAM_B, "how do I refund an order?"))
    versions_a = {r.index_version for r in await assistant.list_specs(ListSpecs(TEAM_A))}

    with capture_logs() as logs:
        report = await assistant.purge_workspace(PurgeWorkspace(Origin("slack", "T-A"), "app_uninstalled"))

    assert (report.specs, report.versions, report.originals) == (2, 2, 2)
    assert report.documents == report.vectors == 18  # 9 documents (7 operations, 1 scheme, 1 overview) each
    # Thread state: the thread's memory, and the "generated answers are off" note shown once per thread (and once
    # per person and channel without a thread: both TEAM_A questions asked outside one).
    assert (report.cached_answers, report.threads) == (2, 3)
    assert await assistant.list_specs(ListSpecs(TEAM_A)) == []
    assert assistant.registry.original_names(TEAM_A.scope) == []
    assert all(assistant.registry.documents(TEAM_A.scope, v) == [] for v in versions_a)
    assert assistant.registry.versions_of(TEAM_A.scope) == set()
    chroma = assistant.store._client
    assert collection_name(TEAM_A.scope) not in {c.name for c in chroma.list_collections()}
    assert not await assistant.knows_thread(in_thread)
    purged = next(e for e in logs if e["event"] == "workspace_purged")
    assert purged["workspace"] == "slack:T-A" and purged["vectors"] == 18 and purged["reason"] == "app_uninstalled"
    audit = next(e for e in logs if e["event"] == "audit")
    assert audit["action"] == "purge" and audit["workspace"] == "slack:T-A" and audit["outcome"] == "ok"
    assert audit["reason"] == "app_uninstalled" and audit["specs"] == "bookshop,v2" and audit["spec"] == "*"

    # The other workspace is untouched: its spec, original, vectors and cached answer.
    [record] = await assistant.list_specs(ListSpecs(TEAM_B))
    assert record.index_version == kept.record.index_version
    assert assistant.registry.original_names(TEAM_B.scope) == [record.original_path]
    assert await assistant.store.versions(TEAM_B.scope) == {kept.record.index_version}
    with capture_logs() as logs:
        await assistant.ask(AskQuestion(TEAM_B, "how do I refund an order?"))
    assert any(e.get("mode") == "cached" for e in logs)

    again = await assistant.purge_workspace(PurgeWorkspace(Origin("slack", "T-A"), "tokens_revoked"))
    assert (again.specs, again.documents, again.vectors, again.originals, again.cached_answers) == (0, 0, 0, 0, 0)

    # The workspace can start over (the store re-creates its collection).
    await upload(assistant, TEAM_A, example_spec, "bookshop")
    assert (await assistant.search(TEAM_A, "refund an order"))[0].document.item["path"] == "/orders/{orderId}/refund"


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


async def _half_written(assistant, origin, spec: str, owner: str, created_at: float) -> str:
    """What a crashed ingest leaves: a ledger entry, documents and some vectors, no record pointing at them."""
    version = uuid.uuid4().hex[:16]
    [live] = await assistant.list_specs(ListSpecs(origin))
    documents = assistant.registry.documents(origin.scope, live.index_version)
    assistant.registry.begin_version(origin.scope, spec, version)
    assistant.registry.put_documents(origin.scope, version, documents)
    vectors = await assistant.embedder.embed_documents([d.embed_text for d in documents[:4]])
    await assistant.store.add(origin.scope, spec, version, documents[:4], vectors)
    ledger = database.index_versions
    with database.write(assistant.registry.engine) as db:
        db.execute(
            sa.update(ledger).where(ledger.c.index_version == version).values(owner=owner, created_at=created_at)
        )
    return version


async def test_startup_sweep_removes_what_a_crash_left_and_keeps_what_may_be_in_flight(assistant, example_spec):
    assert await assistant.sweep_leftovers() == SweepReport()  # nothing to do on a clean data dir
    live = await upload(assistant, TEAM_A, example_spec, "bookshop")
    host = process_owner().split("|")[0]
    crashed = await _half_written(assistant, TEAM_A, "bookshop", f"{host}|{_dead_pid()}|x", time.time())
    elsewhere = await _half_written(assistant, TEAM_A, "bookshop", "other-host|7|y", time.time())
    ancient = await _half_written(assistant, TEAM_A, "bookshop", "other-host|7|z", time.time() - 7200)
    # An original whose record was never written (a crash between the two is impossible now, but a forget
    # racing elsewhere can leave one), and a young one another process may be about to reference.
    gone = replace(live.record, name="gone", original_path="gone.yaml", indexed_at=time.time())
    assistant.registry.put(gone, original=b"nobody uses me")
    assistant.registry.put(replace(gone, name="young", original_path="young.yaml"), original=b"in progress")
    assistant.registry.delete(TEAM_A.scope, "gone")
    with database.write(assistant.registry.engine) as db:
        originals = database.originals
        db.execute(sa.update(originals).where(originals.c.name == "gone.yaml").values(touched_at=time.time() - 7200))
        # Not `registry.delete`, which retires the original (old at once): unreferenced and young.
        db.execute(sa.delete(database.specs).where(database.specs.c.name == "young"))

    with capture_logs() as logs:
        report = await assistant.sweep_leftovers()

    assert report == SweepReport(versions=2, documents=18, originals=1)
    assert await assistant.store.versions(TEAM_A.scope) == {live.record.index_version, elsewhere}
    assert assistant.registry.documents(TEAM_A.scope, crashed) == []
    assert assistant.registry.documents(TEAM_A.scope, ancient) == []
    assert len(assistant.registry.documents(TEAM_A.scope, elsewhere)) == 9  # maybe still being written
    assert assistant.registry.original_names(TEAM_A.scope) == sorted([live.record.original_path, "young.yaml"])
    assert next(e for e in logs if e["event"] == "startup_sweep")["versions"] == 2
    assert (await assistant.search(TEAM_A, "refund an order"))[0].document.item["path"] == "/orders/{orderId}/refund"
    assert await assistant.sweep_leftovers() == SweepReport()


async def test_purge_waits_for_an_upload_in_progress_so_it_cannot_come_back(assistant, example_spec):
    embedding = asyncio.Event()

    def progress(step: IngestProgress) -> None:
        if step.stage == "embedding":
            embedding.set()

    upload_task = asyncio.create_task(upload(assistant, TEAM_A, example_spec, "bookshop", progress))
    await asyncio.wait_for(embedding.wait(), 30)
    report = await assistant.purge_workspace(PurgeWorkspace(Origin("slack", "T-A"), "app_uninstalled"))
    await upload_task
    assert report.specs == 1  # the purge ran after the upload had finished, and removed it
    assert await assistant.list_specs(ListSpecs(TEAM_A)) == []
    assert assistant.registry.versions_of(TEAM_A.scope) == set()


async def test_event_loop_keeps_ticking_while_a_hostile_upload_is_parsed(settings, embedder, example_spec):
    from core.actions import BytesAttachment
    from core.bootstrap import build_assistant
    from core.errors import ParseTimeoutError
    from tests.core.parsing.test_worker import big_openapi_yaml

    hostile = big_openapi_yaml(2000)  # over two seconds of parsing here, far past the limit below
    limited = settings.model_copy(update={"parse_timeout_seconds": 1.0})
    async with build_assistant(limited, embedder=embedder) as assistant:
        loop = asyncio.get_running_loop()
        lags: list[float] = []
        parsing = True

        async def ticker() -> None:
            while parsing:
                before = loop.time()
                await asyncio.sleep(0.01)
                lags.append(loop.time() - before - 0.01)

        ticking = asyncio.create_task(ticker())
        try:
            with pytest.raises(ParseTimeoutError):
                await assistant.ingest(UploadSpec(TEAM_A, BytesAttachment("huge.yaml", hostile)))
        finally:
            parsing = False
            await ticking
        assert len(lags) >= 50  # the ticker ran all through the parse (about a second of 10 ms ticks)
        p99 = sorted(lags)[int(len(lags) * 0.99)]
        assert p99 < 0.05, f"event loop lag p99 {p99 * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms"
        # The worker that was stopped has been replaced: the next upload is indexed normally.
        report = await upload(assistant, TEAM_A, example_spec, "bookshop")
        assert report.record.operation_count == 7


async def test_an_upload_waiting_too_long_for_its_spec_is_told_to_try_again(assistant, example_spec, monkeypatch):
    monkeypatch.setattr(library_module, "SPEC_LOCK_WAIT_SECONDS", 0.3)
    async with assistant.registry.lock(f"spec:{TEAM_A.scope}:bookshop"):  # another replica is updating it
        with pytest.raises(BusyError) as busy:
            await upload(assistant, TEAM_A, example_spec, "bookshop")
    assert "`bookshop` is still being updated" in busy.value.user_message
    assert (await upload(assistant, TEAM_A, example_spec, "bookshop")).record.name == "bookshop"
