"""Deterministic, ready-to-run code snippets for calling an operation (curl, Python httpx, JavaScript fetch).

Snippets are built from the normalised model only, never by an LLM. Every request is first described as a
small language-neutral `Request` (URL, query, headers, auth, body, notes; `build.py` and the modules it uses:
`auth.py`, `parameters.py`, `bodies.py`, `graphql.py`) and then rendered per language (`render_*.py`).
Secrets always come from environment variables (`API_TOKEN`, `API_KEY`, `API_USER`, ...), never literals.
"""

from __future__ import annotations

import re

from core.models import ApiSpec, Operation
from core.snippets.build import build_request, can_build_snippet
from core.snippets.render_curl import render_curl
from core.snippets.render_javascript import render_javascript
from core.snippets.render_python import render_python

__all__ = [
    "LANGUAGES",
    "build_snippet",
    "can_build_snippet",
    "language_label",
    "language_words",
    "normalise_language",
]

LANGUAGES = ("curl", "python", "javascript")

_LANGUAGE_ALIASES = {
    "curl": "curl",
    "shell": "curl",
    "sh": "curl",
    "bash": "curl",
    "zsh": "curl",
    "terminal": "curl",
    "cli": "curl",
    "command line": "curl",
    "python": "python",
    "python3": "python",
    "py": "python",
    "requests": "python",
    "httpx": "python",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
    "node.js": "javascript",
    "typescript": "javascript",
    "ts": "javascript",
    "fetch": "javascript",
    "ecmascript": "javascript",
    "deno": "javascript",
}

# How each language is named to people (buttons, menus, "here it is in Python"); a new language adds its own.
_LANGUAGE_LABELS = {"curl": "curl", "python": "Python", "javascript": "JavaScript"}


def language_label(language: str) -> str:
    """How a `LANGUAGES` value is shown to people ("Python", "JavaScript", "curl")."""
    return _LANGUAGE_LABELS.get(language) or language[:1].upper() + language[1:]


def language_words() -> tuple[str, ...]:
    """Every word people may use for a snippet language (the `LANGUAGES` values and their aliases)."""
    return tuple(dict.fromkeys([*LANGUAGES, *_LANGUAGE_ALIASES]))


def normalise_language(text: str) -> str | None:
    """Map a user's word for a language ("py", "node", "bash", "requests", ...) to a `LANGUAGES` value."""
    cleaned = text.strip().strip("`'\".,:;!?()[]").lower()
    if cleaned in _LANGUAGE_ALIASES:
        return _LANGUAGE_ALIASES[cleaned]
    for word in re.split(r"[^a-z0-9.+#]+", cleaned):
        word = word.strip(".")
        if word in _LANGUAGE_ALIASES:
            return _LANGUAGE_ALIASES[word]
    return None


def build_snippet(spec: ApiSpec, operation: Operation, language: str) -> str:
    """A ready-to-run snippet calling `operation` in `language` (one of `LANGUAGES`).

    Raises ValueError for an unknown language. Items that name no endpoint (a doc section without a path)
    still get a snippet calling the base URL, with a note saying so.
    """
    normalised = language if language in LANGUAGES else normalise_language(language)
    if normalised is None:
        raise ValueError(f"unknown snippet language {language!r}; expected one of {', '.join(LANGUAGES)}")
    request = build_request(spec, operation)
    if normalised == "curl":
        return render_curl(request)
    if normalised == "python":
        return render_python(request)
    return render_javascript(request)
