"""Questions about authentication: telling them apart, and putting the spec's security schemes where they belong.

"What auth does this need?" is about the API's security schemes, not about whichever operation happens to
mention a token; "what token does chat.postMessage need?" is about one operation and the scheme (with the
scopes) it requires. Retrieval ranks both like any other question; `rank_for_auth` runs after it:

- a question about the API's auth in general gets the spec's schemes first, or, for a spec that declares none,
  its sections about authentication. Among the schemes, one the question names ("OAuth2 scopes", "my api key")
  comes first; then, when the question says what the asker wants to do ("so I can modify pets"), the ones the
  best matching operations need; then the retriever's order, and the schemes it did not return last;
- a question naming an operation ("what token does chat.postMessage need?") gets that operation first and the
  schemes it needs right after it;
- any other question, including one about an operation that handles credentials ("revoke a token"), is left
  exactly as retrieved.

The classifier is word-based and bounded: it reads at most `MAX_QUESTION_CHARS` of the question, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from core.documents import Document, scheme_document
from core.models import ApiSpec, ItemKind, Operation, SecurityRequirement, SecurityScheme
from core.retrieval import RetrievedItem

MAX_QUESTION_CHARS = 4000  # as long as a question may be; this bounds the classifier on its own too
MAX_WORDS = 1000
MAX_SCHEMES_FIRST = 4  # a spec declaring a dozen schemes must not push every operation out of the answer
OPERATIONS_CONSULTED = 3  # the top operations whose schemes decide a purposeful question's order
LOGIN_OBJECT_WORDS = 2  # "log the user in": at most this many words between the verb and "in"
TOKEN_VERB_WINDOW = 3  # "refresh an access token": the verb at most this many words before the credential

_WORD = re.compile(r"[a-z0-9]+(?:[.:_'-][a-z0-9]+)*")
_NAME_PART = re.compile(r"[a-z]+|[0-9]+")

# Words that make a question about authentication on their own.
_AUTH_WORDS = frozenset(
    """auth authn authz authenticate authenticates authenticating authentication authorization authorisation
    authorize authorise token tokens scope scopes oauth oauth2 oauth1 bearer credential credentials apikey
    api-key api_key jwt openid oidc sso 401 unauthorized unauthorised unauthenticated""".split()
)
# Two-word phrases that do the same ("api key", "client secret").
_AUTH_PHRASES = frozenset(
    {
        ("api", "key"),
        ("api", "keys"),
        ("secret", "key"),
        ("secret", "keys"),
        ("publishable", "key"),
        ("access", "key"),
        ("app", "key"),
        ("client", "secret"),
        ("client", "id"),
    }
)
# A word before `token` or `authorization` that makes it something else: a page token is for paging, a card
# token is payment data, an issuing authorization is a card payment being approved.
_OTHER_KINDS = frozenset(
    """page pagination next continuation cursor sync idempotency device registration verification webhook csrf
    upload resume invite invitation reset confirmation push card payment issuing incremental pre""".split()
)
# Words about logging in or about someone who is: the question may be about the login operation ("how do I log
# them in?") or the current user ("get the authenticated user"), so they attach auth details but never move
# schemes ahead of what was retrieved.
_LOGIN_WORDS = frozenset(
    {"login", "logon", "signin", "sign-in", "log-in", "permission", "permissions", "403", "forbidden"}
)
_LOGIN_VERBS = frozenset({"log", "logs", "logged", "logging", "sign", "signs", "signed", "signing"})
_PARTICIPLES = frozenset({"authenticated", "authorized", "authorised"})  # "an authenticated request": auth
_SUBJECTS = frozenset(  # "the authenticated user": a person, not auth
    "user users account accounts member members customer customers person people profile viewer app apps".split()
)

# A credential acted on by one of these verbs is the subject of an operation ("revoke a token", "which call
# issues that token?"), not of the API's auth in general.
_CREDENTIAL_NOUNS = frozenset(
    "token tokens key keys credential credentials secret secrets authorization authorizations".split()
)
_ACTION_VERBS = frozenset(
    """revoke revokes revoking refresh refreshes refreshing rotate rotates rotating create creates creating
    generate generates generating issue issues issuing mint mints minting exchange exchanges exchanging
    invalidate invalidates introspect introspects delete deletes deleting list lists listing add adds adding
    update updates updating remove removes removing retrieve retrieves retrieving fetch fetches fetching
    approve approves approving decline declines declining capture captures capturing""".split()
)

# Words that say nothing about what the asker wants to do, beyond authenticating to the API.
_GENERIC_WORDS = frozenset(
    """a an and any are as at be by can could do does did for from how i i'm in is it its me my of on or our so
    that the their them this these those to us use used uses using want we what when where which who why will
    with would you your need needs needed required require requires should must have has get got go way ways
    kind type types sort right correct proper work works there here also just please tell know about exactly
    api apis rest web http https service services endpoint endpoints request requests call calls collection
    spec specs schema server client app application bot send sending pass passing put add header headers
    supply provide give set up setup first all every each other both either one only them it instead via
    properly access accessing talk talking against into connect connecting make making mine own basic""".split()
)


class AuthIntent(Enum):
    """What a question asks about authentication."""

    NONE = "none"
    LOGIN = "login"  # logging in, permissions, the signed-in user: auth details are attached, the order is kept
    GENERAL = "general"  # the API's auth: its schemes first
    OPERATION = "operation"  # an operation that handles credentials ("revoke a token"): the order is kept


@dataclass(frozen=True)
class AuthQuestion:
    """How a question relates to authentication."""

    intent: AuthIntent
    content_words: tuple[str, ...] = ()  # words beyond auth and filler: what the asker wants to do

    @property
    def is_auth(self) -> bool:
        """Whether the answer should spell out the schemes and scopes involved."""
        return self.intent is not AuthIntent.NONE


def _words(question: str) -> list[str]:
    words: list[str] = []
    for match in _WORD.finditer(question[:MAX_QUESTION_CHARS].lower()):
        words.append(match.group(0).strip("'"))
        if len(words) == MAX_WORDS:
            break
    return words


def classify(question: str) -> AuthQuestion:
    """Whether a question is about authentication, and whether about the API's auth or an operation's."""
    words = _words(question)
    strong = weak = acted_on = False
    auth_words: set[str] = set()
    for index, word in enumerate(words):
        before = words[index - 1] if index else ""
        after = words[index + 1] if index + 1 < len(words) else ""
        if (word, after) in _AUTH_PHRASES:
            strong = True
            auth_words |= {word, after}
        elif word in _LOGIN_VERBS and "in" in words[index + 1 : index + 1 + LOGIN_OBJECT_WORDS + 1]:
            weak = True  # "log in", "sign them in", "log the new user in"
            auth_words |= {word, "in"}
        if word in _LOGIN_WORDS:
            weak = True
        elif word in _PARTICIPLES:
            strong, weak = (strong, True) if after in _SUBJECTS else (True, weak)
        elif word in _AUTH_WORDS and before not in _OTHER_KINDS:
            strong = True
        if word in _CREDENTIAL_NOUNS and before not in _OTHER_KINDS:
            window = words[max(0, index - TOKEN_VERB_WINDOW) : index]
            acted_on = acted_on or any(verb in _ACTION_VERBS for verb in window)
        if word in _AUTH_WORDS or word in _LOGIN_WORDS or word in _PARTICIPLES:
            auth_words.add(word)
    if not strong:
        return AuthQuestion(AuthIntent.LOGIN if weak else AuthIntent.NONE)
    content = tuple(
        dict.fromkeys(w for w in words if w not in auth_words and w not in _GENERIC_WORDS and not w.isdigit())
    )
    return AuthQuestion(AuthIntent.OPERATION if acted_on else AuthIntent.GENERAL, content)


# ---- ranking ---------------------------------------------------------------------------------------------

_IDENTIFIER_SHAPE = re.compile(r"[./_{}\s]|[a-z][A-Z]")


def names_operation(question: str, document: Document) -> bool:
    """Whether the question quotes this operation's identifier (`chat.postMessage`, `/v1/charges`, `createIssue`).

    Only identifiers that cannot be ordinary words count (a dot, slash, underscore, brace, space or camelCase),
    so a GraphQL field called `viewer` is not "named" by "as the viewer".
    """
    if document.operation is None:
        return False
    text = question[:MAX_QUESTION_CHARS].lower()
    for identifier in document.identifiers:
        if len(identifier) < 4 or not _IDENTIFIER_SHAPE.search(identifier):
            continue
        needle = identifier.lower()
        start = text.find(needle)
        while start != -1:
            before = text[start - 1] if start else " "
            end = start + len(needle)
            after = text[end] if end < len(text) else " "
            if not (before.isalnum() or before in "_/{") and not (after.isalnum() or after in "_/{}"):
                return True
            start = text.find(needle, start + 1)
    return False


def required_schemes(spec: ApiSpec, operation: Operation) -> list[SecurityRequirement]:
    """Every requirement an operation's effective security names, alternatives in order, each scheme once."""
    found: dict[str, SecurityRequirement] = {}
    for alternative in spec.effective_security(operation):
        for requirement in alternative:
            known = found.get(requirement.scheme)
            scopes = tuple(dict.fromkeys((known.scopes if known else ()) + requirement.scopes))
            found[requirement.scheme] = SecurityRequirement(requirement.scheme, scopes)
    return list(found.values())


