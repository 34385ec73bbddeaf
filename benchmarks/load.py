"""Load test through the bot's real endpoints, driven as Slack drives it (issue 13).

One `api-assistant run` process in Slack HTTP mode (embedded Chroma, local state, the packaged model), a local
mock Slack Web API recording every post, and the local fake Groq answering after `--llm-delay` seconds
(streaming). The petstore spec is uploaded through Slack first. Then:

- closed-loop users (default 10, 50 and 200): each sends a signed `app_mention` to `/slack/events`, waits for
  the answer, and asks again, for `--seconds` per level;
- an open-loop sweep of arrival rates (questions per second) to find the highest rate one instance sustains
  (p95 full answer under `--slo` seconds, nothing refused, lost or duplicated);
- optionally a soak (`--soak N` questions) watching the process's RSS.

Each question goes to its own channel, so its replies are found by channel alone. Measured per question: the
ack (HTTP response to the event; Slack needs < 3 s), the first visible reply (the first `chat.postMessage`, or
`chat.startStream` of a streamed answer),
the full answer (the first reply that is not a progress line), and afterwards that exactly one answer was
posted (lost = none within `--timeout`, duplicated = more than one). Cache hit rates are read from `/metrics`.

Run: `.venv/bin/python -m benchmarks.load [--levels 10,50,200] [--seconds 30] [--rates 2,5,10,20]
[--soak 10000]`. Writes benchmarks/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.slack_app.render import WORKING_EMOJI
from tests.bot.slack.conftest import SIGNING_SECRET, event_body, mention, message, sign
from tests.bot.slack.mock_slack import BOT_TOKEN, Call, MockSlack
from tests.bot.test_replicas import Replica
from tests.bot.test_shutdown import cli_env
from tests.conftest import REPO_ROOT
from tests.fake_groq import FakeGroq, Reply, start_fake_groq
from tests.redis_server import start_redis

SPEC = REPO_ROOT.parent / "shared" / "specs" / "petstore_openapi3.yaml"
QUESTIONS = [
    "how do I add a new pet?",
    "how do I find pets by status?",
    "how do I delete a pet?",
    "how do I place an order?",
    "how do I create a user?",
    "how do I log a user in?",
    "how do I upload a pet photo?",
    "how do I update a pet?",
    "what does the inventory endpoint return?",
    "how do I cancel an order?",
    "how do I find pets by tags?",
    "how do I get a user by username?",
    "how do I log out?",
    "what auth does the petstore use?",
    "give me python for adding a pet",
    "how do I update a user?",
    "how do I fetch an order by id?",
    "how do I create several users at once?",
    "how do I delete a user?",
    "how do I update a pet with form data?",
]
HOT = QUESTIONS[:4]  # asked again and again, as a team asks the same few things
REPEATED_SHARE = 0.3


def pick_question(rng: random.Random, serial: int) -> str:
    """A hot question 30 % of the time; otherwise a cold one made unique, so it cannot be a cache hit."""
    if rng.random() < REPEATED_SHARE:
        return rng.choice(HOT)
    return f"{rng.choice(QUESTIONS)} (ref {serial})"


@dataclass
class Outcome:
    """What happened to one question."""

    channel: str
    sent: float
    ack: float = float("nan")
    status: int = 0
    first_visible: float = float("nan")
    full: float = float("nan")
    refused: bool = False  # "too busy" or rate-limited
    error: bool = False  # the generic error reply


@dataclass
class Watcher:
    """Indexes the mock Slack's calls by channel as they arrive (scanning every call per poll would not scale)."""

    slack: MockSlack
    seen: int = 0
    by_channel: dict[str, list[Call]] = field(default_factory=lambda: defaultdict(list))

    def refresh(self) -> None:
        calls = self.slack.calls
        for call in calls[self.seen :]:
            if call.method in ("chat.postMessage", "chat.update", "chat.startStream"):
                self.by_channel[str(call.params.get("channel"))].append(call)
        self.seen = len(calls)

    def finals(self, channel: str) -> list[Call]:
        """Replies in `channel` that are not progress lines, one per message (an update replaces a post).

        A streamed answer is visible from its `chat.startStream`, final once edited into the answer.
        """
        final = [c for c in self.by_channel.get(channel, [])
                 if c.method != "chat.startStream" and f":{WORKING_EMOJI}:" not in c.blob()]
        messages: dict[str, Call] = {}
        for call in final:
            key = str(call.params.get("ts") or id(call))  # an update names the message it replaces
            messages.setdefault(key, call)
        return list(messages.values())


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile (nearest rank) of the finite values; NaN when there are none."""
    finite = sorted(v for v in values if v == v)
    if not finite:
        return float("nan")
    return finite[min(len(finite) - 1, max(0, round(share * len(finite)) - 1))]


class LoadRun:
    """The bot process, the mock Slack and the fake Groq, and the questions sent so far."""

    def __init__(self, replica: Replica, slack: MockSlack, timeout: float, groq: FakeGroq | None = None) -> None:
        self.replica = replica
        self.slack = slack
        self.groq = groq
        self.watcher = Watcher(slack)
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self._channels = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.rng = random.Random(13)

    async def __aenter__(self) -> LoadRun:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post_event(
        self, event: dict[str, Any], *, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, float]:
        """A signed Events API request; returns (status, seconds until the response).

        `payload`: the whole envelope as sent before (a redelivery keeps its event id); `headers`: extra ones
        (`X-Slack-Retry-Num`, ...).
        """
        assert self._session is not None
        body = json.dumps(payload if payload is not None else event_body(event))
        headers = {"Content-Type": "application/json", **sign(body, secret=SIGNING_SECRET), **(headers or {})}
        started = time.perf_counter()
        async with self._session.post(self.replica.url + "/slack/events", data=body, headers=headers) as response:
            await response.read()
            return response.status, time.perf_counter() - started

    async def ask(self, question: str) -> Outcome:
        """Send one question and wait for its answer (or `timeout`)."""
        channel = f"CL{next(self._channels):07d}"
        outcome = Outcome(channel, time.monotonic())  # the clock the mock stamps its calls with
        self.outcomes.append(outcome)
        outcome.status, outcome.ack = await self.post_event(mention(question, channel=channel))
        deadline = outcome.sent + self.timeout
        while time.monotonic() < deadline:
            self.watcher.refresh()
            calls = self.watcher.by_channel.get(channel, [])
            if calls and outcome.first_visible != outcome.first_visible:
                outcome.first_visible = calls[0].at
            finals = self.watcher.finals(channel)
            if finals:
                outcome.full = finals[0].at
                text = finals[0].blob()
                outcome.refused = "couldn't queue yours" in text or "asking faster" in text
                outcome.error = "something went wrong" in text
                break
            await asyncio.sleep(0.02)
        return outcome

    async def upload_spec(self, spec: Path = SPEC, data: bytes | None = None) -> None:
        """Share a spec file (the petstore by default) with a mention and wait for the upload summary."""
        channel = f"CUP{next(self._channels):07d}"
        file = self.slack.add_file(spec.name, spec.read_bytes() if data is None else data, file_id=f"F{channel}")
        event = message("<@UBOT> our spec", channel=channel, subtype="file_share", files=[file], user="U1")
        status, _ = await self.post_event(event)
        assert status == 200
        await self.slack.wait_for(
            "chat.update",
            lambda c: c.params.get("channel") == channel and f":{WORKING_EMOJI}:" not in c.blob(),
            timeout=300,
        )

    def rss_mb(self) -> float:
        """The bot process's resident memory."""
        assert self.replica.process is not None
        status = Path(f"/proc/{self.replica.process.pid}/status").read_text()
        kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kilobytes) / 1024

    async def cache_stats(self) -> dict[str, float]:
        """Cache hits and misses by cache, from the process's /metrics."""
        assert self._session is not None
        async with self._session.get(self.replica.url + "/metrics") as response:
            text = await response.text()
        stats: dict[str, float] = {}
        for line in text.splitlines():
            for kind in ("hits", "misses"):
                prefix = f"api_assistant_cache_{kind}_total{{cache=\""
                if line.startswith(prefix):
                    cache = line[len(prefix) :].split('"', 1)[0]
                    stats[f"{cache}_{kind}"] = float(line.rsplit(" ", 1)[1])
        return stats


