"""The assistant: the one object every platform adapter calls.

It owns the ingest pipeline (check, parse, embed, store, swap in), search over a workspace's specs, and
answering. Adapters build a request dataclass from `core.requests`, call a method here, and render what
comes back; they never reach past this class.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from core import messages
from core.answers import Answer, AnswerStream, Evidence, FinalAnswer, StatusUpdate, retrieval_answer
from core.config import Settings
from core.documents import build_documents
from core.embedding import Embedder
from core.errors import InvalidSpecError, NothingIndexedError, SpecNotFoundError, UserFacingError
from core.models import ApiSpec
from core.parsing.loader import check_upload, load_spec
from core.registry import SpecRecord, SpecRegistry, now, spec_header
from core.requests import AskQuestion, ForgetSpec, ListSpecs, Origin, UploadSpec
from core.retrieval import HybridRetriever, RetrievedItem, SearchScope
from core.store import VectorStore

log = structlog.get_logger(__name__)

MAX_QUESTION_CHARS = 4000
_SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class IngestProgress:
    """Where a long ingest is: `stage` is "parsing", "embedding" or "storing"."""

    stage: str
    done: int = 0
    total: int = 0

    @property
    def message(self) -> str:
        """A human progress line."""
        return messages.ingest_progress(self.stage, self.done, self.total)


ProgressReporter = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did."""

    record: SpecRecord
    unchanged: bool  # the exact same file was already indexed under this name
    replaced: bool  # an older version of this spec was replaced
    seconds: float
    scheme_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def slugify_spec_name(filename: str) -> str:
    """A default spec name from a file name: `Stripe API (v1).yaml` -> `stripe-api-v1`."""
    stem = filename.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return (slug or "spec")[:64]