HeaderLookup = Callable[[str], ApiSpec | None]


def rank_for_auth(
    question: str, items: Sequence[RetrievedItem], headers: HeaderLookup, limit: int
) -> list[RetrievedItem]:
    """Retrieved items reordered for an auth question (see the module docstring); others come back unchanged.

    `headers` gives a spec's header (servers, schemes, default security) by spec name, None when it is gone.
    Schemes the retriever did not return are added from the header, so the result may hold documents the
    search did not; it never holds more than `limit` items.
    """
    asked = classify(question)
    if asked.intent not in (AuthIntent.GENERAL, AuthIntent.OPERATION) or not items:
        return list(items)[:limit]
    named = next((item for item in items if names_operation(question, item.document)), None)
    if named is not None and named.document.operation is not None:
        header = headers(named.spec)
        if header is None:
            return list(items)[:limit]
        needed = [r.scheme for r in required_schemes(header, named.document.operation)]
        support = {name: len(needed) - rank for rank, name in enumerate(needed)}
        schemes = _scheme_items(named.spec, header, items, support)
        return _merge([named, *[s for s in schemes if _scheme_name(s) in support]], items, limit)
    if asked.intent is AuthIntent.OPERATION:
        return list(items)[:limit]
    spec_name = items[0].spec
    header = headers(spec_name)
    if header is None:
        return list(items)[:limit]
    if not header.security_schemes:
        sections = [i for i in items if i.spec == spec_name and _about_auth(i.document)]
        return _merge(sections, items, limit)
    # Words beyond auth, filler and the API's own name say what the asker wants to do ("so I can modify pets"):
    # then the schemes the best matching operations need come first.
    naming = set(_NAME_PART.findall(f"{header.title} {spec_name}"[:MAX_QUESTION_CHARS].lower()))
    purpose = [word for word in asked.content_words if word not in naming]
    support = _needed_by_operations(header, items, spec_name) if purpose else {}
    # A scheme the question names ("OAuth2 scopes", "a bearer token", "my api key") beats any other evidence.
    words = set(_words(question))
    for scheme in header.security_schemes:
        if _mentions(scheme, words):
            support[scheme.name] = support.get(scheme.name, 0) + OPERATIONS_CONSULTED + 1
    return _merge(_scheme_items(spec_name, header, items, support)[:MAX_SCHEMES_FIRST], items, limit)


