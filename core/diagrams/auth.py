"""The auth diagram: a sequence diagram of each way the spec lets a client authenticate.

OAuth 2 authorization code (with PKCE when the spec declares it), client credentials, implicit and password
flows are drawn with the spec's own authorization and token URLs and scopes; API keys, bearer tokens and
basic auth show where the credential goes on a real operation of the spec. OpenAPI / Swagger schemes are read
from the uploaded document (the parsed model keeps flows only as text); other formats from the parsed model.

A sequence diagram in DOT: one column per participant (a chain of invisible points, drawn as a dashed
lifeline) and one row per message (a flat edge between two points of the same rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import messages
from core.diagrams import AUTH, Diagram
from core.diagrams.dot import digraph, lines, text
from core.models import ApiSpec, ItemKind, Operation, SecurityScheme

MAX_SCHEMES = 4  # ways to authenticate drawn; the rest are named in a note
MAX_SCOPES_SHOWN = 8  # scopes written into an authorization request
MAX_DESCRIPTION_CHARS = 4000  # of a scheme's description, searched for "PKCE"

CLIENT = "client"
USER = "user"
AUTH_SERVER = "auth"
API = "api"
PARTICIPANTS = {CLIENT: "Your app", USER: "User (browser)", AUTH_SERVER: "Authorization server", API: "API"}

_SWAGGER_FLOWS = {"accessCode": "authorizationCode", "application": "clientCredentials"}


@dataclass(frozen=True)
class AuthWay:
    """One way to authenticate, as drawn: a scheme (and, for OAuth 2, one of its flows)."""

    scheme: str
    kind: str  # "authorizationCode" | "clientCredentials" | "implicit" | "password" | "apiKey" | "bearer" | ...
    authorization_url: str = ""
    token_url: str = ""
    refresh_url: str = ""
    scopes: tuple[str, ...] = ()
    pkce: bool = False
    location: str = ""  # apiKey: header | query | cookie
    param_name: str = ""


@dataclass(frozen=True)
class Step:
    """One message of the sequence."""

    source: str
    target: str
    label: tuple[str, ...]  # escaped lines
    reply: bool = False  # drawn dashed


def auth_diagram(spec: ApiSpec, document: dict[str, Any] | None) -> Diagram:
    """The auth flows of `spec` (`document`: the uploaded OpenAPI / Swagger document, when it is one)."""
    ways = auth_ways(spec, document)
    notes: list[str] = []
    if len(ways) > MAX_SCHEMES:
        notes.append(messages.diagram_more_schemes(len(ways) - MAX_SCHEMES))
    steps: list[Step | str] = []  # a str is a section heading
    for way in ways[:MAX_SCHEMES]:
        steps.append(text(f"{way.scheme}: {_kind_label(way)}"))
        steps.extend(_steps(spec, way))
    if not ways:
        steps.append(text(messages.diagram_no_auth()))
        steps.extend(_plain_call(spec))
    return Diagram(AUTH, "auth flow", _sequence(spec.title, steps), tuple(notes))


def auth_ways(spec: ApiSpec, document: dict[str, Any] | None) -> list[AuthWay]:
    """Every way to authenticate the spec declares, OAuth 2 flows one by one."""
    raw = _raw_schemes(document) if document is not None else None
    ways: list[AuthWay] = []
    for scheme in spec.security_schemes:
        node = raw.get(scheme.name) if raw else None
        ways.extend(_ways_from_raw(scheme, node) if isinstance(node, dict) else _ways_from_model(scheme))
    return ways


def _raw_schemes(document: dict[str, Any]) -> dict[str, Any]:
    if "swagger" in document:
        found = document.get("securityDefinitions")
    else:
        components = document.get("components")
        found = components.get("securitySchemes") if isinstance(components, dict) else None
    return found if isinstance(found, dict) else {}


def _ways_from_raw(scheme: SecurityScheme, node: dict[str, Any]) -> list[AuthWay]:
    if str(node.get("type") or "") != "oauth2":
        return _ways_from_model(scheme)
    pkce = _declares_pkce(node)
    if "flows" in node and isinstance(node["flows"], dict):  # OpenAPI 3
        flows = [(str(name), flow) for name, flow in node["flows"].items() if isinstance(flow, dict)]
    else:  # Swagger 2: one flow per scheme
        name = str(node.get("flow") or "")
        flows = [(_SWAGGER_FLOWS.get(name, name), node)]
    ways = []
    for name, flow in flows:
        scopes = flow.get("scopes")
        ways.append(AuthWay(
            scheme.name, name,
            authorization_url=str(flow.get("authorizationUrl") or ""),
            token_url=str(flow.get("tokenUrl") or ""),
            refresh_url=str(flow.get("refreshUrl") or ""),
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, dict) else scheme.scopes,
            pkce=pkce or _declares_pkce(flow),
        ))
    return ways


def _declares_pkce(node: dict[str, Any]) -> bool:
    """PKCE has no OpenAPI field: specs declare it with an extension (`x-pkce`, `x-usePkce`, …) or in prose."""
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("x-") and "pkce" in key.lower() and value not in (False, None, ""):
            return True
    description = node.get("description")
    return isinstance(description, str) and "pkce" in description[:MAX_DESCRIPTION_CHARS].lower()


def _ways_from_model(scheme: SecurityScheme) -> list[AuthWay]:
    kind = scheme.type
    if kind == "http":
        kind = scheme.scheme.lower() or "http"
    pkce = "pkce" in scheme.description[:MAX_DESCRIPTION_CHARS].lower()
    if kind != "oauth2" or not scheme.flows:
        return [AuthWay(scheme.name, kind, scopes=scheme.scopes, location=scheme.location,
                        param_name=scheme.param_name, pkce=pkce)]
    ways = []
    for flow in scheme.flows:  # "authorizationCode: https://…/authorize (token URL: https://…/token)"
        name, _, rest = flow.partition(": ")
        url, _, token = rest.partition(" (token URL: ")
        token = token.rstrip(")")
        authorization = url if name in {"authorizationCode", "implicit"} else ""
        ways.append(AuthWay(scheme.name, name, authorization_url=authorization,
                            token_url=token or (url if not authorization else ""), scopes=scheme.scopes, pkce=pkce))
    return ways


def _kind_label(way: AuthWay) -> str:
    return {
        "authorizationCode": "OAuth 2 authorization code" + (" with PKCE" if way.pkce else ""),
        "clientCredentials": "OAuth 2 client credentials",
        "implicit": "OAuth 2 implicit",
        "password": "OAuth 2 password",
        "apiKey": f"API key in {way.location or 'a header'}",
        "bearer": "bearer token",
        "basic": "HTTP basic",
        "openIdConnect": "OpenID Connect",
        "oauth1": "OAuth 1.0a",
    }.get(way.kind, way.kind)


def _scope_text(scopes: tuple[str, ...]) -> str:
    shown = " ".join(scopes[:MAX_SCOPES_SHOWN])
    more = len(scopes) - MAX_SCOPES_SHOWN
    return shown + (f" (+{more} more)" if more > 0 else "")


def _example_operation(spec: ApiSpec, scheme: str) -> Operation | None:
    """The first operation that needs `scheme` (else the first operation): its real URL goes in the diagram."""
    for operation in spec.operations:
        alternatives = spec.effective_security(operation)
        if any(r.scheme == scheme for alternative in alternatives for r in alternative):
            return operation
    return spec.operations[0] if spec.operations else None


def _call_line(spec: ApiSpec, operation: Operation | None) -> str:
    """The operation's real URL (never `base_url`'s placeholder for specs that name no server)."""
    servers = (operation.servers if operation else ()) or spec.servers
    server = servers[0].rstrip("/") if servers else ""
    if operation is None:
        return server or "the API"
    if operation.url:  # Postman: the request's own URL
        return f"{operation.method} {operation.url}"
    if operation.kind is ItemKind.GRAPHQL:
        return f"POST {server or '(GraphQL endpoint)'}: {operation.graphql_type} {operation.name}"
    if operation.path:
        return f"{operation.method} {server}{operation.path}"
    return f"{operation.method or 'POST'} {server or operation.name}"


def _steps(spec: ApiSpec, way: AuthWay) -> list[Step]:
    call = text(_call_line(spec, _example_operation(spec, way.scheme)))
    scopes = text("scope=" + _scope_text(way.scopes), 200) if way.scopes else ""
    if way.kind == "authorizationCode":
        pkce = [text("code_challenge=S256(verifier)")] if way.pkce else []
        verifier = [text("code_verifier")] if way.pkce else []
        return [
            Step(CLIENT, USER, (text("redirect to"), _authorize_url(way),
                                text("response_type=code&client_id=…"), *([scopes] if scopes else []), *pkce)),
            Step(USER, AUTH_SERVER, (text("sign in and consent"),)),
            Step(AUTH_SERVER, CLIENT, (text("redirect_uri?code=…"),), reply=True),
            Step(CLIENT, AUTH_SERVER, (text("POST " + (way.token_url or "(token URL not given)"), 120),
                                       text("grant_type=authorization_code&code=…"), *verifier)),
            Step(AUTH_SERVER, CLIENT, (text("access_token (+ refresh_token)"),), reply=True),
            *_api_call(call, "Authorization: Bearer <access_token>"),
            *_refresh(way),
        ]
    if way.kind == "clientCredentials":
        return [
            Step(CLIENT, AUTH_SERVER, (text("POST " + (way.token_url or "(token URL not given)"), 120),
                                       text("grant_type=client_credentials"), *([scopes] if scopes else []))),
            Step(AUTH_SERVER, CLIENT, (text("access_token"),), reply=True),
            *_api_call(call, "Authorization: Bearer <access_token>"),
        ]
    if way.kind == "implicit":
        return [
            Step(CLIENT, USER, (text("redirect to"), _authorize_url(way),
                                text("response_type=token"), *([scopes] if scopes else []))),
            Step(USER, AUTH_SERVER, (text("sign in and consent"),)),
            Step(AUTH_SERVER, CLIENT, (text("redirect_uri#access_token=…"),), reply=True),
            *_api_call(call, "Authorization: Bearer <access_token>"),
        ]
    if way.kind == "password":
        return [
            Step(CLIENT, AUTH_SERVER, (text("POST " + way.token_url, 120),
                                       text("grant_type=password&username&password"), *([scopes] if scopes else []))),
            Step(AUTH_SERVER, CLIENT, (text("access_token"),), reply=True),
            *_api_call(call, "Authorization: Bearer <access_token>"),
        ]
    return _api_call(call, _placement(way))


def _authorize_url(way: AuthWay) -> str:
    return text(way.authorization_url or "(authorization URL not given)", 120)


def _refresh(way: AuthWay) -> list[Step]:
    url = way.refresh_url or way.token_url
    if not url:
        return []
    return [Step(CLIENT, AUTH_SERVER, (text("later: POST " + url, 120), text("grant_type=refresh_token")))]


def _placement(way: AuthWay) -> str:
    if way.kind == "apiKey":
        name = way.param_name or "api_key"
        if way.location == "query":
            return f"?{name}=<api key>"
        if way.location == "cookie":
            return f"Cookie: {name}=<api key>"
        return f"{name}: <api key>"
    if way.kind == "basic":
        return "Authorization: Basic base64(<user>:<password>)"
    if way.kind in {"bearer", "openIdConnect"}:
        return "Authorization: Bearer <token>"
    if way.kind == "oauth1":
        return "Authorization: OAuth oauth_consumer_key=…, oauth_signature=…"
    return f"credentials ({way.kind})"


def _api_call(call: str, credential: str) -> list[Step]:
    return [
        Step(CLIENT, API, (call, text(credential))),
        Step(API, CLIENT, (text("2xx response (401 without valid credentials)"),), reply=True),
    ]


def _plain_call(spec: ApiSpec) -> list[Step]:
    call = text(_call_line(spec, spec.operations[0] if spec.operations else None))
    return [Step(CLIENT, API, (call,)), Step(API, CLIENT, (text("response"),), reply=True)]


COLUMN_INCHES = 3.6  # between participants' lifelines
LINE_INCHES = 0.19  # one line of a message's label
ROW_INCHES = 0.35  # a message's arrow and the gap below it


def _sequence(title: str, rows: list[Step | str]) -> str:
    """The DOT of a sequence diagram, every node pinned (`pos`, drawn by neato): columns, then one row per message.

    Pinning makes lifelines straight and rows evenly spaced, which dot's own ranking does not guarantee.
    """
    used = [p for p in PARTICIPANTS if any(isinstance(r, Step) and p in (r.source, r.target) for r in rows)]
    columns = used or [CLIENT, API]
    x = {column: index * COLUMN_INCHES for index, column in enumerate(columns)}
    middle = (x[columns[-1]]) / 2
    graph = digraph("auth")
    graph.attr("graph", label=text(f"{title}: how to authenticate"), labelloc="t", fontsize="14", splines="false",
               layout="neato")
    graph.attr("node", shape="box", style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5")
    y = 0.0
    for column in columns:
        graph.node(f"{column}_head", PARTICIPANTS[column], pos=f"{x[column]},{y}!")
    y -= 0.6
    for index, row in enumerate(rows):
        if isinstance(row, str):
            y -= 0.25
            graph.node(f"section_{index}", row, pos=f"{middle},{y}!", shape="note", style="filled",
                       fillcolor="#fff6d5", color="#b59b3a")
            y -= 0.45
            continue
        y -= LINE_INCHES * len(row.label)
        left, right = sorted((x[row.source], x[row.target]))
        label_y = y + LINE_INCHES * len(row.label) / 2 + 0.05
        graph.node(f"label_{index}", lines(list(row.label)), pos=f"{(left + right) / 2},{label_y}!",
                   shape="plaintext", style="", fontsize="10")
        graph.node(f"from_{index}", "", pos=f"{x[row.source]},{y}!", shape="point", width="0.02", height="0.02")
        graph.node(f"to_{index}", "", pos=f"{x[row.target]},{y}!", shape="point", width="0.02", height="0.02")
        graph.edge(f"from_{index}", f"to_{index}", style="dashed" if row.reply else "solid", color="#333333")
        y -= ROW_INCHES
    for column in columns:
        graph.node(f"{column}_foot", "", pos=f"{x[column]},{y}!", shape="point", width="0.01", height="0.01")
        graph.edge(f"{column}_head", f"{column}_foot", style="dashed", arrowhead="none", color="#999999")
    return graph.source
