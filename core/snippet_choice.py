"""Which snippet language a question asks for, and how an answer's snippet is found again for another language.

Languages come from the snippet registry (`core.snippets.LANGUAGES`, its aliases and labels): a language added
there is understood in questions and offered under answers without a change here. A question naming a language
the registry cannot write ("give me Rust for …") gets the closest one it can, and a note saying which exist.

An answer with a snippet names its `SnippetTarget` (the spec and the operation's stable key). Buttons and menus
under the answer carry it as a short value, `language:ref:spec` (the ref is a hash of the operation key, so the
value fits Discord's 100-character custom ids and Slack's 150-character option values); a click is served from
the spec as it is indexed now, so it keeps working after a restart, on any replica, with no state kept.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from core.snippets import LANGUAGES, language_words, normalise_language

REF_CHARS = 12
_VALUE = re.compile(r"^([a-z0-9+#._-]{0,20}):([0-9a-f]{12}):([A-Za-z0-9][A-Za-z0-9._-]{0,63})$")

# Languages people ask for that the registry may not write: their name, and the closest ones, best first.
# A language the registry learns is served by the registry (it is asked first); these only cover the gap.
_SCRIPTING = ("python", "javascript", "curl")
_COMPILED = ("curl", "python")  # the raw HTTP request carries over to any client library
_JVM = ("java", "curl")
OTHER_LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rust": ("Rust", _COMPILED),
    "kotlin": ("Kotlin", _JVM),
    "scala": ("Scala", _JVM),
    "c++": ("C++", _COMPILED),
    "cpp": ("C++", _COMPILED),
    "swift": ("Swift", _COMPILED),
    "perl": ("Perl", _SCRIPTING),
    "elixir": ("Elixir", _SCRIPTING),
    "dart": ("Dart", ("typescript", "javascript", "curl")),
    "powershell": ("PowerShell", ("curl",)),
}

# Everyday words that are also language names: they count only next to words that make them one
# ("in Go", "with requests", "using fetch", "a node example"), never in "how do I fetch an order?".
AMBIGUOUS = frozenset({
    "go", "rust", "swift", "dart", "fetch", "requests", "shell", "sh", "cli", "terminal", "node", "ts", "rb", "cs",
    "command line", "rails",
})
_LEAD_INS = "in|with|using|via|use|write|into"
_NOUNS = "code|snippets?|examples?|versions?|client|sdk|program|equivalent|samples?"
_BEFORE = re.compile(rf"\b(?:{_LEAD_INS}|me)\s+(?:(?:a|an|the|plain)\s+)?$", re.I)
_AFTER = re.compile(rf"^\s+(?:{_NOUNS}|scripts?|request)\b", re.I)
# "go" is the most common of them ("how do I go about…", "let me go through…", "go request a key", "go-live"):
# it counts after "in", "with", "using", … or before "code", "snippet", "example", …, and after "me" only
# when written "Go" ("give me Go for…"); never followed by a hyphen.
_GO_BEFORE = re.compile(rf"\b(?:{_LEAD_INS})\s+(?:(?:a|an|the|plain)\s+)?$", re.I)
_GO_AFTER = re.compile(rf"^\s+(?:{_NOUNS})\b", re.I)
_ME_BEFORE = re.compile(r"\bme\s+$", re.I)
_CONTEXT_CHARS = 24
MAX_MATCHES = 50  # language words looked at in one question


@dataclass(frozen=True)
class LanguageChoice:
    """The snippet language for a question; `instead_of` names a language asked for that no snippet is written in."""

    language: str
    instead_of: str = ""


def default_language() -> str:
    """The language of a snippet when the question names none: curl, which every reader can run."""
    return "curl" if "curl" in LANGUAGES else LANGUAGES[0]


def available_languages() -> tuple[str, ...]:
    """The languages snippets are written in (the registry's, in its order)."""
    return LANGUAGES


def _word_pattern() -> re.Pattern[str]:
    words = sorted({w.lower() for w in (*language_words(), *OTHER_LANGUAGES)}, key=lambda w: (-len(w), w))
    alternation = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return re.compile(rf"(?<![A-Za-z0-9_.#+-])({alternation})(?![A-Za-z0-9_#+])", re.I)


_WORDS = _word_pattern()


def _counts(text: str, match: re.Match[str]) -> bool:
    word = " ".join(match.group(1).lower().split())
    if word not in AMBIGUOUS:
        return True
    before = text[max(0, match.start() - _CONTEXT_CHARS) : match.start()]
    after = text[match.end() : match.end() + _CONTEXT_CHARS]
    if word == "go":
        if after.startswith("-"):
            return False
        if _GO_BEFORE.search(before) or _GO_AFTER.search(after):
            return True
        return match.group(1) == "Go" and _ME_BEFORE.search(before) is not None
    return bool(_BEFORE.search(before) or _AFTER.search(after))


def _resolve(word: str) -> LanguageChoice | None:
    word = " ".join(word.lower().split())
    known = normalise_language(word)
    if known is not None and known in LANGUAGES:
        return LanguageChoice(known)
    other = OTHER_LANGUAGES.get(word)
    if other is None:
        return None
    label, closest = other
    language = next((c for c in closest if c in LANGUAGES), default_language())
    return LanguageChoice(language, instead_of=label)


def requested_language(question: str) -> LanguageChoice | None:
    """The snippet language a question asks for ("in python", "with curl", "node", "Go"), or None if it names none.

    The first language word that counts decides. Linear in the question's length: one scan over literal words,
    then a bounded look at the few characters around each of at most `MAX_MATCHES` matches.
    """
    for index, match in enumerate(_WORDS.finditer(question)):
        if index >= MAX_MATCHES:
            break
        if _counts(question, match):
            choice = _resolve(match.group(1))
            if choice is not None:
                return choice
    return None


def choose_language(question: str) -> LanguageChoice:
    """The language of the snippet attached to the answer to `question` (the default when it names none)."""
    return requested_language(question) or LanguageChoice(default_language())


@dataclass(frozen=True)
class SnippetTarget:
    """The operation an answer's snippet calls: its spec's name and the operation's stable key (`Operation.key`)."""

    spec: str
    operation: str

    @property
    def ref(self) -> str:
        """A short, stable reference to the operation within its spec."""
        return operation_ref(self.operation)

    def value(self, language: str = "") -> str:
        """What a button or menu carries: `language:ref:spec` (language "" when a menu chooses it)."""
        return f"{language}:{self.ref}:{self.spec}"


def operation_ref(key: str) -> str:
    """The short reference of an operation key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:REF_CHARS]


@dataclass(frozen=True)
class SnippetChoice:
    """A click asking for a snippet: the spec, the operation's ref, and the language ("" when not given)."""

    spec: str
    ref: str
    language: str


def parse_value(value: str) -> SnippetChoice | None:
    """A button's or menu's value back into its parts; None when it is not one we made (never raises)."""
    match = _VALUE.match(value[:120])
    if match is None:
        return None
    return SnippetChoice(spec=match.group(3), ref=match.group(2), language=match.group(1))