# Words that name a kind of scheme; `token` is left out, as every kind has one.
_KIND_WORDS = {
    "oauth2": frozenset({"oauth", "oauth2", "scope", "scopes"}),
    "openidconnect": frozenset({"openid", "oidc", "scope", "scopes"}),
    "oauth1": frozenset({"oauth", "oauth1", "1.0a", "consumer"}),
    "apikey": frozenset({"key", "keys", "apikey", "api-key", "api_key"}),
    "basic": frozenset({"basic", "username", "password"}),
    "bearer": frozenset({"bearer"}),
    "digest": frozenset({"digest"}),
}


def _mentions(scheme: SecurityScheme, words: set[str]) -> bool:
    """Whether the question's words name this scheme, or its kind (`oauth`, `bearer`, `basic`, `key`)."""
    kind = scheme.type.lower()
    if kind == "http":
        kind = scheme.scheme.lower()
    return scheme.name.lower() in words or bool(_KIND_WORDS.get(kind, frozenset()) & words)


def _needed_by_operations(header: ApiSpec, items: Sequence[RetrievedItem], spec_name: str) -> dict[str, int]:
    """How many of the top operations need each scheme: what "so I can modify pets" asks for."""
    counts: dict[str, int] = {}
    operations = [i.document.operation for i in items if i.spec == spec_name and i.document.operation is not None]
    for operation in operations[:OPERATIONS_CONSULTED]:
        for requirement in required_schemes(header, operation):
            counts[requirement.scheme] = counts.get(requirement.scheme, 0) + 1
    return counts


