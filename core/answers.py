"""The answer type every adapter renders, and the retrieval-only answer built without an LLM.

An answer is a sequence of blocks (Markdown text or code) plus citations. Adapters turn blocks into
Block Kit, Discord markdown or terminal text, and can split between blocks without breaking code.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from core import messages
from core.auth_questions import AuthIntent, classify, required_schemes
from core.documents import describe_scheme
from core.mentions import defuse_mentions
from core.models import ApiSpec, ItemKind, Operation, SecurityRequirement, SecurityScheme, SpecFormat
from core.parsing.text import truncate
from core.snippet_choice import SnippetTarget, available_languages, choose_language
from core.snippet_choice import requested_language as requested_choice
from core.snippets import build_snippet, can_build_snippet, language_label

if TYPE_CHECKING:
    from core.diffs.report import ReportFile

MAX_FIELDS_SHOWN = 12
OTHER_MATCHES_SHOWN = 4
MAX_SCOPES_SHOWN = 10
MAX_SCHEME_USES = 5  # operations listed under a scheme as needing it


class AnswerKind(StrEnum):
    """How an answer was produced."""

    RETRIEVAL = "retrieval"  # best-matching operations, no LLM
    GENERATED = "generated"  # written by the LLM from retrieved operations
    NOTHING_FOUND = "nothing_found"
    SMALLTALK = "smalltalk"  # greetings, help, spec list: answered without retrieval
    CHECK = "check"  # a pasted request or response checked against its operation (`core.checks`)
    DIAGRAM = "diagram"  # a diagram drawn from a spec ("draw the auth flow for stripe"), its PNG attached
    DIFF = "diff"  # what changed between two versions of a spec (`core.diffs.questions`)
    SNIPPET = "snippet"  # an earlier answer's snippet in another language, asked for with a button


@dataclass(frozen=True)
class TextBlock:
    """Markdown text (the common subset: **bold**, `code`, bullet lists)."""

    text: str


@dataclass(frozen=True)
class CodeBlock:
    """A code snippet."""

    language: str
    code: str


Block = TextBlock | CodeBlock


@dataclass(frozen=True)
class Citation:
    """An operation / request / field / scheme the answer is based on."""

    spec: str
    label: str
    item: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """A complete answer."""

    kind: AnswerKind
    blocks: tuple[Block, ...]
    citations: tuple[Citation, ...] = ()
    notice: str = ""  # e.g. "generation is off"; shown small, before or after the answer
    answer_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])  # for feedback buttons
    # A file to attach (a diff's full report); never cached: answers that carry one are built fresh each time.
    report: ReportFile | None = field(default=None, compare=False, repr=False)
    snippet: SnippetTarget | None = None  # the operation the answer's snippet calls ("show in another language")

    @property
    def snippet_language(self) -> str:
        """The language of the answer's snippet ("" when it has none)."""
        if self.snippet is None:
            return ""
        return next((b.language for b in self.blocks if isinstance(b, CodeBlock)), "")

    def as_markdown(self) -> str:
        """The whole answer as one Markdown string (terminal, tests, logs of length)."""
        parts = [f"_{self.notice}_"] if self.notice else []
        for block in self.blocks:
            if isinstance(block, CodeBlock):
                parts.append(f"```{block.language}\n{block.code}\n```")
            else:
                parts.append(block.text)
        if self.citations:
            parts.append("Sources: " + "; ".join(f"{c.spec}: {c.label}" for c in self.citations))
        return "\n\n".join(parts)


@dataclass(frozen=True)
class StatusUpdate:
    """Progress to show while an answer is being prepared ("Searching the specs…", "Queued…")."""

    text: str


@dataclass(frozen=True)
class TextDelta:
    """The next part of a streamed answer's text."""

    text: str


@dataclass(frozen=True)
class FinalAnswer:
    """The complete answer; always the last event of a stream."""

    answer: Answer


AnswerEvent = StatusUpdate | TextDelta | FinalAnswer
AnswerStream = AsyncIterator[AnswerEvent]


class AnswerView(Protocol):
    """Where an answer being prepared is shown (a live chat message, or nowhere)."""

    async def status(self, text: str) -> None:
        """Show a progress line ("Searching the specs…")."""
        ...

    async def partial(self, text: str) -> None:
        """Show the answer's text written so far (the whole of it, not the latest part)."""
        ...


async def read_answer(stream: AnswerStream, view: AnswerView | None = None) -> Answer:
    """Read an answer stream to its `FinalAnswer`, showing status lines and the text so far on `view`.

    The one loop over answer events: the core's `ask` and every adapter read answers through it.
    """
    final: Answer | None = None
    written = ""
    async for event in stream:
        if isinstance(event, FinalAnswer):
            final = event.answer
        elif view is None:
            continue
        elif isinstance(event, StatusUpdate):
            await view.status(event.text)
        else:
            written += event.text
            await view.partial(written)
    if final is None:
        raise RuntimeError("the answer stream ended without a final answer")
    return final


