"""Retrieval evaluation on question files in the shared format (see shared/eval/README.md).

Each question is answered by retrieval scoped to its spec; the top 10 items are compared with the gold
items, giving recall@1/3/5/10 and MRR@10, overall and per spec and style. A plain BM25 baseline (one
document per item: method + path + operationId + summary + the first 1,500 characters of description)
runs in the same pass so the two are always compared on the same data. With `rerank`, the LLM reranker's
order (`core.rerank`) is measured in the same pass too, next to the fused order it starts from.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from core.actions import ForgetSpec, Origin, PathAttachment, UploadSpec
from core.assistant import Assistant
from core.documents import Document
from core.metrics import RERANK_OUTCOMES
from core.models import ItemKind

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Question:
    """One evaluation question."""

    id: str
    spec: str
    question: str
    gold: list[dict[str, str]]
    style: str = ""


def load_questions(path: Path) -> list[Question]:
    """Read a JSON Lines question file."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            questions.append(Question(data["id"], data["spec"], data["question"], data["gold"], data.get("style", "")))
    return questions


def _doc_path(path: str) -> str:
    # Bodies exclude their opening character: `\{[^}]*\}` rescanned the rest from every unclosed `{`.
    path = re.sub(r"\{[^{}]*\}|<[^<>]*>|:[A-Za-z_]\w*", "", path.strip().lower())
    path = re.sub(r"\.json$", "", path.rstrip("/"))
    return re.sub(r"/+", "/", path).rstrip("/")


def matches(item: dict[str, str], gold: dict[str, str]) -> bool:
    """Whether a retrieved item matches a gold item, by the rules in shared/eval/README.md."""
    kind = gold["kind"]
    if kind == "operation":
        return (
            item.get("kind") == "operation"
            and item.get("method", "").upper() == gold["method"].upper()
            and item.get("path") == gold["path"]
        )
    if kind == "graphql":
        return item.get("kind") == "graphql" and item.get("type") == gold["type"] and item.get("field") == gold["field"]
    if kind == "postman":
        return item.get("kind") == "postman" and item.get("name") == gold["name"] and item.get("url") == gold["url"]
    if kind == "auth":
        return item.get("kind") == "auth" and item.get("scheme") == gold["scheme"]
    if kind == "doc_section":
        if item.get("kind") != "doc_section":
            return False
        if item.get("heading") == gold["heading"]:
            return True
        return bool(gold.get("path") and item.get("path")) and _doc_path(item["path"]) == _doc_path(gold["path"])
    return False


def first_hit_rank(retrieved: Sequence[dict[str, str]], gold: Sequence[dict[str, str]]) -> int | None:
    """The 1-based rank of the first retrieved item matching any gold item (within the top 10)."""
    for rank, item in enumerate(retrieved[:10], start=1):
        if any(matches(item, g) for g in gold):
            return rank
    return None


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@k and MRR@10 over a list of first-hit ranks."""
    n = len(ranks) or 1
    result = {f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    result["mrr@10"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    return result


def _plain_tokens(text: str) -> list[str]:
    """Lower-case alphanumeric runs (so `ban_user_from_guild` is four words), no stemming or stopwords."""
    return re.findall(r"[a-z0-9]+", text.lower()) or ["_empty_"]


class BaselineBM25:
    """The reference plain BM25 retriever described in shared/eval/README.md."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self._documents = [d for d in documents if d.kind is not ItemKind.OVERVIEW]
        corpus = [self._text(d) for d in self._documents]
        self._bm25 = bm25s.BM25()
        self._bm25.index([_plain_tokens(text) for text in corpus], show_progress=False)

    @staticmethod
    def _text(document: Document) -> str:
        op = document.operation
        if op is not None:
            return " ".join([op.method, op.path, op.operation_id, op.name, op.summary, op.description[:1500]])
        scheme = document.scheme
        assert scheme is not None
        return " ".join([scheme.name, scheme.type, scheme.scheme, scheme.description[:1500]])

    def search(self, question: str, limit: int = 10) -> list[dict[str, str]]:
        """Top items for a question."""
        tokens = [t for t in _plain_tokens(question) if t in self._bm25.vocab_dict]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [self._documents[int(i)].item for i in order if scores[i] > 0]


