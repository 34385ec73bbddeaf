"""Questions about auth: the word-based classifier, the reordering after retrieval, and how answers show the
schemes and scopes (retrieval answers and the prompt of generated ones). No model or store: documents are built
from small specs exactly as ingestion builds them."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import messages
from core.answers import Evidence, attach_scheme_uses, describe_auth, retrieval_answer
from core.auth_questions import (
    MAX_SCHEMES_FIRST,
    AuthIntent,
    classify,
    names_operation,
    rank_for_auth,
)
from core.documents import Document, build_documents
from core.generation import build_messages
from core.models import ApiSpec, ItemKind, Operation, SecurityRequirement, SecurityScheme, SpecFormat
from core.retrieval import RetrievedItem

# ---- the classifier --------------------------------------------------------------------------------------

GENERAL = [
    "What auth does this need?",
    "how do I authenticate?",
    "How do I authenticate to the twilio REST API?",
    "what token and scopes does chat.postMessage need?",
    "which OAuth scopes does the Spotify API have?",
    "does the petstore use an api key or oauth?",
    "Where do I put my API key?",
    "can I use my secret key as a bearer token?",
    "what credentials does the Twilio API take?",
    "how do I make an authenticated request?",
    "is it basic auth or a JWT?",
    "what's the client id and client secret for?",
    "which requests need OAuth 1.0a user context?",
    "what scopes do I need to create a playlist?",
    "AUTHENTICATION??",
    "every call returns 401 Unauthorized, what am I missing?",
]
# Operations that handle credentials: the asker wants the endpoint, not the scheme.
OPERATION = [
    "how do I revoke a token?",
    "which call issues that token?",
    "refresh an access token",
    "how do I create an API key for a subaccount?",
    "list the credentials in a credential list",
]
# Logging in, permissions and the signed-in user: auth details are shown, the order is kept.
LOGIN = [
    "and how do I log them in?",
    "users need to sign in before they can place orders - what is the call?",
    "create a new playlist for the logged in user",
    "who am I? get the currently authenticated user",
    "what permissions does my bot need to ban members?",
    "how do I login",
    "I get a 403 Forbidden when I delete a channel",
]
NONE = [
    "how do I refund a charge?",
    "how do I use the page token to get the next page?",
    "create a card token",
    "approve an issuing authorization",
    "who wrote this item? show me the author",
    "list the keys of a bucket",
    "",
]


@pytest.mark.parametrize("question", GENERAL)
def test_questions_about_the_apis_auth(question: str) -> None:
    assert classify(question).intent is AuthIntent.GENERAL


@pytest.mark.parametrize("question", OPERATION)
def test_questions_about_operations_on_credentials(question: str) -> None:
    assert classify(question).intent is AuthIntent.OPERATION


@pytest.mark.parametrize("question", LOGIN)
def test_questions_about_logging_in(question: str) -> None:
    asked = classify(question)
    assert asked.intent is AuthIntent.LOGIN and asked.is_auth


@pytest.mark.parametrize("question", NONE)
def test_questions_not_about_auth(question: str) -> None:
    asked = classify(question)
    assert asked.intent is AuthIntent.NONE and not asked.is_auth


def test_content_words_are_what_the_asker_wants_to_do() -> None:
    assert classify("how do I authenticate to the petstore API so I can modify pets?").content_words == (
        "petstore",
        "modify",
        "pets",
    )
    assert classify("What auth does this need?").content_words == ()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_classifier_is_total_and_quick_on_any_text(text: str) -> None:
    started = time.perf_counter()
    asked = classify(text)
    assert time.perf_counter() - started < 1.0  # generous: a few hundred words, each looked up once
    assert asked.intent in AuthIntent
    assert len(asked.content_words) <= 1000


@pytest.mark.parametrize(
    "hostile",
    [
        "a." * 50_000,
        "a-" * 50_000 + "!",
        "token " * 50_000,
        "revoke " * 20_000 + "token",
        "'" * 100_000,
        ("auth" + "x" * 5000) * 20,
        "log in " * 30_000,
    ],
)
def test_classifier_is_bounded_on_long_hostile_text(hostile: str) -> None:
    started = time.perf_counter()
    classify(hostile)
    assert time.perf_counter() - started < 2.0  # generous: it reads at most 4,000 characters


# ---- specs and their documents ---------------------------------------------------------------------------

KEY = SecurityScheme("api_key", "apiKey", location="header", param_name="api_key")
OAUTH = SecurityScheme(
    "petstore_auth",
    "oauth2",
    flows=("implicit: https://pets.example/authorize",),
    scopes=("write:pets", "read:pets"),
)
WRITE = SecurityRequirement("petstore_auth", ("write:pets", "read:pets"))
PETS = ApiSpec(
    SpecFormat.OPENAPI3,
    "Pet Store",
    servers=("https://pets.example",),
    security_schemes=(KEY, OAUTH),
    operations=(
        Operation(ItemKind.OPERATION, "POST", "/pet", "addPet", "Add a new pet", security=((WRITE,),)),
        Operation(ItemKind.OPERATION, "PUT", "/pet", "updatePet", "Update a pet", security=((WRITE,),)),
        Operation(
            ItemKind.OPERATION,
            "GET",
            "/pet/{petId}",
            "getPetById",
            "Find a pet",
            security=((SecurityRequirement("api_key"),), (WRITE,)),
        ),
        Operation(
            ItemKind.OPERATION,
            "GET",
            "/store/inventory",
            "getInventory",
            "Inventory",
            security=((SecurityRequirement("api_key"),),),
        ),
        Operation(ItemKind.OPERATION, "GET", "/health", "health", "Health check", security=()),
    ),
)
DOCS = {d.key: d for d in build_documents(PETS)}
HEADER = ApiSpec(PETS.format, PETS.title, servers=PETS.servers, security_schemes=PETS.security_schemes)


def _items(*keys: str, spec: str = "pets") -> list[RetrievedItem]:
    return [RetrievedItem(spec, DOCS[key], 1.0 - rank / 100) for rank, key in enumerate(keys)]


def _headers(name: str) -> ApiSpec | None:
    return {"pets": HEADER}.get(name)


def _keys(items: list[RetrievedItem]) -> list[str]:
    return [item.document.key for item in items]


OPS = ["op:POST /pet", "op:PUT /pet", "op:GET /store/inventory", "op:GET /health"]


def test_a_general_question_gets_the_specs_schemes_first_even_those_not_retrieved() -> None:
    ranked = rank_for_auth("What auth does this need?", _items(*OPS), _headers, limit=5)
    # Nothing says which scheme: both, in declaration order (neither was retrieved), then the operations.
    assert _keys(ranked) == ["auth:api_key", "auth:petstore_auth", *OPS[:3]]
    assert [item.spec for item in ranked] == ["pets"] * 5


def test_the_retrievers_order_of_schemes_is_kept_when_nothing_else_decides() -> None:
    items = _items("op:POST /pet", "auth:petstore_auth", "op:PUT /pet", "auth:api_key")
    ranked = rank_for_auth("how do I authenticate?", items, _headers, limit=8)
    assert _keys(ranked) == ["auth:petstore_auth", "auth:api_key", "op:POST /pet", "op:PUT /pet"]


def test_a_purpose_puts_the_schemes_the_best_operations_need_first() -> None:
    items = _items("auth:api_key", "auth:petstore_auth", "op:POST /pet", "op:PUT /pet")
    purposeful = rank_for_auth("how do I authenticate so I can modify pets?", items, _headers, limit=8)
    assert _keys(purposeful)[:2] == ["auth:petstore_auth", "auth:api_key"]
    # The API's own name is not a purpose.
    plain = rank_for_auth("how do I authenticate to the Pet Store API?", items, _headers, limit=8)
    assert _keys(plain)[:2] == ["auth:api_key", "auth:petstore_auth"]


def test_a_scheme_the_question_names_comes_first() -> None:
    items = _items("auth:petstore_auth", "op:POST /pet", "auth:api_key")
    for question in ["where does my api key go?", "how do I authenticate with a key so I can modify pets?"]:
        assert _keys(rank_for_auth(question, items, _headers, limit=8))[0] == "auth:api_key", question
    ranked = rank_for_auth("which oauth scopes are there?", _items("auth:api_key", *OPS), _headers, limit=8)
    assert _keys(ranked)[:2] == ["auth:petstore_auth", "auth:api_key"]


def test_a_named_operation_comes_first_with_the_schemes_it_needs_right_after() -> None:
    items = _items("auth:api_key", "op:PUT /pet", "op:GET /store/inventory", "op:POST /pet")
    ranked = rank_for_auth("what token and scopes does addPet need?", items, _headers, limit=8)
    assert _keys(ranked) == ["op:POST /pet", "auth:petstore_auth", "auth:api_key", "op:PUT /pet", OPS[2]]


def test_other_questions_keep_the_retrieved_order() -> None:
    items = _items(*OPS, "auth:api_key")
    for question in ["how do I add a pet?", "how do I revoke a token?", "and how do I log them in?"]:
        assert rank_for_auth(question, items, _headers, limit=8) == items
    assert rank_for_auth("how do I add a pet?", items, _headers, limit=2) == items[:2]


def test_a_spec_gone_since_the_search_is_left_as_retrieved() -> None:
    items = _items(*OPS)
    assert rank_for_auth("What auth does this need?", items, lambda _: None, limit=8) == items


def test_markdown_sections_about_auth_come_first_when_a_spec_declares_no_schemes() -> None:
    doc = ApiSpec(
        SpecFormat.MARKDOWN,
        "Docs",
        operations=(
            Operation(ItemKind.DOC_SECTION, name="Items", summary="Items"),
            Operation(ItemKind.DOC_SECTION, name="Authors", summary="Who wrote what"),
            Operation(ItemKind.DOC_SECTION, name="Authentication", summary="Send your key"),
        ),
    )
    documents = [d for d in build_documents(doc) if d.operation is not None]
    items = [RetrievedItem("docs", d, 1.0) for d in documents]
    ranked = rank_for_auth("how do I authenticate?", items, lambda _: doc, limit=8)
    assert [i.document.title for i in ranked] == ["Authentication", "Items", "Authors"]


def test_a_dozen_schemes_do_not_push_every_operation_out() -> None:
    many = tuple(SecurityScheme(f"key{n}", "apiKey", location="header", param_name=f"X-Key-{n}") for n in range(12))
    spec = ApiSpec(SpecFormat.OPENAPI3, "Many", security_schemes=many)
    items = _items(*OPS)
    ranked = rank_for_auth("What auth does this need?", items, lambda _: spec, limit=8)
    assert [i.document.kind for i in ranked].count(ItemKind.AUTH) == MAX_SCHEMES_FIRST
    assert _keys(ranked)[MAX_SCHEMES_FIRST:] == OPS


def _named_doc(identifier: str) -> Document:
    operation = Operation(ItemKind.OPERATION, "POST", "/x", identifier)
    return Document("op:x", ItemKind.OPERATION, "x", "", "", identifiers=(identifier,), operation=operation)


@pytest.mark.parametrize(
    ("question", "identifier", "named"),
    [
        ("what token does chat.postMessage need?", "chat.postMessage", True),
        ("scopes for `chat.postMessage`", "chat.postMessage", True),
        ("scopes for chat.postMessages", "chat.postMessage", False),
        ("auth for /v1/charges?", "/v1/charges", True),
        ("auth for /v1/charges/{charge}", "/v1/charges", False),
        ("what auth does createIssue need", "createIssue", True),
        ("what auth does the viewer need", "viewer", False),  # a plain word is not an identifier
        ("auth for Create a Tweet?", "Create a Tweet", True),
    ],
)
def test_names_operation(question: str, identifier: str, named: bool) -> None:
    assert names_operation(question, _named_doc(identifier)) is named


@settings(max_examples=100, deadline=None)
@given(
    question=st.one_of(st.text(max_size=400), st.sampled_from(GENERAL + OPERATION + LOGIN + NONE)),
    order=st.permutations(sorted(DOCS)),
    size=st.integers(min_value=0, max_value=len(DOCS)),
    limit=st.integers(min_value=1, max_value=10),
)
def test_reordering_keeps_each_document_once_and_within_the_limit(
    question: str, order: list[str], size: int, limit: int
) -> None:
    items = _items(*[key for key in order[:size] if key != "overview"])
    started = time.perf_counter()
    ranked = rank_for_auth(question, items, _headers, limit)
    assert time.perf_counter() - started < 1.0
    assert len(ranked) <= limit
    assert len(set(_keys(ranked))) == len(ranked)
    retrieved = set(_keys(items))
    assert all(key in retrieved or key.startswith("auth:") for key in _keys(ranked))
    if not classify(question).is_auth:
        assert ranked == items[:limit]


# ---- answers ---------------------------------------------------------------------------------------------


def _evidence(*keys: str) -> list[Evidence]:
    return [Evidence("pets", HEADER, DOCS[k].title, DOCS[k].operation, DOCS[k].scheme, DOCS[k].item) for k in keys]


def test_an_operations_auth_names_its_scopes() -> None:
    post = DOCS["op:POST /pet"].operation
    assert post is not None
    text = describe_auth(HEADER, post)
    assert text == "OAuth 2.0 access token as a Bearer token (`petstore_auth`) with scopes `write:pets`, `read:pets`"
    either = DOCS["op:GET /pet/{petId}"].operation
    assert either is not None
    assert describe_auth(HEADER, either).startswith("API key in the `api_key` header (`api_key`) or OAuth 2.0")
    health = DOCS["op:GET /health"].operation
    assert health is not None and describe_auth(HEADER, health) == "none required"


def test_a_scheme_answer_lists_the_best_operations_needing_it_with_their_scopes() -> None:
    evidence = attach_scheme_uses(_evidence("auth:petstore_auth", "op:POST /pet", "op:GET /store/inventory"))
    answer = retrieval_answer("What auth does this need?", evidence).as_markdown()
    assert "`pets` authenticates with **petstore_auth**" in answer
    assert "• `POST /pet` with scopes `write:pets`, `read:pets`" in answer
    assert "GET /store/inventory`" not in answer.split("Other matches")[0]  # it needs the other scheme


def test_uses_that_say_nothing_new_are_left_out() -> None:
    [key, *_] = attach_scheme_uses(_evidence("auth:api_key", "op:GET /store/inventory"))
    assert key.uses == ()  # every match needs it and no scopes are asked for


def test_an_auth_question_shows_the_best_operations_auth_first() -> None:
    answer = retrieval_answer("what scopes does addPet need?", _evidence("op:POST /pet"))
    lines = answer.blocks[0].text.splitlines()  # type: ignore[union-attr]
    assert lines[1] == "**POST /pet** — Add a new pet"
    assert lines[2].startswith("Auth: OAuth 2.0 access token as a Bearer token (`petstore_auth`) with scopes")
    plain = retrieval_answer("how do I add a pet?", _evidence("op:POST /pet")).blocks[0].text  # type: ignore[union-attr]
    assert plain.splitlines()[-1].startswith("Auth: ")


def test_a_spec_without_schemes_says_so_for_a_general_auth_question() -> None:
    graphql = ApiSpec(SpecFormat.GRAPHQL, "GitHub")
    viewer = Operation(ItemKind.GRAPHQL, "POST", "/graphql", name="viewer", graphql_type="query")
    evidence = [Evidence("github", graphql, viewer.label, viewer)]
    answer = retrieval_answer("how do I authenticate to the GitHub GraphQL API?", evidence).as_markdown()
    assert messages.auth_not_described("github") in answer
    assert messages.auth_not_described("github") not in retrieval_answer("who is the viewer?", evidence).as_markdown()


def test_the_prompt_of_an_auth_question_carries_schemes_uses_and_scopes_first() -> None:
    evidence = attach_scheme_uses(_evidence("auth:petstore_auth", "op:POST /pet"))
    prompt = build_messages("What auth does adding a pet need?", evidence)[-1]["content"]
    assert "Security scheme `petstore_auth`" in prompt
    assert "- `POST /pet` with scopes `write:pets`, `read:pets`" in prompt
    item = prompt.split('label="POST /pet">')[1]
    assert item.splitlines()[2].startswith("Auth: OAuth 2.0 access token as a Bearer token (`petstore_auth`)")
