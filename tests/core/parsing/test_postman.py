from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidSpecError
from core.models import ApiSpec, ItemKind, Operation, SpecFormat, ValueType, to_dict
from core.models import SecurityRequirement as Req
from core.parsing.postman import parse_postman

TWITTER = "twitter_api_v2.postman_collection.json"
SECRET = "s3cr3t-value-never-stored"


def _bearer(variable: str = "bearer_token") -> dict[str, Any]:
    return {"type": "bearer", "bearer": [{"key": "token", "value": "{{" + variable + "}}", "type": "string"}]}


def _oauth1() -> dict[str, Any]:
    return {
        "type": "oauth1",
        "oauth1": [
            {"key": "consumerKey", "value": "{{consumer_key}}"},
            {"key": "consumerSecret", "value": SECRET},
            {"key": "signatureMethod", "value": "HMAC-SHA1"},
        ],
    }


def _request(name: str, method: str, raw: str, **request: Any) -> dict[str, Any]:
    return {"name": name, "request": {"method": method, "url": {"raw": raw, **request.pop("url", {})}, **request}}


COLLECTION: dict[str, Any] = {
    "info": {
        "_postman_id": "abc",
        "name": "Example API",
        "description": "The **example** collection.",
        "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
    },
    "auth": _bearer(),
    "variable": [
        {"key": "baseUrl", "value": "https://api.example.com/v1"},
        {"key": "bearer_token", "value": SECRET},
    ],
    "item": [
        {
            "name": "Users",
            "description": "Everything about users.",
            "item": [
                _request(
                    "Get user",
                    "GET",
                    "{{baseUrl}}/users/:id?fields=name",
                    url={
                        "query": [
                            {"key": "fields", "value": "name", "description": "Required. Fields to return."},
                            {"key": "expand", "value": "", "description": "Optional expansions.", "disabled": True},
                        ],
                        "variable": [{"key": "id", "value": "", "description": "The user's id."}],
                    },
                    header=[
                        {"key": "Authorization", "value": "Bearer " + SECRET},
                        {"key": "X-Trace", "value": "on", "description": "Trace the call."},
                        {"key": "X-Api-Key", "value": SECRET},
                    ],
                    description="Returns one user.\n\nSee *the docs*.",
                ),
                _request(
                    "Create user",
                    "POST",
                    "{{baseUrl}}/users",
                    body={
                        "mode": "raw",
                        "raw": '// Replace the name\n{\n  "name": "Ada",\n  "age": {{age}},\n'
                        '  "address": {"city": "London"},\n  "tags": [{"label": "x"}]\n}',
                        "options": {"raw": {"language": "json"}},
                    },
                ),
                {
                    "name": "Admin",
                    "auth": _oauth1(),
                    "item": [
                        _request("Delete user", "DELETE", "https://admin.example.com/users/:id"),
                        _request("Ping", "GET", "https://admin.example.com/ping", auth={"type": "noauth"}),
                        _request(
                            "Login",
                            "POST",
                            "https://admin.example.com/login",
                            auth={"type": "bearer", "bearer": [{"key": "token", "value": SECRET}]},
                            body={
                                "mode": "urlencoded",
                                "urlencoded": [
                                    {"key": "username", "value": "ada"},
                                    {"key": "password", "value": SECRET},
                                ],
                            },
                        ),
                        _request(
                            "Rotate key",
                            "POST",
                            "https://admin.example.com/keys?api_key=" + SECRET,
                            url={"query": [{"key": "api_key", "value": SECRET}]},
                            body={"mode": "raw", "raw": '{"client_secret": "' + SECRET + '", "note": "hi"}'},
                        ),
                    ],
                },
            ],
        },
        {
            "name": "Files",
            "item": [
                _request(
                    "Upload",
                    "POST",
                    "{{baseUrl}}/files",
                    auth={
                        "type": "apikey",
                        "apikey": [{"key": "key", "value": "X-API-Key"}, {"key": "value", "value": SECRET}],
                    },
                    body={"mode": "formdata", "formdata": [{"key": "file", "type": "file", "src": "/tmp/a.png"}]},
                ),
                _request("Hide", "PUT", "{{baseUrl}}/replies/:id/hidden"),
                _request("Unhide", "PUT", "{{baseUrl}}/replies/:id/hidden"),
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def example() -> ApiSpec:
    return parse_postman(json.loads(json.dumps(COLLECTION)))


def _op(spec: ApiSpec, name: str) -> Operation:
    return next(op for op in spec.operations if op.name == name)


def test_collection_metadata(example: ApiSpec) -> None:
    assert example.format is SpecFormat.POSTMAN
    assert example.format_version == "v2.1.0"
    assert example.title == "Example API"
    assert example.description == "The **example** collection."
    assert example.security == ((Req("bearer"),),)
    assert all(op.kind is ItemKind.POSTMAN for op in example.operations)
    assert len({op.key for op in example.operations}) == len(example.operations) == 9


def test_nested_folders_and_urls(example: ApiSpec) -> None:
    get_user = _op(example, "Get user")
    assert get_user.folder == "Users"
    assert get_user.method == "GET"
    assert get_user.url == "{{baseUrl}}/users/:id?fields=name"
    assert get_user.path == "/users/:id"
    # {{baseUrl}} resolves from the collection variables.
    assert get_user.servers == ("https://api.example.com/v1",)
    assert _op(example, "Delete user").folder == "Users/Admin"
    assert _op(example, "Delete user").servers == ("https://admin.example.com",)
    assert example.servers[0] == "https://api.example.com/v1"
    assert get_user.item() == {
        "kind": "postman",
        "method": "GET",
        "url": "{{baseUrl}}/users/:id?fields=name",
        "name": "Get user",
    }


def test_parameters(example: ApiSpec) -> None:
    params = {(p.location, p.name): p for p in _op(example, "Get user").parameters}
    assert params["path", "id"].required and params["path", "id"].description == "The user's id."
    assert params["query", "fields"].required and params["query", "fields"].example == "name"
    # Disabled query entries are how Postman documents optional parameters: kept, not required.
    assert not params["query", "expand"].required
    assert params["header", "X-Trace"].description == "Trace the call."
    assert ("header", "Authorization") not in params
    assert params["header", "X-Api-Key"].example is None
    assert [p.name for p in _op(example, "Delete user").parameters] == ["id"]


def test_raw_json_body_with_comments_and_variables(example: ApiSpec) -> None:
    body = _op(example, "Create user").request_body
    assert body is not None
    assert body.content_type == "application/json"
    fields = {f.name: f for f in body.fields}
    assert set(fields) == {"name", "age", "address", "address.city", "tags", "tags[].label"}
    assert fields["name"].type == "string" and fields["name"].example == "Ada"
    assert fields["address"].type == "object"
    assert body.example is not None and body.example.startswith("// Replace the name")


def test_form_bodies(example: ApiSpec) -> None:
    login = _op(example, "Login").request_body
    assert login is not None and login.content_type == "application/x-www-form-urlencoded"
    assert [(f.name, f.example) for f in login.fields] == [("username", "ada"), ("password", None)]
    upload = _op(example, "Upload").request_body
    assert upload is not None and upload.content_type == "multipart/form-data"
    assert upload.fields[0].type == "file"



def test_fields_and_parameters_carry_the_types_their_examples_show(example: ApiSpec) -> None:
    body = _op(example, "Create user").request_body
    assert body is not None
    fields = {f.name: f.value_type for f in body.fields}
    assert fields["name"] == ValueType(("string",))
    assert fields["age"] == ValueType()  # an unquoted {{variable}}: nothing known
    assert fields["address"] == ValueType(("object",))
    assert fields["tags"] == ValueType(("array",), ("object",))
    upload = _op(example, "Upload").request_body
    assert upload is not None and upload.fields[0].value_type == ValueType(("file",), binary=True)
    login = _op(example, "Login").request_body
    assert login is not None and login.fields[0].value_type == ValueType(("string",))
    params = {(p.location, p.name): p.value_type for p in _op(example, "Get user").parameters}
    assert params["path", "id"] == params["query", "fields"] == params["header", "X-Trace"] == ValueType(("string",))
    typed = parse_postman(
        {
            "info": {"name": "T"},
            "item": [
                _request(
                    "Typed",
                    "POST",
                    "https://a.io/x/:n/:v",
                    url={"variable": [{"key": "n", "type": "number"}, {"key": "v", "type": "any"}]},
                    body={"mode": "raw", "raw": '{"n": 1.5, "ok": true, "ids": [1, 2], "none": [], "gone": null}'},
                )
            ],
        }
    ).operations[0]
    assert [p.value_type for p in typed.parameters] == [ValueType(("number",)), ValueType()]
    assert typed.request_body is not None
    assert [(f.name, f.value_type) for f in typed.request_body.fields] == [
        ("n", ValueType(("number",))),
        ("ok", ValueType(("boolean",))),
        ("ids", ValueType(("array",), ("integer",))),
        ("none", ValueType(("array",))),
        ("gone", ValueType()),
    ]

def test_auth_inheritance(example: ApiSpec) -> None:
    assert _op(example, "Get user").security == ((Req("bearer"),),)  # collection level
    assert _op(example, "Delete user").security == ((Req("oauth1"),),)  # folder level
    assert _op(example, "Ping").security == ()  # noauth
    assert _op(example, "Login").security == ((Req("bearer"),),)  # request overrides its folder
    assert _op(example, "Upload").security == ((Req("apikey"),),)


def _oauth2(scope: object) -> dict[str, Any]:
    return {
        "type": "oauth2",
        "oauth2": [
            {"key": "scope", "value": scope},
            {"key": "accessToken", "value": SECRET},
            {"key": "grant_type", "value": "authorization_code"},
        ],
    }


def test_oauth2_scopes_are_inherited_with_the_auth_that_asks_for_them() -> None:
    spec = parse_postman(
        {
            "info": {"name": "Scoped"},
            "auth": _oauth2("read:items  read:items write:items"),
            "item": [
                _request("Inherits the collection", "GET", "https://a.io/items"),
                {
                    "name": "Admin",
                    "auth": _oauth2("admin:all"),
                    "item": [
                        _request("Inherits the folder", "DELETE", "https://a.io/items/:id"),
                        _request("Own scopes", "POST", "https://a.io/items", auth=_oauth2("{{scopes}} items:create")),
                        _request("No auth", "GET", "https://a.io/health", auth={"type": "noauth"}),
                        _request("Explicit inherit", "GET", "https://a.io/me", auth={"type": "inherit"}),
                    ],
                },
            ],
        }
    )
    assert spec.security == ((Req("oauth2", ("read:items", "write:items")),),)
    assert _op(spec, "Inherits the collection").security == spec.security
    assert _op(spec, "Inherits the folder").security == ((Req("oauth2", ("admin:all",)),),)
    assert _op(spec, "Explicit inherit").security == ((Req("oauth2", ("admin:all",)),),)
    # A `{{variable}}` is not a scope: its value is not in the file.
    assert _op(spec, "Own scopes").security == ((Req("oauth2", ("items:create",)),),)
    assert _op(spec, "No auth").security == ()
    [scheme] = spec.security_schemes
    assert scheme.scopes == ("read:items", "write:items", "admin:all", "items:create")
    assert SECRET not in json.dumps(to_dict(spec))


def test_security_schemes_hold_no_secrets(example: ApiSpec) -> None:
    schemes = {s.name: s for s in example.security_schemes}
    assert set(schemes) == {"bearer", "oauth1", "apikey"}
    assert schemes["bearer"].scheme == "bearer"
    assert "bearer_token" in schemes["bearer"].description
    assert "HMAC-SHA1" in schemes["oauth1"].description
    assert (schemes["apikey"].location, schemes["apikey"].param_name) == ("header", "X-API-Key")
    # No secret survives anywhere, not even in url.raw: it is redacted to a variable at parse time.
    assert SECRET not in json.dumps(to_dict(example))
    rotate = _op(example, "Rotate key")
    assert rotate.url == "https://admin.example.com/keys?api_key={{api_key}}"
    assert rotate.label == "Rotate key (POST https://admin.example.com/keys?api_key={{api_key}})"
    assert rotate.request_body is not None and rotate.request_body.example == '{"client_secret": "…", "note": "hi"}'


def test_same_method_and_url_keep_distinct_keys(example: ApiSpec) -> None:
    hide, unhide = _op(example, "Hide"), _op(example, "Unhide")
    assert (hide.method, hide.url) == (unhide.method, unhide.url)
    assert hide.key != unhide.key


def test_exact_duplicates_are_renamed_stably() -> None:
    item = _request("Ping", "GET", "https://x.example.com/ping")
    spec = parse_postman({"info": {"name": "Dup"}, "item": [item, item, item]})
    assert [op.name for op in spec.operations] == ["Ping", "Ping (2)", "Ping (3)"]
    assert len(spec.warnings) == 2


def test_postman_v2_0_shapes() -> None:
    spec = parse_postman(
        {
            "info": {
                "name": "Old",
                "description": {"content": "Old *style*.", "type": "text/markdown"},
                "schema": "https://schema.getpostman.com/json/collection/v2.0.0/collection.json",
            },
            "auth": {"type": "basic", "basic": {"username": "ada", "password": SECRET}},
            "variable": [{"id": "host", "value": "old.example.com"}],
            "item": [
                {
                    "name": "List",
                    "request": {
                        "url": "https://{{host}}/things?limit=10",
                        "method": "get",
                        "header": "Accept: application/json\nX-Debug: 1",
                        "description": {"content": "Lists things.", "type": "text/markdown"},
                    },
                },
                {"name": "Shorthand", "request": "https://old.example.com/short"},
            ],
        }
    )
    assert spec.format_version == "v2.0.0"
    assert spec.description == "Old *style*."
    listing = _op(spec, "List")
    assert (listing.method, listing.url, listing.path) == ("GET", "https://{{host}}/things?limit=10", "/things")
    assert listing.servers == ("https://old.example.com",)
    assert listing.description.startswith("Lists things.")
    assert [p.name for p in listing.parameters] == ["Accept", "X-Debug"]
    assert listing.security == ((Req("basic"),),)
    assert _op(spec, "Shorthand").path == "/short"
    assert SECRET not in json.dumps(to_dict(spec))


def test_same_name_in_different_folders_and_three_posts_to_one_url() -> None:
    # Twitter's "Stream (see description)" twice, and Add Rules / Delete Rules x2 all POST .../stream/rules.
    rules = "https://api.example.com/2/stream/rules"
    spec = parse_postman(
        {
            "info": {"name": "Streams"},
            "item": [
                {
                    "name": "Filtered Stream",
                    "item": [
                        _request("Stream (see description)", "GET", "https://api.example.com/2/stream"),
                        _request("Add Rules", "POST", rules, body={"mode": "raw", "raw": '{"add": []}'}),
                        _request("Delete Rules (by ID)", "POST", rules, body={"mode": "raw", "raw": '{"ids": []}'}),
                        _request("Delete Rules (by value)", "POST", rules, body={"mode": "raw", "raw": '{"v": []}'}),
                    ],
                },
                {
                    "name": "Sampled Stream",
                    "item": [_request("Stream (see description)", "GET", "https://api.example.com/2/sample/stream")],
                },
            ],
        }
    )
    streams = [op for op in spec.operations if op.name == "Stream (see description)"]
    assert [op.folder for op in streams] == ["Filtered Stream", "Sampled Stream"]  # not renamed: folders differ
    posts = [op for op in spec.operations if (op.method, op.url) == ("POST", rules)]
    assert [op.name for op in posts] == ["Add Rules", "Delete Rules (by ID)", "Delete Rules (by value)"]
    assert len({op.key for op in spec.operations}) == len(spec.operations) == 5
    assert spec.warnings == ()


@pytest.mark.parametrize("document", [[], {"item": []}, {"info": {"name": "x"}}, {"info": {}, "item": {}}])
def test_not_a_collection(document: Any) -> None:
    with pytest.raises(InvalidSpecError):
        parse_postman(document)


# --- the real Twitter collection ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def twitter_document(specs_dir: Path) -> dict[str, Any]:
    return json.loads((specs_dir / TWITTER).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def twitter(twitter_document: dict[str, Any]) -> ApiSpec:
    return parse_postman(twitter_document)


def _leaves(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    leaves = []
    for item in items:
        leaves.extend(_leaves(item["item"]) if "item" in item else [item])
    return leaves


def test_twitter_counts(twitter: ApiSpec) -> None:
    assert twitter.format_version == "v2.1.0"
    assert twitter.title == "Twitter API v2"
    assert len(twitter.operations) == 56
    assert len({op.folder.split("/")[0] for op in twitter.operations}) == 17
    assert len({op.key for op in twitter.operations}) == 56
    assert twitter.servers == ("https://api.twitter.com",)
    assert "Spaces/Spaces lookup" in {op.folder for op in twitter.operations}
    assert not twitter.warnings


def test_twitter_auth(twitter_document: dict[str, Any], twitter: ApiSpec) -> None:
    # SOURCES.md counts auth set on the request itself: 11 oauth1, 10 bearer, 35 with none (inherit).
    explicit = Counter(
        leaf["request"].get("auth", {}).get("type", "inherit") for leaf in _leaves(twitter_document["item"])
    )
    assert explicit == {"oauth1": 11, "bearer": 10, "inherit": 35}
    # Of the 35, 12 sit in folders that set oauth1 (Blocks 1, Mutes 2, Lists 9); the rest get the
    # collection's bearer.
    effective = Counter(op.security for op in twitter.operations)
    assert effective == {((Req("oauth1"),),): 23, ((Req("bearer"),),): 33}
    assert _op(twitter, "Block a user ID").security == ((Req("oauth1"),),)
    assert _op(twitter, "User Tweet timeline by ID").security == ((Req("bearer"),),)
    assert twitter.security == ((Req("bearer"),),)
    assert {s.name for s in twitter.security_schemes} == {"bearer", "oauth1"}
    assert "bearer_token" in (twitter.scheme("bearer") or pytest.fail()).description


def test_twitter_traps(twitter: ApiSpec) -> None:
    streams = [op for op in twitter.operations if op.name == "Stream (see description)"]
    assert {op.folder for op in streams} == {"Filtered Stream", "Sampled Stream"}
    hide, unhide = _op(twitter, "Hide a reply"), _op(twitter, "Unhide a reply")
    assert (
        (hide.method, hide.url) == (unhide.method, unhide.url) == ("PUT", "https://api.twitter.com/2/tweets/:id/hidden")
    )
    rules = [op for op in twitter.operations if op.url == "https://api.twitter.com/2/tweets/search/stream/rules"]
    assert len({op.key for op in rules}) == len(rules) == 4
    search = _op(twitter, "Recent search")
    assert search.path == "/2/tweets/search/recent"
    assert search.url == "https://api.twitter.com/2/tweets/search/recent?query="
    assert any(p.name == "query" and p.required for p in search.parameters)
    create = _op(twitter, "Create a Tweet")
    assert create.request_body is not None and [f.name for f in create.request_body.fields] == ["text"]


def test_twitter_gold_items_are_matchable(twitter: ApiSpec, eval_dir: Path) -> None:
    questions = [json.loads(line) for line in (eval_dir / "dev.jsonl").read_text().splitlines()]
    items = [op.item() for op in twitter.operations]
    for question in (q for q in questions if q["spec"] == TWITTER):
        for gold in question["gold"]:
            if gold["kind"] == "auth":
                assert twitter.scheme(gold["scheme"]) is not None
                continue
            matches = [
                i for i in items if (i["name"], i["url"], i["method"]) == (gold["name"], gold["url"], gold["method"])
            ]
            assert len(matches) == 1, gold
            op = next(op for op in twitter.operations if op.item() == matches[0])
            assert op.folder == gold["folder"]


# --- credentials written literally in a collection ----------------------------------------------------

TOKEN = "xoxb-1234567890-abcdefghijklmnop"


def _one_request(request: dict[str, Any], **collection: Any) -> Operation:
    document = {"info": {"name": "Leaky"}, "item": [{"name": "Call", "request": request}], **collection}
    spec = parse_postman(json.loads(json.dumps(document)))
    assert SECRET not in json.dumps(to_dict(spec)) and TOKEN not in json.dumps(to_dict(spec))
    return spec.operations[0]


def test_userinfo_becomes_variables_and_never_reaches_the_server() -> None:
    op = _one_request({"method": "GET", "url": {"raw": f"https://ada:{SECRET}@api.example.com/v1/me"}})
    assert op.url == "https://{{username}}:{{password}}@api.example.com/v1/me"
    assert op.path == "/v1/me"
    assert op.servers == ("https://api.example.com",)
    # Variables are what the author should have written: they are kept as they are.
    op = _one_request({"method": "GET", "url": "https://{{user}}:{{pass}}@api.example.com/me"})
    assert op.url == "https://{{user}}:{{pass}}@api.example.com/me"


def test_secret_query_values_by_name_and_by_shape() -> None:
    raw = (
        f"{{{{baseUrl}}}}/search?q=cats&api_key={SECRET}&access_token={SECRET}&token={{{{tok}}}}"
        f"&signature={SECRET}&client_secret={SECRET}&key={SECRET}&password={SECRET}&cursor={TOKEN}#top"
    )
    op = _one_request({"method": "GET", "url": {"raw": raw, "query": [{"key": "api_key", "value": SECRET}]}})
    assert op.url == (
        "{{baseUrl}}/search?q=cats&api_key={{api_key}}&access_token={{access_token}}&token={{tok}}"
        "&signature={{signature}}&client_secret={{client_secret}}&key={{key}}&password={{password}}"
        "&cursor={{cursor}}#top"
    )
    assert [(p.name, p.example) for p in op.parameters] == [("api_key", None)]


def test_a_url_variable_holding_credentials_does_not_leak_into_servers() -> None:
    op = _one_request(
        {"method": "GET", "url": "{{baseUrl}}/things"},
        variable=[{"key": "baseUrl", "value": f"https://ada:{SECRET}@api.example.com/v2?key={SECRET}"}],
    )
    assert op.servers == ("https://api.example.com/v2",)


def test_literal_credentials_in_headers_path_variables_and_bodies() -> None:
    op = _one_request(
        {
            "method": "POST",
            "url": {
                "raw": "https://api.example.com/reset/:reset_token/:id",
                "variable": [{"key": "reset_token", "value": SECRET}, {"key": "id", "value": "42"}],
            },
            "header": [
                {"key": "X-Upstream", "value": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123"},
                {"key": "X-Slack", "value": TOKEN},
                {"key": "X-Plan", "value": "Basic plan"},
            ],
            "body": {"mode": "raw", "raw": '{"password": "' + SECRET + '\\"x", "name": "Ada"}'},
        }
    )
    examples = {p.name: p.example for p in op.parameters}
    assert examples == {"reset_token": None, "id": "42", "X-Upstream": None, "X-Slack": None, "X-Plan": "Basic plan"}
    # The pattern that blanks `"password": "..."` cannot see a value with escapes: no example at all then.
    assert op.request_body is not None and op.request_body.example is None
    assert [f.name for f in op.request_body.fields] == ["password", "name"]


def test_form_encoded_raw_body_and_oauth_urls_are_redacted() -> None:
    op = _one_request(
        {
            "method": "POST",
            "url": "https://auth.example.com/token",
            "header": [{"key": "Content-Type", "value": "application/x-www-form-urlencoded"}],
            "body": {"mode": "raw", "raw": f"grant_type=client_credentials&client_secret={SECRET}"},
        },
        auth={
            "type": "oauth2",
            "oauth2": [
                {"key": "accessTokenUrl", "value": f"https://auth.example.com/token?client_secret={SECRET}"},
                {"key": "grant_type", "value": "client_credentials"},
            ],
        },
    )
    assert op.request_body is not None
    assert op.request_body.example == "grant_type=client_credentials&client_secret={{client_secret}}"


_URL_TEXT = st.text(alphabet=st.characters(blacklist_characters="&#?=@:/", blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["https://", "http://", "{{baseUrl}}", ""]),
    user=_URL_TEXT,
    host=_URL_TEXT,
    path=st.lists(_URL_TEXT, max_size=3),
    before=st.lists(st.tuples(_URL_TEXT, _URL_TEXT), max_size=3),
    secret_name=st.sampled_from(["api_key", "token", "access_token", "key", "secret", "password", "Signature"]),
    fragment=st.one_of(st.none(), _URL_TEXT),
)
def test_a_planted_credential_never_survives_in_a_url(scheme, user, host, path, before, secret_name, fragment) -> None:
    credential = "Zq9-planted-credential"
    userinfo = f"{user}:{credential}@" if scheme.endswith("://") else ""
    query = "&".join([*(f"{k}={v}" for k, v in before), f"{secret_name}={credential}"])
    raw = f"{scheme}{userinfo}{host}/{'/'.join(path)}?{query}" + (f"#{fragment}" if fragment is not None else "")
    op = _one_request({"method": "GET", "url": {"raw": raw}})
    assert credential not in op.label and credential not in json.dumps(op.servers)
