"""Hybrid retrieval: dense vectors + BM25 + exact identifier matches, fused by score, with a light intent prior.

Users ask in prose ("refund a charge") and by identifier (`chat.postMessage`, `/v1/customers/{customer}`);
each ranker is good at one of those. Their scores are combined so that how sure each ranker is still counts:
a convex combination of the dense similarity and the BM25 score (each scaled per question), plus a bonus for
a quoted identifier and small bonuses when the operation's method and path shape fit what the question asks
for ("create" -> POST, "list all" -> a collection path). Reciprocal rank fusion, used before, kept only the
ranks, so a generic word matching one document lexically ("show" in a Shows endpoint) could push the dense
ranker's clear first choice down. Every constant in `FUSION` was chosen by cross-validation
(benchmarks/fusion_cv.py; benchmarks/RESULTS.md has the figures).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import bm25s
import numpy as np
import Stemmer

from core.documents import AUTH_WORDS, Document
from core.embedding import Embedder
from core.models import ItemKind
from core.parsing.text import identifier_words
from core.paths import PathIndex, is_placeholder, segment_literals
from core.store import VectorStore

# From each of the dense and BM25 rankers. On dev + dev_more the right item is among the candidates for 130 of
# 131 questions (60 candidates on median), and in the fused top 30 for 128.
CANDIDATES = 50
BM25_CACHE_SIZE = 32
ALIASES_PER_DOCUMENT = 3  # up to three phrasings each (`core.phrasings.PHRASINGS_PER_OPERATION`)
VECTOR_CACHE_BYTES = 256 * 1024 * 1024  # vectors kept with the cached indexes (all nine corpus specs: ~9 MB)
MAX_IDENTIFIER_SHARING = 2


@dataclass(frozen=True)
class Fusion:
    """The constants of score fusion.

    A candidate's score is `dense * d + (1 - dense) * ((1 - title) * b + title * t) + identifier * i
    + method * m + shape * s + plural * p - admin * a + cover * c`:
    - `d`, the dense similarity scaled per question: `minmax` maps the best of the dense hits to 1 and the last
      to 0, `cosine` keeps the raw cosine similarity; a candidate the dense ranker did not return counts as the
      last hit;
    - `b`, the BM25 score over the document's whole lexical text, scaled per question: `max` divides by the
      best score, `bound` by the most the query's words can score (the sum of each word's best score in any
      document), so a match on one generic word stays small even when it is the best there is;
    - `t`, the same over the document's name alone (summary, operationId, path words), scaled the same way:
      a word in the name says more than the same word somewhere in a long description;
    - `i`, the length of the identifier the question quotes that the document has, over the longest such match;
    - `m`, 1 when the document's method, or the first verb of its name (`chat.update`, `createIssue`), fits a
      verb of the question (`create` -> POST or PUT, ...);
    - `s`, 1 when the document's path shape fits what the question asks for: a collection (`/v1/customers`)
      for "list"/"all"/"every", an item (`/v1/customers/{customer}`) for "a specific"/"single";
    - `p`, 1 for a collection path when the question names things in the plural;
    - `a`, 1 for an operation in an admin namespace (`admin.conversations.archive`, `/admin/users`) when the
      question does not speak of admins, the enterprise or the organisation: such operations need privileges
      most callers lack, and their names repeat the plain operations' words (`admin.emoji.add` vs
      `reactions.add`), so they crowd out the operation people mean. A penalty, so it is subtracted;
    - `c`, the share of the words of the document's name (`title_text`) that the question uses: of two siblings
      the question matches equally, the one whose name says no more than was asked (`chat.delete` for "delete
      a message", not `chat.deleteScheduledMessage`). BM25 rewards the words matched, not the ones left over.
    """

    dense: float
    title: float
    identifier: float
    method: float
    shape: float
    plural: float
    admin: float = 0.0
    cover: float = 0.0
    dense_scale: Literal["minmax", "cosine"] = "minmax"
    lexical_scale: Literal["max", "bound"] = "max"


# The constants `benchmarks/fusion_cv.py` chooses on all of dev.jsonl + dev_more.jsonl (131 questions), after
# 5-fold cross-validation estimated how well that choice does on questions it has not seen (RESULTS.md).
FUSION = Fusion(
    dense=0.75,
    title=0.5,
    identifier=0.5,
    method=0.03,
    shape=0.1,
    plural=0.0,
    admin=0.2,
    cover=0.1,
    dense_scale="cosine",
    lexical_scale="max",
)

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

# What a question asks to have done, by its verbs (compared as stems). A word ending in "ed" is left out:
# "the tweets a user has posted" describes what to read, it does not ask to post.
MAX_INTENT_WORDS = 64  # a question states what it wants near its start; the rest is detail
_INTENT_WORDS = {
    intent: frozenset(_STEMMER.stemWords(words.split()))
    for intent, words in {
        "create": "create add make new register submit upload send post place buy invite generate",
        "read": "get show find retrieve fetch look lookup view read see check search list download",
        "update": "update change edit modify rename set replace patch",
        "delete": "delete remove cancel erase wipe destroy revoke clear purge undo",
    }.items()
}
_VERBS = frozenset().union(*_INTENT_WORDS.values())


def is_action_word(word: str) -> bool:
    """Whether a (lower-case) word states an action the intent prior understands ("delete", "adding")."""
    return bool(_STEMMER.stemWord(word) in _VERBS)


_LIST_WORDS = frozenset(_STEMMER.stemWords("list all every browse enumerate".split()))
# A question that names no action but asks "what"/"which"/"how many" wants to read something.
_QUESTION_WORDS = frozenset("what which who whose where when many much".split())
_ITEM_WORDS = frozenset(_STEMMER.stemWords("specific single particular individual".split()))
# A question with one of these words may well mean an admin operation, so `Fusion.admin` does not apply.
_ADMIN_QUESTION_WORDS = frozenset(
    "admin admins administrator administrators administration enterprise org orgs organization organizations "
    "organisation organisations".split()
)
_ADMIN_SEGMENT = "admin"
_NOT_PLURAL = frozenset(
    "does this has was is its always news status alias canvas series analytics previous various plus thus less "
    "unless across perhaps whereas yes us".split()
)
# Which intents a method serves. PUT both creates and replaces (`PUT /guilds/{id}/bans/{user}` bans someone);
# a GraphQL query reads, a mutation writes.
_METHOD_INTENTS = {
    "GET": frozenset({"read"}),
    "HEAD": frozenset({"read"}),
    "POST": frozenset({"create"}),
    "PUT": frozenset({"create", "update"}),
    "PATCH": frozenset({"update"}),
    "DELETE": frozenset({"delete"}),
    "query": frozenset({"read"}),
    "mutation": frozenset({"create", "update", "delete"}),
}
_NAMESPACE_SPLIT = re.compile(r"[/.:\s]+")
_ITEM_SUFFIXES = frozenset({"", ".json"})  # Twilio's `/Calls/{Sid}.json` is one call


@dataclass(frozen=True)
class Intent:
    """What a question asks for, as far as its words tell: CRUD intents, and collection vs one item."""

    actions: frozenset[str]
    wants_list: bool
    wants_item: bool
    plural: bool
    about_admin: bool = False


def question_intent(query: str) -> Intent:
    """The intent a question's words state (its first `MAX_INTENT_WORDS` words)."""
    words = _TOKEN.findall(query[: MAX_INTENT_WORDS * 20].lower())[:MAX_INTENT_WORDS]
    stems = set(_STEMMER.stemWords([w for w in words if not w.endswith("ed")]))
    actions = frozenset(intent for intent, cues in _INTENT_WORDS.items() if stems & cues)
    if not actions and _QUESTION_WORDS.intersection(words):
        actions = frozenset({"read"})
    plural = any(
        len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) and w not in _NOT_PLURAL
        for w in words
        if w not in _STOPWORDS
    )
    about_admin = bool(_ADMIN_QUESTION_WORDS.intersection(words))
    return Intent(actions, bool(stems & _LIST_WORDS), bool(stems & _ITEM_WORDS), plural, about_admin)


def document_is_admin(document: Document) -> bool:
    """Whether an operation lives in an admin namespace: a path, operationId or folder segment `admin`."""
    op = document.operation
    if op is None:
        return False
    names = (op.path.split("?", 1)[0], op.operation_id, op.folder)
    return any(_ADMIN_SEGMENT in _NAMESPACE_SPLIT.split(name.lower()) for name in names if name)


def item_suffix(segment: str) -> str | None:
    """The format suffix of a path segment that names one item; None when it names no item.

    `{id}` -> "", Twilio's `{Sid}.json` -> ".json".
    """
    literals = segment_literals(segment)
    suffix = "".join(literals)
    return suffix if len(literals) > 1 and suffix in _ITEM_SUFFIXES else None


def document_shape(document: Document) -> Literal["item", "collection", ""]:
    """Whether an operation acts on one item (its path ends in a placeholder) or a collection; "" if neither."""
    op = document.operation
    if op is None or op.kind is ItemKind.GRAPHQL or not op.path:
        return ""
    last = op.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if last.startswith("@") or item_suffix(last) is not None:  # Discord's `/users/@me`
        return "item"
    return "collection"


def document_intents(document: Document) -> frozenset[str]:
    """The intents a document serves, by its method and the first verb of its name (none for auth schemes).

    The name matters where the method says little: Slack does everything with POST (`chat.update`), GraphQL
    mutations all write (`deleteIssue`), and Twitter deletes filter rules with a POST named "Delete Rules".
    """
    op = document.operation
    if op is None:
        return frozenset()
    by_method = _METHOD_INTENTS.get(op.graphql_type if op.kind is ItemKind.GRAPHQL else op.method.upper())
    stems = _STEMMER.stemWords(identifier_words(op.operation_id or op.name).split()[:MAX_INTENT_WORDS])
    by_name = next(
        (frozenset(i for i, cues in _INTENT_WORDS.items() if stem in cues) for stem in stems if stem in _VERBS),
        frozenset(),
    )
    return (by_method or frozenset()) | by_name


def title_text(document: Document) -> str:
    """What names a document: an operation's summary, operationId, name and path words; a scheme's title."""
    op = document.operation
    if op is None:
        return f"{document.title} {AUTH_WORDS}" if document.kind is ItemKind.AUTH else document.title
    path_words = " ".join(identifier_words(s) for s in op.path.split("/") if s and not is_placeholder(s))
    names = {identifier_words(op.operation_id), identifier_words(op.name)}
    return " ".join(filter(None, [op.summary, *sorted(names), path_words, op.folder]))


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


@dataclass(frozen=True)
class Signals:
    """What the rankers say about each candidate document of one question, before fusion.

    Arrays are aligned with `candidates` (indexes into the lexical index's entries, in the order the rankers
    found them: dense hits, then BM25 hits, then identifier matches; fusion breaks ties in that order).
    """

    candidates: np.ndarray  # int
    dense: np.ndarray  # cosine similarity; NaN where the dense ranker did not return the document
    bm25: np.ndarray  # raw BM25 score
    bm25_best: float  # the best BM25 score of any document
    bm25_bound: float  # the most the query's words could score: each word's best score in any document, summed
    title: np.ndarray  # raw BM25 score over the document's name alone (`title_text`)
    title_best: float
    title_bound: float
    identifier: np.ndarray  # length of the quoted identifier the document has; 0 where none
    method_fit: np.ndarray  # 1 where the document's method serves one of the question's intents
    shape_fit: np.ndarray  # 1 where the path is the shape (collection or item) the question asks for
    plural_fit: np.ndarray  # 1 for a collection path when the question names things in the plural
    admin_misfit: np.ndarray  # 1 for an admin-namespace operation when the question does not speak of admins
    name_cover: np.ndarray  # the share of the document's name words the question uses

    def features(
        self, dense_scale: Literal["minmax", "cosine"], lexical_scale: Literal["max", "bound"]
    ) -> np.ndarray:
        """One row per candidate: scaled dense, BM25, title BM25, identifier, method, shape, plural, admin."""
        hits = self.dense[~np.isnan(self.dense)]
        low, high = (float(hits.min()), float(hits.max())) if hits.size else (0.0, 0.0)
        dense = np.where(np.isnan(self.dense), low, self.dense)
        if dense_scale == "minmax":
            dense = (dense - low) / (high - low) if high > low else (dense >= high).astype(float)
        lexical = _scaled(self.bm25, self.bm25_best if lexical_scale == "max" else self.bm25_bound)
        title = _scaled(self.title, self.title_best if lexical_scale == "max" else self.title_bound)
        identifier = _scaled(self.identifier, float(self.identifier.max(initial=0.0)))
        return np.column_stack(
            [
                dense, lexical, title, identifier, self.method_fit, self.shape_fit, self.plural_fit,
                self.admin_misfit, self.name_cover,
            ]
        )


def _scaled(values: np.ndarray, divisor: float) -> np.ndarray:
    return values / divisor if divisor > 0 else np.zeros_like(values)


def fuse(signals: Signals, fusion: Fusion = FUSION) -> np.ndarray:
    """Each candidate's fused score (see `Fusion`)."""
    return signals.features(fusion.dense_scale, fusion.lexical_scale) @ fusion_weights(fusion)


def fusion_weights(fusion: Fusion) -> np.ndarray:
    """The weight of each column of `Signals.features` under `fusion`."""
    lexical = 1.0 - fusion.dense
    return np.array(
        [
            fusion.dense,
            lexical * (1.0 - fusion.title),
            lexical * fusion.title,
            fusion.identifier,
            fusion.method,
            fusion.shape,
            fusion.plural,
            -fusion.admin,
            fusion.cover,
        ]
    )


class _Bm25:
    """BM25 over tokenised documents, with the most each word can score in any document."""

    def __init__(self, corpus: list[list[str]]) -> None:
        self._bm25 = bm25s.BM25()
        self._bm25.index([tokens or ["_empty_"] for tokens in corpus], show_progress=False)
        self._size = len(corpus)
        self._word_best: dict[str, float] = {}  # filled as questions ask for words

    def scores(self, words: list[str]) -> tuple[np.ndarray, float]:
        """Every document's score for the words, and the most they could score (each word's best, summed)."""
        tokens = [t for t in words if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self._size), 0.0
        for token in set(tokens) - self._word_best.keys():
            self._word_best[token] = float(self._bm25.get_scores([token]).max())
        bound = sum(self._word_best[t] for t in tokens)  # a repeated word counts again, as in the scores
        return np.asarray(self._bm25.get_scores(tokens), dtype=float), bound


class _LexicalIndex:
    """BM25 over the documents of a fixed set of spec versions, plus their identifiers, methods and shapes."""

    def __init__(self, entries: list[tuple[str, Document]]) -> None:
        self.entries = entries
        self.position = {(spec, d.key): i for i, (spec, d) in enumerate(entries)}
        # Each document's own vector (unit length), row for row with `entries`; set by `set_vectors`.
        self.vectors = np.zeros((len(entries), 0), dtype=np.float32)
        self.has_vector = np.zeros(len(entries), dtype=bool)
        self._bm25 = _Bm25([tokenize(d.lexical_text) for _, d in entries])
        titles = [tokenize(title_text(d)) for _, d in entries]
        self._title = _Bm25(titles)
        self._name_words = [frozenset(t) for t in titles]
        # An identifier many documents share (every GraphQL field's `/graphql` path) identifies nothing.
        counts = Counter(i.lower() for _, d in entries for i in d.identifiers)
        # Path templates (`/v1/customers/{customer}`) and plain names alike, compared segment by segment.
        self._identifiers = PathIndex()
        for index, (_, document) in enumerate(entries):
            for identifier in document.identifiers:
                if counts[identifier.lower()] <= MAX_IDENTIFIER_SHARING:
                    self._identifiers.add(identifier.strip().strip("/").lower().split("/"), index)
        self.intents = [document_intents(d) for _, d in entries]
        self.shapes = [document_shape(d) for _, d in entries]
        self.admin = np.array([document_is_admin(d) for _, d in entries], dtype=bool)

    def set_vectors(self, spec: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Keep the vectors of `spec`'s documents (by key) for exact dense search; unknown keys are ignored."""
        if not len(keys):
            return
        if self.vectors.shape[1] != vectors.shape[1]:
            self.vectors = np.zeros((len(self.entries), vectors.shape[1]), dtype=np.float32)
            self.has_vector[:] = False
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms > 0, norms, 1.0)
        for row, key in enumerate(keys):
            position = self.position.get((spec, key))
            if position is not None:
                self.vectors[position] = unit[row]
                self.has_vector[position] = True

    @property
    def vector_bytes(self) -> int:
        """The memory the vectors take."""
        return int(self.vectors.nbytes)

    def dense_hits(self, query_embedding: Sequence[float], limit: int) -> dict[int, float]:
        """The `limit` documents nearest the query (exact cosine similarity), entry index -> similarity."""
        count = min(limit, int(self.has_vector.sum()))
        if count == 0:
            return {}
        query = np.asarray(query_embedding, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        similarity = self.vectors @ (query / norm if norm > 0 else query)
        similarity[~self.has_vector] = -np.inf
        nearest = np.argpartition(-similarity, count - 1)[:count]
        nearest = nearest[np.lexsort((nearest, -similarity[nearest]))]  # nearest first; ties by position
        return {int(i): float(similarity[i]) for i in nearest}

    def identifier_matches(self, query: str) -> dict[int, int]:
        """Documents whose operationId, path or name the query quotes, with the length of the longest match."""
        best: dict[int, int] = {}
        for candidate in _identifier_candidates(query):
            segments = candidate.lower().removeprefix("/").removesuffix("/").split("/")
            for index in self._identifiers.find(segments):
                best[index] = max(best.get(index, 0), len(candidate))
        return best

    def identifier_ranking(self, query: str) -> list[int]:
        """Documents whose operationId, path or name the query quotes, longest match first."""
        best = self.identifier_matches(query)
        return sorted(best, key=lambda index: (-best[index], index))

    def signals(self, query: str, dense_hits: Sequence[tuple[int, float]], limit: int = CANDIDATES) -> Signals:
        """The candidates for a query and their signals, from `dense_hits` (entry index, cosine similarity)."""
        words = tokenize(query)
        asked = frozenset(words)
        scores, bound = self._bm25.scores(words)
        title, title_bound = self._title.scores(words)
        identifiers = self.identifier_matches(query)
        order: dict[int, None] = dict.fromkeys(index for index, _ in dense_hits)
        for index in np.argsort(-scores, kind="stable")[:limit]:
            if scores[index] <= 0:
                break
            order.setdefault(int(index), None)
        for index in sorted(identifiers):
            order.setdefault(index, None)
        candidates = np.fromiter(order, dtype=np.int64, count=len(order))
        similarity = dict(dense_hits)
        intent = question_intent(query)
        wanted = "collection" if intent.wants_list and not intent.wants_item else ""
        wanted = "item" if intent.wants_item and not intent.wants_list else wanted
        return Signals(
            candidates=candidates,
            dense=np.array([similarity.get(int(i), np.nan) for i in candidates], dtype=float),
            bm25=scores[candidates] if candidates.size else np.zeros(0),
            bm25_best=float(scores.max(initial=0.0)),
            bm25_bound=bound,
            title=title[candidates] if candidates.size else np.zeros(0),
            title_best=float(title.max(initial=0.0)),
            title_bound=title_bound,
            identifier=np.array([identifiers.get(int(i), 0) for i in candidates], dtype=float),
            method_fit=np.array([bool(self.intents[i] & intent.actions) for i in candidates], dtype=float),
            shape_fit=np.array([bool(wanted) and self.shapes[i] == wanted for i in candidates], dtype=float),
            plural_fit=np.array([intent.plural and self.shapes[i] == "collection" for i in candidates], dtype=float),
            name_cover=np.array(
                [len(self._name_words[i] & asked) / len(self._name_words[i]) if self._name_words[i] else 0.0
                 for i in candidates], dtype=float),
            admin_misfit=(
                np.zeros(candidates.size) if intent.about_admin else self.admin[candidates].astype(float)
            ),
        )


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

    def __init__(
        self,
        store: VectorStore,
        documents: DocumentSource,
        embedder: Embedder,
        fusion: Fusion = FUSION,
        *,
        aliases: bool = False,
    ) -> None:
        """`aliases`: documents may have extra vectors (`core.phrasings`), searched in the store at each query.

        A document's own vectors never change within an index version, so they are read from the store once
        per scope and searched exactly in memory, next to its BM25 index; Chroma's approximate search over a
        filtered collection cost more CPU than the rest of a question's retrieval together.
        """
        self._store = store
        self._documents = documents
        self._embedder = embedder
        self._fusion = fusion
        self._aliases = aliases
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
        for spec, version in sorted(scope.versions.items()):
            keys, vectors = await self._store.vectors(scope.workspace, version)
            index.set_vectors(spec, keys, vectors)
        self._lexical[key] = index
        while len(self._lexical) > 1 and (
            len(self._lexical) > BM25_CACHE_SIZE
            or sum(i.vector_bytes for i in self._lexical.values()) > VECTOR_CACHE_BYTES
        ):
            self._lexical.popitem(last=False)
        return index

    async def signals(
        self,
        scope: SearchScope,
        query: str,
        query_embedding: Sequence[float] | None = None,
        limit: int = CANDIDATES,
    ) -> tuple[list[tuple[str, Document]], Signals]:
        """The documents in scope and the rankers' signals for a query's candidates (`limit` from each ranker)."""
        lexical = await self._lexical_index(scope)
        embedding = query_embedding if query_embedding is not None else await self._embedder.embed_query(query)
        wanted = min(limit, len(lexical.entries))
        dense = lexical.dense_hits(embedding, wanted)
        if self._aliases:  # a document's alias vectors (`core.phrasings`) count when closer than its own
            alias_hits = await self._store.query(
                scope.workspace, embedding, list(scope.versions.values()), wanted * ALIASES_PER_DOCUMENT,
                aliases_only=True,
            )
            for hit in alias_hits:
                position = lexical.position.get((hit.spec, hit.key))
                if position is not None:
                    dense[position] = max(dense.get(position, -1.0), 1.0 - hit.distance)  # distance: 1 - cosine
            nearest = sorted(dense.items(), key=lambda item: (-item[1], item[0]))[:wanted]
            dense = dict(nearest)
        return lexical.entries, lexical.signals(query, list(dense.items()), limit)

    async def search(
        self, scope: SearchScope, query: str, limit: int = 10, query_embedding: Sequence[float] | None = None
    ) -> list[RetrievedItem]:
        """The best `limit` documents for a query, fused from the three rankers and the intent prior."""
        if not scope.versions:
            return []
        entries, signals = await self.signals(scope, query, query_embedding)
        scores = fuse(signals, self._fusion)
        results = []
        for position in np.argsort(-scores, kind="stable"):
            spec, document = entries[int(signals.candidates[position])]
            if document.kind is ItemKind.OVERVIEW:
                continue
            results.append(RetrievedItem(spec=spec, document=document, score=float(scores[position])))
            if len(results) == limit:
                break
        return results
