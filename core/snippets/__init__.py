"""Deterministic, ready-to-run code snippets for calling an operation.

curl, Python (httpx), JavaScript (fetch), TypeScript (typed fetch), Go (net/http), Java (java.net.http), Ruby
(net/http), PHP (the curl extension) and C# (HttpClient).

Snippets are built from the normalised model only, never by an LLM. Every request is first described as a
small language-neutral `Request` (URL, query, headers, auth, body, notes; `build.py` and the modules it uses:
`auth.py`, `parameters.py`, `bodies.py`, `graphql.py`) and then rendered per language (`render_*.py`).
Secrets always come from environment variables (`API_TOKEN`, `API_KEY`, `API_USER`, ...), never literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from core.models import ApiSpec, Operation
from core.snippets.build import build_request, can_build_snippet
from core.snippets.render_csharp import render_csharp
from core.snippets.render_curl import render_curl
from core.snippets.render_go import render_go
from core.snippets.render_java import render_java
from core.snippets.render_javascript import render_javascript
from core.snippets.render_php import render_php
from core.snippets.render_python import render_python
from core.snippets.render_ruby import render_ruby
from core.snippets.render_typescript import render_typescript
from core.snippets.request import Request
from core.snippets.source_text import without_surrogates

__all__ = [
    "LANGUAGES",
    "build_snippet",
    "can_build_snippet",
    "language_label",
    "language_words",
    "normalise_language",
]

LANGUAGES = ("curl", "python", "javascript", "typescript", "go", "java", "ruby", "php", "csharp")

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
    "fetch": "javascript",
    "ecmascript": "javascript",
    "deno": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "go": "go",
    "golang": "go",
    "java": "java",
    "ruby": "ruby",
    "rb": "ruby",
    "rails": "ruby",
    "php": "php",
    "csharp": "csharp",
    "c#": "csharp",
    "cs": "csharp",
    "dotnet": "csharp",
    ".net": "csharp",
}

# How each language is named to people (buttons, menus, "here it is in Python"); a new language adds its own.
_LANGUAGE_LABELS = {
    "curl": "curl",
    "python": "Python",
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "go": "Go",
    "java": "Java",
    "ruby": "Ruby",
    "php": "PHP",
    "csharp": "C#",
}

_RENDERERS: dict[str, Callable[[Request], str]] = {
    "curl": render_curl,
    "python": render_python,
    "javascript": render_javascript,
    "typescript": render_typescript,
    "go": render_go,
    "java": render_java,
    "ruby": render_ruby,
    "php": render_php,
    "csharp": render_csharp,
}


def language_label(language: str) -> str:
    """How a `LANGUAGES` value is shown to people ("Python", "JavaScript", "curl")."""
    return _LANGUAGE_LABELS.get(language) or language[:1].upper() + language[1:]


def language_words() -> tuple[str, ...]:
    """Every word people may use for a snippet language (the `LANGUAGES` values and their aliases)."""
    return tuple(dict.fromkeys([*LANGUAGES, *_LANGUAGE_ALIASES]))


def normalise_language(text: str) -> str | None:
    """Map a user's word for a language ("py", "node", "bash", "requests", ...) to a `LANGUAGES` value."""
    cleaned = text.strip().strip("`'\",:;!?()[]").lower()
    for candidate in (cleaned, cleaned.rstrip(".")):  # ".net" keeps its leading dot
        if candidate in _LANGUAGE_ALIASES:
            return _LANGUAGE_ALIASES[candidate]
    for word in re.split(r"[^a-z0-9.+#]+", cleaned):
        for candidate in (word.rstrip("."), word.strip(".")):
            if candidate in _LANGUAGE_ALIASES:
                return _LANGUAGE_ALIASES[candidate]
    return None


def build_snippet(spec: ApiSpec, operation: Operation, language: str) -> str:
    """A ready-to-run snippet calling `operation` in `language` (one of `LANGUAGES`).

    Raises ValueError for an unknown language. Items that name no endpoint (a doc section without a path)
    still get a snippet calling the base URL, with a note saying so.
    """
    normalised = language if language in LANGUAGES else normalise_language(language)
    if normalised is None:
        raise ValueError(f"unknown snippet language {language!r}; expected one of {', '.join(LANGUAGES)}")
    # Lone surrogates (from `\ud800`-style escapes in a JSON spec) cannot be written as UTF-8 in any language.
    return without_surrogates(_RENDERERS[normalised](build_request(spec, operation)))
