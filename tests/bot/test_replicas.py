"""Two `api-assistant run` replicas behind one Slack app, sharing nothing on local disk.

Real servers on 127.0.0.1, started here: one PostgreSQL database (the registry: records, documents, originals),
one `chroma run` server (vectors), one redis-server (caches, limits, de-duplication, thread memory), and one
mock Slack Web API both replicas call. Each replica is a subprocess (`python -m bot.cli run`, what
`api-assistant run` runs) in Slack's HTTP mode with its own DATA_DIR, and gets signed Events API requests on
its own `/slack/events`, as a load balancer would hand them out.

Replica A reaches Chroma through a `ChromaGate`, which can hold one of its vector writes or deletes: A is then
certainly at a known point of an upload (say documents stored, vectors written, record not yet live, spec lock
held), which is where the concurrency and `kill -9` scenarios need it.

The pair of processes (loading the model is most of their cost) is shared by the tests of this module; each
test starts with both running and checks what it needs from the shared registry itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import chromadb
import psycopg
import pytest
import pytest_asyncio
from aiohttp import web
from chromadb.config import Settings as ChromaSettings

from bot.slack_app.render import WORKING_EMOJI
from core.store import collection_name
from tests.bot.slack.conftest import SIGNING_SECRET, event_body, mention, message, next_ts, sign
from tests.bot.slack.mock_slack import BOT_TOKEN, TEAM_ID, Call, MockSlack
from tests.bot.test_shutdown import STARTUP_TIMEOUT, cli_env, json_logs
from tests.chroma_server import start_chroma
from tests.ops import get, wait_ready
from tests.postgres_server import PostgresServer
from tests.redis_server import start_redis

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPLY_TIMEOUT = 60.0  # an upload or answer on a loaded 2-core machine, with two model-holding processes
OTHER_TEAM = "T2"


# ---- specs -------------------------------------------------------------------------------------------------


def openapi(title: str, version: str, operations: dict[str, tuple[str, str]]) -> bytes:
    """A small OpenAPI 3 document: `{"GET /path": (operationId, summary)}`."""
    paths: dict[str, dict[str, Any]] = {}
    for route, (operation_id, summary) in operations.items():
        method, path = route.split(" ", 1)
        paths.setdefault(path, {})[method.lower()] = {
            "operationId": operation_id,
            "summary": summary,
            "responses": {"200": {"description": "ok"}},
        }
    document = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "servers": [{"url": "https://api.example.test"}],
        "paths": paths,
    }
    return json.dumps(document, indent=1).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the Chroma gate in front of replica A -----------------------------------------------------------------


class ChromaGate:
    """An HTTP proxy to the Chroma server that can hold one request of a replica until `release` is set (or the
    replica hangs up, e.g. because it was killed).

    `arm("/add")`: the next vector write reaches Chroma, its reply is held (documents and vectors written,
    record not yet live). `arm("/delete", forward=False)`: the next vector delete is held before it reaches
    Chroma (the new version is live, the old one's vectors are still there).
    """

    def __init__(self, target_port: int) -> None:
        self.target = f"http://127.0.0.1:{target_port}"
        self.port = 0
        self._armed: tuple[str, bool] | None = None
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def arm(self, suffix: str = "/add", *, forward: bool = True) -> None:
        self._armed = (suffix, forward)
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    def disarm(self) -> None:
        """Hold nothing more, and let go of what is held."""
        self._armed = None
        self.release.set()

    async def _hold(self) -> None:
        self.holding.set()
        await self.release.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        hold = self._armed if request.method == "POST" and self._armed and request.path.endswith(
            self._armed[0]) else None
        if hold:
            self._armed = None
            if not hold[1]:
                await self._hold()
        headers = {k: v for k, v in request.headers.items() if k.lower() in {"content-type", "accept"}}
        assert self._session is not None
        async with self._session.request(request.method, self.target + request.path_qs, data=body,
                                         headers=headers) as upstream:
            payload = await upstream.read()
            status, content_type = upstream.status, upstream.headers.get("Content-Type", "application/json")
        if hold and hold[1]:
            await self._hold()
        return web.Response(body=payload, status=status, headers={"Content-Type": content_type})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ChromaGate]:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=0.5)
        await site.start()
        self.port = runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        try:
            yield self
        finally:
            self.release.set()
            await self._session.close()
            await runner.cleanup()


# ---- one replica: a subprocess ------------------------------------------------------------------------------


class Replica:
    """`python -m bot.cli run` with its own DATA_DIR; logs (JSON, one file per start) under `folder`."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name = name
        self.folder = folder
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0
        self._log = folder / "none.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        """Start the process and wait until it serves `/ready` with 200 (model loaded, Slack auth checked)."""
        assert not self.running
        self.starts += 1
        self._log = self.folder / f"{self.name}-{self.starts}.log"
        with self._log.open("wb") as out, (self.folder / f"{self.name}-{self.starts}.err").open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"], cwd=self.folder, env=self.env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (started := [e for e in self.logs() if e.get("event") == "http_server_started"]):
            if not self.running or time.monotonic() > deadline:
                raise AssertionError(f"replica {self.name} did not start:\n{self.tail()}")
            await asyncio.sleep(0.1)
        self.url = f"http://127.0.0.1:{started[0]['port']}"
        await wait_ready(self.url, timeout=max(1.0, deadline - time.monotonic()))

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines of the current (or last) run."""
        return json_logs(self._log.read_text(errors="replace")) if self._log.exists() else []

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.logs() if e.get("event") == name]

    def tail(self) -> str:
        err = self._log.with_suffix(".err")
        parts = [p.read_text(errors="replace")[-3000:] for p in (self._log, err) if p.exists()]
        return "\n".join(parts)

    def kill(self) -> None:
        """`kill -9`, then reap it (a zombie would still look alive to the next start-up sweep)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"replica {self.name} ignored SIGTERM:\n{self.tail()}")
            await asyncio.sleep(0.1)
        assert self.process.returncode == 0, self.tail()

    async def post(self, payload: dict[str, Any]) -> int:
        """A signed Events API request to this replica's `/slack/events`; returns the HTTP status."""
        body = json.dumps(payload)
        headers = {"Content-Type": "application/json", **sign(body, secret=SIGNING_SECRET)}
        async with aiohttp.ClientSession() as session, session.post(
            self.url + "/slack/events", data=body.encode(), headers=headers
        ) as response:
            return response.status


