"""Failure drills during load (issue 13): inject a fault while questions keep arriving, clear it, and measure.

One `api-assistant run` process in Slack HTTP mode (`benchmarks.load.bot_under_load`) with its shared state in a
real redis-server and its vectors in a real `chroma run` server, both on 127.0.0.1 and started here, plus the mock
Slack Web API and the fake Groq. The bookshop example spec is uploaded through Slack first. Then, for each fault,
questions arrive at a steady `--rate` per second (open loop: whether or not earlier ones were answered): for
`--before` seconds with nothing wrong, during the fault (`--window` seconds, plus however long clearing it takes,
e.g. a server's restart), and for `--after` seconds once it is cleared.

Faults:
- `groq_429`: every Groq call (answers and reranks) gets 429 with `retry-after: 1`;
- `groq_500`: every Groq call gets a 500;
- `groq_stall`: every Groq call stalls for 30 s without a byte, past the per-attempt timeout and the deadline;
- `groq_slow_stream`: answers stream a chunk a second, each within the per-attempt timeout but the whole past the
  answer deadline (reranks answer normally);
- `groq_disconnect`: Groq drops every connection without answering;
- `redis_kill`: redis-server is killed (SIGKILL) and started again on the same port (empty: no persistence); 1.5 s
  later every event first delivered during the outage is delivered again (Slack's retry), which must not be
  answered a second time (the fault's window ends after these redeliveries);
- `chroma_kill`: the Chroma server is killed (SIGKILL) and started again on the same port and data directory; an
  upload is tried during the outage (it must fail cleanly) and the same file again after it (it must be indexed);
- `slack_429`: every `chat.postMessage`, `chat.update` and streaming call gets 429 `ratelimited` (`Retry-After: 1`);
- `slack_500`: every `chat.postMessage`, `chat.update` and streaming call gets a 500 `internal_error` (it did nothing);
- `slack_500_landed`: the same, but each call took effect before the 500 (the outcome is unknown to the bot);
- `slack_redelivery`: each event is delivered again (`X-Slack-Retry-Num: 1`, then `2`, reason `http_timeout`)
  0.1 s and 0.5 s after the first delivery's ack, while the first is still being answered.

The bot runs with `GROQ_TIMEOUT_SECONDS=2`, `GROQ_MAX_RETRIES=1` (so the answer deadline is 2 x 2 + 5 = 9 s, not
95 s) and `RERANK_TIMEOUT_SECONDS=1` (not 2.5), and the fake Groq answering after `--llm-delay` seconds.

Every question goes to its own channel, so its replies are found by channel alone, in the messages the mock Slack
keeps (what Slack would show: a post that failed without landing is not there, an edit replaces the text). Each
question ends as exactly one of: answered normally (the generated answer), with fallback (the retrieval answer
with the "couldn't reach the language model" note), refused (busy, waited too long, rate-limited), unavailable
(the "temporarily unavailable" reply of a store outage), error (the generic error, or the "Slack wouldn't take my
answer" apology) or lost (nothing but a progress line after `--timeout` seconds); duplicated counts questions
with more than one reply. Recovery is the time from clearing the fault until answers are normal again: until the
first normal answer of the run of normal answers (in order of asking) that lasts to the end of the drill, or 0
when it came before the fault was cleared; none (not recovered) when the drill's last question was not answered
normally.

Run: `.venv/bin/python -m benchmarks.drills [--rate 4] [--window 10] [--before 3] [--after 10]
[--only groq_429,redis_kill]`. Writes benchmarks/drills.json; the table goes in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.load import LoadRun, bot_under_load
from bot.slack_app import messages as slack_messages
from bot.slack_app.render import WORKING_EMOJI
from core import messages
from tests.bot.slack.conftest import event_body, mention, message
from tests.bot.slack.mock_slack import Message
from tests.bot.test_replicas import openapi
from tests.chroma_server import ChromaServer
from tests.conftest import REPO_ROOT
from tests.fake_groq import Behaviour, Delay, Disconnect, RateLimited, Reply, ServerError
from tests.redis_server import RedisServer, _commands, redis_server_binary

EXAMPLE = REPO_ROOT / "core" / "examples" / "bookshop_openapi.yaml"
ANSWER_TEXT = "Add a book with `POST /books` [1]. " * 4  # what the fake Groq answers
ANSWER_MARK = "Add a book with"
QUESTIONS = [
    "how do I add a book?",
    "how do I list books?",
    "how do I delete a book?",
    "how do I place an order?",
    "how do I get a book by id?",
    "how do I update a book?",
    "how do I search the catalogue?",
    "what auth does the bookshop use?",
]
# Shorter than the defaults (30 s, 2 retries, 2.5 s), so a stall's deadline (2 x 2 + 5 = 9 s) fits in a drill.
# What a Slack fault fails: posting and editing, and the streaming of answers.
SLACK_WRITES = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")
DRILL_SETTINGS = {"GROQ_TIMEOUT_SECONDS": "2", "GROQ_MAX_RETRIES": "1", "RERANK_TIMEOUT_SECONDS": "1"}

OUTCOMES = ("normal", "fallback", "refused", "unavailable", "error", "lost")


def _mark(text: str) -> str:
    """A piece of a reply's text that survives Slack rendering (before any markup or placeholder)."""
    return text.split("`", 1)[0].split(",", 1)[0][:40]


