"""The vector store: ChromaDB, embedded (`PersistentClient`) or a Chroma server (`HttpClient`).

It holds vectors and small metadata only (spec, index version, document key); the documents themselves
live in the registry, which is much cheaper to write than Chroma's full-text-indexed document column.

Each workspace gets its own collection, so one workspace's queries can never touch another's specs.
Documents carry the spec name and an `index_version`; a new version of a spec is written next to the old
one and only becomes visible when the registry points at it, so a failed ingest never damages the
version that was already there.

A Chroma server that cannot be reached (stopped, restarting, unreachable, or not answering within the request
timeout) makes each call raise `StoreUnavailableError`, a user-facing error saying to try again shortly, instead of
an unexpected error or a wait without end; the outage is logged once (`vector_store_unavailable`) and so is its end
(`vector_store_recovered`). Nothing is retried here: the server's restart is seconds, a question is asked again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import chromadb
import httpx
import numpy as np
import structlog
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from core import messages
from core.documents import Document
from core.errors import StoreUnavailableError

log = structlog.get_logger(__name__)

ADD_BATCH = 1000
GET_PAGE = 5000  # vectors read back per request
ALIAS_KIND = "alias"  # the `kind` of a vector added by `add_aliases` (a document's own carry its `ItemKind`)
CONNECT_TIMEOUT_SECONDS = 5.0  # a Chroma server that does not accept a connection within this is unavailable
REQUEST_TIMEOUT_SECONDS = 60.0  # nor one silent this long (between bytes) on a request; a 1,000-vector add takes ~1 s

T = TypeVar("T")


@dataclass(frozen=True)
class VectorHit:
    """A document found by vector similarity."""

    spec: str
    index_version: str
    key: str  # the document's key within its spec; callers already hold the documents themselves
    distance: float


class VectorStore(Protocol):
    """What the core needs from a vector store."""

    async def add(
        self,
        workspace: str,
        spec: str,
        index_version: str,
        documents: Sequence[Document],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        """Store documents of one spec version."""
        ...

    async def add_aliases(
        self,
        workspace: str,
        spec: str,
        index_version: str,
        keys: Sequence[str],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        """Store extra vectors of documents already stored in a version (found as `keys[i]`; repeats allowed).

        They belong to the version like its documents: `delete_version` removes them too.
        """
        ...

    async def vectors(self, workspace: str, index_version: str) -> tuple[list[str], np.ndarray]:
        """The keys and vectors (float32 rows) of one version's own documents, aliases left out."""
        ...

    async def query(
        self,
        workspace: str,
        embedding: Sequence[float],
        index_versions: Sequence[str],
        limit: int,
        *,
        aliases_only: bool = False,
    ) -> list[VectorHit]:
        """Nearest documents among the given versions; `aliases_only`: only vectors added by `add_aliases`."""
        ...

    async def delete_version(self, workspace: str, index_version: str) -> None:
        """Remove every document of one spec version."""
        ...

    async def versions(self, workspace: str) -> set[str]:
        """Every index version with documents in this workspace."""
        ...

    async def drop_workspace(self, workspace: str) -> int:
        """Remove everything stored for a workspace; returns how many vectors there were."""
        ...

    async def heartbeat(self) -> None:
        """Raise unless the store answers (a cheap call, for readiness)."""
        ...


def collection_name(workspace: str) -> str:
    """A Chroma-safe collection name (3-512 chars, [a-zA-Z0-9._-]) unique to a workspace."""
    return "ws-" + hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:32]