class Assistant:
    """The shared async core behind every platform."""

    def __init__(self, settings: Settings, registry: SpecRegistry, store: VectorStore, embedder: Embedder) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.embedder = embedder
        self.retriever = HybridRetriever(store, embedder)
        self._spec_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._seen_events: dict[str, float] = {}
        self.feedback = {True: 0, False: 0}

    # ---- specs -------------------------------------------------------------------------------------

    async def ingest(self, request: UploadSpec, progress: ProgressReporter | None = None) -> IngestReport:
        """Index a spec file into the request's workspace, replacing an older version only on success."""
        started = time.perf_counter()
        origin = request.origin
        attachment = request.attachment
        report = progress or (lambda _: None)
        name = self._spec_name(request.name, attachment.filename)
        bound = log.bind(workspace=origin.scope, user=origin.user, spec=name, event_id=origin.event_id)
        check_upload(
            attachment.filename,
            attachment.size,
            max_bytes=self.settings.max_file_bytes,
            allowed_extensions=self.settings.allowed_extensions,
        )
        data = await attachment.read(self.settings.max_file_bytes)
        content_hash = hashlib.sha256(data).hexdigest()
        lock = self._spec_locks.setdefault((origin.scope, name), asyncio.Lock())
        async with lock:
            previous = self.registry.get(origin.scope, name)
            if previous and previous.content_hash == content_hash:
                bound.info("ingest_unchanged")
                return IngestReport(
                    previous,
                    True,
                    False,
                    time.perf_counter() - started,
                    tuple(s.name for s in previous.header.security_schemes),
                )
            report(IngestProgress("parsing"))
            spec = await asyncio.to_thread(
                load_spec,
                attachment.filename,
                data,
                max_bytes=self.settings.max_file_bytes,
                allowed_extensions=self.settings.allowed_extensions,
            )
            record = await self._index(origin, name, attachment.filename, data, content_hash, spec, report)
            if previous:
                await self._delete_quietly(origin.scope, previous.index_version)
        elapsed = time.perf_counter() - started
        bound.info(
            "ingest_done",
            operations=record.operation_count,
            seconds=round(elapsed, 2),
            format=spec.format.value,
            replaced=previous is not None,
        )
        return IngestReport(
            record, False, previous is not None, elapsed, tuple(s.name for s in spec.security_schemes), spec.warnings
        )

    async def _index(
        self,
        origin: Origin,
        name: str,
        filename: str,
        data: bytes,
        content_hash: str,
        spec: ApiSpec,
        report: ProgressReporter,
    ) -> SpecRecord:
        documents = build_documents(spec)
        index_version = uuid.uuid4().hex[:16]
        try:
            report(IngestProgress("embedding", 0, len(documents)))
            embeddings = await self.embedder.embed_documents(
                [d.embed_text for d in documents],
                lambda done, total: report(IngestProgress("embedding", done, total)),
            )
            report(IngestProgress("storing", 0, len(documents)))
            await self.store.add(origin.scope, name, index_version, documents, embeddings)
            original = await asyncio.to_thread(self.registry.save_original, origin.scope, content_hash, filename, data)
            record = SpecRecord(
                workspace=origin.scope,
                name=name,
                format=spec.format,
                title=spec.title,
                version=spec.version,
                content_hash=content_hash,
                index_version=index_version,
                operation_count=len(spec.operations),
                scheme_count=len(spec.security_schemes),
                uploaded_by=origin.user,
                platform=origin.platform,
                indexed_at=now(),
                original_path=str(original),
                filename=filename,
                header=spec_header(spec),
            )
            # The swap: from here on, searches see the new version.
            self.registry.put(record)
            return record
        except BaseException:
            await self._delete_quietly(origin.scope, index_version)
            raise

    async def _delete_quietly(self, scope: str, index_version: str) -> None:
        try:
            await self.store.delete_version(scope, index_version)
        except Exception:
            log.warning("delete_version_failed", workspace=scope, index_version=index_version, exc_info=True)

    def _spec_name(self, requested: str | None, filename: str) -> str:
        if requested is None:
            return slugify_spec_name(filename)
        if not _SPEC_NAME.match(requested):
            raise InvalidSpecError(messages.invalid_spec_name(requested))
        return requested

    async def list_specs(self, request: ListSpecs) -> list[SpecRecord]:
        """The workspace's specs."""
        return self.registry.list(request.origin.scope)

    async def forget(self, request: ForgetSpec) -> SpecRecord:
        """Remove a spec and its documents from the workspace."""
        scope = request.origin.scope
        record = self._record(scope, request.name)
        self.registry.delete(scope, record.name)
        await self._delete_quietly(scope, record.index_version)
        log.info("spec_forgotten", workspace=scope, spec=record.name, user=request.origin.user)
        return record

    def _record(self, scope: str, name: str) -> SpecRecord:
        record = self.registry.get(scope, name)
        if record is None:
            raise SpecNotFoundError(messages.spec_not_found(name, [r.name for r in self.registry.list(scope)]))
        return record

    # ---- questions ---------------------------------------------------------------------------------

    def search_scope(self, scope: str, spec: str | None) -> SearchScope:
        """The live spec versions a question may search: one named spec, or the whole workspace."""
        if spec:
            record = self._record(scope, spec)
            return SearchScope(scope, {record.name: record.index_version})
        records = self.registry.list(scope)
        if not records:
            raise NothingIndexedError(messages.nothing_indexed())
        return SearchScope(scope, {r.name: r.index_version for r in records})

    async def search(
        self, origin: Origin, question: str, spec: str | None = None, limit: int = 10
    ) -> list[RetrievedItem]:
        """Hybrid retrieval over the workspace (or one spec)."""
        return await self.retriever.search(self.search_scope(origin.scope, spec), question, limit)

    def evidence(self, scope: str, items: list[RetrievedItem]) -> list[Evidence]:
        """Attach each retrieved document's spec header, for answers and snippets."""
        headers: dict[str, ApiSpec] = {}
        result = []
        for item in items:
            if item.spec not in headers:
                record = self.registry.get(scope, item.spec)
                if record is None:  # forgotten between search and answer
                    continue
                headers[item.spec] = record.header
            document = item.document
            result.append(
                Evidence(
                    item.spec, headers[item.spec], document.title, document.operation, document.scheme, document.item
                )
            )
        return result

    async def ask(self, request: AskQuestion) -> Answer:
        """Answer a question from the workspace's specs."""
        question = request.question.strip()
        if not question:
            raise UserFacingError(messages.empty_question())
        if len(question) > MAX_QUESTION_CHARS:
            raise UserFacingError(messages.question_too_long(MAX_QUESTION_CHARS))
        scope = request.origin.scope
        items = await self.search(request.origin, question, request.spec, limit=8)
        log.info(
            "question_answered",
            workspace=scope,
            user=request.origin.user,
            event_id=request.origin.event_id,
            hits=len(items),
            mode="retrieval",
        )
        return retrieval_answer(question, self.evidence(scope, items), messages.generation_off())

    async def stream_answer(self, request: AskQuestion) -> AnswerStream:
        """Answer as a stream of events: status updates, text parts, then exactly one `FinalAnswer`.

        User-facing problems (rate limited, nothing indexed, unknown spec) are raised before the first
        event, as `UserFacingError`s.
        """
        yield StatusUpdate("Searching the specs…")
        yield FinalAnswer(await self.ask(request))

    async def claim_event(self, origin: Origin) -> bool:
        """True the first time an event id is seen; False for a platform's re-delivery of the same event."""
        if not origin.event_id:
            return True
        key = f"{origin.platform}:{origin.workspace}:{origin.event_id}"
        if key in self._seen_events:
            log.info("duplicate_event_ignored", event_id=origin.event_id, platform=origin.platform)
            return False
        self._seen_events[key] = time.monotonic()
        while len(self._seen_events) > 10_000:
            self._seen_events.pop(next(iter(self._seen_events)))
        return True

    async def record_feedback(self, origin: Origin, answer_id: str, helpful: bool) -> None:
        """Record a 👍/👎 on an answer (logged, and counted for metrics)."""
        self.feedback[helpful] += 1
        log.info("answer_feedback", workspace=origin.scope, user=origin.user, answer_id=answer_id, helpful=helpful)

    async def aclose(self) -> None:
        """Release resources."""
        self.registry.close()