# ---- the cluster -------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """Two replicas and everything they share."""

    a: Replica
    b: Replica
    slack: MockSlack
    gate: ChromaGate
    database_url: str
    chroma: Any  # a client of the shared Chroma server, for looking at what is stored
    _channels: int = 0
    _files: int = 0

    @property
    def replicas(self) -> tuple[Replica, Replica]:
        return self.a, self.b

    async def ensure_running(self) -> None:
        """Both replicas up (a test that failed half-way may have left one stopped), the gate open."""
        self.gate.disarm()
        await asyncio.gather(*(r.start() for r in self.replicas if not r.running))

    def channel(self) -> str:
        """A fresh channel per conversation, so each reply is found by its channel alone."""
        self._channels += 1
        return f"CR{self._channels:04d}"

    # ---- talking to the replicas through Slack --------------------------------------------------------------

    async def send_upload(self, replica: Replica, filename: str, data: bytes, *, team: str = TEAM_ID,
                          user: str = "U1") -> str:
        """Share `data` as a file with a mention, through `replica`; returns the channel the reply goes to."""
        self._files += 1
        file = self.slack.add_file(filename, data, file_id=f"FR{self._files:04d}")
        channel = self.channel()
        event = message("<@UBOT> our spec", channel=channel, subtype="file_share", files=[file], user=user)
        assert await replica.post(event_body(event, team=team)) == 200
        return channel

    async def send_question(self, replica: Replica, question: str, *, team: str = TEAM_ID) -> str:
        """Mention the bot with `question` through `replica`; returns the channel the answer goes to."""
        channel = self.channel()
        assert await replica.post(event_body(mention(question, channel=channel), team=team)) == 200
        return channel

    async def final_reply(self, channel: str, timeout: float = REPLY_TIMEOUT) -> str:
        """The first reply in `channel` that is not a progress line (an answer, an upload summary or an error)."""
        return (await self.final_replies(channel, timeout=timeout))[0].blob()

    async def final_replies(self, channel: str, count: int = 1, timeout: float = REPLY_TIMEOUT) -> list[Call]:
        """The first `count` replies in `channel` that are not progress lines: posted, or edited into place."""
        def finals() -> list[Call]:
            return [c for c in self.replies_in(channel) if is_final(c)]

        await self.slack.wait_until(lambda: len(finals()) >= count, timeout=timeout)
        return finals()

    async def upload(self, replica: Replica, filename: str, data: bytes, *, team: str = TEAM_ID) -> str:
        return await self.final_reply(await self.send_upload(replica, filename, data, team=team))

    async def ensure_spec(self, replica: Replica, filename: str, data: bytes) -> None:
        """Upload `data` through `replica` unless it is already a live spec of the main workspace."""
        if not self.rows("SELECT 1 FROM specs WHERE workspace = %s AND content_hash = %s", scope_of(TEAM_ID),
                         sha256(data)):
            assert "`" + filename.split(".")[0] + "`" in await self.upload(replica, filename, data)

    async def ask(self, replica: Replica, question: str, *, team: str = TEAM_ID) -> str:
        return await self.final_reply(await self.send_question(replica, question, team=team))

    def replies_in(self, channel: str) -> list[Call]:
        methods = ("chat.postMessage", "chat.update")
        return [c for c in self.slack.calls if c.method in methods and in_channel(c, channel)]

    # ---- looking at the shared stores ---------------------------------------------------------------------

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as db:
            return db.execute(sql, params).fetchall()

    def chroma_versions(self, scope: str) -> set[str]:
        try:
            collection = self.chroma.get_collection(collection_name(scope), embedding_function=None)
        except Exception:  # no collection: nothing stored
            return set()
        return {str(m["index_version"]) for m in collection.get(include=["metadatas"])["metadatas"]}

    def snapshot(self) -> dict[str, Any]:
        """Everything the replicas share about specs: records, documents, ledger, originals, vectors."""
        scopes = [s for (s,) in self.rows("SELECT DISTINCT workspace FROM specs ORDER BY 1")]
        return {
            "specs": self.rows("SELECT workspace, name, index_version, content_hash, original_path FROM specs"
                               " ORDER BY 1, 2"),
            "documents": self.rows("SELECT workspace, index_version, count(*) FROM documents GROUP BY 1, 2"
                                   " ORDER BY 1, 2"),
            "ledger": self.rows("SELECT workspace, index_version FROM index_versions ORDER BY 1, 2"),
            "originals": self.rows("SELECT workspace, name, size FROM originals ORDER BY 1, 2"),
            "vectors": {scope: sorted(self.chroma_versions(scope)) for scope in scopes},
        }

    def assert_no_orphans(self, scope: str) -> dict[str, str]:
        """Documents, ledger, originals and vectors of `scope` belong to live versions only; returns name -> live."""
        live = dict(self.rows("SELECT name, index_version FROM specs WHERE workspace = %s", scope))
        originals = {o for (o,) in self.rows("SELECT original_path FROM specs WHERE workspace = %s", scope)}
        # Earlier versions kept as history (SPEC_HISTORY) keep their originals too, for diffs.
        originals |= {o for (o,) in self.rows("SELECT original_path FROM spec_versions WHERE workspace = %s", scope)}
        documents = {v for (v,) in self.rows("SELECT DISTINCT index_version FROM documents WHERE workspace = %s",
                                             scope)}
        ledger = {v for (v,) in self.rows("SELECT index_version FROM index_versions WHERE workspace = %s", scope)}
        stored = {n for (n,) in self.rows("SELECT name FROM originals WHERE workspace = %s", scope)}
        assert documents == set(live.values()), f"documents of versions that are not live: {documents} vs {live}"
        assert ledger == set(live.values()), f"ledger entries that are not live: {ledger} vs {live}"
        assert stored == originals, f"originals no record or kept version uses: {stored - originals}"
        assert self.chroma_versions(scope) == set(live.values()), "vectors of versions that are not live"
        return live


