"""LLM queue benchmark: how many questions asked at once are refused, and how long the rest wait.

    .venv/bin/python benchmarks/llm_queue.py [--delay 0.3] [--out benchmarks/llm_queue.json]

The real `Assistant` (bundled bookshop spec, real embeddings, embedded Chroma) answers through the real Groq SDK
against the local fake Groq server, which starts streaming each answer after `--delay` seconds. 30 and then 100
distinct questions from distinct users arrive in the same instant; each round counts answers, refusals
(`BusyError`), the latency of the full answer and the places in the queue people were told. Every guard is
run in the same process, one after the other:

- `before`: the guard as shipped before issue 13, a queue bounded by length (`LLM_MAX_CONCURRENT=4`,
  `LLM_MAX_QUEUE=20`);
- `after`: the guard `build_assistant` makes from the defaults now: bounded by expected wait (the answer
  deadline) with a hard cap of `LLM_MAX_QUEUE` (1000);
- `after, 8 slots`: the same with `LLM_MAX_CONCURRENT=8`, to see what more slots would buy.
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
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core import messages  # noqa: E402
from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec  # noqa: E402
from core.answers import FinalAnswer, StatusUpdate  # noqa: E402
from core.bootstrap import build_assistant  # noqa: E402
from core.config import Settings  # noqa: E402
from core.embedding import SentenceTransformerEmbedder  # noqa: E402
from core.errors import BusyError  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from core.ratelimit import ConcurrencyGuard  # noqa: E402
from tests.fake_groq import Reply, start_fake_groq  # noqa: E402

SPEC = REPO / "core" / "examples" / "bookshop_openapi.yaml"
TOPICS = ["refund an order", "list the books", "create a customer", "delete a customer", "cancel an order"]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def _round(assistant: Any, questions: int, tag: str) -> dict[str, Any]:
    async def one(i: int) -> tuple[str, float, int | None]:
        origin = Origin("bench", "W", user=f"{tag}-U{i}")
        request = AskQuestion(origin, f"how do I {TOPICS[i % len(TOPICS)]}? ({tag} question {i})")
        started = time.perf_counter()
        place: int | None = None
        try:
            async for event in assistant.stream_answer(request):
                if place is None and isinstance(event, StatusUpdate) and event.text.startswith("Queued"):
                    # the place it was first told (it hears it move up every 5 s after that)
                    place = next((n for n in range(questions + 1) if event.text == messages.queued(n)), None)
                if isinstance(event, FinalAnswer):
                    return "answered", time.perf_counter() - started, place
        except BusyError:
            return "refused", time.perf_counter() - started, place
        return "no answer", time.perf_counter() - started, place

    results = await asyncio.gather(*(one(i) for i in range(questions)))
    answered = [seconds for outcome, seconds, _ in results if outcome == "answered"]
    places = [place for _, _, place in results if place is not None]
    return {
        "questions": questions,
        "answered": len(answered),
        "refused": sum(outcome == "refused" for outcome, _, _ in results),
        "no_answer": sum(outcome == "no answer" for outcome, _, _ in results),
        "answer_p50_s": round(statistics.median(answered), 2) if answered else None,
        "answer_p95_s": round(_percentile(answered, 0.95), 2) if answered else None,
        "answer_max_s": round(max(answered), 2) if answered else None,
        "told_their_place": len(places),
        "most_ahead": max(places, default=0),
        "typical_answer_s": round(assistant.guard.typical_seconds, 3),
    }


async def main(delay: float) -> dict[str, Any]:
    configure_logging("ERROR")
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    results: dict[str, Any] = {"llm_delay_s": delay, "rounds": {}}
    async with start_fake_groq() as fake:
        fake.latency(first_token=delay)
        fake.default = Reply("Use the operation [1]; pass the fields it lists. [1]")
        with tempfile.TemporaryDirectory() as data:
            settings = Settings(
                data_dir=Path(data), groq_api_key="gsk_bench", groq_base_url=fake.base_url,
                rate_limit_requests_per_minute=100_000, rate_limit_burst=1000, _env_file=None,  # type: ignore[call-arg]
            )
            results["answer_deadline_s"] = settings.generation_deadline_seconds
            async with build_assistant(settings, embedder=embedder) as assistant:
                await assistant.ingest(UploadSpec(Origin("bench", "W"), PathAttachment(SPEC), "bookshop"))
                shipped = assistant.guard
                await _round(assistant, 5, "warm-up")
                guards = {
                    "before (4 slots, queue of 20)": ConcurrencyGuard(4, 20),
                    "after (4 slots, wait-bounded)": shipped,
                    "after, 8 slots": ConcurrencyGuard(
                        8, settings.llm_max_queue, max_wait=settings.generation_deadline_seconds,
                        timeout_message=messages.waited_too_long,
                    ),
                }
                for name, guard in guards.items():
                    assistant.guard = guard
                    rounds = [await _round(assistant, n, f"{name[:6]}{n}") for n in (30, 100)]
                    results["rounds"][name] = rounds
                    print(name, json.dumps(rounds), flush=True)
                assistant.guard = shipped
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.3, help="the fake model's delay before streaming (s)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "llm_queue.json")
    args = parser.parse_args()
    output = asyncio.run(main(args.delay))
    print(json.dumps(output, indent=2))
    args.out.write_text(json.dumps(output, indent=2) + "\n")
