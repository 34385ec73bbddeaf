"""Real processes: SIGTERM while an answer is in flight, and `kill -9` in the middle of re-indexing a spec.

These start the command line in a subprocess (`python -m bot.cli`, what `api-assistant` runs), against the
local stand-ins: the mock Slack (Socket Mode), the fake Groq, and a real Chroma server behind a proxy that can
hold a request, so the kill lands at a known point of the re-index instead of at a lucky moment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import chromadb
from aiohttp import web
from chromadb.config import Settings as ChromaSettings

from bot.cli import CLI_ORIGIN
from core.actions import Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from core.store import collection_name
from tests.bot.slack.conftest import event_body, mention
from tests.bot.slack.mock_slack import APP_TOKEN, BOT_TOKEN, TEAM_ID, MockSlack
from tests.chroma_server import start_chroma
from tests.conftest import REPO_ROOT
from tests.fake_groq import Reply, start_fake_groq

GRACE_SECONDS = 20.0
STARTUP_TIMEOUT = 120.0  # a cold subprocess imports chromadb and torch and loads the model on a busy machine


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess: this checkout's code, its own data, no stray credentials."""
    services = ("SLACK_", "DISCORD_", "GROQ_", "REDIS_", "CHROMA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(services)}
    env.update(PYTHONPATH=str(REPO_ROOT), DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", ENVIRONMENT="production")
    env.update(HOST="127.0.0.1", PORT="0")  # `run` serves /health and /metrics in every mode: any free port
    env.update(extra)
    return env


async def start_cli(cwd: Path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await start_cli(cwd, env, *args)
    out, err = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def json_logs(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ---- SIGTERM while an answer is being written --------------------------------------------------------


async def test_sigterm_finishes_the_answer_in_flight_then_exits_0(tmp_path: Path, embedder: Any, example_spec: Path):
    data = tmp_path / "data"
    async with build_assistant(Settings(data_dir=data, _env_file=None), embedder=embedder) as assistant:
        await assistant.ingest(UploadSpec(Origin("slack", TEAM_ID), PathAttachment(example_spec), "bookshop"))
    slack = MockSlack()
    await slack.start()
    try:
        async with start_fake_groq() as groq:
            # About 3 s of streaming: long enough to be cut off by an abrupt exit.
            text = "Refund an order with POST /orders/{orderId}/refund [1]; the amount is optional. [1]"
            groq.default = Reply(text, chunk_chars=6, chunk_delay=0.2)
            env = cli_env(
                data, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=slack.api_url,
                GROQ_API_KEY="gsk_test_not_real", GROQ_BASE_URL=groq.base_url,
                SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
            )
            process = await start_cli(tmp_path, env, "run")
            try:
                await slack.wait_until(lambda: slack.socket_connected, timeout=STARTUP_TIMEOUT)
                await slack.push({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                                  "retry_attempt": 0, "retry_reason": "",
                                  "payload": event_body(mention("how do I refund an order?", ts="7000.000100"))})
                await wait_until(lambda: bool(groq.requests), STARTUP_TIMEOUT, "the answer to reach Groq")
                await asyncio.sleep(0.5)  # the answer is streaming now
                signalled = time.monotonic()
                process.send_signal(signal.SIGTERM)
                await slack.wait_until(lambda: not slack.socket_connected, timeout=5)
                intake_closed = time.monotonic()
                code = await asyncio.wait_for(process.wait(), GRACE_SECONDS + 10)
                exited = time.monotonic()
                out, err = await process.communicate()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    finally:
        await slack.stop()

    logs = json_logs(out.decode())  # `run` logs to stdout
    assert code == 0, err.decode()[-3000:]
    assert exited - signalled < GRACE_SECONDS
    finals = [c for c in slack.calls_to("chat.update") if any(b["type"] == "actions" for b in c.params["blocks"])]
    assert finals, "the answer in flight was never delivered"
    assert "the amount is optional" in finals[-1].blob()
    assert intake_closed < finals[-1].at  # no new events were taken while the answer was finishing
    events = [e["event"] for e in logs]
    assert events.index("shutdown_requested") < events.index("shutdown_drained") < events.index("slack_stopped")
    assert "shutdown_grace_expired" not in events


# ---- kill -9 in the middle of re-indexing a large spec ------------------------------------------------


def big_spec(operations: int, version: str, changed_summary: str = "") -> dict[str, Any]:
    """A generated OpenAPI spec with `operations` operations (more than one vector-store batch)."""
    paths: dict[str, Any] = {}
    for i in range(operations):
        summary = changed_summary if changed_summary and i == 7 else f"Get widget {i}"
        paths[f"/widgets{i}"] = {
            "get": {"operationId": f"getWidget{i}", "summary": summary, "responses": {"200": {"description": "ok"}}}
        }
    return {"openapi": "3.0.3", "info": {"title": "Widgets API", "version": version}, "paths": paths}


class HoldingProxy:
    """An HTTP proxy in front of the Chroma server that holds the `hold_at`-th vector write until released."""

    def __init__(self, target_port: int, hold_at: int) -> None:
        self.target = f"http://127.0.0.1:{target_port}"
        self.hold_at = hold_at
        self.adds = 0
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "POST" and request.path.endswith("/add"):
            self.adds += 1
            if self.adds >= self.hold_at:
                self.holding.set()
                await self.release.wait()
                raise web.HTTPServiceUnavailable()
        headers = {k: v for k, v in request.headers.items() if k.lower() in {"content-type", "accept"}}
        async with aiohttp.ClientSession() as session, session.request(
            request.method, self.target + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            content_type = upstream.headers.get("Content-Type", "application/json")
            return web.Response(body=payload, status=upstream.status, headers={"Content-Type": content_type})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[HoldingProxy]:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=0.5)
        await site.start()
        self.port = runner.addresses[0][1]
        try:
            yield self
        finally:
            self.release.set()
            await runner.cleanup()


def registry_rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{data / 'registry.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_kill_9_while_reindexing_keeps_the_previous_version_and_the_sweep_clears_the_rest(
    tmp_path: Path, embedder: Any
) -> None:
    operations = 1500  # 1501 documents: two vector writes of up to 1000
    v1, v2 = tmp_path / "widgets-v1.json", tmp_path / "widgets-v2.json"
    v1.write_text(json.dumps(big_spec(operations, "1.0.0")))
    v2.write_text(json.dumps(big_spec(operations, "2.0.0", changed_summary="Fetch widget seven from the NEW store")))
    data = tmp_path / "data"
    with start_chroma(tmp_path / "chroma") as chroma_port:
        settings = Settings(data_dir=data, chroma_host="127.0.0.1", chroma_port=chroma_port, _env_file=None)
        async with build_assistant(settings, embedder=embedder) as assistant:  # the version that must survive
            first = await assistant.ingest(UploadSpec(CLI_ORIGIN, PathAttachment(v1), "widgets"))
        live = first.record.index_version
        scope = first.record.workspace

        async with HoldingProxy(chroma_port, hold_at=2).running() as proxy:
            env = cli_env(data, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(proxy.port))
            process = await start_cli(tmp_path, env, "ingest", str(v2), "--name", "widgets")
            try:
                # The first 1000 vectors of the new version are written; the rest are on their way.
                await asyncio.wait_for(proxy.holding.wait(), STARTUP_TIMEOUT)
                query = f"SELECT DISTINCT index_version FROM documents WHERE index_version != '{live}'"
                half = registry_rows(data, query)
                assert len(half) == 1, "the new version's documents are stored before its vectors"
                process.kill()  # kill -9
                await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        [(half_version,)] = half
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        client = chromadb.HttpClient(host="127.0.0.1", port=chroma_port, settings=chroma_settings)
        collection = client.get_collection(collection_name(scope), embedding_function=None)
        assert len(collection.get(where={"index_version": half_version})["ids"]) == 1000
        # A new process: the previous version is what it sees, and its start-up sweep clears the rest.
        env = cli_env(data, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(chroma_port))
        code, out, err = await run_cli(tmp_path, env, "specs")
        assert code == 0, err[-3000:]
        assert "widgets" in out and "1.0.0" in out and "2.0.0" not in out
        sweep = next(e for e in json_logs(err) if e["event"] == "startup_sweep")
        assert (sweep["versions"], sweep["documents"]) == (1, operations + 1)

        code, out, err = await run_cli(tmp_path, env, "ask", "what does `getWidget7` return?", "--spec", "widgets")
        assert code == 0, err[-3000:]
        assert "GET /widgets7" in out and "Get widget 7" in out and "NEW store" not in out

        versions = {m["index_version"] for m in collection.get(include=["metadatas"])["metadatas"]}
        assert versions == {live}
        assert registry_rows(data, "SELECT DISTINCT index_version FROM documents") == [(live,)]
        assert registry_rows(data, "SELECT name FROM originals") == [(first.record.original_path,)]
