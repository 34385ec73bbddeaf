"""The team's specs: upload (check, parse, embed, store, swap in), re-index, forget, purge and sweep.

`SpecLibrary` is the write side of the assistant: everything that changes what a workspace has indexed,
under a lock per spec name shared by every process and replica (`core.registry.SpecRegistry.lock`). The
`Assistant` facade (`core.assistant`) owns one and forwards the adapters' calls to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from core import messages
from core.actions import DiffSpec, ForgetSpec, ListSpecs, Origin, PurgeWorkspace, SetVisibility, UploadSpec
from core.config import Settings
from core.diffs import VersionFile, diff_versions, needs_parse
from core.diffs.report import DiffReport
from core.documents import build_documents
from core.embedding import Embedder, ModelIdentity
from core.errors import (
    BusyError,
    ChannelSettingError,
    DiffUnavailableError,
    InvalidSpecError,
    OriginalUnavailableError,
    PermissionDeniedError,
    QuotaExceededError,
    SpecNameTakenError,
    SpecNotFoundError,
    StoreUnavailableError,
    UserFacingError,
    WorkspaceNotFoundError,
)
from core.health import READY, Readiness, Verdict, not_ready
from core.lint.service import DOCUMENT_FORMATS, build_report, coverage
from core.metrics import Metrics
from core.models import ApiSpec, SecurityScheme
from core.parsing.loader import check_upload, load_document
from core.parsing.worker import SpecParser
from core.phrasings import Phraser, PhrasingJob, PhrasingQueue
from core.ratelimit import ConcurrencyGuard, RequestLimiter, enforce
from core.registry import (
    OriginalMissingError,
    SpecRecord,
    SpecRegistry,
    SpecVersion,
    destinations,
    now,
    original_name,
    spec_header,
)
from core.state import (
    NS_ANSWERS,
    NS_PHRASINGS,
    NS_RERANKS,
    NS_THREADS,
    StateBackend,
    workspace_prefix,
)
from core.store import VectorStore

log = structlog.get_logger(__name__)

SPEC_LOCK_WAIT_SECONDS = 300.0
"""Longest an upload, re-index or forget waits for another one of the same spec (a Stripe upload takes ~25 s)."""
STALE_AFTER_SECONDS = 3600.0
"""Leftovers (unfinished index versions, temp files, unreferenced originals) younger than this may belong to
another process still at work, unless their writer is known to have exited; the start-up sweep keeps them."""
_SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class IngestProgress:
    """Where a long ingest is: `stage` is "queued", "parsing", "embedding" or "storing"."""

    stage: str
    done: int = 0
    total: int = 0

    @property
    def message(self) -> str:
        """A human progress line."""
        if self.stage == "queued":
            return messages.ingest_queued()
        return messages.ingest_progress(self.stage, self.done, self.total)


ProgressReporter = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class PurgeReport:
    """What purging a workspace removed."""

    workspace: str
    specs: int
    versions: int
    documents: int
    vectors: int
    originals: int
    cached_answers: int
    threads: int  # thread state entries: conversation memory, the bot's presence, notes already shown


@dataclass(frozen=True)
class SweepReport:
    """What the start-up sweep removed."""

    versions: int = 0
    documents: int = 0
    originals: int = 0


@dataclass(frozen=True)
class ReindexProgress:
    """One spec of a re-index: `stage` is "started", then "indexed", "skipped" or "failed" (`detail` says why).

    While a spec is being rebuilt, events with `step` set carry its indexing progress (embedding, storing).
    """

    workspace: str
    spec: str
    position: int  # 1-based, of `total`
    total: int
    stage: str
    detail: str = ""
    operations: int = 0
    seconds: float = 0.0
    step: IngestProgress | None = None

    @property
    def message(self) -> str:
        """A human progress line."""
        if self.step is not None:
            return self.step.message
        where = f"{self.workspace}/{self.spec}"
        return messages.reindex_progress(
            self.position, self.total, where, self.stage, self.detail, self.operations, self.seconds
        )


ReindexReporter = Callable[[ReindexProgress], None]


@dataclass(frozen=True)
class ReindexReport:
    """What a re-index did. A spec that failed kept its previous index version, live as before."""

    indexed: tuple[SpecRecord, ...]
    failed: tuple[tuple[str, str, str], ...]  # (workspace, spec, why)
    skipped: int
    seconds: float

    @property
    def summary(self) -> str:
        """The closing line for an operator."""
        return messages.reindex_summary(len(self.indexed), len(self.failed), self.skipped, self.seconds)


@dataclass(frozen=True)
class _Owner:
    """Whose spec an index version is: the uploader's, also when an operator re-indexes it later."""

    user: str
    user_name: str
    platform: str
    channel: str = ""  # the one channel that sees the spec ("" : the whole workspace)


@dataclass(frozen=True)
class _Rebuild:
    """A re-index of a live version from its stored original: not a new upload."""

    replaces: str  # the live index version rebuilt, which must still be live at the swap
    original_path: str  # the stored original it was read from, kept as it is
    indexed_at: float  # when it was uploaded, kept too


