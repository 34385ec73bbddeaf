"""Validating a value against a converted schema with `jsonschema`, bounded in time, each problem with its JSON path.

The validator is jsonschema's draft 2020-12 one with a few keywords replaced:

- `pattern`, `patternProperties` and `additionalProperties` match a spec's regexes (attacker-supplied text) with
  the `regex` module and a timeout: a pattern longer than `MAX_PATTERN_CHARS`, one that does not compile, or one
  that takes longer than `PATTERN_TIMEOUT_SECONDS` (or once `PATTERN_BUDGET_SECONDS` are spent in patterns) is
  skipped and the reply says so, never hangs the bot;
- `uniqueItems` compares canonical JSON text in a set (jsonschema falls back to comparing every pair);
- `readOnly` (in requests) and `writeOnly` (in responses) report a field that should not be there;
- every keyword counts against a deadline (`Budget`), so even a schema whose `oneOf`s multiply the work stops
  after `CHECK_TIMEOUT_SECONDS` with what was found so far;
- `unevaluatedProperties` next to `patternProperties` is skipped (jsonschema matches those patterns with `re`).
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from core import messages
from core.parsing.values import json_type as loaded_json_type

MAX_PATTERN_CHARS = 1_000
PATTERN_TIMEOUT_SECONDS = 0.05
PATTERN_BUDGET_SECONDS = 0.5  # all patterns of one check together
CHECK_TIMEOUT_SECONDS = 3.0  # one value against one schema
MAX_PROBLEMS = 25  # reported per check; the rest are counted
MAX_SHOWN_VALUE = 60
MAX_SHOWN_ENUM = 10
_TICKS_PER_CLOCK = 64


class ProblemKind(StrEnum):
    """What is wrong with a request or response."""

    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    NOT_IN_ENUM = "not_in_enum"
    PATTERN = "pattern"
    BOUNDS = "bounds"
    READ_ONLY = "read_only"
    WRITE_ONLY = "write_only"
    CONTENT_TYPE = "content_type"
    MISSING_AUTH = "missing_auth"
    PLACEHOLDER = "placeholder"
    MISSING_PARAMETER = "missing_parameter"
    MISSING_BODY = "missing_body"
    INVALID_BODY = "invalid_body"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is (`$.name`, query `limit`, header `api_key`) and what it is, in a sentence."""

    kind: ProblemKind
    where: str
    text: str


class _OutOfTime(Exception):
    """The check's deadline passed inside the validator."""


@dataclass
class Budget:
    """The time one validation may take, and the patterns it could not check."""

    seconds: float = CHECK_TIMEOUT_SECONDS
    started: float = field(default_factory=time.monotonic)
    ticks: int = 0
    pattern_seconds: float = 0.0
    skipped_patterns: list[str] = field(default_factory=list)
    out_of_time: bool = False

    def tick(self) -> None:
        """Count one keyword; every `_TICKS_PER_CLOCK` look at the clock and stop past the deadline."""
        self.ticks += 1
        if self.ticks % _TICKS_PER_CLOCK == 0 and time.monotonic() - self.started > self.seconds:
            self.out_of_time = True
            raise _OutOfTime

    def skip(self, pattern: str) -> None:
        """Remember a pattern that was not checked."""
        if pattern not in self.skipped_patterns and len(self.skipped_patterns) < 10:
            self.skipped_patterns.append(pattern)


_BUDGET: contextvars.ContextVar[Budget] = contextvars.ContextVar("check_budget")


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError):
        return None


def pattern_search(pattern: str, text: str) -> bool | None:
    """Whether `pattern` is found in `text`; None when it was not checked (too long, invalid, too slow)."""
    budget = _BUDGET.get(None) or Budget()
    remaining = PATTERN_BUDGET_SECONDS - budget.pattern_seconds
    if len(pattern) > MAX_PATTERN_CHARS or remaining <= 0:
        budget.skip(pattern)
        return None
    compiled = _compiled(pattern)
    if compiled is None:
        budget.skip(pattern)
        return None
    started = time.monotonic()
    try:
        return compiled.search(text, timeout=min(PATTERN_TIMEOUT_SECONDS, remaining)) is not None
    except TimeoutError:
        budget.skip(pattern)
        return None
    finally:
        budget.pattern_seconds += time.monotonic() - started


# ---- keywords ------------------------------------------------------------------------------------------------

Keyword = Callable[[Any, Any, Any, dict[str, Any]], Iterator[ValidationError]]