@dataclass(frozen=True)
class SchemeUse:
    """A retrieved operation that needs a scheme, with the scopes it asks for."""

    operation: str  # the operation's label: `POST /chat.postMessage`
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """A retrieved document with what is needed to explain it: its spec's header and name.

    For a scheme, `uses` lists the retrieved operations that need it (filled in for questions about auth).
    """

    spec_name: str
    spec: ApiSpec
    title: str
    operation: Operation | None = None
    scheme: SecurityScheme | None = None
    item: dict[str, str] = field(default_factory=dict)
    uses: tuple[SchemeUse, ...] = ()

    def citation(self) -> Citation:
        """How this evidence is cited."""
        return Citation(spec=self.spec_name, label=self.title, item=self.item)


def requested_language(question: str) -> str | None:
    """The snippet language a question asks for, if it names one (the closest one we write, for one we don't)."""
    choice = requested_choice(question)
    return choice.language if choice else None


def snippet_blocks(question: str, evidence: Evidence) -> tuple[list[Block], SnippetTarget | None]:
    """The snippet calling `evidence`'s operation in the language asked for, and what it calls (none: no snippet).

    Asked for a language no snippet is written in, the closest one is used, after a line saying so.
    """
    operation = evidence.operation
    if operation is None or not can_build_snippet(operation):
        return [], None
    choice = choose_language(question)
    blocks: list[Block] = []
    if choice.instead_of:
        names = [language_label(language) for language in available_languages()]
        blocks.append(TextBlock(messages.snippet_language_substituted(
            choice.instead_of, names, language_label(choice.language))))
    blocks.append(CodeBlock(choice.language, build_snippet(evidence.spec, operation, choice.language).strip()))
    return blocks, SnippetTarget(evidence.spec_name, operation.key)


def describe_operation(evidence: Evidence, auth_first: bool = False) -> str:
    """Markdown detail of an operation: summary, parameters, body fields and auth (`auth_first`: right under it)."""
    op = evidence.operation
    assert op is not None
    lines = [
        f"**{op.label}**" + (f" — {op.summary}" if op.summary else "") + (" _(deprecated)_" if op.deprecated else "")
    ]
    if auth_first:
        lines.append("Auth: " + describe_auth(evidence.spec, op))
    if op.kind is ItemKind.GRAPHQL and op.graphql_signature:
        lines.append(f"`{op.graphql_signature}`")
    if op.description and op.description != op.summary:
        lines.append(truncate(op.description, 600))
    if op.parameters:
        lines.append("Parameters:")
        for p in op.parameters[:MAX_FIELDS_SHOWN]:
            lines.append(
                f"• `{p.name}` ({p.location}, {p.type}{', required' if p.required else ''})"
                + (f": {truncate(p.description, 120)}" if p.description else "")
            )
        if len(op.parameters) > MAX_FIELDS_SHOWN:
            lines.append(f"• …and {len(op.parameters) - MAX_FIELDS_SHOWN} more")
    body = op.request_body
    if body and body.fields:
        lines.append(f"Request body ({body.content_type}):")
        for f in body.fields[:MAX_FIELDS_SHOWN]:
            lines.append(
                f"• `{f.name}` ({f.type or 'value'}{', required' if f.required else ''})"
                + (f": {truncate(f.description, 120)}" if f.description else "")
            )
        if len(body.fields) > MAX_FIELDS_SHOWN:
            lines.append(f"• …and {len(body.fields) - MAX_FIELDS_SHOWN} more fields")
    if not auth_first:
        lines.append("Auth: " + describe_auth(evidence.spec, op))
    return "\n".join(lines)


def describe_auth(spec: ApiSpec, operation: Operation) -> str:
    """Which security applies to an operation, in words, with the scopes each scheme needs."""
    alternatives = spec.effective_security(operation)
    if not alternatives:
        return "none required" if spec.security_schemes or operation.security == () else "not described in the spec"
    described = []
    for requirements in alternatives[:3]:
        parts = [describe_requirement(spec, requirement) for requirement in requirements]
        described.append(" + ".join(parts) or "none")
    return " or ".join(described)


def describe_requirement(spec: ApiSpec, requirement: SecurityRequirement) -> str:
    """One scheme an operation needs: how it is sent, its name, and the scopes asked for."""
    scheme = spec.scheme(requirement.scheme)
    text = f"{describe_scheme(scheme, flows=False)} (`{requirement.scheme}`)" if scheme else f"`{requirement.scheme}`"
    return text + describe_scopes(requirement.scopes)


def describe_scopes(scopes: tuple[str, ...]) -> str:
    """` with scopes `a`, `b``, or nothing when there are none."""
    if not scopes:
        return ""
    shown = ", ".join(f"`{scope}`" for scope in scopes[:MAX_SCOPES_SHOWN])
    more = f" and {len(scopes) - MAX_SCOPES_SHOWN} more" if len(scopes) > MAX_SCOPES_SHOWN else ""
    return f" with scope{'s' if len(scopes) > 1 else ''} {shown}{more}"


