"""Choose the retrieval fusion constants (`core.retrieval.Fusion`) by cross-validation, and measure them.

    .venv/bin/python benchmarks/fusion_cv.py [--questions F.jsonl ...] [--heldout F.jsonl] [--specs DIR]
        [--data DIR] [--folds 5] [--repeats 10] [--seed 0] [--bootstrap 10000] [--misses] [--no-heldout]
        [--refresh] [--out F.json]

Questions default to $SHARED_DIR/eval/dev.jsonl and dev_more.jsonl (131 together); the held-out file
(evaluation/heldout.jsonl) is never used to choose anything, only scored at the end.

1. Every spec is ingested once into DATA (default .data/fusion-cv; embeddings are disk-cached there), and for
   every question the retriever's own `signals` (dense similarities and BM25 scores of the top candidates of
   each ranker, identifier matches, intent fits) are computed once and cached in DATA.
2. Every combination of the grid below is scored on every question from the cache: a fused ranking is one
   matrix product, so the whole grid takes seconds.
3. K-fold cross-validation, stratified by spec: for each fold, the constants with the best
   MRR@10 + recall@5 on the other folds (ties: the best average over the grid neighbours, i.e. the flattest
   optimum) are scored on the fold. The out-of-fold ranks give the estimate of quality, with bootstrap 95 %
   intervals, per file and combined, next to the reciprocal rank fusion used before (same candidates, same run).
   `--repeats` reruns the split with other seeds to show how much the estimate depends on it.
4. The constants chosen on all questions are what `core.retrieval.FUSION` should hold; the script says whether
   it does, and scores them (and RRF) on the held-out file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import os
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.retrieval import FUSION, Fusion, Signals, fusion_weights  # noqa: E402
from evaluation.retrieval import KS, Question, load_questions, matches  # noqa: E402
from tests.corpus import eval_dir, specs_dir_or_exit  # noqa: E402

# Kept small on purpose: with ~105 training questions per fold, every extra grid point is one more chance to
# pick constants that fit the fold's noise (a larger grid tried first scored no better out of fold).
GRID: dict[str, tuple[Any, ...]] = {
    "dense_scale": ("minmax", "cosine"),
    "lexical_scale": ("max", "bound"),
    "dense": tuple(round(0.40 + 0.05 * i, 2) for i in range(11)),  # 0.40 .. 0.90
    "title": (0.0, 0.25, 0.5, 0.75),
    "identifier": (0.2, 0.5, 1.0),
    "method": (0.0, 0.03, 0.06, 0.1),
    "shape": (0.0, 0.05, 0.1),
    "plural": (0.0, 0.03, 0.06),
    "admin": (0.0, 0.05, 0.1, 0.2),
    "cover": (0.0, 0.05, 0.1, 0.2),
}
NUMERIC = ("dense", "title", "identifier", "method", "shape", "plural", "admin", "cover")
MISS = 11  # rank stored for "not in the top 10"
RRF_K, RRF_DENSE, RRF_LEXICAL, RRF_IDENTIFIER, RRF_CANDIDATES = 60, 1.5, 1.0, 3.0, 50  # the fusion used before


# ---- signals, computed once per question and cached ------------------------------------------------------


@dataclass
class Record:
    """One question with its candidates' signals and which candidates match its gold items."""

    id: str
    file: str
    spec: str
    style: str
    question: str
    items: list[dict[str, str]]
    overview: list[bool]
    entry: list[int]  # index of each candidate in the lexical index (RRF breaks BM25 ties by it)
    dense: list[float | None]
    bm25: list[float]
    bm25_best: float
    bm25_bound: float
    title: list[float]
    title_best: float
    title_bound: float
    identifier: list[float]
    method_fit: list[float]
    shape_fit: list[float]
    plural_fit: list[float]
    admin_misfit: list[float]
    name_cover: list[float]
    gold: list[bool]

    def signals(self) -> Signals:
        """The cached signals as the retriever's `Signals`."""
        return Signals(
            candidates=np.array(self.entry, dtype=np.int64),
            dense=np.array([math.nan if d is None else d for d in self.dense], dtype=float),
            bm25=np.array(self.bm25, dtype=float),
            bm25_best=self.bm25_best,
            bm25_bound=self.bm25_bound,
            title=np.array(self.title, dtype=float),
            title_best=self.title_best,
            title_bound=self.title_bound,
            identifier=np.array(self.identifier, dtype=float),
            method_fit=np.array(self.method_fit, dtype=float),
            shape_fit=np.array(self.shape_fit, dtype=float),
            plural_fit=np.array(self.plural_fit, dtype=float),
            admin_misfit=np.array(self.admin_misfit, dtype=float),
            name_cover=np.array(self.name_cover, dtype=float),
        )