class _Superseded(Exception):
    """A re-indexed version was not made live: the spec was replaced or forgotten while it was being rebuilt."""


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did."""

    record: SpecRecord
    unchanged: bool  # the exact same file was already indexed under this name
    replaced: bool  # an older version of this spec was replaced
    seconds: float
    scheme_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # what a replacement changed that the team must notice (hosts, auth)
    diff: DiffReport | None = None  # a replacement's diff against the version it replaced
    quality: str = ""  # the spec's quality report in one line ("12 operations have no description; …")


def slugify_spec_name(filename: str) -> str:
    """A default spec name from a file name: `Stripe API (v1).yaml` -> `stripe-api-v1`."""
    stem = filename.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return (slug or "spec")[:64]


class SpecLibrary:
    """Every change to what a workspace has indexed, and the start-up checks that keep it consistent."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: SpecRegistry,
        store: VectorStore,
        embedder: Embedder,
        parser: SpecParser,
        upload_limiter: RequestLimiter,
        ingest_guard: ConcurrencyGuard,
        state: StateBackend,
        telemetry: Metrics,
        readiness: Readiness,
        phraser: Phraser | None = None,
    ) -> None:
        """`ingest_guard` bounds concurrent uploads; `readiness` gets a "reindex" check while one runs.

        With a `phraser`, each new index version gets user-phrased goals for its operations in the background.
        """
        self.settings = settings
        self.registry = registry
        self.store = store
        self.embedder = embedder
        self.parser = parser  # uploads are parsed in worker processes, never on the event loop
        self.upload_limiter = upload_limiter
        self.ingest_guard = ingest_guard
        self.state = state
        self.telemetry = telemetry
        self.readiness = readiness
        self._spec_locks: dict[tuple[str, str], asyncio.Lock] = {}
        # The embedding model's identity, once known (start-up check or first index): specs whose vectors came
        # from another model are left out of search, so one query never mixes vectors of two models.
        self.model_identity: ModelIdentity | None = None
        self._model_reindex: asyncio.Task[ReindexReport] | None = None  # the start-up re-index, if one runs
        self._model_reindex_done = 0
        self.phrasings = (
            PhrasingQueue(phraser, embedder, registry.documents, self.attach_phrasings) if phraser is not None else None
        )

    # ---- specs -------------------------------------------------------------------------------------

    async def ingest(self, request: UploadSpec, progress: ProgressReporter | None = None) -> IngestReport:
        """Index a spec file into the request's workspace, replacing an older version only on success.

        Replacing a spec is allowed to its uploader and workspace admins; uploads are rate-limited per user,
        capped per workspace (`MAX_SPECS_PER_WORKSPACE`) and per process (`INGEST_MAX_CONCURRENT`).
        Every attempt leaves one `audit` log line.
        """
        origin = request.origin
        filename = request.attachment.filename
        try:
            report = await self._ingest(request, progress)
        except BaseException as exc:
            outcome = "refused" if isinstance(exc, UserFacingError) else "error"
            if outcome == "refused":
                log.info(
                    "ingest_rejected",
                    workspace=origin.scope,
                    user=origin.user,
                    event_id=origin.event_id,
                    filename=filename,
                    reason=type(exc).__name__,
                )
            name = request.name or slugify_spec_name(filename)
            self._record_upload("upload", origin, name, outcome, reason=type(exc).__name__)
            raise
        record = report.record
        action = "replace" if report.replaced else "upload"
        outcome = "unchanged" if report.unchanged else "ok"
        self._record_upload(
            action, origin, record.name, outcome, version=record.index_version, content=record.content_hash[:16]
        )
        return report

    def _record_upload(self, action: str, origin: Origin, spec: str, outcome: str, **details: str) -> None:
        """Every upload attempt: one audit line and one count in the metrics."""
        _audit(action, origin, spec, outcome, **details)
        self.telemetry.upload(origin.platform, action, outcome)

    async def _ingest(self, request: UploadSpec, progress: ProgressReporter | None) -> IngestReport:
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
        # Refuse what can be refused before a byte is downloaded; checked again under the lock below.
        self._check_may_store(origin, name, request.private)
        if not origin.is_local:  # the operator's own bulk imports (CLI, evaluation) are not rate-limited
            await enforce(self.upload_limiter, f"upload:{origin.scope}:{origin.user}", messages.upload_rate_limited)
        async with self.ingest_guard.slot(lambda: report(IngestProgress("queued"))):
            return await self._ingest_admitted(request, name, started, report, bound)

    async def _ingest_admitted(
        self, request: UploadSpec, name: str, started: float, report: ProgressReporter, bound: Any
    ) -> IngestReport:
        origin = request.origin
        attachment = request.attachment
        data = await attachment.read(self.settings.max_file_bytes)
        content_hash = hashlib.sha256(data).hexdigest()
        async with self._spec_lock(origin.scope, name):
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
            channel = self._check_may_store(origin, name, request.private)
            report(IngestProgress("parsing"))
            spec = await self.parser.parse(
                attachment.filename,
                data,
                max_bytes=self.settings.max_file_bytes,
                allowed_extensions=self.settings.allowed_extensions,
            )
            owner = _Owner(origin.user, origin.user_name, origin.platform, channel)
            # Read before the swap: with SPEC_HISTORY=0 the replaced version's original goes with it.
            replaced = await self._live_version(origin.scope, name) if previous else None
            try:
                record = await self._index(
                    origin.scope, name, attachment.filename, data, content_hash, spec, report, owner
                )
            except StoreUnavailableError:  # the version went nowhere; the live one (if any) stays
                raise StoreUnavailableError(messages.upload_store_unavailable(attachment.filename)) from None
            if previous:
                await self._delete_quietly(origin.scope, previous.index_version)
                self._release_original(previous)
                await self._drop_unstored_parses()
        diff = await self._upload_diff(name, replaced, record, data, spec) if replaced else None
        quality = await self._quality_line(name, attachment.filename, data, spec)
        elapsed = time.perf_counter() - started
        bound.info(
            "ingest_done",
            operations=record.operation_count,
            seconds=round(elapsed, 2),
            format=spec.format.value,
            replaced=previous is not None,
        )
        return IngestReport(
            record,
            False,
            previous is not None,
            elapsed,
            tuple(s.name for s in spec.security_schemes),
            spec.warnings,
            replacement_changes(previous, record) if previous else (),
            diff,
            quality,
        )

    async def _quality_line(self, name: str, filename: str, data: bytes, spec: ApiSpec) -> str:
        """The upload's quality report in one line (coverage only: validation waits for `/api lint`).

        "" if it fails: the upload itself succeeded, so that is only logged.
        """
        def line() -> str:
            document = load_document(filename, data) if spec.format in DOCUMENT_FORMATS else None
            findings, operations = coverage(spec, document)
            return build_report(name, spec, findings, operations, None).upload_line()

        try:
            return await asyncio.to_thread(line)
        except Exception:
            log.warning("upload_quality_failed", spec=name, exc_info=True)
            return ""

    # ---- versions and diffs ------------------------------------------------------------------------------

    async def _live_version(self, scope: str, name: str) -> tuple[SpecVersion, bytes] | None:
        """The live version of a spec with its original's bytes (None if it cannot be read: no diff then)."""
        try:
            history = await asyncio.to_thread(self.registry.history, scope, name)
            if not history:
                return None
            data = await asyncio.to_thread(self.registry.read_original, scope, history[-1].original_path)
        except Exception:
            log.warning("upload_diff_unavailable", workspace=scope, spec=name, exc_info=True)
            return None
        return history[-1], data

    async def _upload_diff(
        self, name: str, replaced: tuple[SpecVersion, bytes], record: SpecRecord, data: bytes, spec: ApiSpec
    ) -> DiffReport | None:
        """What a re-upload changed; None if the diff failed (the upload itself succeeded: it is only logged)."""
        old, old_data = replaced
        history = await asyncio.to_thread(self.registry.history, record.workspace, name)
        new = history[-1] if history and history[-1].content_hash == record.content_hash else None
        if new is None:
            return None
        try:
            return await self._diff(name, (old, old_data, None), (new, data, spec))
        except Exception:
            log.warning("upload_diff_failed", workspace=record.workspace, spec=name, exc_info=True)
            return None

    async def diff(self, request: DiffSpec) -> DiffReport:
        """Compare two kept versions of a spec (by default the live one against the one before it)."""
        scope = request.origin.scope
        bound = log.bind(workspace=scope, spec=request.name, user=request.origin.user)
        record = self.visible_record(scope, request.origin.channel_key, request.name)
        history = await asyncio.to_thread(self.registry.history, scope, record.name)
        if len(history) < 2:
            bound.info("diff_refused", reason="one_version")
            raise DiffUnavailableError(messages.diff_only_one_version(record.name))
        after = _pick_version(history, request.after, record.name, bound) if request.after else history[-1]
        if request.before:
            before = _pick_version(history, request.before, record.name, bound)
        else:
            earlier = [v for v in history if v.number < after.number]
            if not earlier:
                bound.info("diff_refused", reason="no_earlier_version", after=after.number)
                raise DiffUnavailableError(messages.diff_only_one_version(record.name))
            before = earlier[-1]
        if before.number == after.number:
            bound.info("diff_refused", reason="same_version", version=before.number)
            raise DiffUnavailableError(messages.diff_same_version(record.name, before.number))
        sides = []
        for version in (before, after):
            try:
                data = await asyncio.to_thread(self.registry.read_original, scope, version.original_path)
            except OriginalMissingError:
                bound.warning("diff_original_missing", version=version.number)
                raise DiffUnavailableError(messages.diff_original_missing(record.name, version.number)) from None
            sides.append((version, data, None))
        return await self._diff(record.name, sides[0], sides[1])

    async def _diff(
        self,
        name: str,
        old: tuple[SpecVersion, bytes, ApiSpec | None],
        new: tuple[SpecVersion, bytes, ApiSpec | None],
    ) -> DiffReport:
        started = time.perf_counter()
        files = []
        for version, data, spec in (old, new):
            if spec is None and needs_parse(old[0].format, new[0].format):
                spec = await self._parse_kept(version, data)
            files.append(VersionFile(version.format, version.filename, data, spec))
        diff = await asyncio.to_thread(diff_versions, files[0], files[1])
        log.info(
            "spec_diffed",
            spec=name,
            before=old[0].number,
            after=new[0].number,
            breaking=diff.breaking_count,
            other=diff.non_breaking_count,
            partial=diff.truncated,
            seconds=round(time.perf_counter() - started, 3),
        )
        return DiffReport(name, old[0], new[0], diff)

    async def _parse_kept(self, version: SpecVersion, data: bytes) -> ApiSpec:
        """A kept original, parsed again (from the parse cache, usually): it was accepted when uploaded."""
        extension = Path(version.filename).suffix.lower().lstrip(".")
        return await self.parser.parse(
            version.filename,
            data,
            max_bytes=max(self.settings.max_file_bytes, len(data)),
            allowed_extensions=self.settings.allowed_extensions | {extension},
        )

    async def version_counts(self, scope: str) -> dict[str, int]:
        """How many versions each spec of a workspace keeps."""
        return await asyncio.to_thread(self.registry.version_counts, scope)

    @asynccontextmanager
    async def _spec_lock(self, scope: str, name: str) -> AsyncIterator[None]:
        """Hold one spec name of a workspace against every other writer, in this process and in any replica.

        The workspace is held shared at the same time, so a purge (which holds it exclusively) waits for
        uploads in progress everywhere and no upload starts during one.
        A writer that vanished without its connection being closed holds the lock until the database notices
        (TCP keepalives, about a minute); waiting is bounded, then the user is told to try again.
        """
        local = self._spec_locks.setdefault((scope, name), asyncio.Lock())
        async with AsyncExitStack() as held:
            try:
                async with asyncio.timeout(SPEC_LOCK_WAIT_SECONDS):
                    await held.enter_async_context(local)
                    await held.enter_async_context(self.registry.lock(_workspace_lock(scope), shared=True))
                    await held.enter_async_context(self.registry.lock(f"spec:{scope}:{name}"))
            except TimeoutError:
                log.warning("spec_lock_timeout", workspace=scope, spec=name, seconds=SPEC_LOCK_WAIT_SECONDS)
                raise BusyError(messages.spec_busy(name)) from None
            yield

    def _check_may_store(self, origin: Origin, name: str, private: bool = False) -> str:
        """Raise unless `origin` may store a spec called `name`: its uploader or an admin, within the quota.

        Returns the channel the spec will be private to ("" : the whole workspace). Names are one namespace per
        workspace, private specs included, so a name always means one spec: a name used by a spec private to
        another channel is refused (without saying where), and a shared spec is never replaced by a private
        one. A re-upload keeps the visibility the spec has.
        """
        here = origin.channel_key
        if private and (origin.is_local or not here):
            raise ChannelSettingError(messages.private_needs_chat())
        existing = self.registry.get(origin.scope, name)
        if existing is not None:
            if not existing.visible_in(here):
                raise SpecNameTakenError(messages.spec_name_taken(name))
            if private and not existing.private:
                raise SpecNameTakenError(messages.spec_is_shared(name))
            self._check_may_change(origin, existing, "replace")
            return existing.channel
        limit = self.settings.max_specs_per_workspace
        if len(self.registry.list_records(origin.scope)) >= limit:
            raise QuotaExceededError(messages.spec_quota_reached(limit))
        return here if private else ""

    @staticmethod
    def _check_may_change(origin: Origin, record: SpecRecord, action: str) -> None:
        if origin.is_admin or origin.user == record.uploaded_by:
            return
        raise PermissionDeniedError(messages.not_allowed_to_change(record.name, action, record.uploader_name))

    async def _index(
        self,
        scope: str,
        name: str,
        filename: str,
        data: bytes,
        content_hash: str,
        spec: ApiSpec,
        report: ProgressReporter,
        owner: _Owner,
        rebuild: _Rebuild | None = None,
    ) -> SpecRecord:
        """Build, embed and store a new index version of a spec, then make it live (the previous one stays).

        With `rebuild`, the new version goes live only if `rebuild.replaces` still is (else `_Superseded`).
        """
        identity = self.model_identity = await self.embedder.identity()
        documents = await asyncio.to_thread(build_documents, spec)
        index_version = uuid.uuid4().hex[:16]
        self.registry.begin_version(scope, name, index_version)  # a crash from here on is swept at start-up
        try:
            report(IngestProgress("embedding", 0, len(documents)))
            embeddings = await self.embedder.embed_documents(
                [d.embed_text for d in documents],
                lambda done, total: report(IngestProgress("embedding", done, total)),
            )
            report(IngestProgress("storing", 0, len(documents)))
            await asyncio.to_thread(self.registry.put_documents, scope, index_version, documents)
            await self.store.add(scope, name, index_version, documents, embeddings)
            report(IngestProgress("storing", len(documents), len(documents)))
            original = original_name(content_hash, filename) if rebuild is None else rebuild.original_path
            record = SpecRecord(
                workspace=scope,
                name=name,
                format=spec.format,
                title=spec.title,
                version=spec.version,
                content_hash=content_hash,
                index_version=index_version,
                operation_count=len(spec.operations),
                scheme_count=len(spec.security_schemes),
                uploaded_by=owner.user,
                platform=owner.platform,
                indexed_at=now() if rebuild is None else rebuild.indexed_at,
                original_path=original,
                filename=filename,
                header=spec_header(spec),
                uploader_name=owner.user_name,
                destinations=destinations(spec),
                embedding_model=identity.text,
                channel=owner.channel,
            )
            if rebuild is not None:
                # Under the spec's lock (held by the caller across processes), so no upload or forget slips in
                # between this check and the swap.
                live = self.registry.get(scope, name)
                if live is None or live.index_version != rebuild.replaces:
                    raise _Superseded
            # The swap: from here on, searches see the new version (its original is stored with it).
            self.registry.put(record, original=data, history=self.settings.spec_history)
            if self.phrasings is not None:  # in the background: the version is searchable already
                self.phrasings.submit(PhrasingJob(scope, name, index_version))
            return record
        except BaseException:
            await self._delete_quietly(scope, index_version)
            raise

    async def attach_phrasings(
        self, job: PhrasingJob, keys: Sequence[str], embeddings: Sequence[Sequence[float]]
    ) -> bool:
        """Store phrasings' vectors as aliases of their documents, if the job's version is still the live one.

        Under the spec's lock, so a replacement or forget cannot slip in between the check and the write (both
        delete a version with everything stored under it). False when the version is no longer live.
        """
        async with self._spec_lock(job.workspace, job.spec):
            live = await asyncio.to_thread(self.registry.get, job.workspace, job.spec)
            if live is None or live.index_version != job.index_version:
                return False
            await self.store.add_aliases(job.workspace, job.spec, job.index_version, keys, embeddings)
            return True

    async def _delete_quietly(self, scope: str, index_version: str) -> None:
        try:
            await asyncio.to_thread(self.registry.delete_documents, scope, index_version)
            await self.store.delete_version(scope, index_version)
            self.registry.end_version(scope, index_version)  # kept if a step above failed: the sweep retries
        except Exception:
            log.warning("delete_version_failed", workspace=scope, index_version=index_version, exc_info=True)

    def _spec_name(self, requested: str | None, filename: str) -> str:
        if requested is None:
            return slugify_spec_name(filename)
        if not _SPEC_NAME.match(requested):
            raise InvalidSpecError(messages.invalid_spec_name(requested))
        return requested

    async def list_specs(self, request: ListSpecs) -> list[SpecRecord]:
        """The workspace's specs that the request's channel sees (private ones only in their own channel)."""
        origin = request.origin
        return await asyncio.to_thread(self.registry.list_visible, origin.scope, origin.channel_key)

    async def set_visibility(self, request: SetVisibility) -> SpecRecord:
        """Make a spec private to the request's channel, or share it with the workspace (its uploader or an admin).

        A spec made private stops being the default of other channels.
        """
        origin = request.origin
        scope, here = origin.scope, origin.channel_key
        if request.private and (origin.is_local or not here):
            raise ChannelSettingError(messages.private_needs_chat())
        action = "make_private" if request.private else "share"
        async with self._spec_lock(scope, request.name):
            try:
                record = self.visible_record(scope, here, request.name)
                self._check_may_change(origin, record, "replace")
            except UserFacingError as exc:
                _audit(action, origin, request.name, "refused", reason=type(exc).__name__)
                raise
            channel = here if request.private else ""
            await asyncio.to_thread(self.registry.set_visibility, scope, record.name, channel)
        _audit(action, origin, record.name, "ok", channel=channel)
        return replace(record, channel=channel)

    async def forget(self, request: ForgetSpec) -> SpecRecord:
        """Remove a spec and its documents from the workspace (its uploader or a workspace admin only)."""
        origin = request.origin
        scope = origin.scope
        async with self._spec_lock(scope, request.name):
            try:
                record = self.visible_record(scope, origin.channel_key, request.name)
                self._check_may_change(origin, record, "forget")
            except UserFacingError as exc:
                _audit("forget", origin, request.name, "refused", reason=type(exc).__name__)
                raise
            documents = []
            if self.phrasings is not None:  # read before they are deleted: their cached phrasings go too
                documents = await asyncio.to_thread(self.registry.documents, scope, record.index_version)
            earlier = self.registry.delete(scope, record.name)
            if earlier:
                log.info("history_originals_deleted", workspace=scope, spec=record.name, originals=earlier)
            await self._delete_quietly(scope, record.index_version)
            self._release_original(record)
            await self._drop_unstored_parses()
            if self.phrasings is not None:
                await self.phrasings.forget(scope, record.name, documents)
        log.info("spec_forgotten", workspace=scope, spec=record.name, user=origin.user)
        _audit("forget", origin, record.name, "ok", version=record.index_version, content=record.content_hash[:16])
        return record

    def _release_original(self, record: SpecRecord) -> None:
        """Delete the uploaded original of a record that is gone, unless another spec of the workspace shares it."""
        try:
            if self.registry.release_original(record.workspace, record.original_path):
                log.info("original_deleted", workspace=record.workspace, spec=record.name)
        except Exception:
            log.warning("original_delete_failed", workspace=record.workspace, spec=record.name, exc_info=True)

    async def _drop_unstored_parses(self) -> None:
        """Drop the parser's kept results of files no workspace stores any more (they hold the spec's text)."""
        try:
            dropped = await self.parser.retain(await asyncio.to_thread(self.registry.original_hashes))
        except Exception:
            log.warning("parse_cache_retain_failed", exc_info=True)
            return
        if dropped:
            log.info("parse_results_dropped", count=dropped)

    async def purge_workspace(self, request: PurgeWorkspace) -> PurgeReport:
        """Remove everything a workspace stored: specs, documents, vectors, originals, cached answers, threads.

        Uploads of the workspace still being indexed by this process are waited for first, so none of them
        brings a spec back afterwards. Safe to repeat (a second purge finds nothing). If the vector store
        cannot be reached, the workspace's index versions stay in the ledger for the start-up sweep.
        """
        scope = request.origin.scope
        async with AsyncExitStack() as held:
            for key in [k for k in self._spec_locks if k[0] == scope]:
                await held.enter_async_context(self._spec_locks[key])
            await held.enter_async_context(self.registry.lock(_workspace_lock(scope)))
            report, names, outcome = await self._purge(scope)
        for key in [k for k in self._spec_locks if k[0] == scope and not self._spec_locks[k].locked()]:
            del self._spec_locks[key]
        log.info("workspace_purged", reason=request.reason, outcome=outcome, **asdict(report))
        _audit("purge", request.origin, "*", outcome, reason=request.reason, specs=",".join(names))
        return report

    async def _purge(self, scope: str) -> tuple[PurgeReport, list[str], str]:
        names = [r.name for r in self.registry.list_records(scope)]
        specs = self.registry.delete_specs(scope)  # from here on nothing of the workspace is visible
        versions = self.registry.versions_of(scope)
        outcome, vectors, documents = "ok", 0, 0
        try:
            vectors = await self.store.drop_workspace(scope)
            documents = await asyncio.to_thread(self.registry.delete_workspace_data, scope)
        except Exception:
            log.warning("purge_vectors_failed", workspace=scope, exc_info=True)
            outcome = "partial"
        originals = await asyncio.to_thread(self.registry.delete_originals, scope)
        await self._drop_unstored_parses()
        prefix = workspace_prefix(scope)
        answers = await self.state.delete_prefix(NS_ANSWERS, prefix)
        threads = await self.state.delete_prefix(NS_THREADS, prefix)
        # Derived from the workspace's specs, so they go too (not counted in the report).
        await self.state.delete_prefix(NS_RERANKS, prefix)
        if self.phrasings is not None:
            await self.phrasings.forget(scope, None)
        await self.state.delete_prefix(NS_PHRASINGS, prefix)
        report = PurgeReport(scope, specs, len(versions), documents, vectors, originals, answers, threads)
        return report, names, outcome

    async def sweep_leftovers(self, stale_after: float = STALE_AFTER_SECONDS) -> SweepReport:
        """Remove what a crash left behind: unfinished index versions, `.part` files, unreferenced originals.

        Meant for start-up (`core.bootstrap.build_assistant`); cheap when there is nothing to sweep. Index
        versions no record points at are removed when their writer ran on this host and has exited, or when
        they are older than `stale_after` (another replica may still be writing a young one). Never raises:
        a failure is logged and the rest is left for the next start.
        """
        versions = documents = 0
        try:
            for scope, index_version in self.registry.stale_versions(stale_after):
                documents += self.registry.count_documents(scope, index_version)
                await asyncio.to_thread(self.registry.delete_documents, scope, index_version)
                await self.store.delete_version(scope, index_version)
                self.registry.end_version(scope, index_version)
                versions += 1
            originals = await asyncio.to_thread(self.registry.sweep_originals, stale_after)
        except Exception:
            log.warning("startup_sweep_failed", versions=versions, exc_info=True)
            return SweepReport(versions, documents)
        await self._drop_unstored_parses()
        report = SweepReport(versions, documents, originals)
        log.info("startup_sweep", versions=versions, documents=documents, originals=originals)
        return report

    # ---- re-indexing ---------------------------------------------------------------------------------

    async def reindex(
        self, workspace: str | None = None, spec: str | None = None, progress: ReindexReporter | None = None
    ) -> ReindexReport:
        """Rebuild documents, vectors and lexical index of the chosen specs from their stored originals.

        `workspace` (a storage scope such as `slack:T0123`) and `spec` (a name, in every workspace unless
        `workspace` is given) narrow the choice; neither means every spec. Each spec gets a fresh index version,
        made live like an upload and the old one removed; one that fails keeps its previous version live and
        the others go on. Raises `WorkspaceNotFoundError` / `SpecNotFoundError` when the choice matches nothing.
        """
        records = self._reindex_selection(workspace, spec)
        self.model_identity = await self.embedder.identity()
        return await self._reindex_records(records, progress or (lambda _: None), only_stale=False)

    def _reindex_selection(self, workspace: str | None, spec: str | None) -> list[SpecRecord]:
        known = self.registry.workspaces()
        if workspace is not None and workspace not in known:
            raise WorkspaceNotFoundError(messages.workspace_not_found(workspace, known))
        scopes = [workspace] if workspace is not None else known
        records = [r for scope in scopes for r in self.registry.list_records(scope)]
        if spec is None:
            return records
        chosen = [r for r in records if r.name == spec]
        if not chosen:
            raise SpecNotFoundError(messages.spec_not_found(spec, sorted({r.name for r in records})))
        return chosen

    async def _reindex_records(
        self, records: list[SpecRecord], progress: ReindexReporter, *, only_stale: bool
    ) -> ReindexReport:
        """Re-index `records` one at a time (`only_stale`: leave those already on the current model)."""
        started = time.perf_counter()
        indexed: list[SpecRecord] = []
        failed: list[tuple[str, str, str]] = []
        skipped = 0
        for position, record in enumerate(records, 1):
            self._model_reindex_done = position - 1
            begun = ReindexProgress(record.workspace, record.name, position, len(records), "started")
            bound = log.bind(workspace=record.workspace, spec=record.name, position=position, total=len(records))
            progress(begun)
            spec_started = time.perf_counter()

            def step(stage: IngestProgress, begun: ReindexProgress = begun) -> None:
                progress(replace(begun, step=stage))

            try:
                rebuilt = await self._reindex_one(record, step, only_stale=only_stale)
            except UserFacingError as exc:
                bound.warning("spec_reindex_failed", reason=type(exc).__name__)
                end = replace(begun, stage="failed", detail=exc.user_message)
            except Exception:
                bound.exception("spec_reindex_failed", reason="unexpected")
                end = replace(begun, stage="failed", detail=messages.reindex_unexpected("spec_reindex_failed"))
            else:
                seconds = time.perf_counter() - spec_started
                if isinstance(rebuilt, SpecRecord):
                    indexed.append(rebuilt)
                    bound.info("spec_reindexed", index_version=rebuilt.index_version, seconds=round(seconds, 2))
                    end = replace(begun, stage="indexed", operations=rebuilt.operation_count, seconds=seconds)
                else:
                    skipped += 1
                    bound.info("spec_reindex_skipped", reason=rebuilt)
                    end = replace(begun, stage="skipped", detail=rebuilt)
            if end.stage == "failed":
                failed.append((record.workspace, record.name, end.detail))
            progress(end)
        self._model_reindex_done = len(records)
        report = ReindexReport(tuple(indexed), tuple(failed), skipped, time.perf_counter() - started)
        log.info(
            "reindex_done", indexed=len(indexed), failed=len(failed), skipped=skipped, seconds=round(report.seconds, 2)
        )
        return report

    async def _reindex_one(self, record: SpecRecord, report: ProgressReporter, *, only_stale: bool) -> SpecRecord | str:
        """Rebuild one spec from its original under its lock; the new record, or why it was skipped."""
        scope, name = record.workspace, record.name
        async with self._spec_lock(scope, name):
            current = self.registry.get(scope, name)  # an upload or forget may have come first
            if current is None:
                return messages.reindex_skipped("forgotten")
            if only_stale and not self.needs_reindex(current):
                return messages.reindex_skipped("current")
            try:
                data = await asyncio.to_thread(self.registry.read_original, scope, current.original_path)
            except OriginalMissingError:
                raise OriginalUnavailableError(messages.original_missing(name)) from None
            if hashlib.sha256(data).hexdigest() != current.content_hash:
                raise OriginalUnavailableError(messages.original_changed(name))
            report(IngestProgress("parsing"))
            # The file was accepted when it was uploaded; a lower size limit or a narrower type list set since
            # then must not stop it being rebuilt.
            extension = Path(current.filename).suffix.lower().lstrip(".")
            spec = await self.parser.parse(
                current.filename,
                data,
                max_bytes=max(self.settings.max_file_bytes, len(data)),
                allowed_extensions=self.settings.allowed_extensions | {extension},
            )
            owner = _Owner(current.uploaded_by, current.uploader_name, current.platform, current.channel)
            rebuild = _Rebuild(current.index_version, current.original_path, current.indexed_at)
            try:
                rebuilt = await self._index(
                    scope, name, current.filename, data, current.content_hash, spec, report, owner, rebuild
                )
            except _Superseded:  # the new version was already removed; what replaced it is live
                return messages.reindex_skipped("changed")
            # The original stays (the new version was built from it); only the old index version goes.
            await self._delete_quietly(scope, current.index_version)
        return rebuilt

    def needs_reindex(self, record: SpecRecord) -> bool:
        """Whether a spec's vectors came from another embedding model than this one (or an unrecorded one)."""
        return self.model_identity is not None and not self.model_identity.same_vectors(record.embedding_model)

    def stale_specs(self, scope: str) -> list[str]:
        """The specs of a workspace left out of search until they are re-indexed (for spec lists)."""
        return [r.name for r in self.registry.list_records(scope) if self.needs_reindex(r)]

    @property
    def reindexing(self) -> bool:
        """Whether the start-up re-index after a model change is still running."""
        return self._model_reindex is not None and not self._model_reindex.done()

    async def check_embedding_model(self, reindex: bool) -> list[SpecRecord]:
        """At start-up: find the specs whose vectors came from another embedding model; returns them.

        With `reindex` (`REINDEX_ON_MODEL_CHANGE`), they are re-indexed in the background, logging progress,
        and readiness reports "reindex" as not ready until it is done (`wait_for_model_reindex` waits for it).
        Without, each gets a warning naming the command to run. Either way they stay out of search until
        their vectors come from the current model.
        """
        identity = self.model_identity = await self.embedder.identity()
        stale = [r for scope in self.registry.workspaces() for r in self.registry.list_records(scope)]
        stale = [r for r in stale if self.needs_reindex(r)]
        if not stale:
            log.info("embedding_model_checked", model=identity.label, stale_specs=0)
            return stale
        if not reindex:
            for record in stale:
                recorded = ModelIdentity.parse(record.embedding_model)
                log.warning(
                    "spec_needs_reindex",
                    workspace=record.workspace,
                    spec=record.name,
                    indexed_with=recorded.label if recorded else "unrecorded",
                    model=identity.label,
                    run=messages.reindex_command(record.workspace, record.name),
                )
            return stale
        log.warning("embedding_model_changed", model=identity.label, stale_specs=len(stale), action="reindexing")

        def show(event: ReindexProgress) -> None:
            if event.step is None:
                log.info("model_reindex_progress", line=event.message, stage=event.stage)

        self._model_reindex_done = 0
        self._model_reindex = asyncio.create_task(self._reindex_records(stale, show, only_stale=True))

        def ready() -> Verdict:
            if not self.reindexing:
                return READY
            return not_ready(f"re-indexing after an embedding model change ({self._model_reindex_done}/{len(stale)})")

        self.readiness.register("reindex", ready)
        return stale

    async def wait_for_model_reindex(self) -> ReindexReport | None:
        """Wait for the start-up re-index, if one runs; its report."""
        return await self._model_reindex if self._model_reindex is not None else None

    def record(self, scope: str, name: str) -> SpecRecord:
        """The record of a spec, or `SpecNotFoundError` naming the ones there are (operator commands)."""
        record = self.registry.get(scope, name)
        if record is None:
            raise SpecNotFoundError(messages.spec_not_found(name, [r.name for r in self.registry.list_records(scope)]))
        return record

    def visible_record(self, scope: str, channel: str, name: str) -> SpecRecord:
        """The record of a spec `channel` sees, or `SpecNotFoundError` naming those it sees.

        A spec private to another channel is answered exactly as a name nobody uses, so nothing of it shows.
        """
        record = self.registry.get(scope, name)
        if record is None or not record.visible_in(channel):
            known = [r.name for r in self.registry.list_visible(scope, channel)]
            raise SpecNotFoundError(messages.spec_not_found(name, known))
        return record

    async def aclose(self) -> None:
        """Stop the start-up re-index if it still runs (its specs keep their previous versions), and phrasings."""
        if self.phrasings is not None:
            await self.phrasings.aclose()
        if self._model_reindex is not None and not self._model_reindex.done():
            self._model_reindex.cancel()
            with suppress(asyncio.CancelledError):
                await self._model_reindex