def summarise(outcomes: list[Outcome], watcher: Watcher, seconds: float) -> dict[str, Any]:
    """Latency percentiles, throughput and exactly-once accounting for a batch of questions."""
    watcher.refresh()
    answered = [o for o in outcomes if o.full == o.full]
    lost = [o for o in outcomes if o.full != o.full]
    duplicated = [o for o in outcomes if len(watcher.finals(o.channel)) > 1]
    result: dict[str, Any] = {
        "questions": len(outcomes),
        "answered": len(answered),
        "refused": sum(o.refused for o in outcomes),
        "errors": sum(o.error for o in outcomes),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "non_200_acks": sum(o.status != 200 for o in outcomes),
        "throughput_per_s": round(len(answered) / seconds, 2) if seconds else 0.0,
    }
    for name, values in (
        ("ack", [o.ack for o in outcomes]),
        ("first_visible", [o.first_visible - o.sent for o in outcomes]),
        ("full", [o.full - o.sent for o in outcomes]),
    ):
        for share in (0.5, 0.95, 0.99):
            result[f"{name}_p{round(share * 100)}_ms"] = round(percentile(values, share) * 1000, 1)
    return result


async def closed_loop(run: LoadRun, users: int, seconds: float) -> dict[str, Any]:
    """`users` users asking one question after another for `seconds`."""
    start = len(run.outcomes)
    stop_at = time.perf_counter() + seconds
    serial = itertools.count(start)

    async def user() -> None:
        while time.perf_counter() < stop_at:
            await run.ask(pick_question(run.rng, next(serial)))

    began = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(users)))
    return summarise(run.outcomes[start:], run.watcher, time.perf_counter() - began)


