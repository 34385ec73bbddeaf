"""Questions about what changed in a spec: telling them apart, and finding the spec and versions they name.

"What changed in discord?", "is the new stripe spec breaking for us?", "what's new in the petstore spec",
"breaking changes in stripe since v2" are answered from the diff of two kept versions of the spec, not by
searching it. A question has to say so in words that ask about changes between versions:

- "changed" after "what" / "anything" (a word or two apart: "what has changed"), or before "since" / "between";
- "new" after "what's" / "what is" / "anything";
- "breaking", "break", "breaks", "broke" together with "change(s)" or a word about versions or specs ("spec",
  "version", "latest", "update", "upgrade", "release", "since");
- "changelog", "diff", "difference(s) between", or "changes" after "the", "any", "recent", "latest", "new", "all",
  "list" or before "since" / "between".

A question that only uses the verb ("how do I change a customer's email?", "what changes when I set capture?")
is not one of them. Versions are read only after "since", "from", "between", "and", "to", "vs" or "version"
("since v2", "between 1 and 3", "from 2023-10-16"); a "v10" that is part of a name is left alone.

Everything here reads the question once, word by word (at most `MAX_WORDS` words of `MAX_QUESTION_CHARS`
characters, with a regex that cannot backtrack), and looks spec names up in a dictionary: linear time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core import messages
from core.answers import Answer, AnswerKind, Citation, TextBlock
from core.diffs.report import DiffReport

MAX_QUESTION_CHARS = 4000  # as long as a question may be (`core.assistant.MAX_QUESTION_CHARS`)
MAX_WORDS = 1000
MAX_VERSIONS = 2
CHANGED_WINDOW = 3  # "what has the API changed": "what" at most this many words before "changed"

# One word: letters and digits, with single joiners inside ("what's", "v1.2", "discord_api", "2023-10-16"). A
# joiner must be followed by a letter or digit, so each character is matched once: no backtracking.
_WORD = re.compile(r"[a-z0-9]+(?:[._'-][a-z0-9]+)*")
_HAS_DIGIT = re.compile(r"[0-9]")

_ASKS_WHAT = frozenset({"what", "what's", "whats", "anything", "something"})
_WHATS = frozenset({"what's", "whats", "anything"})
_BREAK_WORDS = frozenset({"breaking", "break", "breaks", "broke"})
_CHANGE_NOUNS = frozenset({"change", "changes"})
# "new" alone is not enough: "does creating a new customer break anything?" asks about an operation.
_VERSION_WORDS = frozenset({
    "newer", "newest", "latest", "version", "versions", "update", "updated", "upgrade", "upgraded", "release",
    "released", "since", "spec", "specs",
})
_BEFORE_CHANGES = frozenset({"the", "any", "recent", "latest", "new", "all", "list", "breaking"})
_BETWEEN = frozenset({"since", "between"})
_VERSION_CUES = frozenset({"since", "from", "between", "and", "to", "vs", "versus", "version"})
_SINCE = frozenset({"since", "from"})
_VERSION_PREFIX = re.compile(r"v?[0-9]")
# Parts of spec names and titles too common to name one spec ("stripe_api": "stripe" names it, "api" does not).
_GENERIC = frozenset({
    "api", "apis", "spec", "specs", "openapi", "swagger", "the", "rest", "http", "service", "json", "yaml", "yml",
    "public", "official", "reference", "new", "old", "latest", "version",
})
MIN_NAME_PART = 3


@dataclass(frozen=True)
class DiffQuestion:
    """A question about changes: its words (to find the spec it names) and the versions it names, if any.

    `before` None: the version before `after`; `after` None: the current version. `breaking` says the question
    asks whether the changes break clients ("is the new stripe spec breaking for us?").
    """

    words: tuple[str, ...]
    before: str | None = None
    after: str | None = None
    breaking: bool = False


def words_of(text: str) -> tuple[str, ...]:
    """The question's words, lowercased (at most `MAX_WORDS` of its first `MAX_QUESTION_CHARS` characters)."""
    lowered = text[:MAX_QUESTION_CHARS].lower().replace("\u2019", "'")
    found: list[str] = []
    for match in _WORD.finditer(lowered):
        found.append(match.group())
        if len(found) >= MAX_WORDS:
            break
    return tuple(found)


def diff_question(text: str) -> DiffQuestion | None:
    """The question as a question about changes between versions, or None when it is not one."""
    words = words_of(text)
    breaking = _asks_breaking(words)
    if not (breaking or _asks_changes(words)):
        return None
    before, after = _versions(words)
    return DiffQuestion(words, before, after, breaking)


