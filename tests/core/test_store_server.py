"""The same assistant on a real Chroma server (`chroma run` on 127.0.0.1), as with CHROMA_HOST/CHROMA_PORT."""

import pytest

from core.actions import ListSpecs, Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from tests.chroma_server import start_chroma


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