# Markers of each kind of reply, in the order they are checked.
MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("normal", (ANSWER_MARK,)),
    ("fallback", (_mark(messages.generation_failed()), _mark(messages.generation_busy()))),
    ("unavailable", ("temporarily unavailable",)),
    ("refused", (_mark(messages.busy()), _mark(messages.waited_too_long()), _mark(messages.rate_limited(1)))),
    ("error", (_mark(messages.unexpected_error()), _mark(slack_messages.reply_failed()))),
)


def classify(blob: str) -> str | None:
    """The kind of a reply, from its text; None for a message that is none of them (a continuation of a reply)."""
    for kind, marks in MARKERS:
        if any(mark in blob for mark in marks):
            return kind
    return None


# ---- questions and their replies ------------------------------------------------------------------------------


@dataclass
class Question:
    """One question of a drill and what became of it."""

    channel: str
    sent: float
    redelivered: int = 0  # redeliveries sent
    overlapped: int = 0  # of those, sent while no reply was there yet
    ack_status: int = 0
    answered: float = float("nan")  # when its first final reply was seen
    outcome: str = "lost"
    text: str = ""  # the first final reply, or what the channel shows when there is none
    replies: int = 0  # final replies in its channel at the end of the drill


@dataclass
class Inbox:
    """The mock Slack's messages by channel, indexed as they arrive (an edit changes a message in place)."""

    run: LoadRun
    seen: int = 0
    by_channel: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))

    def refresh(self) -> None:
        stored = self.run.slack.messages
        for kept in stored[self.seen :]:
            self.by_channel[kept.channel].append(kept)
        self.seen = len(stored)

    def replies(self, channel: str) -> list[str]:
        """The final messages in a channel (not progress lines), as Slack shows them now, oldest first.

        A streamed answer is final once edited into Block Kit (a stream, going or stopped, has no blocks yet).
        """
        self.refresh()
        blobs = [m.blob() for m in self.by_channel.get(channel, []) if m.blocks and not m.streaming]
        return [b for b in blobs if f":{WORKING_EMOJI}:" not in b]