def _scheme_name(item: RetrievedItem) -> str:
    return item.document.scheme.name if item.document.scheme else ""


def _scheme_items(
    spec_name: str, header: ApiSpec, items: Sequence[RetrievedItem], support: dict[str, int]
) -> list[RetrievedItem]:
    """The spec's schemes as retrieved items: most `support` first, then as the retriever ranked them.

    Schemes the retriever did not return follow, the spec's default ones first, then in declaration order.
    """
    retrieved = {
        item.document.scheme.name: (position, item)
        for position, item in reversed(list(enumerate(items)))
        if item.spec == spec_name and item.document.scheme is not None
    }
    defaults = {r.scheme for alternative in header.security for r in alternative}
    score = items[0].score if items else 0.0

    def order(indexed: tuple[int, str]) -> tuple[int, int, int, int]:
        declared, name = indexed
        position = retrieved[name][0] if name in retrieved else len(items)
        return (-support.get(name, 0), position, 0 if name in defaults else 1, declared)

    names = sorted(enumerate(s.name for s in header.security_schemes), key=order)
    result = []
    for _, name in names:
        if name in retrieved:
            result.append(retrieved[name][1])
        else:
            scheme = header.scheme(name)
            assert scheme is not None
            result.append(RetrievedItem(spec=spec_name, document=scheme_document(header, scheme), score=score))
    return result


_AUTH_TITLE = re.compile(
    r"\b(?:auth(?:entication|enticating|orization|orisation|orizing)?|tokens?|api[ -]?keys?|credentials?"
    r"|sign[ -]?in|log[ -]?in|oauth\d?|permissions?|scopes?)\b",
    re.I,
)


def _about_auth(document: Document) -> bool:
    """A Markdown section (or other non-scheme item) whose title says it is about authentication."""
    return document.kind is ItemKind.DOC_SECTION and bool(_AUTH_TITLE.search(document.title[:200]))


def _merge(first: Sequence[RetrievedItem], items: Sequence[RetrievedItem], limit: int) -> list[RetrievedItem]:
    """`first`, then the other items in their order, each document once, at most `limit`."""
    seen: set[tuple[str, str]] = set()
    result: list[RetrievedItem] = []
    for item in [*first, *items]:
        key = (item.spec, item.document.key)
        if key in seen:
            continue
        seen.add(key)
        result.append(item)
        if len(result) == limit:
            break
    return result
