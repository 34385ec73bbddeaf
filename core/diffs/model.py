"""What a diff between two versions of a spec found: changes, each tagged with its rule and whether it breaks.

Rule ids follow oasdiff's checker (`request-property-removed`, `new-required-request-parameter`, ...) where
oasdiff has one, so a team used to it reads the same names; the user-facing wording of each rule lives in
`core.messages` (`change_text`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

MAX_CHANGES = 5000
"""At most this many non-breaking changes are kept in detail per diff (a spec rewritten from scratch would list
every field); beyond it they are only counted. Breaking ones are kept up to `MAX_BREAKING`."""
MAX_BREAKING = 20_000
WHOLE_OPERATION = frozenset({
    "api-removed-without-deprecation", "api-path-removed-without-deprecation", "api-removed-after-deprecation",
    "request-removed", "graphql-field-removed", "api-server-changed", "api-global-security-added",
    "api-global-security-changed", "api-global-security-scope-added",
})
"""Breaking changes listed before the others: whole operations gone, or every request affected."""


@dataclass(frozen=True, order=True)
class Change:
    """One difference between two versions, at one place in the spec.

    `where` is the operation it concerns (`POST /pets`, `mutation createIssue`, a Postman request's label) or
    "" for the spec as a whole; `subject` names the parameter, field, status or scheme (a dotted field path,
    `query id`, `200`), and `before` / `after` the values that changed, as short text.
    """

    breaking: bool
    where: str
    rule: str
    subject: str = ""
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class SpecDiff:
    """Every change between two versions of a spec, breaking ones first, in a stable order."""

    changes: tuple[Change, ...]
    added: tuple[str, ...] = ()  # labels of operations only the new version has
    removed: tuple[str, ...] = ()  # labels of operations only the old version has
    truncated: bool = False  # a bound was reached: some schemas were compared only in part
    uncounted: tuple[tuple[str, bool, int], ...] = ()  # (rule, breaking, count) of changes only counted

    @property
    def breaking(self) -> tuple[Change, ...]:
        """The changes that can break a client written against the old version."""
        return tuple(c for c in self.changes if c.breaking)

    @property
    def non_breaking(self) -> tuple[Change, ...]:
        """Everything else: additions, relaxations, description edits."""
        return tuple(c for c in self.changes if not c.breaking)

    def counts(self, breaking: bool | None = None) -> dict[str, int]:
        """How many changes of each rule (only breaking or non-breaking ones when `breaking` says so)."""
        chosen = self.changes if breaking is None else [c for c in self.changes if c.breaking is breaking]
        found = Counter(c.rule for c in chosen)
        for rule, is_breaking, count in self.uncounted:
            if breaking is None or is_breaking is breaking:
                found[rule] += count
        return dict(sorted(found.items(), key=lambda pair: (-pair[1], pair[0])))

    @property
    def breaking_count(self) -> int:
        """How many breaking changes there are (listed or only counted)."""
        return sum(self.counts(True).values())

    @property
    def non_breaking_count(self) -> int:
        """How many non-breaking changes there are (listed or only counted)."""
        return sum(self.counts(False).values())

    @property
    def empty(self) -> bool:
        """Whether the two versions describe the same API as far as the diff can tell."""
        return not self.changes


class ChangeList:
    """Collects changes up to `MAX_CHANGES`, remembering whether any were dropped."""

    def __init__(self, limit: int = MAX_CHANGES, breaking_limit: int = MAX_BREAKING) -> None:
        self._limits = {False: limit, True: breaking_limit}
        self._kept: dict[bool, set[Change]] = {False: set(), True: set()}
        self._counted: Counter[tuple[str, bool]] = Counter()

    def add(
        self, rule: str, breaking: bool, where: str, subject: str = "", before: object = "", after: object = ""
    ) -> None:
        """Record one change (beyond the limit of its kind it is only counted)."""
        kept = self._kept[breaking]
        if len(kept) >= self._limits[breaking]:
            self._counted[(rule, breaking)] += 1
            return
        kept.add(Change(breaking, where, rule, subject, _short(before), _short(after)))

    def has_breaking(self, where: str) -> bool:
        """Whether a breaking change was recorded for `where`."""
        return any(c.where == where for c in self._kept[True])

    def result(self, added: list[str], removed: list[str], truncated: bool = False) -> SpecDiff:
        """The diff: breaking changes first, whole operations before fields, then by operation, rule, subject."""
        ordered = sorted(
            self._kept[True] | self._kept[False],
            key=lambda c: (not c.breaking, c.rule not in WHOLE_OPERATION, c.where, c.rule, c.subject, c.before),
        )
        uncounted = tuple((rule, breaking, n) for (rule, breaking), n in sorted(self._counted.items()))
        return SpecDiff(tuple(ordered), tuple(sorted(added)), tuple(sorted(removed)), truncated, uncounted)


MAX_VALUE_CHARS = 120


def _short(value: object) -> str:
    text = value if isinstance(value, str) else str(value) if value is not None else ""
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