@dataclass
class EvalResult:
    """Per-question ranks for the hybrid retriever and the baseline, plus what was retrieved.

    With a rerank pass, also the reranked ranks and items, and how each rerank went (ok, cached, fallback).
    """

    questions: list[Question]
    hybrid_ranks: list[int | None]
    baseline_ranks: list[int | None]
    retrieved: list[list[dict[str, str]]]
    reranked_ranks: list[int | None] | None = None
    reranked: list[list[dict[str, str]]] | None = None
    rerank_outcomes: Counter[str] | None = None

    def table(self) -> str:
        """A Markdown table: overall and per spec and style, hybrid next to the baseline."""
        header = "| slice | n | retriever | recall@1 | recall@3 | recall@5 | recall@10 | MRR@10 |\n" + "|---" * 8 + "|"
        rows = [header]
        slices: dict[str, list[int]] = defaultdict(list)
        for i, q in enumerate(self.questions):
            slices["overall"].append(i)
            slices[f"spec {q.spec}"].append(i)
        for i, q in enumerate(self.questions):
            slices[f"style {q.style}"].append(i)
        retrievers = [("hybrid", self.hybrid_ranks)]
        if self.reranked_ranks is not None:
            retrievers.append(("hybrid + rerank", self.reranked_ranks))
        retrievers.append(("BM25 baseline", self.baseline_ranks))
        for name, indexes in slices.items():
            for label, ranks in retrievers:
                m = metrics([ranks[i] for i in indexes])
                rows.append(
                    f"| {name} | {len(indexes)} | {label} | "
                    + " | ".join(f"{m[key]:.2f}" for key in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10"))
                    + " |"
                )
        return "\n".join(rows)


def rerank_counts(assistant: Assistant) -> Counter[str]:
    """The assistant's reranks so far, by outcome (from its metrics)."""
    registry = assistant.telemetry.registry
    counts: Counter[str] = Counter()
    for outcome in RERANK_OUTCOMES:
        counts[outcome] = int(registry.get_sample_value("api_assistant_reranks_total", {"outcome": outcome}) or 0)
    return counts


async def run_evaluation(
    assistant: Assistant,
    questions: list[Question],
    specs_dir: Path,
    log: Callable[[str], Any] = print,
    rerank: bool = False,
) -> EvalResult:
    """Ingest each named spec into a throwaway workspace, retrieve for every question, and score.

    `rerank` also measures the assistant's reranker (it must have one: `assistant.reranker`), question by question
    next to the fused order.
    """
    if rerank and assistant.reranker is None:
        raise ValueError("rerank needs an assistant with a reranker")
    origin = Origin(platform="eval", workspace=f"eval-{uuid.uuid4().hex[:12]}", user="eval")
    names: dict[str, str] = {}
    baselines: dict[str, BaselineBM25] = {}
    try:
        for spec_file in sorted({q.spec for q in questions}):
            report = await assistant.ingest(UploadSpec(origin, PathAttachment(specs_dir / spec_file)))
            names[spec_file] = report.record.name
            documents = assistant.registry.documents(origin.scope, report.record.index_version)
            baselines[spec_file] = BaselineBM25(documents)
            log(f"indexed {spec_file}: {report.record.operation_count} operations in {report.seconds:.1f}s")
        if assistant.library.phrasings is not None:  # PHRASINGS_ENABLED: measure with them, as users will get them
            log("waiting for the phrasings of the indexed specs (PHRASINGS_ENABLED)")
            await assistant.library.phrasings.wait_idle()
        hybrid_ranks: list[int | None] = []
        baseline_ranks: list[int | None] = []
        retrieved_all: list[list[dict[str, str]]] = []
        reranked_ranks: list[int | None] = []
        reranked_all: list[list[dict[str, str]]] = []
        before = rerank_counts(assistant)
        for number, q in enumerate(questions, 1):
            items = await assistant.search(origin, q.question, spec=names[q.spec], limit=10, rerank=False)
            retrieved = [i.document.item for i in items]
            retrieved_all.append(retrieved)
            hybrid_ranks.append(first_hit_rank(retrieved, q.gold))
            baseline_ranks.append(first_hit_rank(baselines[q.spec].search(q.question), q.gold))
            if rerank:
                items = await assistant.search(origin, q.question, spec=names[q.spec], limit=10)
                reranked_all.append([i.document.item for i in items])
                reranked_ranks.append(first_hit_rank(reranked_all[-1], q.gold))
                if number % 20 == 0:
                    log(f"reranked {number}/{len(questions)} questions")
    finally:
        for name in names.values():
            await assistant.forget(ForgetSpec(origin, name))
    if not rerank:
        return EvalResult(questions, hybrid_ranks, baseline_ranks, retrieved_all)
    outcomes = rerank_counts(assistant)
    outcomes.subtract(before)
    return EvalResult(
        questions, hybrid_ranks, baseline_ranks, retrieved_all, reranked_ranks, reranked_all, +outcomes
    )


def write_results(result: EvalResult, out: Path) -> None:
    """One JSON line per question: its id and the top 10 retrieved items in rank order (and reranked, if measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for index, (q, retrieved) in enumerate(zip(result.questions, result.retrieved, strict=True)):
            line: dict[str, Any] = {"id": q.id, "retrieved": retrieved[:10]}
            if result.reranked is not None:
                line["reranked"] = result.reranked[index][:10]
            handle.write(json.dumps(line) + "\n")
