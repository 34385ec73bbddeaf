"""Hybrid retrieval: dense vectors + BM25 + exact identifier matches, fused by reciprocal rank.

Users ask in prose ("refund a charge") and by identifier (`chat.postMessage`, `/v1/customers/{customer}`);
each ranker is good at one of those, and reciprocal rank fusion combines them without having to
calibrate their scores against each other.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import bm25s
import numpy as np
import Stemmer

from core.documents import Document
from core.embedding import Embedder
from core.models import ItemKind
from core.parsing.text import identifier_words
from core.paths import PathIndex
from core.store import VectorStore

RRF_K = 60
DENSE_WEIGHT = 1.5  # a mild lean to meaning over words: most questions paraphrase the spec
LEXICAL_WEIGHT = 1.0
IDENTIFIER_WEIGHT = 3.0
CANDIDATES = 50
BM25_CACHE_SIZE = 32
MAX_IDENTIFIER_SHARING = 2

_STEMMER = Stemmer.Stemmer("english")
_STOPWORDS = frozenset(
    """a an and are as at be by can do does for from get how i in is it me my of on or so that the this to
    use using want way what when where which who why will with you your need there any some should call
    api endpoint""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")
MAX_IDENTIFIER_CANDIDATES = 16  # identifiers looked up per question; a real question quotes a handful
# Dotted/slashed/snake identifiers and camelCase words. Each alternative starts only where a run of its characters
# starts (the lookbehinds) and stops at the first character it needs, so no run is scanned from each position.
_IDENTIFIER_CANDIDATE = re.compile(
    r"`([^`]+)`|'([^']{3,80})'|\"([^\"]{3,80})\""
    r"|((?<![A-Za-z0-9_{}:<>./-])[A-Za-z0-9:<>-]*[./_{}][A-Za-z0-9_{}:<>./-]*"
    r"|(?<![a-z])[a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*)"
)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens with identifiers split, stopwords dropped, and stems."""
    words = _TOKEN.findall(identifier_words(text)) if text else []
    return _STEMMER.stemWords([w for w in words if w not in _STOPWORDS])


class DocumentSource(Protocol):
    """Where the documents of a spec version are read from (the registry)."""

    def documents(self, workspace: str, index_version: str) -> list[Document]:
        """The documents of one spec version."""
        ...


@dataclass(frozen=True)
class SearchScope:
    """Which spec versions a search may see: name -> index version, all in one workspace."""

    workspace: str
    versions: dict[str, str]  # spec name -> live index version


@dataclass(frozen=True)
class RetrievedItem:
    """One fused result."""

    spec: str
    document: Document
    score: float


class Retriever(Protocol):
    """The port for finding a question's evidence among a workspace's live spec versions."""

    async def search(
        self, scope: SearchScope, query: str, limit: int = 10, query_embedding: Sequence[float] | None = None
    ) -> list[RetrievedItem]:
        """The best `limit` documents for `query` (embedded here unless `query_embedding` is given)."""
        ...


class _LexicalIndex:
    """BM25 over the documents of a fixed set of spec versions, plus their identifiers."""

    def __init__(self, entries: list[tuple[str, Document]]) -> None:
        self.entries = entries
        self._bm25 = bm25s.BM25()
        corpus = [tokenize(d.lexical_text) or ["_empty_"] for _, d in entries]
        self._bm25.index(corpus, show_progress=False)
        # An identifier many documents share (every GraphQL field's `/graphql` path) identifies nothing.
        counts = Counter(i.lower() for _, d in entries for i in d.identifiers)
        # Path templates (`/v1/customers/{customer}`) and plain names alike, compared segment by segment.
        self._identifiers = PathIndex()
        for index, (_, document) in enumerate(entries):
            for identifier in document.identifiers:
                if counts[identifier.lower()] <= MAX_IDENTIFIER_SHARING:
                    self._identifiers.add(identifier.strip().strip("/").lower().split("/"), index)

    def bm25_ranking(self, query: str, limit: int) -> list[int]:
        tokens = [t for t in tokenize(query) if t in self._bm25.vocab_dict]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [int(i) for i in order if scores[i] > 0]

    def identifier_ranking(self, query: str) -> list[int]:
        """Documents whose operationId, path or name the query quotes, longest match first."""
        best: dict[int, int] = {}
        for candidate in _identifier_candidates(query):
            segments = candidate.lower().removeprefix("/").removesuffix("/").split("/")
            for index in self._identifiers.find(segments):
                best[index] = max(best.get(index, 0), len(candidate))
        return sorted(best, key=lambda index: (-best[index], index))


def _identifier_candidates(query: str) -> list[str]:
    found: list[str] = []
    for match in _IDENTIFIER_CANDIDATE.finditer(query):
        text = next(g for g in match.groups() if g).strip().strip(".,;:?!'\"()")
        if "://" in text:
            text = "/" + text.split("://", 1)[1].split("/", 1)[-1]
        text = text.split("?", 1)[0]
        if len(text) > 2:
            found.append(text)
            if len(found) == MAX_IDENTIFIER_CANDIDATES:
                break
    return found


class HybridRetriever:
    """Dense + BM25 + identifier retrieval over a workspace's live spec versions."""

    def __init__(self, store: VectorStore, documents: DocumentSource, embedder: Embedder) -> None:
        self._store = store
        self._documents = documents
        self._embedder = embedder
        self._lexical: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _LexicalIndex] = OrderedDict()

    async def _lexical_index(self, scope: SearchScope) -> _LexicalIndex:
        key = (scope.workspace, tuple(sorted(scope.versions.items())))
        if key in self._lexical:
            self._lexical.move_to_end(key)
            return self._lexical[key]
        entries: list[tuple[str, Document]] = []
        for spec, version in sorted(scope.versions.items()):
            entries += [
                (spec, d) for d in await asyncio.to_thread(self._documents.documents, scope.workspace, version)
            ]
        index = _LexicalIndex(entries)
        self._lexical[key] = index
        while len(self._lexical) > BM25_CACHE_SIZE:
            self._lexical.popitem(last=False)
        return index

    async def search(
        self, scope: SearchScope, query: str, limit: int = 10, query_embedding: Sequence[float] | None = None
    ) -> list[RetrievedItem]:
        """The best `limit` documents for a query, fused from the three rankers."""
        if not scope.versions:
            return []
        lexical = await self._lexical_index(scope)
        embedding = query_embedding if query_embedding is not None else await self._embedder.embed_query(query)
        vector_hits = await self._store.query(
            scope.workspace, embedding, list(scope.versions.values()), min(CANDIDATES, len(lexical.entries))
        )
        position = {(spec, d.key): i for i, (spec, d) in enumerate(lexical.entries)}
        dense = [position[(h.spec, h.key)] for h in vector_hits if (h.spec, h.key) in position]
        rankings = [
            (DENSE_WEIGHT, dense),
            (LEXICAL_WEIGHT, lexical.bm25_ranking(query, CANDIDATES)),
            (IDENTIFIER_WEIGHT, lexical.identifier_ranking(query)),
        ]
        scores: dict[int, float] = {}
        for weight, ranking in rankings:
            for rank, index in enumerate(ranking):
                scores[index] = scores.get(index, 0.0) + weight / (RRF_K + rank + 1)
        ranked = sorted(scores.items(), key=lambda s: -s[1])
        results = []
        for index, score in ranked:
            spec, document = lexical.entries[index]
            if document.kind is ItemKind.OVERVIEW:
                continue
            results.append(RetrievedItem(spec=spec, document=document, score=score))
            if len(results) == limit:
                break
        return results
