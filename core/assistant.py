"""The assistant: the one object every platform adapter calls.

It answers (search over a workspace's specs, generation, citations, snippets, caching, thread memory) and
forwards every change to what is indexed to its `SpecLibrary` (`core.library`: upload, re-index, forget,
purge, sweep). Adapters build a request dataclass from `core.actions`, call a method here, and render what
comes back; they never reach past this class.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from structlog.contextvars import bound_contextvars

from core import messages
from core.actions import (
    AskQuestion,
    CheckRequest,
    DiffSpec,
    DrawDiagram,
    ForgetSpec,
    LintSpec,
    ListSpecs,
    Origin,
    PurgeWorkspace,
    SetVisibility,
    ShowSnippet,
    UploadSpec,
    UseSpec,
)
from core.answers import (
    Answer,
    AnswerEvent,
    AnswerKind,
    AnswerStream,
    Citation,
    CodeBlock,
    Evidence,
    FinalAnswer,
    StatusUpdate,
    TextBlock,
    TextDelta,
    answer_from_dict,
    answer_to_dict,
    attach_scheme_uses,
    read_answer,
    retrieval_answer,
    snippet_blocks,
)
from core.auth_questions import classify, rank_for_auth
from core.channels import CLEAR_WORD, DEFAULT_SPEC_CANDIDATES, leaves_default
from core.checks.pasted import is_check_request
from core.checks.service import CheckReport, RequestChecker, check_answer, checked_summary, names_of
from core.config import Settings
from core.diagrams import AUTH, OVERVIEW, SCHEMA, Diagram
from core.diagrams.asking import DiagramIntent, diagram_intent
from core.diagrams.auth import auth_diagram
from core.diagrams.overview import overview_diagram
from core.diagrams.render import render_png
from core.diagrams.schemas import GraphQLSchemas, OpenApiSchemas, SchemaSource, schema_diagram
from core.diffs.questions import DiffQuestion, NamedSpec, diff_answer, diff_question, named_spec
from core.diffs.report import DiffReport, ReportFile
from core.embedding import Embedder, ModelIdentity
from core.errors import (
    BusyError,
    ChannelSettingError,
    DiagramError,
    DiffUnavailableError,
    NothingIndexedError,
    RateLimitedError,
    SpecNeedsReindexError,
    UserFacingError,
)
from core.followups import follow_up_query, main_action, remembered_item, rerank_follow_up, topic
from core.generation import AnswerGenerator, GenerationError, asks_for_spec_list, review_answer, smalltalk_reply
from core.health import READY, Readiness, Verdict, not_ready
from core.library import (
    STALE_AFTER_SECONDS,
    IngestReport,
    ProgressReporter,
    PurgeReport,
    ReindexReport,
    ReindexReporter,
    SpecLibrary,
    SweepReport,
)
from core.lifecycle import InFlightWork
from core.lint.report import LintReport
from core.lint.service import lint_spec
from core.mentions import defuse_mentions
from core.metrics import Metrics
from core.models import ApiSpec, SpecFormat
from core.parsing.text import truncate
from core.parsing.worker import SpecParser
from core.phrasings import Phraser
from core.ratelimit import ConcurrencyGuard, RequestLimiter, enforce
from core.registry import (
    SpecRecord,
    SpecRegistry,
)
from core.replies import spec_list, specs_markdown
from core.rerank import Reranker
from core.retrieval import RetrievedItem, Retriever, SearchScope
from core.snippet_choice import SnippetTarget, available_languages, operation_ref
from core.snippets import LANGUAGES, build_snippet, language_label, normalise_language
from core.state import (
    NS_ANSWERS,
    NS_EMBEDDINGS,
    NS_EVENTS,
    ConversationMemory,
    StateBackend,
    Turn,
    workspace_key,
)
from core.store import VectorStore
from core.threads import ThreadPresence, thread_key

log = structlog.get_logger(__name__)
QUEUE_UPDATE_SECONDS = 5.0  # a question waiting for the LLM is told its new place at most this often

MAX_QUESTION_CHARS = 4000
EVENT_TTL_SECONDS = 6 * 3600  # Slack retries within minutes; reconnect replays are quicker still
VOTE_TTL_SECONDS = 30 * 24 * 3600  # one 👍/👎 per person and answer


class Assistant:
    """The shared async core behind every platform.

    Its collaborators are built, and closed, by the composition root (`core.bootstrap.build_assistant`); the
    assistant only uses them. What it builds itself is its own bookkeeping: spec locks, work in flight, readiness.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: SpecRegistry,
        store: VectorStore,
        embedder: Embedder,
        retriever: Retriever,
        state: StateBackend,
        memory: ConversationMemory,
        threads: ThreadPresence,
        limiter: RequestLimiter,
        upload_limiter: RequestLimiter,
        guard: ConcurrencyGuard,
        ingest_guard: ConcurrencyGuard,
        parser: SpecParser,
        generator: AnswerGenerator | None,
        telemetry: Metrics,
        reranker: Reranker | None = None,
        phraser: Phraser | None = None,
    ) -> None:
        """`guard` bounds concurrent answers, `ingest_guard` concurrent uploads; `generator` None: retrieval only.

        `reranker` None: the retriever's fused order stands (no key, or RERANK_ENABLED off). `phraser`: uploaded
        operations get user-phrased goals in the background (PHRASINGS_ENABLED).
        """
        self.settings = settings
        self.readiness = Readiness()  # GET /ready; platform adapters add their connections
        self.library = SpecLibrary(
            settings,
            registry=registry,
            store=store,
            embedder=embedder,
            parser=parser,
            upload_limiter=upload_limiter,
            ingest_guard=ingest_guard,
            state=state,
            telemetry=telemetry,
            readiness=self.readiness,
            phraser=phraser,
        )
        self.retriever = retriever
        self.state = state
        self.memory = memory
        self.limiter = limiter
        self.upload_limiter = upload_limiter
        self.guard = guard
        self.ingest_guard = ingest_guard
        self.threads = threads
        self.generator = generator
        self.reranker = reranker
        self.telemetry = telemetry  # this instance's own Prometheus registry (GET /metrics)
        if reranker is not None:
            telemetry.prepare_reranks()
        self.feedback = {True: 0, False: 0}
        self.work = InFlightWork()  # what a graceful shutdown waits for
        self.checker = RequestChecker(registry, self._operations_for_check)
        self._register_readiness_checks()

    # ---- specs (the library does the work) -----------------------------------------------------------

    async def ingest(self, request: UploadSpec, progress: ProgressReporter | None = None) -> IngestReport:
        """Index an uploaded spec (see `SpecLibrary.ingest`)."""
        return await self.library.ingest(request, progress)

    async def list_specs(self, request: ListSpecs) -> list[SpecRecord]:
        """The workspace's specs."""
        return await self.library.list_specs(request)

    async def forget(self, request: ForgetSpec) -> SpecRecord:
        """Remove a spec (see `SpecLibrary.forget`); a channel that had it as its default searches every spec again."""
        return await self.library.forget(request)

    async def set_visibility(self, request: SetVisibility) -> SpecRecord:
        """Make a spec private to the request's channel, or share it again (see `SpecLibrary.set_visibility`)."""
        return await self.library.set_visibility(request)

    # ---- channel defaults ----------------------------------------------------------------------------

    async def channel_default(self, origin: Origin) -> str | None:
        """The spec questions in the origin's channel search first (`use NAME`), if it has one."""
        if not origin.channel_key:
            return None
        return await asyncio.to_thread(self.registry.channel_default, origin.scope, origin.channel_key)

    async def use(self, request: UseSpec) -> str:
        """Set, clear or show the channel's default spec; the confirmation to show.

        Stored in the registry (SQLite, or PostgreSQL shared by replicas), so it survives restarts and every
        replica sees it. The spec must be one the channel sees and that can be searched now.
        """
        origin = request.origin
        channel = origin.channel_key
        if not channel:
            raise ChannelSettingError(messages.channel_default_needs_channel())
        bound = log.bind(workspace=origin.scope, channel=channel, user=origin.user)
        if request.clear:
            gone = await asyncio.to_thread(self.registry.clear_channel_default, origin.scope, channel)
            bound.info("channel_default_cleared", spec=gone)
            return messages.channel_default_cleared(gone)
        if request.spec is None:
            return messages.channel_default_shown(await self.channel_default(origin))
        if request.spec.lower() == CLEAR_WORD:
            raise ChannelSettingError(messages.channel_default_reserved(CLEAR_WORD))
        versions = await asyncio.to_thread(self.search_scope, origin.scope, request.spec, channel)
        [name] = versions.versions
        await asyncio.to_thread(self.registry.set_channel_default, origin.scope, channel, name, origin.user)
        bound.info("channel_default_set", spec=name)
        return messages.channel_default_set(name)

    async def diff(self, request: DiffSpec) -> DiffReport:
        """Compare two kept versions of a spec (see `SpecLibrary.diff`)."""
        return await self.library.diff(request)

    async def version_counts(self, scope: str) -> dict[str, int]:
        """How many versions each spec of a workspace keeps."""
        return await self.library.version_counts(scope)

    async def purge_workspace(self, request: PurgeWorkspace) -> PurgeReport:
        """Remove everything a workspace stored (see `SpecLibrary.purge_workspace`)."""
        return await self.library.purge_workspace(request)

    async def forget_workspace(self, origin: Origin, reason: str) -> None:
        """The platform removed the bot from a workspace (uninstalled, kicked): purge everything stored there.

        It runs even while shutting down, since the platform never says it again; a re-delivered event is
        ignored. Nobody waits for a reply, so a failure is logged, never raised.
        """
        with bound_contextvars(request_id=origin.request_id):
            async with self.work.running(f"{origin.platform}_purge", essential=True):
                try:
                    if await self.claim_event(origin):
                        await self.purge_workspace(PurgeWorkspace(origin, reason))
                except Exception:
                    log.exception("purge_failed", platform=origin.platform, workspace=origin.workspace, reason=reason)

    async def sweep_leftovers(self, stale_after: float = STALE_AFTER_SECONDS) -> SweepReport:
        """Remove what a crash left behind (see `SpecLibrary.sweep_leftovers`)."""
        return await self.library.sweep_leftovers(stale_after)

    async def reindex(
        self, workspace: str | None = None, spec: str | None = None, progress: ReindexReporter | None = None
    ) -> ReindexReport:
        """Rebuild the chosen specs from their stored originals (see `SpecLibrary.reindex`)."""
        return await self.library.reindex(workspace, spec, progress)

    async def check_embedding_model(self, reindex: bool) -> list[SpecRecord]:
        """At start-up: the specs indexed with another embedding model (see `SpecLibrary.check_embedding_model`)."""
        return await self.library.check_embedding_model(reindex)

    async def wait_for_model_reindex(self) -> ReindexReport | None:
        """Wait for the start-up re-index, if one runs; its report."""
        return await self.library.wait_for_model_reindex()

    def needs_reindex(self, record: SpecRecord) -> bool:
        """Whether a spec's vectors came from another embedding model than this one."""
        return self.library.needs_reindex(record)

    def stale_specs(self, scope: str) -> list[str]:
        """The specs of a workspace left out of search until they are re-indexed (for spec lists)."""
        return self.library.stale_specs(scope)

    @property
    def reindexing(self) -> bool:
        """Whether the start-up re-index after a model change is still running."""
        return self.library.reindexing

    @property
    def model_identity(self) -> ModelIdentity | None:
        """The embedding model's identity, once known."""
        return self.library.model_identity

    # The library's collaborators, reachable (and replaceable, in tests) through the facade.
    @property
    def registry(self) -> SpecRegistry:
        """The spec registry."""
        return self.library.registry

    @property
    def store(self) -> VectorStore:
        """The vector store."""
        return self.library.store

    @store.setter
    def store(self, value: VectorStore) -> None:
        self.library.store = value

    @property
    def embedder(self) -> Embedder:
        """The embedder."""
        return self.library.embedder

    @property
    def parser(self) -> SpecParser:
        """The parser of uploads."""
        return self.library.parser

    @parser.setter
    def parser(self, value: SpecParser) -> None:
        self.library.parser = value

    # ---- questions ---------------------------------------------------------------------------------

    def search_scope(self, scope: str, spec: str | None, channel: str = "") -> SearchScope:
        """The live spec versions a question from `channel` may search: one named spec, or all it sees.

        Specs private to another channel are never in it ("" : a place with no channel sees shared specs only).
        """
        if spec:
            record = self.library.visible_record(scope, channel, spec)
            if self.needs_reindex(record):
                raise SpecNeedsReindexError(messages.specs_need_reindex([record.name], self.reindexing))
            return SearchScope(scope, {record.name: record.index_version})
        records = self.registry.list_visible(scope, channel)
        if not records:
            raise NothingIndexedError(messages.nothing_indexed())
        current = {r.name: r.index_version for r in records if not self.needs_reindex(r)}
        if not current:
            raise SpecNeedsReindexError(messages.specs_need_reindex([r.name for r in records], self.reindexing))
        return SearchScope(scope, current)

    async def search(
        self, origin: Origin, question: str, spec: str | None = None, limit: int = 10, rerank: bool = True
    ) -> list[RetrievedItem]:
        """Hybrid retrieval over the workspace (or one spec), reranked, then reordered for questions about auth.

        `rerank` False keeps the fused order even when a reranker is configured (evaluation compares both).
        """
        scope = await asyncio.to_thread(self.search_scope, origin.scope, spec, origin.channel_key)
        items = await self._retrieve(scope, question, question, limit, rerank=rerank)
        return await self._rank_for_auth(origin.scope, question, items, limit)

    async def _retrieve(
        self,
        scope: SearchScope,
        query: str,
        question: str,
        limit: int,
        context: str = "",
        rerank: bool = True,
        trace: _QuestionTrace | None = None,
    ) -> list[RetrievedItem]:
        """The best `limit` items for `query`, in the fused order or, with a reranker, in the LLM's order.

        The reranker sees the fused top `RERANK_CANDIDATES`, the `question` as asked and `context` (the thread's
        previous question, or ""); both `search` and answers come through here. `trace` learns whether the
        reranker fell back to the fused order.
        """
        embedding = await self._embed_query(query)
        if self.reranker is None or not rerank:
            return await self.retriever.search(scope, query, limit, query_embedding=embedding)
        wanted = max(limit, self.settings.rerank_candidates)
        candidates = await self.retriever.search(scope, query, wanted, query_embedding=embedding)
        if len(candidates) < 2:
            return candidates[:limit]
        started = time.perf_counter()
        reranked = await self.reranker.rerank(question, scope, candidates, context)
        self.telemetry.rerank(reranked.outcome, time.perf_counter() - started)
        if trace is not None and reranked.outcome == "fallback":
            trace.rerank_fell_back = True
        return reranked.items[:limit]

    async def _rank_for_auth(
        self, scope: str, question: str, items: list[RetrievedItem], limit: int
    ) -> list[RetrievedItem]:
        """Auth questions get the spec's security schemes where they belong (see `core.auth_questions`)."""
        if not classify(question).is_auth:
            return items

        def header(spec: str) -> ApiSpec | None:
            record = self.registry.get(scope, spec)
            return record.header if record else None

        return await asyncio.to_thread(rank_for_auth, question, items, header, limit)

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

    async def check(self, request: CheckRequest) -> CheckReport:
        """Check a pasted request or response against the workspace's specs (see `core.checks.service`).

        Rate-limited like a question. The pasted text may hold credentials: it is never logged, remembered or
        sent to the LLM; the report shows it masked.
        """
        origin = request.origin
        await enforce(self.limiter, f"{origin.scope}:{origin.user}")
        return await self.checker.check(origin.scope, request.text, request.spec, origin.channel_key)

    async def _check_in_question(self, origin: Origin, question: str, spec: str | None) -> Answer:
        """The check a question carries, answered; its thread remembers which operation, not the pasted text."""
        report = await self.checker.check(origin.scope, question, spec, origin.channel_key)
        answer = check_answer(report)
        thread = thread_key(origin)
        if thread:
            history = await self.memory.history(thread)
            await self.memory.remember(thread, _turn(checked_summary(report), answer, history[-1] if history else None))
        return answer

    # ---- diagrams and quality reports --------------------------------------------------------------

    def _stored(self, scope: str, name: str) -> tuple[SpecRecord, ApiSpec, Any]:
        """A spec as stored: its record, its parsed model (header and operations) and its uploaded document.

        The document is the loaded JSON/YAML for OpenAPI / Swagger (shared with request checks, which keep the
        last few loaded), the SDL text for GraphQL, else None.
        """
        record = self.library.record(scope, name)
        operations = tuple(
            d.operation for d in self.registry.documents(scope, record.index_version) if d.operation is not None
        )
        spec = dataclasses.replace(record.header, operations=operations)
        document: Any = None
        if record.format in (SpecFormat.OPENAPI3, SpecFormat.SWAGGER2):
            document = self.checker.raw_spec(scope, record).document
        elif record.format is SpecFormat.GRAPHQL:
            document = self.registry.read_original(scope, record.original_path).decode("utf-8", errors="replace")
        return record, spec, document

    def _diagram_source(self, scope: str, name: str, what: str) -> tuple[str, Diagram]:
        record, spec, document = self._stored(scope, name)
        kind = what.strip().lower() or OVERVIEW
        if kind in (AUTH, "auth-flow", "oauth", "security"):
            return record.name, auth_diagram(spec, document if isinstance(document, dict) else None)
        if kind == OVERVIEW:
            return record.name, overview_diagram(spec)
        source: SchemaSource
        if isinstance(document, dict):
            source = OpenApiSchemas(document)
        elif isinstance(document, str):
            source = GraphQLSchemas(document)
        else:
            raise DiagramError(messages.diagram_no_schemas(record.name, record.format.label))
        return record.name, schema_diagram(source, what.strip(), record.name)

    async def diagram(self, request: DrawDiagram) -> tuple[Diagram, ReportFile]:
        """Draw a diagram of a spec (`what`: auth, overview or a schema's name) as a PNG.

        Rate-limited like a question; building the DOT reads the stored spec in a thread, rendering runs `dot`
        in a subprocess with a time limit (`core.diagrams.render`).
        """
        origin = request.origin
        await enforce(self.limiter, f"{origin.scope}:{origin.user}")
        return await self._draw(origin, request.name, request.what)

    async def _draw(self, origin: Origin, name: str, what: str) -> tuple[Diagram, ReportFile]:
        started = time.perf_counter()
        name, diagram = await asyncio.to_thread(self._diagram_source, origin.scope, name, what)
        png = await render_png(diagram.dot)
        log.info("diagram_drawn", workspace=origin.scope, spec=name, kind=diagram.kind, dot_bytes=len(diagram.dot),
                 png_bytes=len(png), seconds=round(time.perf_counter() - started, 2))
        caption = messages.diagram_caption(diagram.kind, name, diagram.subject, ())
        return diagram, ReportFile(diagram.filename(name), png, caption)

    async def lint(self, request: LintSpec) -> LintReport:
        """The quality report of a spec (see `core.lint`): validity, then documentation coverage."""
        origin = request.origin
        await enforce(self.limiter, f"{origin.scope}:{origin.user}")
        record, spec, document = await asyncio.to_thread(self._stored, origin.scope, request.name)
        return await lint_spec(record.name, spec, document if isinstance(document, dict) else None)

    def _diagram_spec(self, scope: str, intent: DiagramIntent, spec: str | None) -> str:
        """The spec a drawing request names: a word of it that names a spec here, else the one asked about."""
        records = self.registry.list_records(scope)
        names = {r.name.lower(): r.name for r in records}
        for word in intent.words:
            if word.lower() in names:
                return names[word.lower()]
        for word in intent.words:
            close = [n for low, n in names.items() if word.lower() in low.replace("_", "-").split("-")]
            if len(close) == 1:
                return close[0]
        if spec:
            return spec
        if len(records) == 1:
            return records[0].name
        if not records:
            raise NothingIndexedError(messages.nothing_indexed())
        raise DiagramError(messages.diagram_which_spec([r.name for r in records]))

    async def _diagram_in_question(self, origin: Origin, intent: DiagramIntent, spec: str | None) -> Answer:
        name = await asyncio.to_thread(self._diagram_spec, origin.scope, intent, spec)
        what = intent.schema if intent.kind == SCHEMA else intent.kind
        diagram, png = await self._draw(origin, name, what)  # rate-limited as the question it is
        caption = messages.diagram_caption(diagram.kind, name, diagram.subject, diagram.notes)
        return Answer(AnswerKind.DIAGRAM, (TextBlock(caption),), report=png)
    async def _diff_question_spec(
        self, origin: Origin, spec: str | None, asked: DiffQuestion
    ) -> tuple[str | None, Answer | None]:
        """The spec a question about changes is about: the one it names, the request's, the thread's, or the only one.

        (None, an answer asking which spec) when the workspace has several and nothing says which; (None, None)
        when it has none (the question is then answered as any other: "nothing indexed yet").
        """
        # Only the specs this channel sees: a spec private to another channel is never named or listed here.
        records = await asyncio.to_thread(self.registry.list_visible, origin.scope, origin.channel_key)
        if not records:
            return None, None
        named = named_spec(asked.words, [NamedSpec(r.name, r.title) for r in records])
        if named is not None:
            return named, None
        if spec:
            return self.library.visible_record(origin.scope, origin.channel_key, spec).name, None
        thread = thread_key(origin)
        history = await self.memory.history(thread) if thread else []
        live = {r.name for r in records}
        if history and len(history[-1].specs) == 1 and history[-1].specs[0] in live:
            return history[-1].specs[0], None
        if len(records) == 1:
            return records[0].name, None
        text = messages.diff_which_spec(sorted(live))
        return None, Answer(AnswerKind.DIFF, (TextBlock(text),))

    async def _answer_from_diff(self, origin: Origin, question: str, name: str, asked: DiffQuestion) -> Answer:
        """The diff of the versions of `name` the question names (by default the last two) as an answer.

        It is remembered in the thread; "only one version kept" and the like are answered in words, not raised.
        """
        try:
            report = await self.library.diff(DiffSpec(origin, name, asked.before, asked.after))
            answer = diff_answer(report, asked)
        except DiffUnavailableError as exc:
            answer = Answer(AnswerKind.DIFF, (TextBlock(exc.user_message),))
        thread = thread_key(origin)
        if thread:
            history = await self.memory.history(thread)
            await self.memory.remember(thread, _turn(question, answer, history[-1] if history else None))
        return answer

    async def _operations_for_check(
        self, scope: str, query: str, spec: str | None, channel: str
    ) -> list[tuple[str, str, str]]:
        """Operations for a body pasted alone, found from its field names (fused order: nothing goes to the LLM)."""
        search_scope = await asyncio.to_thread(self.search_scope, scope, spec, channel)
        return names_of(await self._retrieve(search_scope, query, query, 10, rerank=False))

    async def ask(self, request: AskQuestion) -> Answer:
        """Answer a question from the workspace's specs (the final answer of `stream_answer`)."""
        return await read_answer(self.stream_answer(request))

    async def stream_answer(self, request: AskQuestion) -> AnswerStream:
        """Answer as a stream of events: status updates, text parts, then exactly one `FinalAnswer`.

        User-facing problems (rate limited, nothing indexed, unknown spec, busy) are raised as
        `UserFacingError`s before any text part is yielded. Every question is counted in the metrics by platform
        and outcome, with its timings.
        """
        started = time.perf_counter()
        trace = _QuestionTrace()
        platform = request.origin.platform
        counted = False

        def count(outcome: str) -> None:
            nonlocal counted
            if not counted:
                counted = True
                self.telemetry.question(platform, outcome, time.perf_counter() - started)

        try:
            # aclosing: when the caller stops early, the inner generator closes now (releasing its LLM slot).
            async with aclosing(self._answer_events(request, trace)) as events:
                async for event in events:
                    if isinstance(event, FinalAnswer):  # counted before it is handed over: callers stop here
                        count("fallback" if trace.fell_back else "answered")
                    yield event
        except RateLimitedError:
            count("rate_limited")
            raise
        except UserFacingError:
            count("refused")
            raise
        except Exception:
            count("error")
            raise

    async def _answer_events(self, request: AskQuestion, trace: _QuestionTrace) -> AsyncGenerator[AnswerEvent]:
        """The events of `stream_answer`; `trace` records the timings and whether the LLM's answer was replaced."""
        question = _validated_question(request.question)
        origin = request.origin
        bound = log.bind(workspace=origin.scope, user=origin.user, event_id=origin.event_id)
        await enforce(self.limiter, f"{origin.scope}:{origin.user}")
        if is_check_request(question):
            # "why is this request failing? curl …": checked, never searched or sent to the LLM (it may hold keys)
            yield StatusUpdate(messages.checking())
            yield FinalAnswer(await self._check_in_question(origin, question, request.spec))
            bound.info("question_answered", mode="check")
            return
        intent = diagram_intent(question)
        if intent is not None:
            # "draw the auth flow for stripe": drawn from the spec, never searched or generated
            yield StatusUpdate(messages.drawing())
            yield FinalAnswer(await self._diagram_in_question(origin, intent, request.spec))
            bound.info("question_answered", mode="diagram")
            return
        asked = diff_question(question)
        if asked is not None:
            name, which = await self._diff_question_spec(origin, request.spec, asked)
            if name is not None:
                # "what changed in discord?": answered from the diff of its kept versions, never searched
                yield StatusUpdate(messages.comparing_versions())
                which = await self._answer_from_diff(origin, question, name, asked)
            if which is not None:
                bound.info("question_answered", mode="diff", spec=name, breaking_question=asked.breaking)
                yield FinalAnswer(which)
                return
        reply = smalltalk_reply(question)
        if reply is not None or asks_for_spec_list(question):
            bound.info("question_answered", mode="smalltalk")
            text = reply if reply is not None else await self._spec_list_text(origin)
            yield FinalAnswer(Answer(AnswerKind.SMALLTALK, (TextBlock(text),)))
            return

        thread = thread_key(origin)
        history = await self.memory.history(thread) if thread else []
        # Registry reads go to a worker thread: with DATABASE_URL each is a round trip to PostgreSQL.
        scope, default = await asyncio.to_thread(self._question_scope, origin, request.spec, history)
        # The new question drives the search; the thread only fills in what "it" refers to.
        query = follow_up_query(question, history[-1].topic, history[-1].action) if history else question
        left_default = ""
        if default is not None:
            scope, left_default = await self._default_first(scope, default, query)
        # Answers that depend on a thread's history are not shared; the key names every live spec version,
        # so a new upload can never be answered from the cache.
        cache_key = "" if history else self._answer_cache_key(scope, question, request.spec)
        cached = await self.state.get(NS_ANSWERS, cache_key) if cache_key else None
        answer: Answer | None = None
        if cached is not None:
            answer = answer_from_dict(cached)
            if answer.notice == messages.generation_off():  # cached before the note was kept out of the cache
                answer = dataclasses.replace(answer, notice="")
            bound.info("question_answered", mode="cached")
        else:
            yield StatusUpdate(messages.searching())
            searching = time.perf_counter()
            # A follow-up looks deeper: its best result may sit below ones that only share the thread's topic.
            context = history[-1].question if history else ""
            items = await self._retrieve(scope, query, question, 20 if history else 8, context, trace=trace)
            if history:
                items = rerank_follow_up(question, history[-1].best, items)
            items = await self._rank_for_auth(origin.scope, question, items[:8], limit=8)
            self.telemetry.retrieval_seconds.observe(time.perf_counter() - searching)
            evidence = await asyncio.to_thread(self.evidence, origin.scope, items)
            if classify(question).is_auth:
                evidence = attach_scheme_uses(evidence)
            if self.generator is not None and evidence:
                try:
                    async with self.guard.place() as place:
                        if place.queued:
                            yield StatusUpdate(messages.queued(place.ahead))
                            async with aclosing(place.places_ahead(QUEUE_UPDATE_SECONDS)) as moves:
                                async for ahead in moves:
                                    yield StatusUpdate(messages.queued(ahead))
                        await place.wait()
                        parts: list[str] = []
                        generating = time.perf_counter()
                        try:
                            async with asyncio.timeout(self.settings.generation_deadline_seconds):
                                turns = [(t.question, t.answer_summary) for t in history]
                                async for part in self.generator.stream(question, evidence, turns):
                                    parts.append(part)
                                    yield TextDelta(part)
                            answer = self._generated_answer(question, evidence, "".join(parts), bound)
                        except (GenerationError, TimeoutError) as exc:
                            reason = getattr(exc, "reason", "deadline")
                            bound.warning("answer_fallback", reason=reason, partial=bool(parts))
                            answer = retrieval_answer(question, evidence, messages.generation_failed())
                            trace.fell_back = True
                        finally:
                            self.telemetry.generation_seconds.observe(time.perf_counter() - generating)
                except BusyError:
                    # The queue would not get to it before the deadline: the retrieval answer is in hand, so
                    # it goes out now (with a note) rather than "try again"; answers keep flowing through a stall.
                    bound.warning("answer_fallback", reason="busy")
                    answer = retrieval_answer(question, evidence, messages.generation_busy())
                    trace.fell_back = True
            if trace.fell_back or trace.rerank_fell_back:
                cache_key = ""  # never cache a fallback: the next try may reach the model, or get the reranked order
            if answer is None:
                answer = retrieval_answer(question, evidence)
            if cache_key:
                await self.state.set(NS_ANSWERS, cache_key, answer_to_dict(answer), self.settings.query_cache_ttl)
            # "Generated answers are off" is the operator's setting: said once per thread, never on a cached answer.
            if self.generator is None and evidence and await self.threads.first_time(origin, "generation_off"):
                answer = dataclasses.replace(answer, notice=messages.generation_off())
            bound.info("question_answered", mode=answer.kind.value, hits=len(evidence))
        if left_default:  # never cached: the same question is asked in channels with other defaults, or none
            answer = dataclasses.replace(answer, notice=" ".join(filter(None, (left_default, answer.notice))))
        if thread:
            await self.memory.remember(thread, _turn(question, answer, history[-1] if history else None))
        yield FinalAnswer(answer)

    async def snippet(self, request: ShowSnippet) -> Answer:
        """An earlier answer's snippet in another language, built from the spec as it is indexed now.

        Needs nothing from the earlier answer but its spec and operation ref, so it works after a restart and on
        any instance. A spec forgotten since, an operation gone from it, or a language no snippet is written in
        are `UserFacingError`s.
        """
        origin = request.origin
        await enforce(self.limiter, f"{origin.scope}:{origin.user}")
        language = normalise_language(request.language)
        if language is None or language not in LANGUAGES:
            names = [language_label(code) for code in available_languages()]
            raise UserFacingError(messages.snippet_unknown_language(request.language[:40], names))
        record = await asyncio.to_thread(self.registry.get, origin.scope, request.spec)
        if record is None:
            raise UserFacingError(messages.snippet_spec_gone(request.spec))
        documents = await asyncio.to_thread(self.registry.documents, origin.scope, record.index_version)
        wanted = request.operation_ref
        found = next((d for d in documents if d.operation and operation_ref(d.operation.key) == wanted), None)
        if found is None or found.operation is None:
            raise UserFacingError(messages.snippet_operation_gone(request.spec))
        operation = found.operation
        code = build_snippet(record.header, operation, language).strip()
        heading = defuse_mentions(messages.snippet_heading(operation.label, language_label(language)))
        log.info("snippet_shown", workspace=origin.scope, user=origin.user, spec=record.name, language=language)
        return Answer(
            AnswerKind.SNIPPET, (TextBlock(heading), CodeBlock(language, code)),
            (Citation(record.name, found.title, found.item),), snippet=SnippetTarget(record.name, operation.key),
        )

    async def knows_thread(self, origin: Origin) -> bool:
        """Whether the assistant takes part in this thread: it replied there, or remembers the conversation.

        Shared by every instance when state is shared, so a follow-up reaching another replica is answered too.
        """
        if await self.threads.knows(origin):
            return True
        key = thread_key(origin)
        return bool(key) and bool(await self.memory.history(key))

    async def note_thread(self, origin: Origin) -> None:
        """Remember that the bot replied in the origin's thread (adapters call it when they reply in one)."""
        await self.threads.note(origin)

    def _question_scope(self, origin: Origin, spec: str | None, history: list[Turn]) -> tuple[SearchScope, str | None]:
        """What a question searches, and the channel's default spec when it is to be searched first.

        The spec named in the request; else the specs a thread already talked about; else every spec the channel
        sees, with its default (`use NAME`) first when it has one that can be searched.
        """
        scope, channel = origin.scope, origin.channel_key
        if spec:
            return self.search_scope(scope, spec, channel), None
        if history and history[-1].specs:
            live = {
                r.name: r.index_version
                for r in self.registry.list_visible(scope, channel)
                if r.name in history[-1].specs and not self.needs_reindex(r)
            }
            if live:
                return SearchScope(scope, live), None
        everything = self.search_scope(scope, None, channel)
        default = self.registry.channel_default(scope, channel) if channel else None
        return everything, default if default in everything.versions else None

    async def _default_first(self, scope: SearchScope, default: str, query: str) -> tuple[SearchScope, str]:
        """The channel's default alone, unless it clearly does not cover the question (`core.channels`).

        Then every spec the channel sees, with the note that says so. Decided on one fused search over all of
        them (no reranking: the scores must be comparable), so the default's best hit is measured against the rest.
        """
        alone = SearchScope(scope.workspace, {default: scope.versions[default]})
        if len(scope.versions) == 1:
            return alone, ""
        embedding = await self._embed_query(query)
        items = await self.retriever.search(scope, query, DEFAULT_SPEC_CANDIDATES, query_embedding=embedding)
        if not leaves_default(items, default):
            return alone, ""
        log.info("channel_default_left", workspace=scope.workspace, spec=default)
        return scope, messages.default_spec_left(default)

    def _answer_cache_key(self, scope: SearchScope, question: str, spec: str | None) -> str:
        versions = ",".join(f"{name}={version}" for name, version in sorted(scope.versions.items()))
        normalised = " ".join(question.lower().split()).rstrip("?!. ")
        mode = "generated" if self.generator is not None else "retrieval"
        return workspace_key(scope.workspace, f"{spec or '*'}|{versions}|{mode}|{normalised}")

    async def _embed_query(self, query: str) -> list[float]:
        key = f"{(await self.embedder.identity()).key}|{query}"  # never another model's vector
        cached = await self.state.get(NS_EMBEDDINGS, key)
        if isinstance(cached, str):
            return unpack_vector(cached)
        if isinstance(cached, list):  # stored as JSON numbers before vectors were packed
            return [float(x) for x in cached]
        vector = await self.embedder.embed_query(query)
        await self.state.set(NS_EMBEDDINGS, key, pack_vector(vector), self.settings.embedding_cache_ttl)
        return vector

    def _generated_answer(self, question: str, evidence: list[Evidence], text: str, bound: Any) -> Answer:
        review = review_answer(text, evidence)
        if review.invented_markers:
            bound.warning("invented_citations_removed", markers=list(review.invented_markers))
        if review.unverified_operations:
            bound.warning("unverified_operations", operations=list(review.unverified_operations))
        body = review.text + (f"\n\n_{review.note}_" if review.note else "")
        blocks: list[TextBlock | CodeBlock] = [TextBlock(body)]
        code, target = snippet_blocks(question, (review.cited or evidence)[0])
        blocks.extend(code)
        citations = tuple(e.citation() for e in review.cited)
        return Answer(AnswerKind.GENERATED, tuple(blocks), citations, snippet=target)

    async def _spec_list_text(self, origin: Origin) -> str:
        records = await self.list_specs(ListSpecs(origin))
        stale = [r.name for r in records if self.needs_reindex(r)]
        versions = await self.version_counts(origin.scope)
        return specs_markdown(spec_list(records, stale, versions, await self.channel_default(origin)))

    async def claim_event(self, origin: Origin) -> bool:
        """True the first time an event id is seen (across instances sharing Redis); False for re-deliveries.

        Never raises: when the claim cannot be recorded the event counts as new (answering twice beats never).
        """
        if not origin.event_id:
            return True
        key = f"{origin.platform}:{origin.workspace}:{origin.event_id}"
        try:
            first = await self.state.add(NS_EVENTS, key, 1, EVENT_TTL_SECONDS)
        except Exception:
            log.exception("claim_event_failed", event_id=origin.event_id, platform=origin.platform)
            return True
        if not first:
            log.info("duplicate_event_ignored", event_id=origin.event_id, platform=origin.platform)
        return first

    async def record_feedback(self, origin: Origin, answer_id: str, helpful: bool) -> bool:
        """Record a 👍/👎 on an answer (logged, and counted for metrics); False if this user already rated it."""
        vote = workspace_key(origin.scope, f"vote|{origin.user}|{answer_id}")
        if not await self.state.add(NS_EVENTS, vote, 1, VOTE_TTL_SECONDS):
            return False
        self.feedback[helpful] += 1
        self.telemetry.feedback.labels(origin.platform, "up" if helpful else "down").inc()
        log.info("answer_feedback", workspace=origin.scope, user=origin.user, answer_id=answer_id, helpful=helpful)
        return True

    def metrics(self) -> dict[str, Any]:
        """Counters for a metrics endpoint: cache hit rates, rate limiting, queueing, feedback."""
        embedder_stats = {
            "hits": getattr(self.embedder, "hits", 0),
            "misses": getattr(self.embedder, "misses", 0),
        }
        return {
            "caches": self.state.stats(),
            "document_embedding_cache": embedder_stats,
            "shared_state": {"backend": self.state.backend, "degraded": self.state.degraded},
            "rate_limiter": self.limiter.stats(),
            "llm_queue": self.guard.stats(),
            "feedback": {"helpful": self.feedback[True], "not_helpful": self.feedback[False]},
        }

    def _register_readiness_checks(self) -> None:
        """The core's own readiness: the model loaded, the store answering, Redis answering, taking work."""

        def model() -> Verdict:
            return READY if self.embedder.loaded else not_ready("embedding model not loaded yet")

        async def store() -> Verdict:
            await self.store.heartbeat()
            return READY

        async def redis() -> Verdict:
            return READY if await self.state.ping() else not_ready("no answer from Redis")

        def intake() -> Verdict:
            return READY if self.work.accepting else not_ready("shutting down")

        self.readiness.register("model", model)
        self.readiness.register("store", store)
        if self.state.backend == "redis":
            self.readiness.register("redis", redis)
        self.readiness.register("intake", intake)

    async def aclose(self) -> None:
        """Stop the assistant's own background work, before its collaborators are closed by whoever built them.

        A start-up re-index still running stops; its specs keep their previous versions.
        """
        await self.library.aclose()


