"""The same assistant on a real Chroma server (`chroma run` on 127.0.0.1), as with CHROMA_HOST/CHROMA_PORT."""

import os
import signal
import time

import pytest
from structlog.testing import capture_logs

from core import messages
from core.actions import AskQuestion, ListSpecs, Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from core.errors import StoreUnavailableError
from core.store import ChromaVectorStore
from tests.chroma_server import ChromaServer, start_chroma


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    with start_chroma(tmp_path_factory.mktemp("chroma")) as port:
        yield port


async def test_server_mode_ingest_search_and_survives_restart_of_client(
    chroma_server, embedder, tmp_path, example_spec
):
    settings = Settings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=chroma_server, _env_file=None)
    origin = Origin("discord", "G1")
    async with build_assistant(settings, embedder=embedder) as assistant:
        await assistant.ingest(UploadSpec(origin, PathAttachment(example_spec), "bookshop"))
        assert not (tmp_path / "chroma").exists()  # nothing embedded locally: the server holds the vectors
    async with build_assistant(settings, embedder=embedder) as assistant:
        assert [r.name for r in await assistant.list_specs(ListSpecs(origin))] == ["bookshop"]
        items = await assistant.search(origin, "how do I refund an order?")
        assert items[0].document.item == {"kind": "operation", "method": "POST", "path": "/orders/{orderId}/refund"}
        other = Origin("discord", "G2")
        assert await assistant.store.versions(other.scope) == set()


# ---- the Chroma server goes away ------------------------------------------------------------------------------


async def test_a_killed_chroma_server_gets_a_clear_reply_and_everything_works_after_its_restart(
    embedder, tmp_path, example_spec
):
    """During the outage questions on specs already searched are answered from the vectors held in memory;
    a search that needs the store (a scope not in memory) and uploads fail at once with a user-facing
    "temporarily unavailable" (logged once); the spec indexed before stays live; after a restart on the same
    port and data everything works again."""
    server = ChromaServer(tmp_path / "chroma")
    server.start()
    try:
        settings = Settings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=server.port,
                            _env_file=None)
        origin = Origin("slack", "T1", user="U1")
        question = AskQuestion(origin, "how do I refund an order?")
        shop = tmp_path / "shop.yaml"
        shop.write_bytes(example_spec.read_bytes())
        async with build_assistant(settings, embedder=embedder) as assistant:
            await assistant.ingest(UploadSpec(origin, PathAttachment(example_spec), "bookshop"))
            assert (await assistant.ask(question)).citations

            server.stop(kill=True)
            with capture_logs() as logs:
                started = time.monotonic()
                answered = await assistant.ask(AskQuestion(origin, "how do I list the books?"))
                assert answered.citations and answered.citations[0].item["path"] == "/books"
                assistant.retriever._lexical.clear()  # as after a restart: the vectors must come from the store
                for _ in range(2):
                    with pytest.raises(StoreUnavailableError) as refused:
                        await assistant.ask(AskQuestion(origin, "how do I add a book?"))
                    assert refused.value.user_message == messages.store_unavailable()
                with pytest.raises(StoreUnavailableError) as upload_refused:
                    await assistant.ingest(UploadSpec(origin, PathAttachment(shop), "shop"))
                assert time.monotonic() - started < 10  # refused at once, not after a wait
            assert upload_refused.value.user_message == messages.upload_store_unavailable("shop.yaml")
            outages = [e for e in logs if e["event"] == "vector_store_unavailable"]
            assert len(outages) == 1 and outages[0]["target"] == f"127.0.0.1:{server.port}", outages
            assert [r.name for r in await assistant.list_specs(ListSpecs(origin))] == ["bookshop"]

            server.start()
            with capture_logs() as logs:  # a question not asked before: no cached answer, a real search
                answer = await assistant.ask(AskQuestion(origin, "how can I get a refund for an order?"))
            assert answer.citations and answer.citations[0].item["path"] == "/orders/{orderId}/refund"
            assert [e["event"] for e in logs if e["event"].startswith("vector_store_")] == ["vector_store_recovered"]
            report = await assistant.ingest(UploadSpec(origin, PathAttachment(shop), "shop"))
            assert not report.unchanged
            assert sorted(r.name for r in await assistant.list_specs(ListSpecs(origin))) == ["bookshop", "shop"]
    finally:
        server.stop(kill=True)


async def test_a_chroma_server_that_stops_answering_fails_the_request_within_the_timeout(tmp_path):
    """A server that accepts connections and never answers (SIGSTOP) must not hold a question forever."""
    server = ChromaServer(tmp_path / "chroma")
    server.start()
    store = ChromaVectorStore.server("127.0.0.1", server.port, connect_timeout=1.0, timeout=1.0)
    try:
        await store.versions("slack:T1")  # connected, the collection known
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                await store.query("slack:T1", [0.1] * 384, ["v1"], 5)
            assert time.monotonic() - started < 5
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert await store.query("slack:T1", [0.1] * 384, ["v1"], 5) == []
    finally:
        await store.aclose()
        server.stop(kill=True)