def in_channel(call: Call, channel: str) -> bool:
    return call.params.get("channel") == channel


def is_final(call: Call) -> bool:
    """Not a progress line ("Working on it…", "Indexing: embedding 3/7…"), which carry the working emoji."""
    return f":{WORKING_EMOJI}:" not in call.blob()


def scope_of(team: str) -> str:
    return f"slack:{team}"


@pytest.fixture(scope="module")
def shared_servers(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int, str]]:
    """(DATABASE_URL, Chroma port, REDIS_URL): one of each for both replicas."""
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_server.database())
        chroma_port = stack.enter_context(start_chroma(tmp_path_factory.mktemp("chroma")))
        redis = stack.enter_context(start_redis())
        yield database_url, chroma_port, redis.url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_cluster(
    shared_servers: tuple[str, int, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    database_url, chroma_port, redis_url = shared_servers
    slack = MockSlack()
    await slack.start()
    try:
        async with ChromaGate(chroma_port).running() as gate:
            replicas = []
            for name, port in (("a", gate.port), ("b", chroma_port)):
                folder = tmp_path_factory.mktemp(f"replica-{name}")
                env = cli_env(
                    folder / "data",
                    SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url,
                    DATABASE_URL=database_url, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(port), REDIS_URL=redis_url,
                    UPLOAD_RATE_LIMIT_BURST="100",  # every upload here is U1's; the limit is not under test
                )
                replicas.append(Replica(name, folder, env))
            chroma = chromadb.HttpClient(host="127.0.0.1", port=chroma_port,
                                         settings=ChromaSettings(anonymized_telemetry=False))
            found = Cluster(replicas[0], replicas[1], slack, gate, database_url, chroma)
            try:
                await found.ensure_running()  # both at once: they also race to migrate the empty database
                yield found
            finally:
                gate.disarm()
                for replica in found.replicas:
                    try:
                        await replica.stop()
                    except AssertionError:
                        if replica.running:
                            replica.kill()
    finally:
        await slack.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def cluster(running_cluster: Cluster) -> AsyncIterator[Cluster]:
    """The shared pair, both running; afterwards, neither has logged an error (a swallowed failure)."""
    await running_cluster.ensure_running()
    yield running_cluster
    errors = [e for r in running_cluster.replicas for e in r.logs() if e.get("level") in ("error", "critical")]
    assert not errors, errors


# ---- scenarios -----------------------------------------------------------------------------------------------

INVENTORY_V1 = openapi("Inventory API", "1.0.0", {
    "GET /warehouses/{warehouseId}/stock": ("getWarehouseStock", "Count the stock held in a warehouse"),
    "POST /shipments": ("createShipment", "Ship goods to a customer"),
})
INVENTORY_V2 = openapi("Inventory API", "2.0.0", {
    "GET /depots/{depotId}/stock": ("getDepotStock", "Count the stock held in a depot warehouse"),
    "POST /shipments": ("createShipment", "Ship goods to a customer"),
})


async def test_a_spec_uploaded_through_one_replica_is_answered_through_the_other(cluster: Cluster) -> None:
    a, b = cluster.replicas
    done = await cluster.upload(a, "inventory.json", INVENTORY_V1)
    assert "Indexed `inventory`: Inventory API 1.0.0" in done

    answer = await cluster.ask(b, "how do I count the stock held in a warehouse?")
    assert "GET /warehouses/{warehouseId}/stock" in answer and "`inventory`" in answer

    # A new version written by A: B's next answer comes from it (its in-memory lexical index follows the registry).
    done = await cluster.upload(a, "inventory.json", INVENTORY_V2)
    assert "Updated `inventory`: Inventory API 2.0.0" in done
    answer = await cluster.ask(b, "how do I count the stock held in a warehouse?")
    assert "GET /depots/{depotId}/stock" in answer and "/warehouses/" not in answer
    cluster.assert_no_orphans(scope_of(TEAM_ID))


def billing(variant: str) -> bytes:
    return openapi("Billing API", f"1.0.0-{variant}", {
        "POST /invoices": ("createInvoice", "Create an invoice"),
        f"GET /{variant}/ledger": (f"read{variant.title()}Ledger", "Read the ledger entries of an account"),
    })


async def test_the_same_spec_uploaded_through_both_at_once_leaves_one_version(cluster: Cluster) -> None:
    """In a workspace new to both replicas, first two uploads sent at once, then two that certainly overlap."""
    a, b = cluster.replicas
    scope = scope_of(OTHER_TEAM)
    files = {"alpha": billing("alpha"), "beta": billing("beta")}
    channels = await asyncio.gather(
        cluster.send_upload(a, "billing.json", files["alpha"], team=OTHER_TEAM),
        cluster.send_upload(b, "billing.json", files["beta"], team=OTHER_TEAM),
    )
    finals = await asyncio.gather(*(cluster.final_reply(c) for c in channels))
    # One went first and the other replaced it: had both seen "no previous version", one would be orphaned.
    assert sorted("Indexed `billing`" in f for f in finals) == [False, True], finals
    assert sorted("Updated `billing`" in f for f in finals) == [False, True], finals
    [(content_hash,)] = cluster.rows("SELECT content_hash FROM specs WHERE workspace = %s AND name = 'billing'",
                                     scope)
    winner = next(variant for variant, data in files.items() if sha256(data) == content_hash)
    loser = next(variant for variant in files if variant != winner)
    cluster.assert_no_orphans(scope)
    answers = await asyncio.gather(
        cluster.ask(a, "how do I read the ledger entries of an account?", team=OTHER_TEAM),
        cluster.ask(b, "which call reads an account's ledger entries?", team=OTHER_TEAM),
    )
    for answer in answers:
        assert f"GET /{winner}/ledger" in answer and f"/{loser}/" not in answer

    # Now for certain at the same time: A holds the spec's lock mid-write while B's upload of the name arrives.
    cluster.gate.arm()
    channel_a = await cluster.send_upload(a, "billing.json", billing("gamma"), team=OTHER_TEAM)
    await asyncio.wait_for(cluster.gate.holding.wait(), REPLY_TIMEOUT)
    [(gamma,)] = cluster.rows("SELECT index_version FROM index_versions WHERE workspace = %s AND index_version NOT IN"
                              " (SELECT index_version FROM specs)", scope)
    downloads = len(cluster.slack.file_requests)
    channel_b = await cluster.send_upload(b, "billing.json", billing("delta"), team=OTHER_TEAM)
    await cluster.slack.wait_until(lambda: len(cluster.slack.file_requests) > downloads, timeout=REPLY_TIMEOUT)
    await asyncio.sleep(1.0)  # B has downloaded the file; the spec lock is next, and A holds it
    assert not [c for c in cluster.replies_in(channel_b) if is_final(c)]
    ledger = {v for (v,) in cluster.rows("SELECT index_version FROM index_versions WHERE workspace = %s", scope)}
    live = {v for (v,) in cluster.rows("SELECT index_version FROM specs WHERE workspace = %s", scope)}
    assert ledger == live | {gamma}  # B has not begun writing: it waits for the lock A holds
    cluster.gate.release.set()
    assert "Updated `billing`: Billing API 1.0.0-gamma" in await cluster.final_reply(channel_a)
    assert "Updated `billing`: Billing API 1.0.0-delta" in await cluster.final_reply(channel_b)
    live = cluster.assert_no_orphans(scope)
    assert cluster.rows("SELECT content_hash FROM specs WHERE workspace = %s", scope) == [(sha256(billing("delta")),)]
    assert gamma not in live.values()
    for replica in (a, b):
        answer = await cluster.ask(replica, f"how does replica {replica.name} read ledger entries?", team=OTHER_TEAM)
        assert "GET /delta/ledger" in answer and "/gamma/" not in answer


LEDGER_V1 = openapi("Accounts API", "1.0.0", {
    "GET /balances/{accountId}": ("getBalance", "Read the balance of an account"),
    "POST /transfers": ("createTransfer", "Move money between accounts"),
})
LEDGER_V2 = openapi("Accounts API", "2.0.0", {
    "GET /v2/accounts/{accountId}/balance": ("getAccountBalance", "Read the balance of an account"),
    "POST /transfers": ("createTransfer", "Move money between accounts"),
})
BALANCE_QUESTION = "how do I read the balance of an account?"


async def test_kill_9_mid_upload_keeps_the_other_replica_answering_and_the_previous_version(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    scope = scope_of(TEAM_ID)
    assert "Indexed `accounts`" in await cluster.upload(b, "accounts.json", LEDGER_V1)
    before = cluster.snapshot()
    [(previous,)] = cluster.rows("SELECT index_version FROM specs WHERE workspace = %s AND name = 'accounts'", scope)

    cluster.gate.arm()
    await cluster.send_upload(a, "accounts.json", LEDGER_V2)
    await asyncio.wait_for(cluster.gate.holding.wait(), REPLY_TIMEOUT)
    # A is mid-upload: the new version's documents and vectors are written, its record is not.
    [(half,)] = cluster.rows("SELECT index_version FROM index_versions WHERE workspace = %s AND index_version NOT IN"
                             " (SELECT index_version FROM specs)", scope)
    [(half_documents,)] = cluster.rows("SELECT count(*) FROM documents WHERE index_version = %s", half)
    assert half_documents > 0 and half in cluster.chroma_versions(scope)
    a.kill()

    answer = await cluster.ask(b, BALANCE_QUESTION)
    assert "GET /balances/{accountId}" in answer and "/v2/" not in answer
    assert cluster.rows("SELECT index_version FROM specs WHERE workspace = %s AND name = 'accounts'", scope) == [
        (previous,)
    ]

    await a.start()
    # Its start-up sweep removed the version its killed predecessor left (a dead writer on this host: at once,
    # not after STALE_AFTER_SECONDS) and nothing else.
    [sweep] = a.events("startup_sweep")
    assert (sweep["versions"], sweep["documents"], sweep["originals"]) == (1, half_documents, 0)
    cluster.assert_no_orphans(scope)
    assert cluster.snapshot() == before
    answer = await cluster.ask(a, BALANCE_QUESTION)
    assert "GET /balances/{accountId}" in answer and "/v2/" not in answer

    # The killed holder's lock on the name went with its connection: the same upload now goes through B.
    assert "Updated `accounts`: Accounts API 2.0.0" in await cluster.upload(b, "accounts.json", LEDGER_V2)
    answer = await cluster.ask(a, "which call reads the balance of an account?")
    assert "GET /v2/accounts/{accountId}/balance" in answer and "/balances/" not in answer
    cluster.assert_no_orphans(scope)


LEDGER_V3 = openapi("Accounts API", "3.0.0", {
    "GET /v3/balances/{accountId}": ("fetchBalance", "Read the balance of an account"),
    "POST /transfers": ("createTransfer", "Move money between accounts"),
})


async def test_kill_9_between_the_swap_and_the_cleanup_leaves_nothing_behind(cluster: Cluster) -> None:
    """A replaces a version B wrote, goes live, and dies before the old version's vectors are deleted."""
    a, b = cluster.replicas
    scope = scope_of(TEAM_ID)
    await cluster.ensure_spec(b, "accounts.json", LEDGER_V2)
    [(old,)] = cluster.rows("SELECT index_version FROM specs WHERE workspace = %s AND name = 'accounts'", scope)

    cluster.gate.arm("/delete", forward=False)
    await cluster.send_upload(a, "accounts.json", LEDGER_V3)
    await asyncio.wait_for(cluster.gate.holding.wait(), REPLY_TIMEOUT)
    [(new,)] = cluster.rows("SELECT index_version FROM specs WHERE workspace = %s AND name = 'accounts'", scope)
    assert new != old and old in cluster.chroma_versions(scope)  # live, and the old vectors not yet deleted
    a.kill()
    answer = await cluster.ask(b, BALANCE_QUESTION)
    assert "GET /v3/balances/{accountId}" in answer and "/v2/" not in answer

    # The old version's writer (B) is alive, yet what A left of it goes at A's restart: it was retired when the
    # new version went live, so no one will ever write it again.
    await a.start()
    [sweep] = a.events("startup_sweep")
    # A had deleted its documents; the old original stays, as the kept earlier version (SPEC_HISTORY).
    assert (sweep["versions"], sweep["documents"], sweep["originals"]) == (1, 0, 0)
    cluster.assert_no_orphans(scope)
    answer = await cluster.ask(a, "which call reads the balance of an account?")
    assert "GET /v3/balances/{accountId}" in answer


CATALOG = openapi("Catalog API", "3.1.0", {
    "GET /products/{sku}": ("getProduct", "Look up a product by its SKU"),
    "DELETE /products/{sku}": ("retireProduct", "Retire a product from the catalog"),
})


async def test_restarting_a_replica_loses_nothing(cluster: Cluster) -> None:
    """B is stopped (SIGTERM) and started again while A keeps answering; A's restart is in the kill -9 test."""
    a, b = cluster.replicas
    await cluster.ensure_spec(b, "catalog.json", CATALOG)
    before = cluster.snapshot()
    names = [n for (n,) in cluster.rows("SELECT name FROM specs WHERE workspace = %s", scope_of(TEAM_ID))]

    await b.stop()
    assert (await get(b.url + "/health"))[0] == 0
    answer = await cluster.ask(a, "how do I retire a product from the catalog?")
    assert "DELETE /products/{sku}" in answer
    await b.start()

    [sweep] = b.events("startup_sweep")
    assert (sweep["versions"], sweep["documents"], sweep["originals"]) == (0, 0, 0)
    assert cluster.snapshot() == before
    listing = await cluster.ask(b, "list all specs")
    for name in names:
        assert f"`{name}`" in listing
    answer = await cluster.ask(b, "how do I look up a product by its SKU?")
    assert "GET /products/{sku}" in answer
    for replica in (a, b):  # nothing but its own caches (document embeddings, parse results) on local disk
        local = {p.name for p in (replica.folder / "data").iterdir()}
        caches = {f"embedding-cache.sqlite3{suffix}" for suffix in ("", "-wal", "-shm", "-journal")}
        assert local <= caches | {"parse-cache"}, local


async def test_an_event_delivered_to_both_replicas_is_answered_once(cluster: Cluster) -> None:
    a, b = cluster.replicas
    await cluster.ensure_spec(a, "catalog.json", CATALOG)
    channel = cluster.channel()
    payload = event_body(mention("how do I look up a product by its SKU?", channel=channel), event_id="EvReplicas1")
    statuses = await asyncio.gather(a.post(payload), b.post(payload))
    assert statuses == [200, 200]
    answer = await cluster.final_reply(channel)
    assert "GET /products/{sku}" in answer
    await asyncio.sleep(1.0)  # room for a second answer to show up, if one were coming
    assert len([c for c in cluster.replies_in(channel) if c.method == "chat.postMessage"]) == 1
    duplicates = [e for r in (a, b) for e in r.events("slack_event_duplicate") if e.get("event_id") == "EvReplicas1"]
    assert len(duplicates) == 1


async def test_a_thread_answered_by_one_replica_continues_on_the_other(cluster: Cluster) -> None:
    """Thread memory is in Redis: a follow-up without a mention, delivered to the other replica, is answered."""
    a, b = cluster.replicas
    await cluster.ensure_spec(a, "catalog.json", CATALOG)
    channel = cluster.channel()
    ts = next_ts()
    assert await a.post(event_body(mention("how do I look up a product by its SKU?", channel=channel, ts=ts))) == 200
    await cluster.final_reply(channel)
    follow_up = message("and how do I retire a product from the catalog?", channel=channel, thread_ts=ts)
    assert await b.post(event_body(follow_up)) == 200
    calls = await cluster.final_replies(channel, count=2)
    assert "DELETE /products/{sku}" in calls[1].blob()
    assert all(c.params.get("thread_ts") == ts for c in cluster.replies_in(channel) if c.method == "chat.postMessage")


PURGED_TEAM = "T3"


async def test_a_workspace_purged_through_one_replica_starts_over_through_the_other(cluster: Cluster) -> None:
    """Uninstalled through B: A, which had the workspace's collection open, indexes and answers it afresh."""
    a, b = cluster.replicas
    scope = scope_of(PURGED_TEAM)
    assert "Indexed `catalog`" in await cluster.upload(a, "catalog.json", CATALOG, team=PURGED_TEAM)
    assert "GET /products/{sku}" in await cluster.ask(a, "how do I look up a product by its SKU?", team=PURGED_TEAM)

    assert await b.post(event_body({"type": "app_uninstalled"}, team=PURGED_TEAM)) == 200
    deadline = time.monotonic() + REPLY_TIMEOUT
    while not b.events("workspace_purged"):
        assert time.monotonic() < deadline, "the workspace was never purged"
        await asyncio.sleep(0.1)
    assert cluster.rows("SELECT count(*) FROM specs WHERE workspace = %s", scope) == [(0,)]
    assert cluster.chroma_versions(scope) == set()

    assert "Indexed `catalog`" in await cluster.upload(a, "catalog.json", CATALOG, team=PURGED_TEAM)
    for replica in (a, b):
        answer = await cluster.ask(replica, f"how does {replica.name} retire a product?", team=PURGED_TEAM)
        assert "DELETE /products/{sku}" in answer
    cluster.assert_no_orphans(scope)