def _pick_version(history: Sequence[SpecVersion], given: str, name: str, bound: Any) -> SpecVersion:
    """The kept version `given` names: its number (`3`, `v3`), else the newest whose own version string it is."""
    text = given.strip()
    digits = text[1:] if text[:1] in {"v", "V"} and text[1:].isdigit() else text
    if digits.isdigit():
        found = next((v for v in history if v.number == int(digits)), None)
        if found is not None:
            return found
    labelled = [v for v in history if v.version and v.version == text]
    if labelled:
        return labelled[-1]
    bound.info("diff_refused", reason="unknown_version", given=text[:40])
    raise DiffUnavailableError(messages.diff_bad_version(name, text[:40], [v.number for v in history]))


def _workspace_lock(scope: str) -> str:
    return f"workspace:{scope}"


def _audit(action: str, origin: Origin, spec: str, outcome: str, **details: str) -> None:
    """One `event=audit` line per upload, replace, forget and purge: who, where, which spec, what happened."""
    log.info(
        "audit",
        action=action,
        outcome=outcome,
        platform=origin.platform,
        workspace=origin.scope,
        user=origin.user,
        user_name=origin.user_name,
        admin=origin.is_admin,
        spec=spec,
        event_id=origin.event_id,
        **details,
    )


def replacement_changes(previous: SpecRecord, current: SpecRecord) -> tuple[str, ...]:
    """What a new version changed in where requests go and how they authenticate, as lines for the team."""
    changes = []
    if previous.destinations != current.destinations:
        changes.append(messages.destinations_changed(list(previous.destinations), list(current.destinations)))
    old_auth = {_describe_scheme(s) for s in previous.header.security_schemes}
    new_auth = {_describe_scheme(s) for s in current.header.security_schemes}
    if old_auth != new_auth:
        changes.append(messages.auth_changed(sorted(old_auth - new_auth), sorted(new_auth - old_auth)))
    return tuple(changes)


def _describe_scheme(scheme: SecurityScheme) -> str:
    """A scheme as one comparable line: name, type, where the credential goes, and the OAuth URLs and scopes."""
    parts = [f"{scheme.name}: {scheme.type}"]
    if scheme.scheme:
        parts.append(scheme.scheme)
    if scheme.location or scheme.param_name:
        parts.append(f"in {scheme.location} {scheme.param_name}".rstrip())
    parts.extend(scheme.flows)
    if scheme.scopes:
        parts.append("scopes " + ",".join(sorted(scheme.scopes)))
    return " ".join(parts)


