"""The assistant end to end on the real model and an embedded Chroma store."""

import asyncio
from pathlib import Path

import pytest

from core.errors import FileTooLargeError, InvalidSpecError, NothingIndexedError, SpecNotFoundError
from core.requests import AskQuestion, BytesAttachment, ForgetSpec, ListSpecs, Origin, PathAttachment, UploadSpec
from core.service import IngestProgress

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
    assert Path(record.original_path).read_bytes() == example_spec.read_bytes()

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


async def test_event_loop_keeps_ticking_while_a_hostile_upload_is_parsed(settings, embedder, example_spec):
    from core.bootstrap import build_assistant
    from core.errors import ParseTimeoutError
    from core.requests import BytesAttachment
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
