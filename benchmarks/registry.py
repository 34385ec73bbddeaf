"""The registry on its two engines: SQLite under DATA_DIR (embedded default) and PostgreSQL (DATABASE_URL).

    .venv/bin/python benchmarks/registry.py [--specs DIR] [--out benchmarks/registry.json]

Every corpus spec is parsed once and stored in both registries (records, documents, originals), then the
operations the bot performs are timed on each, in the same run, on the same data: the per-question reads
(`list_records`, `get`), loading a spec's documents for the lexical index (Stripe, the largest), writing a
new version (documents, then record plus original), and a backup's consistent export. PostgreSQL is a
throwaway local cluster (tests/postgres_server.py) on 127.0.0.1, so its figures are a network round trip
on loopback: a database on another machine adds its latency to each call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core import database  # noqa: E402
from core.config import DEFAULT_ALLOWED_FILE_TYPES  # noqa: E402
from core.documents import build_documents  # noqa: E402
from core.models import ApiSpec  # noqa: E402
from core.parsing.loader import load_spec  # noqa: E402
from core.registry import SpecRecord, SpecRegistry, destinations, original_name, spec_header  # noqa: E402
from tests.corpus import specs_dir_or_exit  # noqa: E402
from tests.postgres_server import start_postgres  # noqa: E402

WORKSPACE = "slack:TBENCH"
SUFFIXES = {".json", ".yaml", ".graphql", ".md"}


def _record(name: str, filename: str, data: bytes, spec: ApiSpec, index_version: str) -> SpecRecord:
    import hashlib

    content_hash = hashlib.sha256(data).hexdigest()
    return SpecRecord(
        workspace=WORKSPACE, name=name, format=spec.format, title=spec.title, version=spec.version,
        content_hash=content_hash, index_version=index_version, operation_count=len(spec.operations),
        scheme_count=len(spec.security_schemes), uploaded_by="U1", platform="slack", indexed_at=time.time(),
        original_path=original_name(content_hash, filename), filename=filename, header=spec_header(spec),
        destinations=destinations(spec),
    )


def _timed(action: Callable[[], Any], repeat: int) -> dict[str, float]:
    action()  # warm: connections in the pool, pages in the cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 3),
        "n": repeat,
    }


def _bench(registry: SpecRegistry, corpus: list[tuple[str, str, bytes, ApiSpec]], scratch: Path) -> dict[str, Any]:
    largest = max(corpus, key=lambda item: len(item[3].operations))
    stripe_documents = build_documents(largest[3])
    for name, filename, data, spec in corpus:
        registry.put_documents(WORKSPACE, f"{name}-v1", build_documents(spec))
        registry.put(_record(name, filename, data, spec, f"{name}-v1"), original=data)
    version = iter(range(2, 10_000))

    def write_version() -> None:
        index_version = f"{largest[0]}-v{next(version)}"
        registry.put_documents(WORKSPACE, index_version, stripe_documents)
        registry.put(_record(largest[0], largest[1], largest[2], largest[3], index_version), original=largest[2])

    exports = iter(range(10_000))

    def export() -> None:
        copy = database.sqlite_engine(scratch / f"export-{next(exports)}.sqlite3")
        database.migrate(copy, scratch)
        registry.export_to(copy)
        copy.dispose()

    results = {
        "list_records (per question)": _timed(lambda: registry.list_records(WORKSPACE), 300),
        "get (per cited spec)": _timed(lambda: registry.get(WORKSPACE, largest[0]), 300),
        f"documents of {largest[0]} ({len(stripe_documents)})": _timed(
            lambda: registry.documents(WORKSPACE, f"{largest[0]}-v1"), 20
        ),
        f"write a {largest[0]} version (documents + record + original)": _timed(write_version, 10),
        "backup export (whole registry)": _timed(export, 5),
    }
    return results


def main() -> None:
    """Run the benchmark and write the JSON results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "registry.json")
    args = parser.parse_args()
    specs = args.specs or specs_dir_or_exit(os.environ)
    allowed = frozenset(DEFAULT_ALLOWED_FILE_TYPES.split(","))
    corpus = []
    for path in sorted(p for p in specs.iterdir() if p.suffix in SUFFIXES and p.stem != "SOURCES"):
        data = path.read_bytes()
        spec = load_spec(path.name, data, max_bytes=len(data) + 1, allowed_extensions=allowed)
        corpus.append((path.stem.split("_")[0], path.name, data, spec))
    output: dict[str, Any] = {"specs": len(corpus)}
    with tempfile.TemporaryDirectory() as tmp, start_postgres() as server:
        root = Path(tmp)
        sqlite = SpecRegistry(root / "sqlite")
        (root / "sqlite-exports").mkdir()
        output["sqlite"] = _bench(sqlite, corpus, root / "sqlite-exports")
        sqlite.close()
        with server.database() as url:
            postgres = SpecRegistry(root / "postgres", url)
            (root / "postgres-exports").mkdir()
            output["postgresql"] = _bench(postgres, corpus, root / "postgres-exports")
            postgres.close()
    output["postgresql_over_sqlite_median"] = {
        key: round(output["postgresql"][key]["median_ms"] / output["sqlite"][key]["median_ms"], 2)
        for key in output["sqlite"]
    }
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    print(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
