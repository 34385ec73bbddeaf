"""Ingest and query benchmark over every spec in the corpus (SPECS_DIR, ../shared/specs, or the pinned download).

    .venv/bin/python benchmarks/ingest.py [--specs DIR] [--questions F.jsonl] [--out benchmarks/ingest.json]

Questions default to $SHARED_DIR/eval/dev.jsonl (../shared/eval/dev.jsonl).

Each spec is indexed in its own process (so peak RSS is per spec): cold (empty embedding cache), then
again under a new name with the embedding cache warm, then re-uploaded unchanged. Stage times come from
the ingest progress events. A final process indexes everything and times retrieval for the dev questions,
with the plain BM25 baseline timed in the same run.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
SPEC_SUFFIXES = {".json", ".yaml", ".graphql", ".md"}
sys.path.insert(0, str(REPO))

from tests.corpus import eval_dir, specs_dir_or_exit  # noqa: E402


def _stage_times(events: list[tuple[float, str]], started: float, finished: float) -> dict[str, float]:
    first = {}
    for stamp, stage in events:
        first.setdefault(stage, stamp)
    embed_start = first.get("embedding", finished)
    store_start = first.get("storing", finished)
    return {
        "parse_s": embed_start - started,
        "embed_s": store_start - embed_start,
        "store_s": finished - store_start,
        "total_s": finished - started,
    }


async def _ingest_timed(assistant, origin, path: Path, name: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from core.actions import PathAttachment, UploadSpec

    events: list[tuple[float, str]] = []
    started = time.perf_counter()
    report = await assistant.ingest(
        UploadSpec(origin, PathAttachment(path), name), lambda p: events.append((time.perf_counter(), p.stage))
    )
    finished = time.perf_counter()
    result = _stage_times(events, started, finished) if not report.unchanged else {"total_s": finished - started}
    result["documents"] = report.record.operation_count + report.record.scheme_count + 1
    return result


async def _one(spec: Path, data_dir: Path) -> dict[str, object]:
    from core.actions import Origin
    from core.bootstrap import build_assistant
    from core.config import Settings
    from core.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.load()  # model load is start-up cost, not indexing cost
    async with build_assistant(Settings(data_dir=data_dir, _env_file=None), embedder=embedder) as assistant:
        origin = Origin("console", "bench")
        cold = await _ingest_timed(assistant, origin, spec, "cold")
        warm = await _ingest_timed(assistant, origin, spec, "warm")  # new name: full re-index, cached vectors
        unchanged = await _ingest_timed(assistant, origin, spec, "warm")  # same name, same bytes
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"spec": spec.name, "bytes": spec.stat().st_size, "cold": cold, "warm": warm, "unchanged": unchanged,
            "peak_rss_mb": peak_mb}


async def _queries(specs_dir: Path, questions_file: Path, data_dir: Path) -> dict[str, float]:
    from core.actions import Origin, PathAttachment, UploadSpec
    from core.bootstrap import build_assistant
    from core.config import Settings
    from evaluation.retrieval import BaselineBM25, load_questions

    questions = load_questions(questions_file)
    async with build_assistant(Settings(data_dir=data_dir, _env_file=None)) as assistant:
        origin = Origin("console", "bench-q")
        names, baselines = {}, {}
        for spec in sorted({q.spec for q in questions}):
            report = await assistant.ingest(UploadSpec(origin, PathAttachment(specs_dir / spec)))
            names[spec] = report.record.name
            baselines[spec] = BaselineBM25(assistant.registry.documents(origin.scope, report.record.index_version))
        for q in questions[:5]:  # warm-up: BM25 indexes built, caches primed
            await assistant.search(origin, q.question, spec=names[q.spec])
        hybrid, baseline = [], []
        for _ in range(3):
            for q in questions:
                started = time.perf_counter()
                await assistant.search(origin, q.question, spec=names[q.spec])
                hybrid.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                baselines[q.spec].search(q.question)
                baseline.append((time.perf_counter() - started) * 1000)
    hybrid.sort()
    baseline.sort()
    return {
        "queries": len(hybrid),
        "hybrid_median_ms": statistics.median(hybrid),
        "hybrid_p95_ms": hybrid[int(len(hybrid) * 0.95)],
        "bm25_baseline_median_ms": statistics.median(baseline),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=Path, help="default: SPECS_DIR, ../shared/specs, or the pinned download")
    parser.add_argument("--questions", type=Path, default=eval_dir(os.environ) / "dev.jsonl")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "ingest.json")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(_one(args.one, args.data))))
        return
    args.specs = args.specs or specs_dir_or_exit(os.environ)
    if args.queries:
        print(json.dumps(asyncio.run(_queries(args.specs, args.questions, args.data))))
        return

    results = []
    for spec in sorted(p for p in args.specs.iterdir() if p.suffix in SPEC_SUFFIXES and p.name != "SOURCES.md"):
        data = Path(tempfile.mkdtemp(prefix="bench-"))
        try:
            out = subprocess.run([sys.executable, __file__, "--one", str(spec), "--data", str(data)],
                                 check=True, capture_output=True, text=True).stdout
        finally:
            shutil.rmtree(data, ignore_errors=True)
        row = json.loads(out.strip().splitlines()[-1])
        results.append(row)
        print(f"{spec.name:45} cold {row['cold']['total_s']:6.2f}s  warm {row['warm']['total_s']:5.2f}s  "
              f"unchanged {row['unchanged']['total_s']:5.3f}s  docs {row['cold']['documents']:4}  "
              f"peak {row['peak_rss_mb']:.0f} MB", flush=True)
    data = Path(tempfile.mkdtemp(prefix="bench-q-"))
    try:
        command = [sys.executable, __file__, "--queries", "--specs", str(args.specs),
                   "--questions", str(args.questions), "--data", str(data)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(data, ignore_errors=True)
    queries = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(queries, indent=2))
    args.out.write_text(json.dumps({"ingest": results, "queries": queries}, indent=2) + "\n")


if __name__ == "__main__":
    main()