@dataclass
class _QuestionTrace:
    """What `stream_answer` learns about one question while it is answered, for its metrics."""

    fell_back: bool = False  # the LLM failed or ran out of time, so the retrieval answer was given
    rerank_fell_back: bool = False  # the reranker failed or ran out of time, so the fused order was used


def _validated_question(text: str) -> str:
    question = text.strip()
    if not question:
        raise UserFacingError(messages.empty_question())
    if len(question) > MAX_QUESTION_CHARS:
        raise UserFacingError(messages.question_too_long(MAX_QUESTION_CHARS))
    return question


def pack_vector(vector: Sequence[float]) -> str:
    """A vector as base64 of little-endian float32: 2 KB for MiniLM's 384 numbers, a quarter of them as JSON.

    The model computes in float32, so nothing is lost; the query-embedding cache holds up to 10,000 of these.
    """
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(text: str) -> list[float]:
    """The vector `pack_vector` packed."""
    return [float(x) for x in np.frombuffer(base64.b64decode(text), dtype="<f4")]


def _turn(question: str, answer: Answer, previous: Turn | None) -> Turn:
    """What a thread remembers of one exchange: enough to resolve "that" in the next question."""
    summary = " ".join(b.text for b in answer.blocks if isinstance(b, TextBlock))
    return Turn(
        question=question,
        answer_summary=truncate(summary, 1200),
        specs=tuple(sorted({c.spec for c in answer.citations})),
        citations=tuple(c.label for c in answer.citations),
        topic=topic(question, previous.topic if previous else "", (c.item for c in answer.citations)),
        best=remembered_item(answer.citations[0].item) if answer.citations else "",
        action=main_action(question) or (previous.action if previous else ""),
    )