def _pattern(validator: Any, pattern: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if (
        validator.is_type(instance, "string")
        and isinstance(pattern, str)
        and pattern_search(pattern, instance) is False
    ):
        yield ValidationError("pattern")


def _pattern_properties(
    validator: Any, patterns: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object") or not isinstance(patterns, dict):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if pattern_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties") or {}
    patterns = schema.get("patternProperties") or {}
    extras = [
        key for key in instance
        if key not in properties and not any(pattern_search(p, key) for p in patterns)
    ]  # fmt: skip
    if isinstance(extra, dict):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False:
        for key in extras:
            yield ValidationError("unknown", path=[key])


def _unique_items(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        text = json.dumps(item, sort_keys=True)
        if text in seen:
            yield ValidationError("unique")
            return
        seen.add(text)


def _forbidden(kind: str) -> Keyword:
    def keyword(validator: Any, flag: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if flag is True:
            yield ValidationError(kind)

    return keyword


def _timed(keyword: Keyword) -> Keyword:
    def timed(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        budget = _BUDGET.get(None)
        if budget is not None:
            budget.tick()
        yield from keyword(validator, value, instance, schema)

    return timed


def _unevaluated_properties(original: Keyword) -> Keyword:
    def keyword(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if "patternProperties" in json.dumps(schema, default=str)[:200_000]:
            budget = _BUDGET.get(None)
            if budget is not None:
                budget.skip("unevaluatedProperties")
            return
        yield from original(validator, value, instance, schema)

    return keyword


def _validator_class(direction: str) -> Any:
    base = dict(Draft202012Validator.VALIDATORS)
    base["pattern"] = _pattern
    base["patternProperties"] = _pattern_properties
    base["additionalProperties"] = _additional_properties
    base["uniqueItems"] = _unique_items
    base["unevaluatedProperties"] = _unevaluated_properties(base["unevaluatedProperties"])
    if direction == "request":
        base["readOnly"] = _forbidden("readOnly")
    else:
        base["writeOnly"] = _forbidden("writeOnly")
    keywords = {name: _timed(keyword) for name, keyword in base.items()}
    # No format checker is passed when validating, so `format` stays an annotation, as OpenAPI tools treat it.
    return validators.extend(Draft202012Validator, keywords)


_REQUEST_VALIDATOR = _validator_class("request")
_RESPONSE_VALIDATOR = _validator_class("response")


# ---- checking ------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What validating one value found."""

    problems: list[Problem] = field(default_factory=list)
    more: int = 0  # problems found beyond `MAX_PROBLEMS`
    notes: list[str] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        """Keep a problem, or count it past the cap."""
        if any(p.where == problem.where and p.kind is problem.kind for p in self.problems):
            return
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more += 1

    def note(self, text: str) -> None:
        """Keep a note once."""
        if text not in self.notes:
            self.notes.append(text)


def validate(
    instance: Any,
    schema: dict[str, Any] | bool,
    *,
    direction: str,
    where: str,
    outcome: Outcome,
    secret: Callable[[str], bool] = lambda _: False,
    budget: Budget | None = None,
) -> None:
    """Validate `instance` against `schema`, adding its problems (at `where` + JSON path) to `outcome`.

    `direction` is "request" (read-only fields refused) or "response" (write-only ones refused); `secret` says
    whether the field at a path holds a credential, whose value is then never quoted.
    """
    budget = budget or Budget()
    token = _BUDGET.set(budget)
    cls = _REQUEST_VALIDATOR if direction == "request" else _RESPONSE_VALIDATOR
    try:
        validator = cls(schema)
        for error in validator.iter_errors(instance):
            for problem in _problems(error, where, secret, 0):
                outcome.add(problem)
            if outcome.more > MAX_PROBLEMS * 4:
                break
    except _OutOfTime:
        outcome.note(messages.check_out_of_time(budget.seconds))
    except RecursionError:
        outcome.note(messages.check_schema_recursive())
    finally:
        _BUDGET.reset(token)
    for pattern in budget.skipped_patterns:
        outcome.note(messages.check_pattern_skipped(pattern[:80]))


def json_path(root: str, path: Any) -> str:
    """`$` plus `.name`, `[0]` or `["odd key"]` per step."""
    parts = [root]
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif isinstance(step, str) and step.isidentifier():
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(str(step))}]")
    return "".join(parts)


def shown_value(value: Any) -> str:
    """A short rendering of a value for a problem's sentence."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON type name of a Python value ("null" for None; anything unknown reads as an object)."""
    if value is None:
        return "null"
    return loaded_json_type(value) or "object"


_BOUNDS = frozenset(
    {"minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
     "multipleOf", "minProperties", "maxProperties", "uniqueItems", "minContains", "maxContains"}
)  # fmt: skip


def _problems(error: ValidationError, root: str, secret: Callable[[str], bool], depth: int) -> Iterator[Problem]:
    """The problems one jsonschema error stands for, in words (never jsonschema's own text, which quotes values)."""
    keyword = str(error.validator)
    path = list(error.absolute_path)
    where = json_path(root, path)
    instance = error.instance
    hidden = secret(where)
    if keyword == "required":
        # jsonschema reports each missing name once; `Outcome.add` drops the repeats this makes
        for name in error.validator_value if isinstance(instance, dict) else ():
            if isinstance(name, str) and name not in instance:
                yield Problem(ProblemKind.MISSING_FIELD, json_path(root, [*path, name]), messages.check_missing_field())
    elif keyword == "additionalProperties":
        yield Problem(ProblemKind.UNKNOWN_FIELD, where, messages.check_unknown_field())
    elif keyword == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        yield Problem(
            ProblemKind.WRONG_TYPE, where, messages.check_wrong_type([str(t) for t in expected], json_type(instance))
        )
    elif keyword in ("enum", "const"):
        allowed = error.validator_value if keyword == "enum" else [error.validator_value]
        shown = [shown_value(v) for v in list(allowed)[:MAX_SHOWN_ENUM]]
        yield Problem(
            ProblemKind.NOT_IN_ENUM,
            where,
            messages.check_not_in_enum(None if hidden else shown_value(instance), shown, len(allowed) > MAX_SHOWN_ENUM),
        )
    elif keyword == "pattern":
        yield Problem(ProblemKind.PATTERN, where, messages.check_pattern(str(error.validator_value)[:120]))
    elif keyword in _BOUNDS:
        size = len(instance) if isinstance(instance, str | list | dict) else None
        yield Problem(ProblemKind.BOUNDS, where, messages.check_bounds(keyword, error.validator_value, size))
    elif keyword == "readOnly":
        yield Problem(ProblemKind.READ_ONLY, where, messages.check_read_only())
    elif keyword == "writeOnly":
        yield Problem(ProblemKind.WRITE_ONLY, where, messages.check_write_only())
    elif keyword in ("anyOf", "oneOf") and error.context and depth < 8:
        yield from _alternatives(error, root, secret, depth)
    else:
        yield Problem(ProblemKind.NOT_ALLOWED, where, messages.check_not_allowed(keyword))


def _alternatives(error: ValidationError, root: str, secret: Callable[[str], bool], depth: int) -> Iterator[Problem]:
    """A value matching none of `anyOf`/`oneOf`: the problems of the closest alternative, or the types it may be."""
    by_alternative: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        by_alternative.setdefault(int(index), []).append(sub)
    if not by_alternative:  # oneOf matched more than one alternative
        yield Problem(ProblemKind.NOT_ALLOWED, json_path(root, error.absolute_path), messages.check_ambiguous())
        return
    here = list(error.absolute_path)

    def mismatched(errors: list[ValidationError]) -> bool:
        return any(
            list(e.absolute_path) == here and str(e.validator) in ("type", "const", "enum", "not") for e in errors
        )

    close = {index: errors for index, errors in by_alternative.items() if not mismatched(errors)}
    if close:
        errors = min(close.values(), key=len)
        for sub in errors:
            yield from _problems(sub, root, secret, depth + 1)
        return
    expected: list[str] = []
    for errors in by_alternative.values():
        for sub in errors:
            if list(sub.absolute_path) != here:
                continue
            if str(sub.validator) == "type":
                values = sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]
                expected += [str(v) for v in values]
            elif str(sub.validator) == "const":
                expected.append(shown_value(sub.validator_value))
            elif str(sub.validator) == "enum":
                expected += [shown_value(v) for v in list(sub.validator_value)[:MAX_SHOWN_ENUM]]
    expected = list(dict.fromkeys(expected))
    where = json_path(root, here)
    if expected:
        instance = error.instance
        if all(e in {"string", "integer", "number", "boolean", "array", "object", "null"} for e in expected):
            yield Problem(ProblemKind.WRONG_TYPE, where, messages.check_wrong_type(expected, json_type(instance)))
        else:
            value = None if secret(where) else shown_value(instance)
            yield Problem(ProblemKind.NOT_IN_ENUM, where, messages.check_not_in_enum(value, expected, False))
    else:
        yield Problem(ProblemKind.NOT_ALLOWED, where, messages.check_no_alternative())
