"""What parsing uploads in a warm worker process costs, next to parsing in the bot's own process.

    .venv/bin/python benchmarks/parse_worker.py [--specs ../shared/specs] [--runs 7] [--out FILE.json]

For each spec: the median of `--runs` in-process `load_spec` calls, and the median of `--runs` parses through
a started, warmed-up `ParsePool` (sending the bytes, parsing in the worker, pickling the result back and
unpickling it with the allow-list). Also: how long a new worker takes from start to ready, and how long the
event loop was blocked at most while the worker parsed (a ticker every 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_SPECS = ("petstore_openapi3.yaml", "stripe_openapi3_2023-09.yaml", "github_graphql_schema.graphql",
                 "twitter_api_v2.postman_collection.json")  # fmt: skip
LIMITS = {"max_bytes": 20 * 1024 * 1024, "allowed_extensions": frozenset({"json", "yaml", "graphql", "md"})}


async def _timed_with_lag(work: Awaitable[object]) -> tuple[float, float]:
    """(seconds `work` took, the longest the event loop was late for a 10 ms tick meanwhile)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    lags: list[float] = []

    async def ticker() -> None:
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    await work
    seconds = time.perf_counter() - started
    done.set()
    await ticking
    return seconds, max(lags, default=0.0)


async def _bench(specs: list[Path], runs: int) -> dict[str, object]:
    from core.parsing.loader import load_spec
    from core.parsing.worker import ParsePool

    started = time.perf_counter()
    pool = ParsePool(workers=1, timeout_seconds=120, memory_mb=1500)
    await pool.start()
    await pool.parse("petstore.yaml", (specs[0].parent / "petstore_openapi3.yaml").read_bytes(), **LIMITS)
    ready_s = time.perf_counter() - started  # start, imports, first (tiny) parse
    rows = []
    try:
        for spec in specs:
            data = spec.read_bytes()
            local = []
            for _ in range(runs):
                t = time.perf_counter()
                load_spec(spec.name, data, **LIMITS)
                local.append(time.perf_counter() - t)
            remote = []
            worst_lag = 0.0
            for _ in range(runs):
                seconds, lag = await _timed_with_lag(pool.parse(spec.name, data, **LIMITS))
                remote.append(seconds)
                worst_lag = max(worst_lag, lag)
            rows.append(
                {
                    "spec": spec.name,
                    "bytes": len(data),
                    "in_process_median_s": statistics.median(local),
                    "worker_median_s": statistics.median(remote),
                    "overhead_median_s": statistics.median(remote) - statistics.median(local),
                    "worst_event_loop_lag_s": worst_lag,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        await pool.aclose()
    return {"runs": runs, "worker_start_to_first_parse_s": ready_s, "specs": rows}


def main() -> None:
    """Run the benchmark and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, default=REPO.parent / "shared" / "specs")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "parse_worker.json")
    args = parser.parse_args()
    specs = [args.specs / name for name in DEFAULT_SPECS if (args.specs / name).exists()]
    results = asyncio.run(_bench(specs, args.runs))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "specs"}))


if __name__ == "__main__":
    main()
