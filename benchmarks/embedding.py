"""Embedding backends side by side (issue 13): speed, memory and retrieval quality of torch, onnx and onnx-int8.

    .venv/bin/python benchmarks/embedding.py [--backends torch,onnx,onnx-int8] [--out benchmarks/embedding.json]

Every backend is measured in the same run, each in a fresh process of its own (so imports, RSS and caches are
its own), with the same steps:

- start-up: import the core, build the embedder and load the model (the ONNX export is made once at the
  start of the run, timed, and shared by the ONNX backends, as DATA_DIR/models would be);
- Stripe indexed cold (empty embedding cache), then forced re-indexes under new names with every vector in
  the embedding cache: with the parse cache (the same bytes parsed earlier in the process) and without it
  (as a re-index in a new process pays);
- the core's overhead per question at 1, 10 and 50 concurrent users, with a local fake Groq answering after
  0.5 s (the method and setting of benchmarks/answers.py: Stripe alone in the workspace, unique questions),
  and the retrieval-only answer path (no LLM) at the same concurrency; three rounds each, the median kept;
- the other eight corpus specs indexed, then RSS with all nine in one workspace (whether torch was imported);
- retrieval: the 72 dev questions three times each, scoped to their spec (p50 / p95), and the first asking of
  each alone (its query embedded; the two later ones find it in the query-embedding cache).

Quality: `evaluation.retrieval` on ../shared/eval/dev.jsonl, dev_more.jsonl and evaluation/heldout.jsonl for
each backend in one process, recall@1/3/5/10 and MRR@10, and each ONNX backend's difference from torch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.corpus import eval_dir, specs_dir_or_exit  # noqa: E402

STRIPE = "stripe_openapi3_2023-09.yaml"
SPEC_SUFFIXES = {".json", ".yaml", ".graphql", ".md"}
BACKENDS = ("torch", "onnx", "onnx-int8")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def _ingest_timed(assistant: Any, origin: Any, path: Path, name: str) -> dict[str, float]:
    from core.actions import PathAttachment, UploadSpec

    events: list[tuple[float, float, str]] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    report = await assistant.ingest(
        UploadSpec(origin, PathAttachment(path), name),
        lambda p: events.append((time.perf_counter(), time.process_time(), p.stage)),
    )
    finished, cpu_finished = time.perf_counter(), time.process_time()
    first: dict[str, tuple[float, float]] = {}
    for stamp, cpu, stage in events:
        first.setdefault(stage, (stamp, cpu))
    embed_start, embed_cpu = first.get("embedding", (finished, cpu_finished))
    store_start, store_cpu = first.get("storing", (finished, cpu_finished))
    return {
        "parse_s": embed_start - started,
        "embed_s": store_start - embed_start,
        # CPU seconds of this process (all its threads) while embedding: what the shared cores' load leaves alone.
        "embed_cpu_s": store_cpu - embed_cpu,
        "store_s": finished - store_start,
        "total_s": finished - started,
        "total_cpu_s": cpu_finished - cpu_started,
        "documents": report.record.operation_count + report.record.scheme_count + 1,
    }


async def _speed(backend: str, exports: Path, specs: Path, questions_file: Path) -> dict[str, Any]:
    started = time.perf_counter()
    from benchmarks.answers import TimedGenerator, _round
    from core.actions import ForgetSpec, Origin, PathAttachment, UploadSpec
    from core.bootstrap import build_assistant
    from core.config import Settings
    from core.embedding import build_embedder
    from core.logs import configure_logging
    from core.parsing.worker import ParsedCache
    from evaluation.retrieval import load_questions
    from tests.fake_groq import Reply, start_fake_groq

    configure_logging("WARNING")
    embedder = await build_embedder(backend=backend, cache_dir=exports)
    await embedder.load_now()
    result: dict[str, Any] = {"backend": backend, "effective_backend": embedder.backend, "load_before": os.getloadavg()}
    result["startup_s"] = time.perf_counter() - started
    async with start_fake_groq() as fake:
        fake.latency(first_token=0.5)
        fake.default = Reply("Use the operation [1]; pass the fields it lists. [1]")
        with tempfile.TemporaryDirectory() as data:
            settings = Settings(
                data_dir=Path(data), embedding_backend=backend, groq_api_key="gsk_bench", groq_base_url=fake.base_url,
                rate_limit_requests_per_minute=100_000, rate_limit_burst=1000, llm_max_concurrent=64,
                llm_max_queue=64, upload_rate_limit_per_hour=100_000, upload_rate_limit_burst=1000, _env_file=None,
            )  # fmt: skip
            async with build_assistant(settings, embedder=embedder) as assistant:
                origin = Origin("bench", "W")  # the workspace benchmarks.answers asks in
                result["stripe_cold"] = await _ingest_timed(assistant, origin, specs / STRIPE, "stripe-cold")
                result["stripe_warm_parse_cached"] = await _ingest_timed(assistant, origin, specs / STRIPE, "stripe-w1")
                assistant.parser.cache = ParsedCache()  # what a re-index in a fresh process finds
                result["stripe_warm_parse_uncached"] = await _ingest_timed(
                    assistant, origin, specs / STRIPE, "stripe-w2"
                )
                for name in ("stripe-w1", "stripe-w2"):
                    await assistant.forget(ForgetSpec(origin, name))

                async def rounds(timed: TimedGenerator | None, tag: str) -> list[dict[str, float]]:
                    # Three rounds at each concurrency, the one with the median p95 kept: one noisy neighbour on
                    # the shared cores moves a single round by hundreds of milliseconds.
                    kept = []
                    for users in (1, 10, 50):
                        tried = [await _round(assistant, users, f"{tag}{users}-{i}", timed) for i in range(3)]
                        kept.append(sorted(tried, key=lambda r: r["p95_ms"])[1] | {"p95_ms_rounds": [
                            round(r["p95_ms"]) for r in tried]})
                    return kept

                timed = TimedGenerator(assistant.generator)
                assistant.generator = timed
                await _round(assistant, 5, "warm-up", timed)
                result["overhead"] = await rounds(timed, "gen")
                generator, assistant.generator = assistant.generator, None  # retrieval-only: no LLM client work
                await _round(assistant, 5, "warm-up-r", None)
                result["retrieval_only"] = await rounds(None, "ret")
                assistant.generator = generator.inner

                names = {STRIPE: "stripe-cold"}
                for spec in sorted(p for p in specs.iterdir() if p.suffix in SPEC_SUFFIXES and p.name != STRIPE):
                    report = await assistant.ingest(UploadSpec(origin, PathAttachment(spec)))
                    names[spec.name] = report.record.name

                questions = load_questions(questions_file)
                for q in questions[:5]:  # warm-up: lexical indexes built, caches primed
                    await assistant.search(origin, q.question, spec=names[q.spec])
                passes: list[list[float]] = []
                for _ in range(3):  # the first pass embeds each question; the next two find it in the query cache
                    timings = []
                    for q in questions:
                        begun = time.perf_counter()
                        await assistant.search(origin, q.question, spec=names[q.spec])
                        timings.append((time.perf_counter() - begun) * 1000)
                    passes.append(timings)
                every = [t for timings in passes for t in timings]
                result["retrieval"] = {
                    "queries": len(every),
                    "p50_ms": statistics.median(every),
                    "p95_ms": _percentile(every, 0.95),
                    "first_asking_p50_ms": statistics.median(passes[0]),
                    "first_asking_p95_ms": _percentile(passes[0], 0.95),
                }

                result["rss_all_nine_mb"] = _rss_mb()
    result["load_after"] = os.getloadavg()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["torch_imported"] = "torch" in sys.modules
    await embedder.aclose()
    return result


async def _quality(backends: list[str], exports: Path, specs: Path, files: list[Path]) -> dict[str, Any]:
    from core.bootstrap import build_assistant
    from core.config import Settings
    from core.embedding import build_embedder
    from core.logs import configure_logging
    from evaluation.retrieval import load_questions, metrics, run_evaluation

    configure_logging("WARNING")
    scores: dict[str, Any] = {}
    for backend in backends:
        embedder = await build_embedder(backend=backend, cache_dir=exports)
        with tempfile.TemporaryDirectory() as data:
            settings = Settings(data_dir=Path(data), embedding_backend=backend, _env_file=None)
            async with build_assistant(settings, embedder=embedder) as assistant:
                for file in files:
                    result = await run_evaluation(assistant, load_questions(file), specs, log=lambda _: None)
                    scores.setdefault(file.name, {})[backend] = metrics(result.hybrid_ranks) | {
                        "n": len(result.questions)
                    }
        await embedder.aclose()
    combined: dict[str, Any] = {}
    for backend in backends:
        # Questions of the dev files weighted by their number, as one set of 131.
        dev = [scores[f.name][backend] for f in files if f.name != "heldout.jsonl"]
        n = sum(s["n"] for s in dev)
        combined[backend] = {k: sum(s[k] * s["n"] for s in dev) / n for k in ("recall@5", "mrr@10")} | {"n": n}
    scores["dev+dev_more"] = combined
    return scores


def _run(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--specs", type=Path, help="default: SPECS_DIR, ../shared/specs, or the pinned download")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "embedding.json")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed", help=argparse.SUPPRESS)
    parser.add_argument("--quality", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--exports", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    specs = args.specs or specs_dir_or_exit(os.environ)
    evals = eval_dir(os.environ)
    files = [evals / "dev.jsonl", evals / "dev_more.jsonl", REPO / "evaluation" / "heldout.jsonl"]
    backends = args.backends.split(",")
    if args.speed:
        print(json.dumps(asyncio.run(_speed(args.speed, args.exports, specs, files[0]))))
        return
    if args.quality:
        print(json.dumps(asyncio.run(_quality(backends, args.exports, specs, files))))
        return

    exports = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    try:
        from core.embedding import PACKAGED_MODEL, prepare_onnx

        started = time.perf_counter()
        prepare_onnx(PACKAGED_MODEL, "onnx", exports)
        results: dict[str, Any] = {"export_s": time.perf_counter() - started, "speed": {}, "quality": {}}
        print(f"export: {results['export_s']:.1f} s", flush=True)
        if not args.skip_speed:
            for backend in backends:
                row = results["speed"][backend] = _run(["--speed", backend, "--exports", str(exports)])
                cold, warm = row["stripe_cold"], row["stripe_warm_parse_cached"]
                print(
                    f"{backend:10} start {row['startup_s']:.1f}s  stripe cold {cold['total_s']:.2f}s "
                    f"(parse {cold['parse_s']:.2f} embed {cold['embed_s']:.2f} [{cold['embed_cpu_s']:.1f} CPU s] "
                    f"store {cold['store_s']:.2f})  "
                    f"warm {warm['total_s']:.2f}s / uncached parse {row['stripe_warm_parse_uncached']['total_s']:.2f}s"
                    f"  retrieval p50 {row['retrieval']['p50_ms']:.1f} ms "
                    f"(first asking {row['retrieval']['first_asking_p50_ms']:.1f} ms)  "
                    f"overhead@50 p95 {row['overhead'][2]['p95_ms']:.0f} ms  RSS {row['rss_all_nine_mb']:.0f} MB  "
                    f"load {row['load_before'][0]:.1f}-{row['load_after'][0]:.1f}",
                    flush=True,
                )
        if not args.skip_quality:
            results["quality"] = _run(["--quality", "--backends", ",".join(backends), "--exports", str(exports)])
            for name, by_backend in results["quality"].items():
                for backend, m in by_backend.items():
                    print(f"{name:15} {backend:10} recall@5 {m['recall@5']:.3f}  MRR@10 {m['mrr@10']:.3f}", flush=True)
    finally:
        shutil.rmtree(exports, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
