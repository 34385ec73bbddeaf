"""Recognising a request for a diagram in a question: "draw the auth flow for stripe".

Deterministic and linear: the question is split into at most `MAX_WORDS` words once, and each word is looked at
a bounded number of times. It must start (after "please", "can you", …) with a drawing verb; then the words
say what to draw (auth, overview, or "the X schema" / "schema X") and which spec (a word that names one of the
workspace's specs: the assistant resolves that, as only it knows the names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.diagrams import AUTH, OVERVIEW, SCHEMA

MAX_WORDS = 40  # a diagram request is short; longer questions are questions
_POLITE = frozenset({"please", "can", "could", "would", "you", "will", "kindly", "pls", "hey", "ok", "now"})
_VERBS = frozenset({"draw", "diagram", "sketch", "visualise", "visualize", "chart", "plot"})
_AUTH = frozenset({"auth", "oauth", "oauth2", "authentication", "authorization", "authorisation", "login",
                   "sign-in", "signin", "token"})
_OVERVIEW = frozenset({"overview", "resources", "endpoints", "operations", "map", "structure", "api"})
_SCHEMA = frozenset({"schema", "model", "object", "type", "definition"})
_FILLER = frozenset({"the", "a", "an", "of", "for", "in", "me", "flow", "flows", "diagram", "s", "'s", "its", "this",
                     "that", "spec", "specs", "api's", "show", "on", "from", "how", "works"})
_WORD = re.compile(r"[A-Za-z0-9_.\-']{1,100}")


@dataclass(frozen=True)
class DiagramIntent:
    """What a question asks to draw; `words` are its other words, among which the spec's name may be."""

    kind: str  # AUTH | OVERVIEW | SCHEMA
    schema: str  # the schema's name for SCHEMA, else ""
    words: tuple[str, ...]


def diagram_intent(question: str) -> DiagramIntent | None:
    """The diagram a question asks for, or None when it is not a drawing request."""
    words = question.split(maxsplit=MAX_WORDS)
    if len(words) > MAX_WORDS:
        return None
    cleaned = [w.strip("?!.,:;\"`()[]{}").removesuffix("'s") for w in words]
    tokens = [w for w in cleaned if w and _WORD.fullmatch(w)]
    start = 0
    while start < len(tokens) and tokens[start].lower() in _POLITE:
        start += 1
    if start >= len(tokens) or tokens[start].lower() not in _VERBS:
        return None
    rest = tokens[start + 1:]
    lowered = [t.lower() for t in rest]
    if any(t in _AUTH for t in lowered):
        kind, schema = AUTH, ""
    elif any(t in _SCHEMA for t in lowered):
        kind, schema = SCHEMA, _schema_word(rest, lowered)
        if not schema:
            return None
    else:
        kind, schema = OVERVIEW, ""
    others = tuple(t for t, low in zip(rest, lowered, strict=True)
                   if low not in _FILLER and low not in _AUTH and low not in _OVERVIEW and low not in _SCHEMA
                   and t != schema)
    return DiagramIntent(kind, schema, others)


def _schema_word(words: list[str], lowered: list[str]) -> str:
    """"the customer schema" -> customer; "schema customer" -> customer."""
    index = next(i for i, t in enumerate(lowered) if t in _SCHEMA)
    before = words[index - 1] if index > 0 and lowered[index - 1] not in _FILLER else ""
    after = words[index + 1] if index + 1 < len(words) and lowered[index + 1] not in _FILLER else ""
    return before or after