def _cache_key(files: list[Path], specs: Path, names: list[str]) -> str:
    digest = hashlib.sha256()
    for path in [*files, *(REPO / p for p in ("core/retrieval.py", "core/documents.py", "core/store.py"))]:
        digest.update(path.read_bytes())
    for name in names:
        stat = (specs / name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


async def _compute(questions: list[tuple[str, Question]], specs: Path, data: Path) -> list[Record]:
    from core.actions import Origin, PathAttachment, UploadSpec
    from core.bootstrap import build_assistant
    from core.config import Settings
    from core.models import ItemKind
    from core.retrieval import HybridRetriever

    records = []
    async with build_assistant(Settings(data_dir=data, _env_file=None)) as assistant:
        origin = Origin("eval", "fusion-cv", user="fusion-cv")
        names = {}
        for spec in sorted({q.spec for _, q in questions}):
            report = await assistant.ingest(UploadSpec(origin, PathAttachment(specs / spec)))
            names[spec] = report.record.name
            print(f"indexed {spec}", file=sys.stderr)
        retriever = assistant.retriever
        assert isinstance(retriever, HybridRetriever)
        for file, q in questions:
            scope = assistant.search_scope(origin.scope, names[q.spec])
            entries, s = await retriever.signals(scope, q.question)
            documents = [entries[int(i)][1] for i in s.candidates]
            records.append(
                Record(
                    id=q.id,
                    file=file,
                    spec=q.spec,
                    style=q.style,
                    question=q.question,
                    items=[d.item for d in documents],
                    overview=[d.kind is ItemKind.OVERVIEW for d in documents],
                    entry=[int(i) for i in s.candidates],
                    dense=[None if math.isnan(x) else float(x) for x in s.dense],
                    bm25=[float(x) for x in s.bm25],
                    bm25_best=s.bm25_best,
                    bm25_bound=s.bm25_bound,
                    title=[float(x) for x in s.title],
                    title_best=s.title_best,
                    title_bound=s.title_bound,
                    identifier=[float(x) for x in s.identifier],
                    method_fit=[float(x) for x in s.method_fit],
                    shape_fit=[float(x) for x in s.shape_fit],
                    plural_fit=[float(x) for x in s.plural_fit],
                    admin_misfit=[float(x) for x in s.admin_misfit],
                    name_cover=[float(x) for x in s.name_cover],
                    gold=[any(matches(d.item, g) for g in q.gold) for d in documents],
                )
            )
    return records


def load_records(files: list[Path], specs: Path, data: Path, refresh: bool) -> list[Record]:
    """Every question's signals, from the cache in `data` when the questions, specs and code are unchanged."""
    questions = [(f.name, q) for f in files for q in load_questions(f)]
    key = _cache_key(files, specs, sorted({q.spec for _, q in questions}))
    cache = data / f"fusion-signals-{key}.json"
    if cache.is_file() and not refresh:
        return [Record(**r) for r in json.loads(cache.read_text())]
    data.mkdir(parents=True, exist_ok=True)
    records = asyncio.run(_compute(questions, specs, data))
    cache.write_text(json.dumps([asdict(r) for r in records]))
    return records


# ---- ranks under every combination of constants ----------------------------------------------------------


def grid() -> list[Fusion]:
    """Every combination of `GRID`, scale variants outermost, then the numeric constants in `NUMERIC` order."""
    combos = itertools.product(*(GRID[name] for name in ("dense_scale", "lexical_scale", *NUMERIC)))
    return [
        Fusion(dense_scale=ds, lexical_scale=ls, **dict(zip(NUMERIC, rest, strict=True)))
        for ds, ls, *rest in combos
    ]


def _first_gold_rank(scores: np.ndarray, gold: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """For each row of `scores` (configs x candidates): the 1-based rank of the first gold candidate, or MISS.

    Candidates are ordered by score, ties in candidate order (as the retriever's stable sort does); columns
    not in `keep` (overview documents, which search never returns) are left out.
    """
    scores, gold = scores[:, keep], gold[keep]
    if not gold.any():
        return np.full(scores.shape[0], MISS)
    gold_columns = np.flatnonzero(gold)
    best = scores[:, gold_columns].max(axis=1)
    # The first gold candidate in the ranking: the best-scoring one, the earliest of those tied.
    first = gold_columns[np.argmax(scores[:, gold_columns] == best[:, None], axis=1)]
    positions = np.arange(scores.shape[1])
    ahead = (scores > best[:, None]) | ((scores == best[:, None]) & (positions[None, :] < first[:, None]))
    rank = ahead.sum(axis=1) + 1
    return np.where(rank <= 10, rank, MISS)


def rank_matrix(records: list[Record], configs: list[Fusion]) -> np.ndarray:
    """Ranks (configs x questions)."""
    variants: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, c in enumerate(configs):
        variants[(c.dense_scale, c.lexical_scale)].append(index)
    ranks = np.empty((len(configs), len(records)), dtype=np.int16)
    for (dense_scale, lexical_scale), indexes in variants.items():
        weights = np.array([fusion_weights(configs[i]) for i in indexes])
        for column, record in enumerate(records):
            features = record.signals().features(dense_scale, lexical_scale)  # type: ignore[arg-type]
            keep = ~np.array(record.overview, dtype=bool)
            ranks[indexes, column] = _first_gold_rank(weights @ features.T, np.array(record.gold), keep)
    return ranks


def rrf_ranks(records: list[Record]) -> np.ndarray:
    """Ranks under the reciprocal rank fusion used before (k=60; dense 1.5, BM25 1.0, identifiers 3.0)."""
    result = []
    for r in records:
        n = len(r.entry)
        dense = [i for i in range(n) if r.dense[i] is not None]  # candidates start with the dense hits, in order
        # BM25 and identifier rankings break ties by position in the index, as the old retriever did.
        lexical = sorted((i for i in range(n) if r.bm25[i] > 0), key=lambda i: (-r.bm25[i], r.entry[i]))
        quoted = sorted((i for i in range(n) if r.identifier[i] > 0), key=lambda i: (-r.identifier[i], r.entry[i]))
        rankings = ((RRF_DENSE, dense), (RRF_LEXICAL, lexical[:RRF_CANDIDATES]), (RRF_IDENTIFIER, quoted))
        scores: dict[int, float] = {}
        for weight, ranking in rankings:
            for rank, i in enumerate(ranking):
                scores[i] = scores.get(i, 0.0) + weight / (RRF_K + rank + 1)
        ordered = [i for i, _ in sorted(scores.items(), key=lambda s: -s[1]) if not r.overview[i]]
        hit = next((k for k, i in enumerate(ordered[:10], start=1) if r.gold[i]), MISS)
        result.append(hit)
    return np.array(result, dtype=np.int16)


# ---- metrics, selection, cross-validation ----------------------------------------------------------------


def metrics(ranks: np.ndarray) -> dict[str, float]:
    """recall@1/3/5/10 and MRR@10 of ranks (any leading axes; the last is questions)."""
    result = {f"recall@{k}": (ranks <= k).mean(axis=-1) for k in KS}
    result["mrr@10"] = np.where(ranks <= 10, 1.0 / ranks, 0.0).mean(axis=-1)
    return result  # type: ignore[return-value]


def objective(ranks: np.ndarray) -> np.ndarray:
    """What a fold's constants are chosen by: MRR@10 + recall@5 (the two targets)."""
    m = metrics(ranks)
    return np.asarray(m["mrr@10"] + m["recall@5"])


def _neighbour_mean(values: np.ndarray) -> np.ndarray:
    """The mean over each configuration's grid neighbours (one step along each numeric constant, same scales)."""
    shape = [len(GRID["dense_scale"]) * len(GRID["lexical_scale"]), *(len(GRID[n]) for n in NUMERIC)]
    cube = values.reshape(shape)
    total, count = np.zeros_like(cube), np.zeros_like(cube)
    for axis in range(1, cube.ndim):
        for step in (-1, 0, 1):
            shifted = np.roll(cube, step, axis=axis)
            valid = np.ones_like(cube)
            index = [slice(None)] * cube.ndim
            if step:
                index[axis] = 0 if step == 1 else -1  # np.roll wraps around; those cells are not neighbours
                valid[tuple(index)] = 0
            total += shifted * valid
            count += valid
    return (total / count).reshape(-1)


def choose(ranks: np.ndarray, train: np.ndarray) -> int:
    """The configuration with the best objective on `train`; ties go to the flattest optimum."""
    score = objective(ranks[:, train])
    smooth = _neighbour_mean(score)
    best = np.flatnonzero(score >= score.max() - 1e-9)
    return int(best[np.argmax(smooth[best])])


def folds_by_spec(records: list[Record], k: int, seed: int) -> np.ndarray:
    """A fold number per question: each spec's questions shuffled and dealt round-robin, continuing across specs."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(records), dtype=int)
    dealt = 0
    by_spec: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_spec[r.spec].append(i)
    for spec in sorted(by_spec):
        for i in rng.permutation(by_spec[spec]):
            fold[i] = dealt % k
            dealt += 1
    return fold


def cross_validate(ranks: np.ndarray, records: list[Record], k: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """Out-of-fold ranks per question, and the configuration chosen for each fold."""
    fold = folds_by_spec(records, k, seed)
    oof = np.empty(len(records), dtype=np.int16)
    chosen = []
    for f in range(k):
        best = choose(ranks, fold != f)
        chosen.append(best)
        oof[fold == f] = ranks[best, fold == f]
    return oof, chosen


def bootstrap(ranks: np.ndarray, samples: int, seed: int, baseline: np.ndarray | None = None) -> dict[str, list[float]]:
    """Percentile 95 % intervals of each metric (of the difference to `baseline` when given, paired)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ranks), size=(samples, len(ranks)))
    drawn = metrics(ranks[picks])
    if baseline is not None:
        base = metrics(baseline[picks])
        drawn = {key: drawn[key] - base[key] for key in drawn}
    return {key: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for key, v in drawn.items()}