class Asker:
    """Sends questions as signed `app_mention` events and follows each to its reply."""

    def __init__(self, run: LoadRun, timeout: float) -> None:
        self.run = run
        self.inbox = Inbox(run)
        self.timeout = timeout
        self.redeliver = False  # the `slack_redelivery` fault
        self.delivered: list[tuple[float, dict[str, Any]]] = []  # (when, envelope) of every first delivery
        self._channels = itertools.count(1)
        self._serial = itertools.count(1)

    def question(self) -> str:
        """A question no one asked before (no answer cache hit: every question reaches the fault)."""
        serial = next(self._serial)
        return f"{QUESTIONS[serial % len(QUESTIONS)]} (drill {serial})"

    async def ask(self) -> Question:
        """Ask one question (delivered again while it is answered, during `slack_redelivery`); wait for its reply."""
        channel = f"CD{next(self._channels):07d}"
        payload = event_body(mention(self.question(), channel=channel))
        asked = Question(channel, time.monotonic())
        self.delivered.append((asked.sent, payload))
        asked.ack_status, _ = await self.run.post_event({}, payload=payload)
        redeliveries = []
        if self.redeliver:
            for number, delay in ((1, 0.1), (2, 0.5)):
                redeliveries.append(asyncio.create_task(self._redeliver(asked, payload, number, delay)))
        deadline = asked.sent + self.timeout
        while time.monotonic() < deadline:
            replies = self.inbox.replies(channel)
            if replies:
                asked.answered = time.monotonic()
                asked.outcome = classify(replies[0]) or "error"
                asked.text = replies[0]
                break
            await asyncio.sleep(0.05)
        else:
            asked.text = " | ".join(m.blob() for m in self.inbox.by_channel.get(channel, [])) or "(nothing)"
        await asyncio.gather(*redeliveries)
        return asked

    async def redeliver_since(self, since: float) -> int:
        """Deliver again (Retry-Num 1, `http_timeout`) every event first delivered since `since`; returns how many."""
        headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        envelopes = [payload for sent, payload in self.delivered if sent >= since]
        statuses = await asyncio.gather(*(self.run.post_event({}, payload=p, headers=headers) for p in envelopes))
        assert all(status == 200 for status, _ in statuses), statuses
        return len(envelopes)

    async def _redeliver(self, asked: Question, payload: dict[str, Any], number: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.inbox.replies(asked.channel):
            asked.overlapped += 1
        headers = {"X-Slack-Retry-Num": str(number), "X-Slack-Retry-Reason": "http_timeout"}
        status, _ = await self.run.post_event({}, payload=payload, headers=headers)
        assert status == 200, f"a redelivery was answered with HTTP {status}"
        asked.redelivered += 1

    def settle(self, questions: list[Question]) -> None:
        """Count each question's replies (call once late replies have had time to show up).

        A reply is a final message of a known kind; a long answer's continuation messages are not replies.
        """
        for asked in questions:
            asked.replies = sum(classify(blob) is not None for blob in self.inbox.replies(asked.channel))


# ---- faults -------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """What to break and how to mend it, and what to look at during and after it (findings for the report)."""

    name: str
    description: str
    inject: Callable[[], Awaitable[None]]
    clear: Callable[[], Awaitable[None]]
    during: Callable[[], Awaitable[dict[str, Any]]] | None = None  # runs while the fault is on
    after: Callable[[], Awaitable[dict[str, Any]]] | None = None  # runs once the drill's questions are answered
    min_window: float = 0.0  # the shortest fault that shows its effect
    min_after: float = 0.0  # the shortest load after it that shows the recovery


@dataclass
class Services:
    """Everything the drills break: the bot's Redis and Chroma servers, the fake Groq, the mock Slack."""

    run: LoadRun
    asker: Asker
    redis: RedisServer
    chroma: ChromaServer
    uploads: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def groq_fault(
        self, behaviour: Behaviour, rerank: Behaviour | None = None
    ) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        """Every answer request behaves as `behaviour`, every rerank as `rerank` (default: the same)."""
        groq = self.run.groq
        assert groq is not None

        async def inject() -> None:
            groq.default = behaviour
            groq.rerank_default = behaviour if rerank is None else rerank

        async def clear() -> None:
            groq.default, groq.rerank_default = Reply(ANSWER_TEXT), Reply("[1]")

        return inject, clear

    def slack_fault(self, **failure: Any) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        slack = self.run.slack

        async def inject() -> None:
            for method in SLACK_WRITES:
                slack.fail_always(method, **failure)

        async def clear() -> None:
            for method in SLACK_WRITES:
                slack.recover(method)

        return inject, clear

    async def upload(self, filename: str, data: bytes) -> str:
        """Share a spec file with a mention; returns the final reply shown (waits up to a minute)."""
        number = next(self.uploads)
        file = self.run.slack.add_file(filename, data, file_id=f"FDRILL{number}")
        channel = f"CUPLOAD{number}"
        event = message("<@UBOT> our spec", channel=channel, subtype="file_share", files=[file], user="U1")
        status, _ = await self.run.post_event(event)
        assert status == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = [m.blob() for m in self.run.slack.messages if m.channel == channel]
            final = [r for r in replies if f":{WORKING_EMOJI}:" not in r]
            if final:
                return final[0]
            await asyncio.sleep(0.1)
        return ""

    def redis_keys(self) -> int:
        """How many keys the Redis server holds (DBSIZE)."""
        return int(_commands(self.redis.port, ["DBSIZE"])[0].lstrip(b":"))


def faults(services: Services) -> list[Fault]:
    """Every drill, in the order they run."""
    found: list[Fault] = []
    trickle = Reply(ANSWER_TEXT, chunk_delay=1.0)  # 12 chunks: 12 s, past the 9 s deadline
    # A question meets a silent Groq for 1 s (rerank) + 2 s + a back-off + 2 s: a shorter stall is ridden out by the
    # retry. A trickling answer holds its slot until the 9 s deadline, so the queue drains that long after the fault.
    for name, description, behaviour, rerank, min_window, min_after in (
        ("groq_429", "Groq 429 storm (`retry-after: 1`) on answers and reranks", RateLimited(retry_after=1.0), None,
         0, 0),
        ("groq_500", "Groq 500 on every call", ServerError(500), None, 0, 0),
        ("groq_stall", "Groq silent for 30 s on every call (past the 2 s timeout, 1 retry)", Delay(30.0), None, 8, 0),
        ("groq_slow_stream", "Groq streams answers a chunk a second, past the 9 s deadline", trickle, Reply("[1]"),
         0, 14),
        ("groq_disconnect", "Groq drops every connection", Disconnect(), None, 0, 0),
    ):
        inject, clear = services.groq_fault(behaviour, rerank)
        found.append(Fault(name, description, inject, clear, min_window=min_window, min_after=min_after))

    redis = services.redis
    redis_state: dict[str, Any] = {}

    async def kill_redis() -> None:
        redis_state["keys_before"] = await asyncio.to_thread(services.redis_keys)
        redis.stop(kill=True)
        redis_state["killed"] = time.monotonic()

    async def restart_redis() -> None:
        await asyncio.to_thread(redis.start)
        # Slack retries what it thinks went unanswered; the events first delivered during the outage come back
        # once the bot uses Redis again (its circuit tries Redis 1 s after a failure), and must not be answered twice.
        await asyncio.sleep(1.5)
        redis_state["redelivered"] = await services.asker.redeliver_since(redis_state["killed"])

    async def redis_after() -> dict[str, Any]:
        logs = services.run.replica
        return {
            "redis_keys_before_kill": redis_state.get("keys_before", 0),
            "redis_keys_after_restart": await asyncio.to_thread(services.redis_keys),
            "redelivered_after_restart": redis_state.get("redelivered", 0),
            "degraded_logged": len(logs.events("shared_state_degraded")),
            "recovered_logged": len(logs.events("shared_state_recovered")),
        }

    found.append(Fault("redis_kill", "redis-server killed (SIGKILL), restarted on the same port; the events of the "
                       "outage redelivered after it", kill_redis, restart_redis, after=redis_after))

    chroma = services.chroma

    async def kill_chroma() -> None:
        chroma.stop(kill=True)

    async def restart_chroma() -> None:
        await asyncio.to_thread(chroma.start)

    # A new spec each time the drill runs (the same file twice would be "already indexed" the second time).
    number = next(services.uploads)
    widgets = openapi("Widgets", "1.0.0", {f"GET /drill{number}/widgets": (f"listWidgets{number}", "List widgets")})

    async def upload_during() -> dict[str, Any]:
        return {"upload_during_fault": await services.upload(f"widgets{number}.json", widgets)}

    async def upload_after() -> dict[str, Any]:  # the same file shared again, as its uploader would
        return {"upload_after_restart": await services.upload(f"widgets{number}.json", widgets)}

    found.append(Fault("chroma_kill", "Chroma server killed (SIGKILL), restarted on the same port and data",
                       kill_chroma, restart_chroma, during=upload_during, after=upload_after))

    for name, description, failure in (
        ("slack_429", "Slack 429 `ratelimited` (`Retry-After: 1`) on chat.postMessage / chat.update",
         {"status": 429, "error": "ratelimited", "retry_after": 1}),
        ("slack_500", "Slack 500 `internal_error` on chat.postMessage / chat.update (not done)",
         {"status": 500, "error": "internal_error"}),
        ("slack_500_landed", "Slack 500 `internal_error` on chat.postMessage / chat.update (done before the 500)",
         {"status": 500, "error": "internal_error", "landed": True}),
    ):
        inject, clear = services.slack_fault(**failure)
        found.append(Fault(name, description, inject, clear))

    asker = services.asker

    async def redeliver_on() -> None:
        asker.redeliver = True

    async def redeliver_off() -> None:
        asker.redeliver = False

    found.append(Fault("slack_redelivery", "Slack redelivers each event (Retry-Num 1 and 2, `http_timeout`) "
                       "0.1 s and 0.5 s after the first delivery", redeliver_on, redeliver_off))
    return found


# ---- one drill ----------------------------------------------------------------------------------------------


def recovery_seconds(questions: list[Question], cleared: float) -> float | None:
    """Seconds from `cleared` until answers are normal again (see the module's docstring); None: not recovered."""
    ordered = sorted(questions, key=lambda q: q.sent)
    if not ordered or ordered[-1].outcome != "normal":
        return None
    start = len(ordered)
    while start > 0 and ordered[start - 1].outcome == "normal":
        start -= 1
    return round(max(0.0, ordered[start].answered - cleared), 2)


def tally(questions: list[Question]) -> dict[str, int]:
    """Questions, each outcome, and duplicated (more than one reply), for a set of questions."""
    counts = {"questions": len(questions), **{kind: 0 for kind in OUTCOMES}}
    for asked in questions:
        counts[asked.outcome] += 1
    counts["duplicated"] = sum(asked.replies > 1 for asked in questions)
    return counts


async def drill(
    services: Services, fault: Fault, *, rate: float, before: float, window: float, after: float, settle: float = 1.5
) -> dict[str, Any]:
    """Questions at `rate`/s: `before` s, then the fault for `window` s (and until it is cleared), then `after` s.

    The fault's own minimums (`min_window`, `min_after`) lengthen `window` and `after` when they are shorter.
    """
    window, after = max(window, fault.min_window), max(after, fault.min_after)
    asker = services.asker
    questions: list[asyncio.Task[Question]] = []
    findings: dict[str, Any] = {}
    times: dict[str, float] = {}

    async def fault_window() -> None:
        await asyncio.sleep(before)
        times["injected"] = time.monotonic()
        await fault.inject()
        side = asyncio.create_task(fault.during()) if fault.during else None
        await asyncio.sleep(window)
        await fault.clear()
        times["cleared"] = time.monotonic()
        if side is not None:
            findings.update(await side)

    began = time.monotonic()
    window_task = asyncio.create_task(fault_window())
    for n in itertools.count():
        at = began + n / rate
        if window_task.done() and (window_task.exception() or at > times["cleared"] + after):
            break
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        questions.append(asyncio.create_task(asker.ask()))
    await window_task
    asked = list(await asyncio.gather(*questions))
    await asyncio.sleep(settle)  # room for a second reply to show up, if one were coming
    asker.settle(asked)
    if fault.after is not None:
        findings.update(await fault.after())
    injected, cleared = times["injected"], times["cleared"]
    during = [q for q in asked if injected <= q.sent <= cleared]
    result: dict[str, Any] = {
        "fault": fault.name,
        "description": fault.description,
        "fault_seconds": round(cleared - injected, 2),
        "during": tally(during),
        "whole": tally(asked),
        "recovery_s": recovery_seconds(asked, cleared),
        "non_200_acks": sum(q.ack_status != 200 for q in asked),
        **findings,
    }
    examples = {q.outcome: q.text[:300] for q in reversed(asked) if q.outcome != "normal"}
    if examples:
        result["examples"] = examples  # one reply of each kind that was not a normal answer
    if any(q.redelivered for q in asked):
        result["redeliveries"] = sum(q.redelivered for q in asked)
        result["redeliveries_while_answering"] = sum(q.overlapped for q in asked)
    return result


# ---- everything ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def drill_services(llm_delay: float = 0.3, timeout: float = 90.0) -> AsyncIterator[Services]:
    """A redis-server and a Chroma server on 127.0.0.1, and the bot under load using both, the example uploaded."""
    if redis_server_binary() is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server, or set REDIS_SERVER)")
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drills-")))
        redis = RedisServer()
        stack.callback(redis.close)
        redis.start()
        chroma = ChromaServer(folder / "chroma")
        stack.callback(chroma.stop)
        await asyncio.to_thread(chroma.start)
        run = await stack.enter_async_context(
            bot_under_load(llm_delay, timeout, redis_url=redis.url, chroma_port=chroma.port, **DRILL_SETTINGS)
        )
        assert run.groq is not None
        run.groq.default, run.groq.rerank_default = Reply(ANSWER_TEXT), Reply("[1]")
        await run.upload_spec(EXAMPLE)
        services = Services(run, Asker(run, timeout), redis, chroma)
        yield services


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the chosen drills one after another on one bot process; return each one's figures."""
    results = []
    async with drill_services(args.llm_delay, args.timeout) as services:
        for _ in range(int(args.rate * 3)):  # warm-up: first calls, lazy imports
            await services.asker.ask()
        for fault in faults(services):
            if args.only and fault.name not in args.only:
                continue
            figures = await drill(services, fault, rate=args.rate, before=args.before, window=args.window,
                                  after=args.after)
            print(json.dumps(figures), flush=True)
            results.append(figures)
    return results


