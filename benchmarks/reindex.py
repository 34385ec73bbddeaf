"""A forced re-index in a new process (issue 13): Stripe rebuilt from its stored original after a restart.

    .venv/bin/python benchmarks/reindex.py [--rounds 5] [--out benchmarks/reindex.json]

One data directory, Stripe uploaded into it once (cold: its vectors land in the embedding cache, its parse
result in DATA_DIR/parse-cache). Then, round after round, a fresh process opens the directory and times
`Assistant.reindex` of Stripe, which is what `api-assistant reindex` runs: once with the parse cache on disk
as the bot leaves it, and once with that directory moved away (every earlier version of the bot, which kept
parse results only in memory). Both variants alternate in the same run, each in its own process, so the
machine's load falls on both alike; the medians and their ratio are reported. Process start-up and model
loading are not part of the time (they are the same for both, and not the re-index).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

from tests.corpus import specs_dir_or_exit  # noqa: E402

STRIPE = "stripe_openapi3_2023-09.yaml"
NAME = "stripe"


def _settings(data_dir: Path) -> Any:
    from core.config import Settings

    return Settings(data_dir=data_dir, upload_rate_limit_per_hour=100_000, _env_file=None)


async def _upload(data_dir: Path, spec: Path) -> dict[str, Any]:
    from core.actions import Origin, PathAttachment, UploadSpec
    from core.bootstrap import build_assistant

    async with build_assistant(_settings(data_dir)) as assistant:
        started = time.perf_counter()
        await assistant.ingest(UploadSpec(Origin("bench", "W"), PathAttachment(spec), NAME))
        return {"upload_s": time.perf_counter() - started}


async def _reindex(data_dir: Path) -> dict[str, Any]:
    from core.bootstrap import build_assistant

    async with build_assistant(_settings(data_dir)) as assistant:
        started = time.perf_counter()
        report = await assistant.reindex(spec=NAME)
        seconds = time.perf_counter() - started
        disk = assistant.parser.disk_cache
        return {
            "reindex_s": seconds,
            "indexed": len(report.indexed),
            "parse_disk_hits": disk.hits if disk else 0,
            "embedding_cache_misses": getattr(assistant.embedder, "misses", None),
        }


def _child(step: str, data_dir: Path, spec: Path | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", step, "--data", str(data_dir)]
    if spec is not None:
        command += ["--spec", str(spec)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=("upload", "reindex"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from core.logs import configure_logging

        configure_logging("WARNING")
        job = _upload(args.data, args.spec) if args.child == "upload" else _reindex(args.data)
        print(json.dumps(asyncio.run(job)))
        return

    spec = specs_dir_or_exit(os.environ) / STRIPE
    data_dir = Path(tempfile.mkdtemp(prefix="bench-reindex-"))
    parse_cache, moved = data_dir / "parse-cache", data_dir / "parse-cache.away"
    try:
        upload = _child("upload", data_dir, spec)
        print(f"Stripe uploaded cold in {upload['upload_s']:.2f} s", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {"parse_cache_on_disk": [], "no_parse_cache": []}
        load_before = os.getloadavg()
        for round_number in range(args.rounds):
            for variant in runs:
                if variant == "no_parse_cache":
                    parse_cache.rename(moved)
                try:
                    run = _child("reindex", data_dir)
                finally:
                    if variant == "no_parse_cache":
                        shutil.rmtree(parse_cache, ignore_errors=True)  # what this run wrote
                        moved.rename(parse_cache)
                runs[variant].append(run)
                print(f"round {round_number + 1} {variant:20} {run['reindex_s']:.2f} s "
                      f"(parse from disk: {run['parse_disk_hits']}, embeddings not cached: "
                      f"{run['embedding_cache_misses']})", flush=True)
        medians = {variant: statistics.median(r["reindex_s"] for r in rows) for variant, rows in runs.items()}
        result = {
            "spec": STRIPE,
            "rounds": args.rounds,
            "upload_cold_s": upload["upload_s"],
            "median_s": medians,
            "ratio": medians["parse_cache_on_disk"] / medians["no_parse_cache"],
            "runs": runs,
            "load_before": load_before,
            "load_after": os.getloadavg(),
        }
        print(f"median: {medians['parse_cache_on_disk']:.2f} s with the parse cache on disk, "
              f"{medians['no_parse_cache']:.2f} s without ({result['ratio']:.2f}x)")
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