async def open_loop(run: LoadRun, rate: float, seconds: float) -> dict[str, Any]:
    """Questions arriving at `rate` per second for `seconds`, whether or not earlier ones were answered."""
    start = len(run.outcomes)
    tasks = []
    began = time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(run.ask(pick_question(run.rng, start + n))))
    await asyncio.gather(*tasks)
    return summarise(run.outcomes[start:], run.watcher, time.perf_counter() - began)


@asynccontextmanager
async def bot_under_load(
    llm_delay: float, timeout: float, *, redis_url: str | None = None, chroma_port: int | None = None,
    **settings: str,
) -> AsyncIterator[LoadRun]:
    """`api-assistant run` in Slack HTTP mode with a mock Slack and a fake Groq (`llm_delay` s to first token).

    By default it keeps everything in the process and under its DATA_DIR (embedded Chroma, local state); with
    `redis_url` it shares state through that Redis, with `chroma_port` it keeps vectors in the Chroma server on
    127.0.0.1 at that port (the failure drills kill and restart both). `settings`: more environment variables.
    """
    services = {"REDIS_URL": redis_url} if redis_url else {}
    if chroma_port:
        services.update(CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(chroma_port))
    slack = MockSlack()
    await slack.start()
    try:
        async with start_fake_groq() as groq:
            groq.latency(first_token=llm_delay, per_chunk=0.005)
            groq.default = Reply("Add a pet with `POST /pet` [1]. " * 4)
            with tempfile.TemporaryDirectory() as folder:
                env = cli_env(
                    Path(folder) / "data",
                    SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url,
                    GROQ_API_KEY="gsk_load_test", GROQ_BASE_URL=groq.base_url,
                    # Every simulated user asks far more than a person would; the per-user limit is not under test.
                    RATE_LIMIT_REQUESTS_PER_MINUTE="100000", RATE_LIMIT_BURST="100000",
                    **services, **settings,
                )
                replica = Replica("load", Path(folder), env)
                await replica.start()
                try:
                    async with LoadRun(replica, slack, timeout, groq) as run:
                        yield run
                finally:
                    await replica.stop()
    finally:
        await slack.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run the levels, the sweep and the soak, and return the figures."""
    report: dict[str, Any] = {"llm_delay_s": args.llm_delay, "closed_loop": {}, "open_loop": {}}
    with ExitStack() as stack:
        # With --redis, shared state lives in a redis-server: RSS growth in a soak is then the process's own.
        redis_url = stack.enter_context(start_redis()).url if args.redis else None
        report["state"] = "redis" if redis_url else "memory"
        return await _run_all(args, report, redis_url)


async def _run_all(args: argparse.Namespace, report: dict[str, Any], redis_url: str | None) -> dict[str, Any]:
    async with bot_under_load(args.llm_delay, args.timeout, redis_url=redis_url) as run:
        await run.upload_spec()
        report["rss_mb_after_upload"] = round(run.rss_mb(), 1)
        await closed_loop(run, 5, 5)  # warm-up: first calls, caches, lazy imports
        for users in args.levels:
            figures = await closed_loop(run, users, args.seconds)
            figures["rss_mb"] = round(run.rss_mb(), 1)
            report["closed_loop"][str(users)] = figures
            print(f"closed loop {users} users: {figures}", flush=True)
        for rate in args.rates:
            figures = await open_loop(run, rate, args.seconds)
            report["open_loop"][str(rate)] = figures
            print(f"open loop {rate}/s: {figures}", flush=True)
        sustained = [
            rate for rate in args.rates
            if (f := report["open_loop"][str(rate)])["full_p95_ms"] <= args.slo * 1000
            and f["lost"] == f["duplicated"] == f["refused"] == 0
        ]
        report["max_sustained_rate_per_s"] = max(sustained, default=0)
        if args.soak:
            report["soak"] = await soak(run, args.soak)
            print(f"soak: {report['soak']}", flush=True)
        report["caches"] = await run.cache_stats()
        report["reupload"] = await reupload(run)
        print(f"re-upload: {report['reupload']}", flush=True)
    return report


async def reupload(run: LoadRun) -> dict[str, float]:
    """A new version of the spec with one operation's summary changed: how many embeddings came from the cache."""
    before = await run.cache_stats()
    changed = SPEC.read_text().replace("summary: Add a new pet to the store.", "summary: Add a pet to the store.", 1)
    assert changed != SPEC.read_text(), "the petstore's POST /pet summary moved; pick another line to change"
    await run.upload_spec(SPEC, changed.encode())
    after = await run.cache_stats()
    hits = after.get("document_embeddings_hits", 0) - before.get("document_embeddings_hits", 0)
    misses = after.get("document_embeddings_misses", 0) - before.get("document_embeddings_misses", 0)
    return {"hits": hits, "misses": misses, "hit_rate": round(hits / (hits + misses), 3) if hits + misses else 0.0}


