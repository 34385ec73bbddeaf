"""Auth: what the operation's first security alternative adds to a request, credentials from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.models import ApiSpec, Operation, SecurityScheme
from core.snippets.request import Env, Value, merge_literals, upper_snake

MAX_SCOPES_NOTED = 10
_TOKEN_PARAM_NAMES = frozenset({"token", "access_token", "auth_token", "bearer_token"})
_KEY_PARAM_NAMES = frozenset({"api_key", "apikey", "api-key", "x-api-key", "key_id"})


@dataclass
class Auth:
    """What the chosen security alternative adds to a request."""

    headers: list[tuple[str, Value]] = field(default_factory=list)
    query: list[tuple[str, Value]] = field(default_factory=list)
    cookies: list[tuple[str, Value]] = field(default_factory=list)
    basic_auth: tuple[str, str] | None = None
    oauth1: bool = False
    notes: list[str] = field(default_factory=list)
    covers_token: bool = False  # a scheme carries the token, so `token` parameters are not sent separately
    env_names: set[str] = field(default_factory=set)

    def env(self, preferred: str, scheme_name: str) -> Env:
        """A fresh environment variable: the obvious name first, then one named after the scheme."""
        name = preferred
        if name in self.env_names:
            name = upper_snake(scheme_name) or preferred
        while name in self.env_names:
            name += "_2"
        self.env_names.add(name)
        return Env(name)


def build_auth(spec: ApiSpec, operation: Operation) -> Auth:
    """The headers, query, cookies and notes of the first security alternative that applies."""
    auth = Auth()
    alternatives = spec.effective_security(operation)
    if not alternatives:
        return auth
    for requirement in alternatives[0]:
        name = requirement.scheme
        scheme = spec.scheme(name)
        if scheme is None and name.lower() in ("bearer", "basic", "oauth1", "oauth2", "apikey"):
            scheme = SecurityScheme(name=name, type=name)  # a Postman auth type used without a declaration
        if scheme is None:
            auth.notes.append(f"Authenticate with '{name}' (the spec does not describe this scheme).")
            continue
        _apply_scheme(auth, scheme)
        if requirement.scopes:
            auth.notes.append(_scopes_note(requirement.scopes))
    return auth


def _scopes_note(scopes: tuple[str, ...]) -> str:
    listed = ", ".join(scopes[:MAX_SCOPES_NOTED]) + (" and more" if len(scopes) > MAX_SCOPES_NOTED else "")
    return f"The token needs the scope{'s' if len(scopes) > 1 else ''} {listed}."


def _apply_scheme(auth: Auth, scheme: SecurityScheme) -> None:
    kind = scheme.type.lower()
    http_scheme = scheme.scheme.lower()
    if kind in ("oauth2", "openidconnect", "bearer") or (kind == "http" and http_scheme == "bearer"):
        auth.headers.append(("Authorization", ("Bearer ", auth.env("API_TOKEN", scheme.name))))
        auth.covers_token = True
    elif kind == "basic" or (kind == "http" and http_scheme == "basic"):
        auth.basic_auth = (
            auth.env("API_USER", scheme.name + "_user").name,
            auth.env("API_PASSWORD", scheme.name + "_password").name,
        )
    elif kind == "apikey":
        _apply_api_key(auth, scheme)
    elif kind == "oauth1":
        auth.oauth1 = True
        auth.covers_token = True
        auth.notes.append("This request needs OAuth 1.0a signing (consumer key/secret, access token/secret).")
    elif kind == "noauth":
        return
    else:
        label = f"{scheme.type} {scheme.scheme}".strip()
        auth.notes.append(f"Authenticate with '{scheme.name}' ({label}); see the API's docs.")


def _apply_api_key(auth: Auth, scheme: SecurityScheme) -> None:
    location = (scheme.location or "header").lower()
    param_name = scheme.param_name or ("X-API-Key" if location == "header" else "api_key")
    auth.covers_token = True
    if location == "header" and param_name.lower() == "authorization":
        prefix = "Bot " if scheme.name.lower().startswith("bot") or "bot token" in scheme.description.lower() else ""
        auth.headers.append(("Authorization", merge_literals([prefix, auth.env("API_TOKEN", scheme.name)])))
    elif location == "query":
        auth.query.append((param_name, (auth.env("API_KEY", scheme.name),)))
    elif location == "cookie":
        auth.cookies.append((param_name, (auth.env("API_KEY", scheme.name),)))
    else:
        auth.headers.append((param_name, (auth.env("API_KEY", scheme.name),)))


def is_auth_param(name: str, location: str, auth: Auth) -> bool:
    """Whether a declared parameter is already sent by the auth (or is the token a scheme carries)."""
    lowered = name.lower()
    if location == "header" and lowered == "authorization" and (auth.headers or auth.basic_auth or auth.oauth1):
        return True
    sent = {n.lower() for n, _ in auth.headers} if location == "header" else set()
    sent |= {n.lower() for n, _ in auth.query} if location == "query" else set()
    sent |= {n.lower() for n, _ in auth.cookies} if location == "cookie" else set()
    if lowered in sent:
        return True
    return auth.covers_token and lowered in _TOKEN_PARAM_NAMES


def secret_env(name: str) -> Env | None:
    """An environment variable for a parameter that is a secret the auth does not already cover."""
    lowered = name.lower()
    if lowered in _TOKEN_PARAM_NAMES:
        return Env("API_TOKEN")
    if lowered in _KEY_PARAM_NAMES:
        return Env("API_KEY")
    return None