# ---- report ----------------------------------------------------------------------------------------------

HEADER = "| set | n | " + " | ".join(f"recall@{k}" for k in KS) + " | MRR@10 |\n" + "|---" * 7 + "|"


def describe(c: Fusion) -> str:
    """One line naming a configuration."""
    return (
        f"{c.dense_scale}/{c.lexical_scale}, dense {c.dense:.2f}, title {c.title:.2f}, identifier {c.identifier:.2f}, "
        f"method {c.method:.2f}, shape {c.shape:.2f}, plural {c.plural:.2f}, admin {c.admin:.2f}, cover {c.cover:.2f}"
    )


def _row(label: str, ranks: np.ndarray, samples: int, seed: int) -> tuple[str, dict[str, Any]]:
    m = {key: float(v) for key, v in metrics(ranks).items()}
    ci = bootstrap(ranks, samples, seed)
    cells = " | ".join(f"{m[key]:.3f} [{ci[key][0]:.2f}, {ci[key][1]:.2f}]" for key in m)
    return f"| {label} | {len(ranks)} | {cells} |", {"n": len(ranks), "metrics": m, "ci95": ci}


def _summary(values: dict[str, float]) -> str:
    return ", ".join(f"{key} {v:.3f}" for key, v in values.items())


def main() -> None:
    """Run the cross-validation and print the report (Markdown tables); write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = eval_dir(os.environ)
    parser.add_argument("--questions", type=Path, nargs="+", default=[shared / "dev.jsonl", shared / "dev_more.jsonl"])
    parser.add_argument("--heldout", type=Path, default=REPO / "evaluation" / "heldout.jsonl")
    parser.add_argument("--no-heldout", action="store_true", help="leave the held-out file alone (while developing)")
    parser.add_argument("--specs", type=Path, help="default: SPECS_DIR, ../shared/specs, or the pinned download")
    parser.add_argument("--data", type=Path, default=REPO / ".data" / "fusion-cv")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="fold splits (seeds) to show the estimate's spread")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=10_000)
    parser.add_argument("--misses", action="store_true", help="list the out-of-fold misses (rank > 5)")
    parser.add_argument("--refresh", action="store_true", help="recompute the cached signals")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "fusion_cv.json")
    args = parser.parse_args()
    specs = args.specs or specs_dir_or_exit(os.environ)

    records = load_records(args.questions, specs, args.data, args.refresh)
    configs = grid()
    ranks = rank_matrix(records, configs)
    rrf = rrf_ranks(records)
    oof, chosen = cross_validate(ranks, records, args.folds, args.seed)
    final = choose(ranks, np.ones(len(records), dtype=bool))
    in_code = configs[final] == FUSION
    report: dict[str, Any] = {
        "questions": len(records),
        "configurations": len(configs),
        "folds": args.folds,
        "seed": args.seed,
        "chosen_per_fold": [asdict(configs[c]) for c in chosen],
        "final": asdict(configs[final]),
        "final_in_code": in_code,
        "tables": {},
    }

    print(f"## {args.folds}-fold cross-validation, {len(records)} questions, {len(configs)} configurations\n")
    for f, c in enumerate(chosen):
        print(f"- fold {f}: {describe(configs[c])}")
    print(f"- all questions (the defaults): {describe(configs[final])}")
    print(f"- core.retrieval.FUSION: {'the same' if in_code else 'DIFFERENT: ' + describe(FUSION)}\n")

    print("Out of fold (each question ranked with constants chosen without it) vs RRF, 95 % bootstrap CI:\n")
    print(HEADER)
    files = [f.name for f in args.questions]
    slices = [(name, np.array([r.file == name for r in records])) for name in files]
    for name, mask in [*slices, ("combined", np.ones(len(records), dtype=bool))]:
        for label, values in (("score fusion, out of fold", oof), ("RRF (before)", rrf)):
            line, data = _row(f"{name}: {label}", values[mask], args.bootstrap, args.seed)
            print(line)
            report["tables"][f"{name} {label}"] = data

    diff = bootstrap(oof, args.bootstrap, args.seed, baseline=rrf)
    gain = {key: float(metrics(oof)[key] - metrics(rrf)[key]) for key in diff}
    report["gain_over_rrf"] = {"delta": gain, "ci95": diff}
    print("\nCombined, out of fold minus RRF (paired bootstrap 95 % CI): " + ", ".join(
        f"{key} {gain[key]:+.3f} [{diff[key][0]:+.2f}, {diff[key][1]:+.2f}]" for key in diff
    ))  # fmt: skip
    spread = [metrics(cross_validate(ranks, records, args.folds, args.seed + i)[0]) for i in range(args.repeats)]
    if spread:
        report["repeats"] = [{key: float(v) for key, v in s.items()} for s in spread]
        print(f"Combined, out of fold, over {args.repeats} fold splits (mean, min-max): " + ", ".join(
            f"{key} {np.mean([s[key] for s in spread]):.3f} ({min(s[key] for s in spread):.3f}-"
            f"{max(s[key] for s in spread):.3f})" for key in spread[0]
        ))  # fmt: skip
    report["in_sample"] = {key: float(v) for key, v in metrics(ranks[final]).items()}
    print(f"In sample (the defaults on the questions that chose them; optimistic): {_summary(report['in_sample'])}")
    by_style = {
        style: metrics(oof[[r.style == style for r in records]]) for style in sorted({r.style for r in records})
    }
    print("Out of fold by style, recall@5 / MRR@10: " + ", ".join(
        f"{style} {m['recall@5']:.2f} / {m['mrr@10']:.2f} (n={sum(r.style == style for r in records)})"
        for style, m in by_style.items()
    ))  # fmt: skip

    if args.heldout.is_file() and not args.no_heldout:
        heldout = load_records([args.heldout], specs, args.data, args.refresh)
        print(f"\nHeld out ({args.heldout.name}, never used to choose anything), the defaults vs RRF:\n")
        print(HEADER)
        for label, values in (
            ("score fusion (defaults)", rank_matrix(heldout, [FUSION])[0]),
            ("RRF (before)", rrf_ranks(heldout)),
        ):
            line, data = _row(f"held out: {label}", values, args.bootstrap, args.seed)
            print(line)
            report["tables"][f"heldout {label}"] = data

    if args.misses:
        print("\nOut-of-fold misses (rank > 5; 11 = not in the top 10):")
        for r, rank, before in zip(records, oof, rrf, strict=True):
            if rank > 5:
                print(f"- {r.id} [{r.style}] rank {rank} (RRF {before}): {r.question}")
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