class ChromaVectorStore:
    """`VectorStore` on ChromaDB. The client is synchronous, so every call runs in a worker thread."""

    def __init__(self, client: Any, target: str = "embedded") -> None:
        """`target` names the store in log lines (`host:port` of a server)."""
        self._client = client
        self._target = target
        self._collections: dict[str, Any] = {}
        self._unavailable_since: float | None = None  # the start of the current outage of a server

    @classmethod
    def embedded(cls, path: Path) -> ChromaVectorStore:
        """A store persisted under `path`."""
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
        return cls(client)

    @classmethod
    def server(
        cls,
        host: str,
        port: int,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> ChromaVectorStore:
        """A store on a Chroma server (`chroma run`); a request it does not answer in time fails (see module)."""
        client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
        # chromadb 1.5.9 opens its HTTP sessions with no timeout at all: a server that stops answering (a network
        # partition, a stopped process) would hold a question, and a worker thread, forever.
        limit = httpx.Timeout(timeout, connect=connect_timeout)
        for part in (client, getattr(client, "_admin_client", None)):
            session = getattr(getattr(part, "_server", None), "_session", None)
            if isinstance(session, httpx.Client):
                session.timeout = limit
        return cls(client, target=f"{host}:{port}")

    async def _run(self, operation: str, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a worker thread; a server that cannot be reached raises `StoreUnavailableError`."""
        try:
            result = await asyncio.to_thread(call, *args)
        except httpx.TransportError as exc:  # refused, reset, timed out: the request did not get an answer
            if self._unavailable_since is None:
                self._unavailable_since = time.monotonic()
                log.warning("vector_store_unavailable", target=self._target, operation=operation,
                            error=type(exc).__name__)
            raise StoreUnavailableError(messages.store_unavailable()) from exc
        if self._unavailable_since is not None:
            log.info("vector_store_recovered", target=self._target,
                     outage_seconds=round(time.monotonic() - self._unavailable_since, 3))
            self._unavailable_since = None
        return result

    def _with_collection(self, workspace: str, action: Callable[[Any], T]) -> T:
        """Run `action(collection)`; if another process dropped the collection meanwhile, start a new one."""
        try:
            return action(self._collection(workspace))
        except NotFoundError:
            self._collections.pop(collection_name(workspace), None)
            return action(self._collection(workspace))

    def _collection(self, workspace: str) -> Any:
        name = collection_name(workspace)
        if name not in self._collections:
            # embedding_function=None: we always pass vectors; Chroma's default would try to download a model.
            self._collections[name] = self._client.get_or_create_collection(
                name=name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"workspace_hash": name},
            )
        return self._collections[name]

    async def add(
        self,
        workspace: str,
        spec: str,
        index_version: str,
        documents: Sequence[Document],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        """Store documents of one spec version, in batches."""

        def run(collection: Any) -> None:
            for start in range(0, len(documents), ADD_BATCH):
                chunk = documents[start : start + ADD_BATCH]
                collection.add(
                    ids=[_document_id(index_version, d.key) for d in chunk],
                    embeddings=[list(e) for e in embeddings[start : start + ADD_BATCH]],
                    metadatas=[
                        {"spec": spec, "index_version": index_version, "kind": d.kind.value, "key": d.key}
                        for d in chunk
                    ],
                )

        await self._run("add", self._with_collection, workspace, run)

    async def add_aliases(
        self,
        workspace: str,
        spec: str,
        index_version: str,
        keys: Sequence[str],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        """Store extra vectors for documents of a version (upserted: storing the same aliases again is harmless)."""
        seen: dict[str, int] = {}
        ids = []
        for key in keys:
            seen[key] = seen.get(key, 0) + 1
            ids.append(f"{_document_id(index_version, key)}:alias{seen[key]}")

        def run(collection: Any) -> None:
            for start in range(0, len(keys), ADD_BATCH):
                chunk = keys[start : start + ADD_BATCH]
                collection.upsert(
                    ids=ids[start : start + ADD_BATCH],
                    embeddings=[list(e) for e in embeddings[start : start + ADD_BATCH]],
                    metadatas=[
                        {"spec": spec, "index_version": index_version, "kind": ALIAS_KIND, "key": key}
                        for key in chunk
                    ],
                )

        await self._run("add_aliases", self._with_collection, workspace, run)

    async def vectors(self, workspace: str, index_version: str) -> tuple[list[str], np.ndarray]:
        """The keys and vectors (float32 rows) of one version's own documents, aliases left out."""
        where = {"$and": [{"index_version": index_version}, {"kind": {"$ne": ALIAS_KIND}}]}

        def run(collection: Any) -> tuple[list[str], np.ndarray]:
            keys: list[str] = []
            pages: list[np.ndarray] = []
            while True:  # in pages: one response for a 10,000-operation spec would be tens of MB of JSON
                page = collection.get(
                    where=where, include=["embeddings", "metadatas"], limit=GET_PAGE, offset=len(keys)
                )
                keys += [str(m["key"]) for m in page["metadatas"]]
                if len(page["metadatas"]):
                    pages.append(np.asarray(page["embeddings"], dtype=np.float32))
                if len(page["metadatas"]) < GET_PAGE:
                    break
            return keys, (np.concatenate(pages) if pages else np.zeros((0, 0), dtype=np.float32))

        return await self._run("vectors", self._with_collection, workspace, run)

    async def query(
        self,
        workspace: str,
        embedding: Sequence[float],
        index_versions: Sequence[str],
        limit: int,
        *,
        aliases_only: bool = False,
    ) -> list[VectorHit]:
        """Nearest documents among the given versions (cosine distance, smaller is closer).

        `aliases_only`: only the extra vectors of `add_aliases` (the documents' own are searched in memory).
        """
        if not index_versions:
            return []
        where = _version_filter(index_versions)
        if aliases_only:
            where = {"$and": [where, {"kind": ALIAS_KIND}]}

        def run(collection: Any) -> Any:
            return collection.query(
                query_embeddings=[list(embedding)], n_results=limit, where=where, include=["metadatas", "distances"]
            )

        result = await self._run("query", self._with_collection, workspace, run)
        hits = []
        for metadata, distance in zip(result["metadatas"][0], result["distances"][0], strict=True):
            hits.append(
                VectorHit(
                    spec=str(metadata["spec"]),
                    index_version=str(metadata["index_version"]),
                    key=str(metadata["key"]),
                    distance=float(distance),
                )
            )
        return hits

    async def delete_version(self, workspace: str, index_version: str) -> None:
        """Remove every document of one spec version."""
        where = {"index_version": index_version}
        await self._run("delete_version", self._with_collection, workspace, lambda c: c.delete(where=where))

    async def versions(self, workspace: str) -> set[str]:
        """Every index version with documents in this workspace."""
        result = await self._run("versions", self._with_collection, workspace, lambda c: c.get(include=["metadatas"]))
        return {str(m["index_version"]) for m in result["metadatas"]}

    async def drop_workspace(self, workspace: str) -> int:
        """Delete the workspace's whole collection; returns how many vectors it held (0 if there was none)."""
        name = collection_name(workspace)

        def run() -> int:
            self._collections.pop(name, None)
            try:
                count = int(self._client.get_collection(name=name, embedding_function=None).count())
                self._client.delete_collection(name=name)
            except NotFoundError:
                return 0
            return count

        return await self._run("drop_workspace", run)

    async def heartbeat(self) -> None:
        """Count the collections: a real round trip to the server, or a read of the embedded store's database."""
        await self._run("heartbeat", self._client.count_collections)

    async def aclose(self) -> None:
        """Close the client: the embedded store's database files, or the HTTP connections to a server."""
        self._collections.clear()
        await asyncio.to_thread(self._close_client)

    def _close_client(self) -> None:
        self._client.close()  # stops the client's components once no other client of this process shares them
        # chromadb 1.5.9 stops an HTTP client (and the admin client inside it) without closing their connection
        # pools (chroma-core/chroma#4293): close each pool whose component was stopped, so no socket is left open.
        for client in (self._client, getattr(self._client, "_admin_client", None)):
            server = getattr(client, "_server", None)
            session = getattr(server, "_session", None)
            if session is not None and not getattr(server, "_running", True):
                session.close()


def _document_id(index_version: str, key: str) -> str:
    return f"{index_version}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}"


def _version_filter(index_versions: Sequence[str]) -> dict[str, Any]:
    if len(index_versions) == 1:
        return {"index_version": index_versions[0]}
    return {"index_version": {"$in": list(index_versions)}}