def table(results: list[dict[str, Any]]) -> str:
    """The results as the Markdown table in benchmarks/RESULTS.md."""
    rows = [
        "| fault | questions during the fault | answered normally | with fallback | refused | unavailable | errors "
        "| lost | duplicated | all questions (lost / duplicated) | recovery s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d, w = r["during"], r["whole"]
        recovery = "not recovered" if r["recovery_s"] is None else f"{r['recovery_s']:.1f}"
        rows.append(
            f"| {r['description']} | {d['questions']} | {d['normal']} | {d['fallback']} | {d['refused']} "
            f"| {d['unavailable']} | {d['error']} | {d['lost']} | {d['duplicated']} "
            f"| {w['questions']} ({w['lost']} / {w['duplicated']}) | {recovery} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=4.0, help="questions per second, all drill long")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the fault")
    parser.add_argument("--window", type=float, default=10.0, help="seconds the fault lasts")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of load after the fault is cleared")
    parser.add_argument("--llm-delay", type=float, default=0.3, help="fake Groq's delay before the first token")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds after which a question is lost")
    parser.add_argument("--only", default="", help="comma-separated drill names (default: all)")
    parsed = parser.parse_args()
    parsed.only = [x for x in parsed.only.split(",") if x]
    started = time.monotonic()
    drills = asyncio.run(main(parsed))
    command = "python -m benchmarks.drills " + " ".join(
        f"--{k.replace('_', '-')} {v if not isinstance(v, list) else ','.join(v)}"
        for k, v in vars(parsed).items() if v != []
    )
    report = {"command": command, "settings": DRILL_SETTINGS, "seconds": round(time.monotonic() - started, 1),
              "drills": drills}
    out = Path(__file__).parent / "drills.json"
    if parsed.only and out.exists():  # a re-run of some drills replaces their rows and keeps the others
        earlier = json.loads(out.read_text())
        fresh = {d["fault"]: d for d in drills}
        merged = [fresh.pop(d["fault"], d) for d in earlier["drills"]] + list(fresh.values())
        reruns = earlier.pop("reruns", None) or ([earlier.pop("rerun")] if "rerun" in earlier else [])
        report = earlier | {"drills": merged, "reruns": [*reruns, {
            "command": command, "seconds": report["seconds"], "faults": [d["fault"] for d in drills]}]}
        drills = merged
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(drills))
