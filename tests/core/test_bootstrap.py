"""The composition root closes what it built: threads, worker processes, connections and files, seen from /proc."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from core.errors import ConfigError
from tests.chroma_server import start_chroma
from tests.fake_groq import start_fake_groq

TEAM = Origin("slack", "T1", channel="C1", user="U1", thread="1.0")


def open_files_under(folder: Path) -> list[str]:
    """The files under `folder` this process holds open (SQLite databases, Chroma's files)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own fd)
            continue
        if target.startswith(str(folder) + os.sep):
            found.append(target)
    return sorted(found)


def connections_to(port: int) -> int:
    """How many established TCP connections this process holds to `port` on another end."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for line in handle.read().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                    count += 1
    return count


def child_processes() -> set[int]:
    children: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as handle:
                children.update(int(pid) for pid in handle.read().split())
        except FileNotFoundError:  # a thread that ended after the listing: it has no children to count
            continue
    return children


def own_threads() -> set[threading.Thread]:
    # Not the assistant's: the event loop's default executor (asyncio.to_thread), which outlives it, and tqdm's
    # process-wide monitor, which bm25s starts once per process.
    return {t for t in threading.enumerate() if not t.name.startswith("asyncio_") and t.name != "tqdm_monitor"}


@pytest.fixture
async def fake_groq():
    async with start_fake_groq() as fake:
        yield fake


async def test_everything_built_is_closed_when_the_assistant_exits(
    tmp_path, embedder, fake_groq, redis_url, example_spec
):
    """With Redis, Groq, embedded Chroma and its own embedding model: nothing of it outlives the `async with`."""
    del embedder  # loaded once per session; the root below builds an embedder of its own on the same model
    settings = Settings(
        data_dir=tmp_path / "data",
        groq_api_key="gsk_test_key_not_real",
        groq_base_url=fake_groq.base_url,
        redis_url=redis_url,
        _env_file=None,
    )  # type: ignore[call-arg]
    groq_port = urlsplit(fake_groq.base_url).port
    redis_port = urlsplit(redis_url).port
    assert groq_port and redis_port
    threads_before, children_before = own_threads(), child_processes()

    async with build_assistant(settings) as assistant:
        await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
        answer = await assistant.ask(AskQuestion(TEAM, "how do I refund an order?"))
        assert fake_groq.requests and answer.citations  # the answer came through the Groq client
        assert await assistant.knows_thread(TEAM)  # the thread memory went through Redis
        # Everything the checks below look for is in use now, so each check can fail.
        workers = assistant.parser.pids
        assert workers and workers <= child_processes() - children_before
        started = own_threads() - threads_before
        assert any(t.name.startswith("embedding") for t in started)
        assert connections_to(redis_port) >= 1 and connections_to(groq_port) >= 1
        held = open_files_under(settings.data_dir)
        assert any(f.endswith("registry.sqlite3") for f in held)
        assert any(f.endswith("embedding-cache.sqlite3") for f in held)
        assert any("/chroma/" in f for f in held)

    assert [t.name for t in started if t.is_alive()] == []
    assert workers.isdisjoint(child_processes())  # stopped and reaped
    assert connections_to(redis_port) == 0
    assert connections_to(groq_port) == 0
    assert open_files_under(settings.data_dir) == []


async def test_an_embedder_passed_in_stays_the_callers(settings, embedder, example_spec):
    async with build_assistant(settings, embedder=embedder) as assistant:
        await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
    vectors = await embedder.embed_documents(["still works after the assistant closed"])
    assert len(vectors[0]) == 384


async def test_a_failure_while_building_closes_what_was_already_built(tmp_path, embedder, redis_url):
    """The model check fails last, after every service was built and the parse workers started."""
    del embedder
    missing_model = tmp_path / "no-such-model"
    settings = Settings(
        data_dir=tmp_path / "data", redis_url=redis_url, embedding_model=str(missing_model), _env_file=None
    )  # type: ignore[call-arg]
    redis_port = urlsplit(redis_url).port
    assert redis_port
    threads_before, children_before = own_threads(), child_processes()
    with pytest.raises(ConfigError, match=r"EMBEDDING_MODEL .*no-such-model.* could not be loaded"):
        async with build_assistant(settings):
            pytest.fail("a missing model must stop the start-up")
    assert [t.name for t in own_threads() - threads_before if t.is_alive()] == []
    assert child_processes() - children_before == set()
    assert connections_to(redis_port) == 0
    assert open_files_under(settings.data_dir) == []


async def test_a_chroma_server_connection_is_closed_on_exit(tmp_path_factory, tmp_path, embedder, example_spec):
    with start_chroma(tmp_path_factory.mktemp("chroma")) as port:
        settings = Settings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=port, _env_file=None)  # type: ignore[call-arg]
        async with build_assistant(settings, embedder=embedder) as assistant:
            await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
            assert connections_to(port) >= 1
        assert connections_to(port) == 0

