"""The cross-validation script's own arithmetic (benchmarks/fusion_cv.py): ranks as the retriever orders,
folds stratified by spec, selection by the objective."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.retrieval import FUSION, fuse

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fusion_cv.py"
_spec = importlib.util.spec_from_file_location("fusion_cv", SCRIPT)
assert _spec and _spec.loader
cv = importlib.util.module_from_spec(_spec)
sys.modules["fusion_cv"] = cv  # dataclasses look their module up while the class is built
_spec.loader.exec_module(cv)


def _ordered_rank(scores: np.ndarray, gold: np.ndarray, keep: np.ndarray) -> int:
    """What search does: a stable sort by score, overview documents skipped, the first 10 looked at."""
    order = [i for i in np.argsort(-scores, kind="stable") if keep[i]]
    return next((rank for rank, i in enumerate(order[:10], start=1) if gold[i]), cv.MISS)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.booleans()), min_size=1, max_size=25),
    st.integers(1, 4),
)
def test_ranks_for_every_configuration_match_the_retrievers_order(rows, configs):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(len(rows) * 7 + configs)
    base = np.array([r[0] for r in rows], dtype=float)  # small integers: plenty of ties
    scores = np.vstack([base] + [rng.integers(0, 3, len(rows)).astype(float) for _ in range(configs - 1)])
    gold = np.array([r[1] for r in rows])
    keep = np.array([r[2] for r in rows])
    expected = [_ordered_rank(row, gold, keep) for row in scores]
    assert cv._first_gold_rank(scores, gold, keep).tolist() == expected


def _record(spec: str, gold: list[bool], dense: list[float | None], bm25: list[float]):  # type: ignore[no-untyped-def]
    n = len(gold)
    return cv.Record(
        id=f"{spec}-{n}", file="f.jsonl", spec=spec, style="natural", question="q", items=[{}] * n,
        overview=[False] * n, entry=list(range(n)), dense=dense, bm25=bm25, bm25_best=max(bm25), bm25_bound=sum(bm25),
        title=[0.0] * n, title_best=0.0, title_bound=0.0, identifier=[0.0] * n, method_fit=[0.0] * n,
        shape_fit=[0.0] * n, plural_fit=[0.0] * n, admin_misfit=[0.0] * n,
        name_cover=[0.0] * n, gold=gold,
    )  # fmt: skip


def test_the_rank_matrix_scores_configurations_as_fuse_does() -> None:
    record = _record("a", [False, True, False], [0.9, 0.5, None], [0.0, 3.0, 4.0])
    ranks = cv.rank_matrix([record], [FUSION])
    assert ranks[0, 0] == _ordered_rank(fuse(record.signals(), FUSION), np.array(record.gold), np.ones(3, bool))


def test_rrf_ranks_reproduce_reciprocal_rank_fusion() -> None:
    # dense: 0 then 1; BM25: 2 then 1. RRF: 0 = 1.5/61, 1 = 1.5/62 + 1/62, 2 = 1/61, so 1 comes first.
    record = _record("a", [False, True, False], [0.9, 0.5, None], [0.0, 3.0, 4.0])
    assert cv.rrf_ranks([record]).tolist() == [1]
    record.gold = [False, False, True]
    assert cv.rrf_ranks([record]).tolist() == [3]


def test_folds_are_stratified_by_spec_and_repeatable() -> None:
    records = [_record(spec, [True], [0.5], [1.0]) for spec in "aaaaaaabbbbbc"]
    fold = cv.folds_by_spec(records, 5, seed=3)
    assert fold.tolist() == cv.folds_by_spec(records, 5, seed=3).tolist()
    assert sorted(np.bincount(fold, minlength=5).tolist()) == [2, 2, 3, 3, 3]
    for spec in "ab":
        counts = np.bincount(fold[[r.spec == spec for r in records]], minlength=5)
        assert counts.max() - counts.min() <= 1  # each spec spread evenly over the folds


def test_choose_takes_the_best_objective_on_the_training_questions() -> None:
    configs = cv.grid()
    ranks = np.full((len(configs), 4), cv.MISS, dtype=np.int16)
    ranks[17, :2] = 1  # best on the first two questions only
    ranks[42, 2:] = 1  # best on the last two only
    assert cv.choose(ranks, np.array([True, True, False, False])) == 17
    assert cv.choose(ranks, np.array([False, False, True, True])) == 42


def test_bootstrap_intervals_contain_the_estimate() -> None:
    ranks = np.array([1, 2, 11, 1, 5, 3, 1, 11, 2, 1] * 5, dtype=np.int16)
    m = cv.metrics(ranks)
    ci = cv.bootstrap(ranks, 2_000, seed=1)
    for key, (low, high) in ci.items():
        assert low <= m[key] <= high
    same = cv.bootstrap(ranks, 500, seed=1, baseline=ranks)
    assert all(interval == [0.0, 0.0] for interval in same.values())
