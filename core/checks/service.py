"""Checking a pasted request or response: find the spec and operation, validate, and say what is wrong.

`RequestChecker.check` is what `/api check`, `api-assistant check` and a "why is this request failing? curl …"
mention all come to. It reads the paste (`core.checks.pasted`), finds the operation (by method and path in the
named spec or any OpenAPI/Swagger spec of the workspace, by operationId, or, for a body alone, among the
operations retrieval finds for its field names), checks it (`core.checks.operation`) and returns a `CheckReport`;
`check_answer` turns that into an `Answer` citing the operation.

The uploaded originals are loaded again for this (in a worker thread); the last few are kept (`RAW_SPECS_KEPT`):
Stripe's 4 MB of YAML take about a second to load and some 70 MB to hold. Nothing from the paste is logged:
the log line names the spec, the operation, the kinds of problems and how many credentials were masked.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from core import messages
from core.answers import Answer, AnswerKind, Citation, CodeBlock, TextBlock
from core.checks.contract import RawOperation, RawSpec
from core.checks.operation import api_key_names, check_operation, servers_hosts
from core.checks.pasted import MAX_CHECK_CHARS, PastedRequest, read_pasted
from core.checks.schemas import Budget, Outcome, Problem
from core.checks.secrets import secrets_in, shown_request
from core.errors import NothingToCheckError, OperationNotFoundError, SpecNotFoundError, UserFacingError
from core.models import SpecFormat
from core.parsing.loader import load_document
from core.registry import SpecRecord, SpecRegistry

log = structlog.get_logger(__name__)

RAW_SPECS_KEPT = 2
GUESS_CANDIDATES = 5  # operations retrieval offers for a body alone, each checked to pick the best fit
MAX_GUESS_KEYS = 40
CHECKABLE = (SpecFormat.OPENAPI3, SpecFormat.SWAGGER2)

# (scope, query, spec or None, channel) -> the (spec, method, path) of the operations found, best first
Search = Callable[[str, str, str | None, str], Awaitable[list[tuple[str, str, str]]]]


@dataclass(frozen=True)
class CheckReport:
    """What a check found, ready to show: nothing in it holds a credential."""

    spec: str
    method: str
    path: str
    operation_id: str
    problems: tuple[Problem, ...]
    more: int
    notes: tuple[str, ...]
    shown: str  # the request as checked, credentials masked
    response_status: str = ""
    guessed: bool = False

    @property
    def valid(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def label(self) -> str:
        """`POST /pet`."""
        return f"{self.method} {self.path}"


class RequestChecker:
    """Checks pasted requests against a workspace's specs (see the module docstring)."""

    def __init__(self, registry: SpecRegistry, search: Search | None = None) -> None:
        """`search` finds operations for a body alone (the assistant's retrieval); None: a body must name one."""
        self.registry = registry
        self.search = search
        self._raw: OrderedDict[str, RawSpec] = OrderedDict()
        self._lock = threading.Lock()

    async def check(self, scope: str, text: str, spec: str | None = None, channel: str = "") -> CheckReport:
        """Check what was pasted; `UserFacingError`s say what is missing (nothing to check, no such operation).

        Only specs `channel` sees are checked against (those private to another channel never are).
        """
        if not text.strip():
            raise NothingToCheckError(messages.nothing_to_check())
        if len(text) > MAX_CHECK_CHARS:
            raise UserFacingError(messages.check_too_long(MAX_CHECK_CHARS))
        started = time.perf_counter()
        request = read_pasted(text)
        records = await asyncio.to_thread(self._records, scope, spec, channel)
        if not request.method and not request.operation:
            report = await self._guess(scope, request, records, channel)
        else:
            report = await asyncio.to_thread(self._check_named, scope, request, records)
        log.info(
            "request_checked",
            workspace=scope,
            spec=report.spec,
            operation=report.label,
            source=request.source,
            response=bool(request.response_status),
            problems=len(report.problems) + report.more,
            kinds=sorted({p.kind.value for p in report.problems}),
            secrets_masked=secrets_in(request),
            guessed=report.guessed,
            seconds=round(time.perf_counter() - started, 3),
        )
        return report

    # ---- finding the spec and the operation ---------------------------------------------------------------

    def _records(self, scope: str, name: str | None, channel: str) -> list[SpecRecord]:
        if name:
            record = self.registry.get(scope, name)
            if record is None or not record.visible_in(channel):
                known = [r.name for r in self.registry.list_visible(scope, channel)]
                raise SpecNotFoundError(messages.spec_not_found(name, known))
            if record.format not in CHECKABLE:
                raise UserFacingError(messages.check_not_checkable(record.name, record.format.label))
            return [record]
        records = self.registry.list_visible(scope, channel)
        if not records:
            raise UserFacingError(messages.nothing_indexed())
        checkable = [r for r in records if r.format in CHECKABLE]
        if not checkable:
            raise UserFacingError(messages.check_nothing_checkable())
        return checkable

    def raw_spec(self, scope: str, record: SpecRecord) -> RawSpec:
        """The record's original, loaded (kept for the next checks, the least recently used dropped)."""
        key = f"{scope}|{record.content_hash}"
        with self._lock:
            cached = self._raw.get(key)
            if cached is not None:
                self._raw.move_to_end(key)
                return cached
        document = load_document(record.filename, self.registry.read_original(scope, record.original_path))
        raw = RawSpec(document if isinstance(document, dict) else {})
        with self._lock:
            self._raw[key] = raw
            while len(self._raw) > RAW_SPECS_KEPT:
                self._raw.popitem(last=False)
        return raw

    def _check_named(self, scope: str, request: PastedRequest, records: list[SpecRecord]) -> CheckReport:
        """The operation named by method and path, or by operationId, in the first spec that has it."""
        if not request.method:
            for record in records:
                raw = self.raw_spec(scope, record)
                operation = raw.by_operation_id(request.operation)
                if operation is not None:
                    return self._report(record, raw, operation, request)
            raise OperationNotFoundError(
                messages.check_operation_id_not_found(request.operation, [r.name for r in records])
            )
        wrong_method: tuple[SpecRecord, list[str]] | None = None
        # A spec whose servers name the request's host is tried first.
        ordered = sorted(records, key=lambda r: not _serves(r, request.host))
        for record in ordered:
            raw = self.raw_spec(scope, record)
            match = raw.match_path(request.path)
            operation = next((op for op in match.operations if op.method == request.method), None)
            if operation is not None:
                return self._report(record, raw, operation, request, match.stripped_prefix)
            if match.operations and wrong_method is None:
                wrong_method = (record, sorted({op.method for op in match.operations}))
        if wrong_method is not None:
            record, allowed = wrong_method
            raise OperationNotFoundError(
                messages.check_method_not_allowed(request.method, request.path, allowed, record.name)
            )
        raise OperationNotFoundError(
            messages.check_operation_not_found(request.method, request.path, [r.name for r in records])
        )

    async def _guess(
        self, scope: str, request: PastedRequest, records: list[SpecRecord], channel: str
    ) -> CheckReport:
        """A body alone: check it against the operations retrieval finds for its field names, keep the best fit."""
        keys = _body_keys(request.body or "")
        if self.search is None or not keys:
            raise NothingToCheckError(messages.nothing_to_check())
        names = {r.name for r in records}
        only = records[0].name if len(records) == 1 else None
        found = [hit for hit in await self.search(scope, " ".join(keys), only, channel) if hit[0] in names]
        if not found:
            raise OperationNotFoundError(messages.nothing_to_check())

        def best() -> CheckReport:
            reports = []
            for spec_name, method, path in found[:GUESS_CANDIDATES]:
                record = next(r for r in records if r.name == spec_name)
                raw = self.raw_spec(scope, record)
                operation = raw.by_label(method, path)
                if operation is None or ("requestBody" not in operation.node and not raw.swagger2):
                    continue
                named = replace(request, source="body", method=method, operation=f"{method} {path}")
                reports.append(self._report(record, raw, operation, named))
            if not reports:
                raise OperationNotFoundError(messages.nothing_to_check())
            chosen = min(enumerate(reports), key=lambda pair: (len(pair[1].problems) + pair[1].more, pair[0]))[1]
            return replace(chosen, guessed=True, notes=(messages.check_guessed(chosen.label), *chosen.notes))

        return await asyncio.to_thread(best)

    def _report(
        self, record: SpecRecord, raw: RawSpec, operation: RawOperation, request: PastedRequest, prefix: str = ""
    ) -> CheckReport:
        outcome: Outcome = check_operation(raw, operation, request, prefix=prefix, budget=Budget())
        notes = list(request.notes) + outcome.notes
        hosts = servers_hosts(raw)
        if request.host and hosts and request.host not in hosts and request.source != "body":
            notes.append(messages.check_other_host(request.host, hosts))
        return CheckReport(
            spec=record.name,
            method=operation.method,
            path=operation.path,
            operation_id=operation.operation_id,
            problems=tuple(outcome.problems),
            more=outcome.more,
            notes=tuple(notes),
            shown=shown_request(request, api_key_names(raw)),
            response_status=request.response_status,
        )


