"""The core's own time per question with many at once (issue 13: p95 ≤ 200 ms with 50 questions at once).

    .venv/bin/python benchmarks/overhead.py [--rounds 5] [--out benchmarks/overhead.json]

One process, the default embedding backend (onnx-int8), Stripe alone in the workspace, and the local fake Groq
answering after 0.5 s (streaming) from a process of its own (Groq is remote: serving its side must not count as
the core's work on the same event loop); reranking is off, since it is a second LLM call and not the core's own
work. A question's overhead is its whole `Assistant.ask` time minus the time spent waiting on the answer stream
(`benchmarks.answers.TimedGenerator`), the method of benchmarks/answers.py. Every question is unique (no answer
cache hits; each query is embedded). At 1, 10 and 50 users at once, rounds alternate between:

- `memory`: the shipped retriever, which searches each document's own vector in memory (`core.retrieval`);
- `chroma`: the retriever as it was before, asking Chroma for the nearest vectors on every question (the
  baseline, reproduced here by overriding `signals` with the previous code).

Also the retrieval-only path (no LLM configured) at 50. Medians over the rounds of p50, p95 and the process's
CPU milliseconds per question (all threads; the figure the machine's other jobs move least).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.answers import TimedGenerator, _percentile  # noqa: E402
from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec  # noqa: E402
from core.bootstrap import build_assistant  # noqa: E402
from core.config import Settings  # noqa: E402
from core.documents import Document  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from core.retrieval import HybridRetriever, SearchScope, Signals  # noqa: E402
from tests.corpus import specs_dir_or_exit  # noqa: E402
from tests.fake_groq import Reply, start_fake_groq  # noqa: E402

STRIPE = "stripe_openapi3_2023-09.yaml"
QUESTIONS = (
    "how do I refund a charge?", "create a customer with an email", "list all invoices of a customer",
    "cancel a subscription at period end", "attach a payment method to a customer", "retrieve a payout",
    "update the metadata of a product", "delete a webhook endpoint", "create a checkout session",
    "how do I capture a payment intent?",
)


class ChromaDenseRetriever(HybridRetriever):
    """The baseline: the nearest vectors asked of the store on every question, as before the in-memory search."""

    async def signals(
        self, scope: SearchScope, query: str, query_embedding: Sequence[float] | None = None, limit: int = 50
    ) -> tuple[list[tuple[str, Document]], Signals]:
        lexical = await self._lexical_index(scope)
        embedding = query_embedding if query_embedding is not None else await self._embedder.embed_query(query)
        wanted = min(limit, len(lexical.entries))
        hits = await self._store.query(scope.workspace, embedding, list(scope.versions.values()), wanted * 4)
        dense: dict[int, float] = {}
        for hit in hits:
            position = lexical.position.get((hit.spec, hit.key))
            if position is not None and position not in dense and len(dense) < wanted:
                dense[position] = 1.0 - hit.distance
        return lexical.entries, lexical.signals(query, list(dense.items()), limit)


async def _round(assistant: Any, users: int, tag: str, timed: TimedGenerator | None) -> dict[str, float]:
    async def one(user: int) -> float:
        question = f"{QUESTIONS[user % len(QUESTIONS)]} ({tag} user {user})"
        started = time.perf_counter()
        await assistant.ask(AskQuestion(Origin("bench", "W", user=f"U{user}"), question))
        total = time.perf_counter() - started
        return total - (timed.waited.get(question, 0.0) if timed else 0.0)

    cpu = time.process_time()
    overheads = await asyncio.gather(*(one(u) for u in range(users)))
    ms = [o * 1000 for o in overheads]
    return {"p50_ms": statistics.median(ms), "p95_ms": _percentile(ms, 0.95),
            "cpu_ms_per_question": (time.process_time() - cpu) * 1000 / users}


def _medians(rounds: list[dict[str, float]]) -> dict[str, Any]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]} | {
        "p95_ms_rounds": [round(r["p95_ms"]) for r in rounds]}


async def serve_fake_groq() -> None:
    """The fake Groq for `main`, in this (child) process: prints its URL, serves until stdin closes."""
    async with start_fake_groq() as fake:
        fake.latency(first_token=0.5)
        fake.default = Reply("Use the operation [1]; pass the fields it lists. [1]")
        print(fake.base_url, flush=True)
        await asyncio.to_thread(sys.stdin.read)


@contextmanager
def fake_groq_process() -> Iterator[str]:
    """A fake Groq in a child process; yields its base URL."""
    child = subprocess.Popen([sys.executable, __file__, "--serve-groq"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)


async def main(rounds: int) -> dict[str, Any]:
    configure_logging("WARNING")
    stripe = specs_dir_or_exit(os.environ) / STRIPE
    result: dict[str, Any] = {"load_before": os.getloadavg()}
    with fake_groq_process() as groq_url, tempfile.TemporaryDirectory() as data:
        common: dict[str, Any] = {
            "data_dir": Path(data), "rate_limit_requests_per_minute": 100_000, "rate_limit_burst": 1000,
            "llm_max_concurrent": 64, "llm_max_queue": 1000, "upload_rate_limit_per_hour": 100_000,
            "upload_rate_limit_burst": 1000, "rerank_enabled": False, "_env_file": None,
        }
        generated = Settings(groq_api_key="gsk_bench", groq_base_url=groq_url, **common)
        async with build_assistant(generated) as assistant:
            timed = TimedGenerator(assistant.generator)
            assistant.generator = timed  # type: ignore[assignment]
            await assistant.ingest(UploadSpec(Origin("bench", "W"), PathAttachment(stripe)))
            retrievers = {
                "memory": assistant.retriever,
                "chroma": ChromaDenseRetriever(assistant.store, assistant.registry, assistant.embedder),
            }
            for name, retriever in retrievers.items():  # warm-up: indexes built, connections open
                assistant.retriever = retriever
                await _round(assistant, 10, f"warm-{name}", timed)
            for users in (1, 10, 50):
                runs: dict[str, list[dict[str, float]]] = {name: [] for name in retrievers}
                for number in range(rounds):
                    for name, retriever in retrievers.items():
                        assistant.retriever = retriever
                        runs[name].append(await _round(assistant, users, f"{name}{users}-{number}", timed))
                result[f"generated_{users}"] = {name: _medians(r) for name, r in runs.items()}
                print(users, {n: round(m["p95_ms"]) for n, m in result[f"generated_{users}"].items()}, flush=True)
        async with build_assistant(Settings(**common)) as assistant:
            await assistant.ingest(UploadSpec(Origin("bench", "W"), PathAttachment(stripe)))
            retrievers = {
                "memory": assistant.retriever,
                "chroma": ChromaDenseRetriever(assistant.store, assistant.registry, assistant.embedder),
            }
            runs = {name: [] for name in retrievers}
            for name, retriever in retrievers.items():
                assistant.retriever = retriever
                await _round(assistant, 10, f"rwarm-{name}", None)
            for number in range(rounds):
                for name, retriever in retrievers.items():
                    assistant.retriever = retriever
                    runs[name].append(await _round(assistant, 50, f"r{name}-{number}", None))
            result["retrieval_only_50"] = {name: _medians(r) for name, r in runs.items()}
    result["load_after"] = os.getloadavg()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve-groq", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_groq:
        asyncio.run(serve_fake_groq())
        sys.exit(0)
    figures = asyncio.run(main(args.rounds))
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
