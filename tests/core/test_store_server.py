"""The same assistant on a real Chroma server (`chroma run` on 127.0.0.1), as with CHROMA_HOST/CHROMA_PORT."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.bootstrap import build_assistant
from core.config import Settings
from core.requests import ListSpecs, Origin, PathAttachment, UploadSpec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    process = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path_factory.mktemp("chroma")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("chroma server did not start") from None
            time.sleep(0.2)
    yield port
    process.terminate()
    process.wait(timeout=10)


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