def _serves(record: SpecRecord, host: str) -> bool:
    return bool(host) and any(host in destination.lower() for destination in record.destinations)


def _body_keys(body: str) -> list[str]:
    """The field names of a JSON body or a form (the search query for a body alone: names, never values)."""
    import json

    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        from urllib.parse import parse_qsl

        data = {name.split("[")[0]: "" for name, _ in parse_qsl(body, keep_blank_values=True)}
    keys: list[str] = []
    stack: list[Any] = [data]
    while stack and len(keys) < MAX_GUESS_KEYS:
        node = stack.pop(0)
        if isinstance(node, dict):
            keys += [str(k) for k in node if str(k) not in keys]
            stack += [v for v in node.values() if isinstance(v, dict | list)]
        elif isinstance(node, list):
            stack += [v for v in node[:5] if isinstance(v, dict | list)]
    return keys[:MAX_GUESS_KEYS]


def check_answer(report: CheckReport) -> Answer:
    """The reply to a check: valid, or each problem with where it is; the request as checked; the operation cited."""
    what = "response" if report.response_status else "request"
    lines = [messages.check_checked_against(report.label, report.spec, report.response_status)]
    if report.valid:
        lines.insert(0, messages.check_valid(what))
    else:
        lines.insert(0, messages.check_problems(len(report.problems) + report.more, what))
        lines[1:1] = [f"• `{p.where}`: {p.text}" for p in report.problems]
        if report.more:
            lines.insert(len(report.problems) + 1, messages.check_more_problems(report.more))
    lines += [f"_{note}_" for note in report.notes]
    blocks: list[TextBlock | CodeBlock] = [TextBlock("\n".join(lines))]
    if report.shown:
        blocks += [TextBlock(messages.check_shown()), CodeBlock("http", report.shown)]
    item = {"kind": "operation", "method": report.method, "path": report.path}
    return Answer(AnswerKind.CHECK, tuple(blocks), (Citation(report.spec, report.label, item),))


def checked_summary(report: CheckReport) -> str:
    """What a thread remembers of a check, in place of the pasted text (which may hold credentials)."""
    return f"check {report.label} ({report.spec})"


def names_of(items: Sequence[Any]) -> list[tuple[str, str, str]]:
    """(spec, method, path) of retrieved operations (`core.retrieval.RetrievedItem`s)."""
    found = []
    for item in items:
        operation = item.document.operation
        if operation is not None and operation.method and operation.path:
            found.append((item.spec, operation.method, operation.path))
    return found
