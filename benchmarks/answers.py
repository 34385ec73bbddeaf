"""Answer-path benchmark: the core's own overhead per question, with the LLM wait taken out.

    .venv/bin/python benchmarks/answers.py [--delay 0.5] [--out benchmarks/answers.json]

A local fake Groq server answers every request after a fixed delay. Each question's wall time is split
into time spent waiting on the model (measured around the generator's stream) and everything else (the
core's overhead: rate limit, caches, query embedding, hybrid retrieval, prompt building, citation review,
snippets). Questions are unique per request so no cache short-cuts them. Runs at 1, 10 and 50 concurrent
users; the retrieval-only path (no LLM) is timed in the same run as the baseline.

It also measures event-loop responsiveness while a large spec is being embedded: a 10 ms ticker's lag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec  # noqa: E402
from core.bootstrap import build_assistant  # noqa: E402
from core.config import Settings  # noqa: E402
from core.embedding import SentenceTransformerEmbedder  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from tests.corpus import specs_dir_or_exit  # noqa: E402
from tests.fake_groq import Reply, start_fake_groq  # noqa: E402

QUESTIONS = [
    "how do I refund a charge?", "create a customer with an email", "list all invoices for a customer",
    "cancel a subscription at period end", "attach a payment method to a customer", "create a payment intent",
    "how do I authenticate?", "retrieve a balance transaction", "update a product price", "delete a coupon",
]


class TimedGenerator:
    """Wraps the real generator and adds up the time spent waiting on it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.waited: dict[str, float] = {}

    async def stream(self, question: str, evidence: Sequence[Any], history: Sequence[Any] = ()) -> AsyncIterator[str]:
        waited = 0.0
        iterator = self.inner.stream(question, evidence, history).__aiter__()
        while True:
            started = time.perf_counter()
            try:
                part = await iterator.__anext__()
            except StopAsyncIteration:
                waited += time.perf_counter() - started
                break
            waited += time.perf_counter() - started
            yield part
        self.waited[question] = waited

    async def aclose(self) -> None:
        await self.inner.aclose()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def _round(assistant: Any, users: int, tag: str, timed: TimedGenerator | None) -> dict[str, float]:
    async def one(user: int) -> float:
        question = f"{QUESTIONS[user % len(QUESTIONS)]} ({tag} user {user})"
        started = time.perf_counter()
        await assistant.ask(AskQuestion(Origin("bench", "W", user=f"U{user}"), question))
        total = time.perf_counter() - started
        return total - (timed.waited.get(question, 0.0) if timed else 0.0)

    overheads = await asyncio.gather(*(one(u) for u in range(users)))
    ms = [o * 1000 for o in overheads]
    return {"users": users, "median_ms": statistics.median(ms), "p95_ms": _percentile(ms, 0.95)}


async def _loop_lag_during_ingest(assistant: Any, specs: Path) -> dict[str, float]:
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - started - 0.01) * 1000)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await assistant.ingest(UploadSpec(Origin("bench", "lag"), PathAttachment(specs / "twilio_api_v2010_openapi3.json")))
    seconds = time.perf_counter() - started
    done.set()
    await task
    return {"ingest_s": seconds, "ticks": len(lags), "lag_median_ms": statistics.median(lags),
            "lag_p99_ms": _percentile(lags, 0.99), "lag_max_ms": max(lags)}


async def main(delay: float) -> dict[str, Any]:
    specs = specs_dir_or_exit(os.environ)  # SPECS_DIR, ../shared/specs, or the pinned files downloaded
    configure_logging("WARNING")
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    results: dict[str, Any] = {"llm_delay_s": delay}
    async with start_fake_groq() as fake:
        fake.latency(first_token=delay)
        fake.default = Reply("Use the operation [1]; pass the fields it lists. [1]")
        with tempfile.TemporaryDirectory() as data:
            common = {"data_dir": Path(data), "rate_limit_requests_per_minute": 100_000, "rate_limit_burst": 1000,
                      "llm_max_concurrent": 64, "llm_max_queue": 64, "_env_file": None}
            generated = Settings(groq_api_key="gsk_bench", groq_base_url=fake.base_url, **common)
            async with build_assistant(generated, embedder=embedder) as assistant:
                timed = TimedGenerator(assistant.generator)
                assistant.generator = timed  # type: ignore[assignment]
                stripe = UploadSpec(Origin("bench", "W"), PathAttachment(specs / "stripe_openapi3_2023-09.yaml"))
                await assistant.ingest(stripe)
                await _round(assistant, 5, "warm-up", timed)
                results["generated"] = [await _round(assistant, n, f"gen{n}", timed) for n in (1, 10, 50)]
                results["event_loop_during_ingest"] = await _loop_lag_during_ingest(assistant, specs)
            retrieval_only = Settings(**common)
            async with build_assistant(retrieval_only, embedder=embedder) as assistant:
                await assistant.ingest(stripe)
                await _round(assistant, 5, "warm-up", None)
                results["retrieval_only_baseline"] = [await _round(assistant, n, f"ret{n}", None) for n in (1, 10, 50)]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.5, help="the fake model's fixed answer delay (s)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "answers.json")
    args = parser.parse_args()
    output = asyncio.run(main(args.delay))
    print(json.dumps(output, indent=2))
    args.out.write_text(json.dumps(output, indent=2) + "\n")