async def soak(run: LoadRun, questions: int, users: int = 20) -> dict[str, Any]:
    """`questions` questions from `users` closed-loop users; RSS sampled every 500 questions."""
    start = len(run.outcomes)
    samples: list[tuple[int, float]] = []
    serial = itertools.count(start)
    remaining = itertools.count()

    async def user() -> None:
        while next(remaining) < questions:
            await run.ask(pick_question(run.rng, next(serial)))
            done = len(run.outcomes) - start
            if done % 500 == 0:
                samples.append((done, round(run.rss_mb(), 1)))

    began = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(users)))
    figures = summarise(run.outcomes[start:], run.watcher, time.perf_counter() - began)
    figures["rss_samples_mb"] = samples
    if len(samples) >= 3:
        warm = statistics.median(r for _, r in samples[1:3])
        figures["rss_growth_after_warmup"] = round((samples[-1][1] - warm) / warm, 4)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="10,50,200", help="closed-loop user counts")
    parser.add_argument("--rates", default="2,5,10,20", help="open-loop arrival rates (questions per second)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each level and rate")
    parser.add_argument("--llm-delay", type=float, default=0.3, help="fake Groq's delay before the first token")
    parser.add_argument("--slo", type=float, default=10.0, help="p95 full-answer seconds a sustained rate keeps")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds after which a question is lost")
    parser.add_argument("--soak", type=int, default=0, help="questions in the soak (0: no soak)")
    parser.add_argument("--redis", action="store_true", help="shared state in a local redis-server")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "load.json", help="where the figures go")
    parsed = parser.parse_args()
    parsed.levels = [int(x) for x in parsed.levels.split(",") if x]
    parsed.rates = [float(x) for x in parsed.rates.split(",") if x]
    result = asyncio.run(main(parsed))
    flags = {k.replace("_", "-"): v for k, v in vars(parsed).items() if not isinstance(v, list)}
    result["command"] = "python -m benchmarks.load " + " ".join(
        f"--{k}" if v is True else f"--{k} {v}" for k, v in flags.items() if v is not False
    )
    parsed.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