def attach_scheme_uses(evidence: list[Evidence], operations: int = MAX_SCHEME_USES) -> list[Evidence]:
    """Each scheme in the evidence with the top retrieved operations of its spec that need it, and their scopes."""
    result = []
    for item in evidence:
        if item.scheme is None:
            result.append(item)
            continue
        uses = []
        same_spec = [e.operation for e in evidence if e.spec_name == item.spec_name and e.operation is not None]
        for operation in same_spec[:operations]:
            for requirement in required_schemes(item.spec, operation):
                if requirement.scheme == item.scheme.name:
                    uses.append(SchemeUse(operation.label, requirement.scopes))
        # "Every match needs it, no scopes asked" tells nothing the scheme itself does not.
        if len(uses) == len(same_spec[:operations]) and not any(use.scopes for use in uses):
            uses = []
        result.append(replace(item, uses=tuple(uses)))
    return result


def describe_scheme_evidence(evidence: Evidence) -> str:
    """Markdown detail of a scheme: how it is used, its description, scopes, and the operations needing it."""
    scheme = evidence.scheme
    assert scheme is not None
    text = f"`{evidence.spec_name}` authenticates with **{scheme.name}**: {describe_scheme(scheme)}."
    if scheme.description:
        text += "\n" + truncate(scheme.description, 600)
    if scheme.scopes:
        text += "\nScopes include: " + ", ".join(f"`{s}`" for s in scheme.scopes[:MAX_SCOPES_SHOWN])
    if evidence.uses:
        text += "\nNeeded by the best matching operations:\n" + "\n".join(
            f"• `{use.operation}`" + describe_scopes(use.scopes) for use in evidence.uses
        )
    return text


def retrieval_answer(question: str, evidence: list[Evidence], notice: str = "") -> Answer:
    """An honest answer from retrieval alone: the best match in detail, a snippet, and other matches."""
    if not evidence:
        return Answer(AnswerKind.NOTHING_FOUND, (TextBlock(messages.nothing_relevant(question)),))
    best = evidence[0]
    blocks: list[Block] = []
    target: SnippetTarget | None = None
    asked = classify(question)
    # Markdown docs describe auth in prose, if at all; every other format has a place to declare it.
    if (
        asked.intent is AuthIntent.GENERAL
        and best.scheme is None
        and not best.spec.security_schemes
        and best.spec.format is not SpecFormat.MARKDOWN
    ):
        blocks.append(TextBlock(messages.auth_not_described(best.spec_name)))
    if best.operation is not None:
        detail = describe_operation(best, auth_first=asked.is_auth)
        blocks.append(TextBlock(f"Best match in `{best.spec_name}`:\n" + detail))
        code, target = snippet_blocks(question, best)
        blocks.extend(code)
    elif best.scheme is not None:
        blocks.append(TextBlock(describe_scheme_evidence(best)))
    others = evidence[1 : 1 + OTHER_MATCHES_SHOWN]
    if others:
        blocks.append(TextBlock("Other matches:\n" + "\n".join(f"• `{e.spec_name}`: {e.title}" for e in others)))
    citations = tuple(e.citation() for e in evidence[: 1 + OTHER_MATCHES_SHOWN])
    # Spec text is quoted here as-is; a description saying "@everyone" must not ping anyone.
    safe = tuple(TextBlock(defuse_mentions(b.text)) if isinstance(b, TextBlock) else b for b in blocks)
    return Answer(AnswerKind.RETRIEVAL, safe, citations, notice, snippet=target)


def answer_to_dict(answer: Answer) -> dict[str, object]:
    """Plain data for the answer cache."""
    return {
        "kind": answer.kind.value,
        "blocks": [
            {"code": b.code, "language": b.language} if isinstance(b, CodeBlock) else {"text": b.text}
            for b in answer.blocks
        ],
        "citations": [{"spec": c.spec, "label": c.label, "item": c.item} for c in answer.citations],
        "notice": answer.notice,
        "snippet": [answer.snippet.spec, answer.snippet.operation] if answer.snippet else None,
    }


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """Rebuild a cached answer (with a fresh id, so feedback on each delivery is told apart)."""
    blocks: list[Block] = [
        CodeBlock(b["language"], b["code"]) if "code" in b else TextBlock(b["text"]) for b in data["blocks"]
    ]
    citations = tuple(Citation(c["spec"], c["label"], c["item"]) for c in data["citations"])
    snippet = data.get("snippet")  # absent from answers cached before snippets named their operation
    target = SnippetTarget(str(snippet[0]), str(snippet[1])) if snippet else None
    return Answer(AnswerKind(data["kind"]), tuple(blocks), citations, data["notice"], snippet=target)