def _asks_changes(words: tuple[str, ...]) -> bool:
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        previous = words[i - 1] if i else ""
        if word == "changed":
            if following in _BETWEEN or _ASKS_WHAT.intersection(words[max(0, i - CHANGED_WINDOW) : i]):
                return True
        elif word == "new":
            if previous in _WHATS or (previous == "is" and i >= 2 and words[i - 2] == "what"):
                return True
        elif word in ("changelog", "diff"):
            return True
        elif word in ("difference", "differences"):
            if following == "between":
                return True
        elif word == "changes" and (previous in _BEFORE_CHANGES or following in _BETWEEN):
            return True
    return False


def _asks_breaking(words: tuple[str, ...]) -> bool:
    about_versions: bool | None = None  # computed once, when first needed
    for i, word in enumerate(words):
        if word not in _BREAK_WORDS:
            continue
        if i + 1 < len(words) and words[i + 1] in _CHANGE_NOUNS:
            return True
        if about_versions is None:
            about_versions = not _VERSION_WORDS.isdisjoint(words)
        if about_versions:
            return True
    return False


def _versions(words: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The versions named after a cue word, in order: (before, after) as the question puts them."""
    found: list[str] = []
    since = False
    for i, word in enumerate(words):
        if word not in _VERSION_CUES or i + 1 >= len(words):
            continue
        candidate = words[i + 1]
        if candidate == "version" and i + 2 < len(words):
            candidate = words[i + 2]
        if not _VERSION_PREFIX.match(candidate) or not _HAS_DIGIT.search(candidate) or candidate in found:
            continue
        if not found and word in _SINCE:
            since = True
        found.append(candidate)
        if len(found) == MAX_VERSIONS:
            break
    if not found:
        return None, None
    if len(found) == MAX_VERSIONS:
        return found[0], found[1]
    return (found[0], None) if since else (None, found[0])


@dataclass(frozen=True)
class NamedSpec:
    """A spec of the workspace as a question may name it: its name and title."""

    name: str
    title: str = ""


def spec_keys(spec: NamedSpec) -> set[str]:
    """The words that name `spec`: its name, the name's distinctive parts, the title's first distinctive word.

    A part also names it without a trailing number ("petstore3": "petstore"); "Swagger Petstore" gives "petstore".
    """
    name = spec.name.lower()
    keys = {name}
    for part in re.split(r"[-_. ]+", name):
        for key in (part, part.rstrip("0123456789")):
            if len(key) >= MIN_NAME_PART and key not in _GENERIC:
                keys.add(key)
    for word in re.split(r"[^a-z0-9]+", spec.title[:200].lower()):
        if len(word) >= MIN_NAME_PART and word not in _GENERIC:
            keys.add(word)
            break
    return keys


def named_spec(words: Iterable[str], specs: Iterable[NamedSpec]) -> str | None:
    """The first spec the words name (a word naming several specs names none of them)."""
    owners: dict[str, set[str]] = {}
    for spec in specs:
        for key in spec_keys(spec):
            owners.setdefault(key, set()).add(spec.name)
    for word in words:
        names = owners.get(word)
        if names is not None and len(names) == 1:
            return next(iter(names))
    return None


MAX_CITED = 8  # operations cited under a diff answer: the breaking ones first, then those added
_OPERATION = re.compile(r"(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS|TRACE) (/\S*)")


def diff_answer(report: DiffReport, question: DiffQuestion) -> Answer:
    """A question about changes, answered from the diff.

    The chat summary (with a yes/no first when it asks whether the changes break clients), the operations concerned
    cited, and the full report attached when the summary cut.
    """
    text = report.summary()
    if question.breaking:
        before = messages.version_label(report.old.number, report.old.label)
        text = messages.diff_verdict(report.diff.breaking_count, before) + "\n\n" + text
    return Answer(
        AnswerKind.DIFF, (TextBlock(text),), _citations(report), report=report.file() if report.needs_file() else None
    )


def _citations(report: DiffReport) -> tuple[Citation, ...]:
    places: list[str] = []
    for where in [c.where for c in report.diff.breaking] + list(report.diff.added):
        if where and where not in places:
            places.append(where)
        if len(places) == MAX_CITED:
            break
    return tuple(Citation(report.name, where, _item(where)) for where in places)


def _item(where: str) -> dict[str, str]:
    match = _OPERATION.fullmatch(where)
    if match:
        return {"kind": "operation", "method": match.group(1), "path": match.group(2)}
    return {"kind": "operation", "name": where}
