"""Score fusion and the intent prior (`core.retrieval`): what a question asks for, what a document does, and
how the signals are scaled and combined, then the whole path on a real index."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.actions import BytesAttachment, Origin, UploadSpec
from core.documents import build_documents
from core.models import ApiSpec, ItemKind, Operation, SpecFormat
from core.retrieval import (
    FUSION,
    Fusion,
    HybridRetriever,
    Signals,
    _LexicalIndex,
    document_intents,
    document_is_admin,
    document_shape,
    fuse,
    fusion_weights,
    question_intent,
    title_text,
)

TEAM = Origin("console", "local")


def _document(op: Operation):  # type: ignore[no-untyped-def]
    spec = ApiSpec(SpecFormat.OPENAPI3, "T", operations=(op,))
    return next(d for d in build_documents(spec) if d.operation is not None)


# ---- what a question asks for ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "actions"),
    [
        ("how do I add a new pet to the store?", {"create"}),
        ("send an SMS", {"create"}),
        ("delete a customer", {"delete"}),
        ("someone changed their mind - how do I cancel an order?", {"delete"}),  # "changed" only describes
        ("edit a message", {"update"}),
        ("rename my playlist", {"update"}),
        ("fetch a comment by its id", {"read"}),
        ("get the latest tweets a user has posted", {"read"}),  # "posted" is not a request to post
        ("which channels is a given user a member of?", {"read"}),  # no action named, but asks "which"
        ("how many API points do I have left?", {"read"}),
        ("hang up a call that is in progress", set()),
    ],
)
def test_question_intent_reads_the_verbs(question: str, actions: set[str]) -> None:
    assert question_intent(question).actions == actions


def test_question_intent_tells_collections_items_and_plurals() -> None:
    listing = question_intent("list all the customers")
    assert (listing.wants_list, listing.wants_item, listing.plural) == (True, False, True)
    one = question_intent("look up a specific order")
    assert (one.wants_list, one.wants_item, one.plural) == (False, True, False)
    assert not question_intent("what does this status mean?").plural  # words that merely end in "s"


def test_question_intent_reads_only_the_start_of_a_long_question() -> None:
    assert question_intent("tell me " * 100 + "how to delete a customer").actions == frozenset()


# ---- what a document does ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/customers", "collection"),
        ("/v1/customers/{customer}", "item"),
        ("/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "item"),  # Twilio
        ("/2010-04-01/Accounts/{AccountSid}/Calls.json", "collection"),
        ("/2/users/:id", "item"),  # Postman
        ("/v0/item/<id>.json", "item"),  # Markdown docs
        ("/users/@me", "item"),  # Discord
        ("/chat.postMessage", "collection"),  # Slack's methods name no item
    ],
)
def test_document_shape(path: str, shape: str) -> None:
    assert document_shape(_document(Operation(ItemKind.OPERATION, "GET", path))) == shape


def test_graphql_fields_have_no_shape_and_serve_by_query_or_mutation() -> None:
    query = Operation(ItemKind.GRAPHQL, "POST", "/graphql", name="repository", graphql_type="query")
    mutation = Operation(ItemKind.GRAPHQL, "POST", "/graphql", name="deleteIssue", graphql_type="mutation")
    assert document_shape(_document(query)) == ""
    assert document_intents(_document(query)) == {"read"}
    assert document_intents(_document(mutation)) == {"create", "update", "delete"}


@pytest.mark.parametrize(
    ("method", "path", "operation_id", "intents"),
    [
        ("GET", "/pets", "listPets", {"read"}),
        ("POST", "/pets", "addPet", {"create"}),
        ("PUT", "/guilds/{g}/bans/{u}", "ban_user_from_guild", {"create", "update"}),
        ("DELETE", "/pets/{id}", "deletePet", {"delete"}),
        ("POST", "/chat.update", "chat_update", {"create", "update"}),  # Slack: the name says what POST does
        ("POST", "/chat.postMessage", "chat_postMessage", {"create"}),
        ("POST", "/conversations.list", "conversations_list", {"create", "read"}),
    ],
)
def test_document_intents_by_method_and_name(method: str, path: str, operation_id: str, intents: set[str]) -> None:
    document = _document(Operation(ItemKind.OPERATION, method, path, operation_id=operation_id))
    assert document_intents(document) == intents


@pytest.mark.parametrize(
    ("path", "operation_id", "folder", "admin"),
    [
        ("/admin.conversations.archive", "admin_conversations_archive", "", True),  # Slack
        ("/api/v1/admin/users/{id}", "", "", True),
        ("/users", "", "Admin", True),  # a Postman folder
        ("/conversations.archive", "conversations_archive", "", False),
        ("/administrators", "listAdministrators", "", False),  # a resource named after admins is not a namespace
        ("/v1/admin_settings", "", "", False),
    ],
)
def test_document_is_admin_by_namespace_segment(path: str, operation_id: str, folder: str, admin: bool) -> None:
    document = _document(Operation(ItemKind.OPERATION, "POST", path, operation_id=operation_id, folder=folder))
    assert document_is_admin(document) is admin


@pytest.mark.parametrize(
    ("question", "about_admin"),
    [
        ("archive a channel", False),
        ("as a workspace admin, archive a channel", True),
        ("archive a channel for the whole organization", True),
        ("which Enterprise Grid endpoints exist?", True),
        ("tell me about the administrators group", True),
    ],
)
def test_question_intent_tells_when_admins_are_meant(question: str, about_admin: bool) -> None:
    assert question_intent(question).about_admin is about_admin


def test_auth_schemes_serve_no_intent_and_are_named_as_auth() -> None:
    from core.models import SecurityScheme

    spec = ApiSpec(SpecFormat.OPENAPI3, "T", security_schemes=(SecurityScheme("bearerAuth", "http", "bearer"),))
    scheme = next(d for d in build_documents(spec) if d.kind is ItemKind.AUTH)
    assert document_intents(scheme) == frozenset()
    assert document_shape(scheme) == ""
    assert "authentication" in title_text(scheme)


def test_title_text_is_the_name_not_the_description() -> None:
    op = Operation(
        ItemKind.OPERATION, "POST", "/v1/customers/{customer}/sources", operation_id="PostCustomerSources",
        summary="Create a card", description="A long description that mentions webhooks and events.",
    )  # fmt: skip
    title = title_text(_document(op))
    assert "Create a card" in title and "post customer sources" in title and "customers sources" in title
    assert "webhooks" not in title and "{customer}" not in title


# ---- scaling and combining ---------------------------------------------------------------------------


def _signals(**overrides: object) -> Signals:
    base: dict[str, object] = {
        "candidates": np.array([0, 1, 2]),
        "dense": np.array([0.8, 0.4, math.nan]),  # the third was not a dense hit
        "bm25": np.array([0.0, 2.0, 4.0]),
        "bm25_best": 4.0,
        "bm25_bound": 8.0,
        "title": np.array([1.0, 0.0, 0.0]),
        "title_best": 2.0,
        "title_bound": 4.0,
        "identifier": np.array([0.0, 0.0, 12.0]),
        "method_fit": np.array([1.0, 0.0, 0.0]),
        "shape_fit": np.array([0.0, 1.0, 0.0]),
        "plural_fit": np.array([0.0, 0.0, 1.0]),
        "admin_misfit": np.array([0.0, 1.0, 0.0]),
        "name_cover": np.array([0.5, 0.0, 1.0]),
    }
    return Signals(**(base | overrides))  # type: ignore[arg-type]


def test_features_scale_each_signal_per_question() -> None:
    minmax = _signals().features("minmax", "max")
    assert minmax[:, 0].tolist() == [1.0, 0.0, 0.0]  # best hit 1, last hit 0, a non-hit counts as the last
    assert minmax[:, 1].tolist() == [0.0, 0.5, 1.0]  # over the best BM25 score
    assert minmax[:, 2].tolist() == [0.5, 0.0, 0.0]
    assert minmax[:, 3].tolist() == [0.0, 0.0, 1.0]  # over the longest identifier match
    assert minmax[:, 4:].tolist() == [[1, 0, 0, 0, 0.5], [0, 1, 0, 1, 0], [0, 0, 1, 0, 1]]
    cosine = _signals().features("cosine", "bound")
    assert cosine[:, 0].tolist() == pytest.approx([0.8, 0.4, 0.4])
    assert cosine[:, 1].tolist() == [0.0, 0.25, 0.5]  # over the most the query's words could score
    assert cosine[:, 2].tolist() == [0.25, 0.0, 0.0]


def test_features_of_a_question_nothing_matches_are_zero_not_nan() -> None:
    empty = _signals(
        dense=np.array([math.nan] * 3), bm25=np.zeros(3), bm25_best=0.0, bm25_bound=0.0, title=np.zeros(3),
        title_best=0.0, title_bound=0.0, identifier=np.zeros(3),
    )  # fmt: skip
    for dense_scale in ("minmax", "cosine"):
        for lexical_scale in ("max", "bound"):
            assert not np.isnan(empty.features(dense_scale, lexical_scale)).any()  # type: ignore[arg-type]
    nothing = _signals(candidates=np.zeros(0, dtype=int), **{k: np.zeros(0) for k in (
        "dense", "bm25", "title", "identifier", "method_fit", "shape_fit", "plural_fit", "admin_misfit",
        "name_cover")})  # fmt: skip
    assert fuse(nothing).shape == (0,)


def test_fuse_is_the_weighted_sum_the_constants_describe() -> None:
    fusion = Fusion(dense=0.6, title=0.25, identifier=0.5, method=0.1, shape=0.05, plural=0.02, admin=0.2, cover=0.1)
    weights = fusion_weights(fusion)
    assert weights.tolist() == pytest.approx([0.6, 0.4 * 0.75, 0.4 * 0.25, 0.5, 0.1, 0.05, 0.02, -0.2, 0.1])
    signals = _signals()
    expected = signals.features("minmax", "max") @ weights
    assert fuse(signals, fusion).tolist() == pytest.approx(expected.tolist())
    assert fuse(signals, fusion)[0] == pytest.approx(0.6 * 1 + 0.4 * 0.75 * 0 + 0.4 * 0.25 * 0.5 + 0.1 + 0.1 * 0.5)
    assert fuse(signals, fusion)[1] == pytest.approx(0.4 * 0.75 * 0.5 + 0.05 - 0.2)  # the admin penalty


def test_the_defaults_are_a_convex_combination_with_light_priors() -> None:
    assert 0 < FUSION.dense < 1 and 0 <= FUSION.title <= 1
    priors = (FUSION.method, FUSION.shape, FUSION.plural, FUSION.admin, FUSION.cover)
    assert max(priors) < min(FUSION.dense, 1 - FUSION.dense)


# ---- the whole path ----------------------------------------------------------------------------------

# Siblings that differ only in method and path shape, all described alike: what tells them apart is the
# question's verb and whether it asks for one or for all.
GADGETS = {
    "openapi": "3.0.0",
    "info": {"title": "Gadget API", "version": "1.0"},
    "paths": {
        "/gadgets": {
            "get": {"operationId": "gadgetsCollectionGet", "summary": "Gadgets"},
            "post": {"operationId": "gadgetsCollectionPost", "summary": "Gadgets"},
        },
        "/gadgets/{gadgetId}": {
            "parameters": [{"name": "gadgetId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"operationId": "gadgetItemGet", "summary": "Gadgets"},
            "put": {"operationId": "gadgetItemPut", "summary": "Gadgets"},
            "delete": {"operationId": "gadgetItemDelete", "summary": "Gadgets"},
        },
    },
}


@pytest.mark.parametrize(
    ("question", "fitting"),
    [
        ("how do I create a gadget?", {"POST /gadgets", "PUT /gadgets/{gadgetId}"}),  # PUT creates too
        ("remove a gadget", {"DELETE /gadgets/{gadgetId}"}),
        ("modify a gadget", {"PUT /gadgets/{gadgetId}"}),
        ("list every gadget", {"GET /gadgets"}),
        ("show a specific gadget", {"GET /gadgets/{gadgetId}"}),
    ],
)
async def test_the_intent_prior_separates_sibling_operations(assistant, question: str, fitting: set[str]) -> None:
    # With priors strong enough to decide (the tuned ones are lighter), the question's verb and its "all" or
    # "a specific" pick the siblings that fit, whatever the embedding's noise between near-identical texts.
    await assistant.ingest(UploadSpec(TEAM, BytesAttachment("gadgets.json", json.dumps(GADGETS).encode()), None))
    strong = replace(FUSION, method=0.3, shape=0.3, plural=0.0)
    retriever = HybridRetriever(assistant.store, assistant.registry, assistant.embedder, strong)
    items = await retriever.search(assistant.search_scope(TEAM.scope, None), question)
    assert {i.document.title for i in items[: len(fitting)]} == fitting, [i.document.title for i in items]
    assert [i.score for i in items] == sorted((i.score for i in items), reverse=True)


@pytest.mark.parametrize(
    ("question", "first"),
    [
        ("what does gadgetItemPut do?", "PUT /gadgets/{gadgetId}"),
        ("I want to delete something: what does gadgetsCollectionGet return?", "GET /gadgets"),
    ],
)
async def test_a_quoted_name_outweighs_the_verbs(assistant, question: str, first: str) -> None:
    await assistant.ingest(UploadSpec(TEAM, BytesAttachment("gadgets.json", json.dumps(GADGETS).encode()), None))
    items = await assistant.search(TEAM, question)
    assert items[0].document.title == first, [i.document.title for i in items]


# An admin namespace repeating the plain operations' words (Slack's real summaries).
WORKSPACE = {
    "openapi": "3.0.0",
    "info": {"title": "Workspace API", "version": "1.0"},
    "paths": {
        path: {"post": {"operationId": path.strip("/").replace(".", "_"), "summary": summary}}
        for path, summary in {
            "/conversations.archive": "Archives a conversation.",  # Slack's own words
            "/admin.conversations.archive": "Archive a public or private channel.",
            "/admin.apps.approve": "Approve an app installation request",
        }.items()
    },
}


@pytest.mark.parametrize(
    ("question", "first"),
    [
        ("archive a channel", "POST /conversations.archive"),  # the admin one, which says "channel", without the prior
        ("as an admin, archive a channel", None),  # the penalty is off: either may come first
        ("approve an app installation request", "POST /admin.apps.approve"),  # still found when it is the match
    ],
)
async def test_admin_operations_give_way_unless_admins_are_meant(assistant, question: str, first: str | None) -> None:
    await assistant.ingest(UploadSpec(TEAM, BytesAttachment("ws.json", json.dumps(WORKSPACE).encode()), None))
    scope = assistant.search_scope(TEAM.scope, None)
    items = await assistant.search(TEAM, question)
    if first is not None:
        assert items[0].document.title == first, [i.document.title for i in items]
        return
    plain = replace(FUSION, admin=0.0)
    retriever = HybridRetriever(assistant.store, assistant.registry, assistant.embedder, plain)
    expected = [(i.document.title, round(i.score, 6)) for i in await retriever.search(scope, question)]
    assert [(i.document.title, round(i.score, 6)) for i in items] == expected


def test_name_cover_is_the_share_of_the_name_the_question_uses() -> None:
    # Every word of `chat.delete`'s name is asked for; `chat.deleteScheduledMessage` also says "scheduled", which
    # the question does not: the sibling that names more than was asked comes second.
    documents = [
        _document(Operation(ItemKind.OPERATION, "POST", path, operation_id=path.strip("/").replace(".", "_")))
        for path in ("/chat.delete", "/chat.deleteScheduledMessage", "/reactions.add")
    ]
    index = _LexicalIndex([("slack", d) for d in documents])
    signals = index.signals("delete a chat message", [(0, 0.5), (1, 0.5), (2, 0.5)])
    cover = dict(zip(signals.candidates.tolist(), signals.name_cover.tolist(), strict=True))
    assert cover[0] == 1.0  # chat, delete
    assert cover[1] == pytest.approx(3 / 4)  # chat, delete, message of chat, delete, scheduled, message
    assert cover[2] == 0.0


async def test_search_returns_no_overview_and_at_most_the_limit(assistant, example_spec) -> None:
    from core.actions import PathAttachment

    await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "shop"))
    items = await assistant.search(TEAM, "bookshop overview", limit=3)
    assert len(items) == 3
    assert all(i.document.kind is not ItemKind.OVERVIEW for i in items)


# ---- dense search in memory --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda rows: st.tuples(
            st.lists(st.lists(st.floats(-1, 1, width=32), min_size=4, max_size=4), min_size=rows, max_size=rows),
            st.lists(st.booleans(), min_size=rows, max_size=rows),
            st.lists(st.floats(-1, 1, width=32), min_size=4, max_size=4),
            st.integers(1, 50),
        )
    )
)
def test_dense_hits_are_the_nearest_documents_in_order(case) -> None:  # type: ignore[no-untyped-def]
    """Exact search: the `limit` highest cosine similarities among documents with a vector, nearest first."""
    rows, present, query, limit = case
    spec = ApiSpec(SpecFormat.OPENAPI3, "T", operations=tuple(
        Operation(ItemKind.OPERATION, "GET", f"/things{i}", summary=f"thing {i}") for i in range(len(rows))))
    entries = [("t", d) for d in build_documents(spec) if d.operation is not None]
    index = _LexicalIndex(entries)
    kept = [i for i in range(len(rows)) if present[i]]
    index.set_vectors("t", [entries[i][1].key for i in kept], np.array([rows[i] for i in kept], dtype=np.float32))
    hits = index.dense_hits(query, limit)

    def cosine(a: list[float], b: list[float]) -> float:
        na, nb = float(np.linalg.norm(np.float32(a))), float(np.linalg.norm(np.float32(b)))
        return float(np.dot(np.float32(a), np.float32(b))) / ((na or 1.0) * (nb or 1.0))

    expected = sorted(kept, key=lambda i: -cosine(rows[i], query))[:limit]
    assert len(hits) == min(limit, len(kept))
    assert set(hits) <= set(kept)
    similarities = list(hits.values())
    assert similarities == sorted(similarities, reverse=True)
    for position, similarity in hits.items():
        assert similarity == pytest.approx(cosine(rows[position], query), abs=1e-4)
    if expected:  # the same similarities as a brute-force sort (ties may pick different documents)
        assert sorted(similarities, reverse=True) == pytest.approx(
            [cosine(rows[i], query) for i in expected], abs=1e-4)


async def test_in_memory_dense_search_agrees_with_the_store(assistant, example_spec) -> None:
    """The vectors read back from Chroma rank the documents as Chroma's own search does (9 documents: exact)."""
    from core.actions import PathAttachment

    await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "shop"))
    scope = assistant.search_scope(TEAM.scope, None)
    retriever = assistant.retriever
    index = await retriever._lexical_index(scope)
    assert index.has_vector.all()
    for question in ("how do I refund an order?", "list the books", "what auth does this need?"):
        embedding = await assistant.embedder.embed_query(question)
        mine = index.dense_hits(embedding, 9)
        theirs = await assistant.store.query(TEAM.scope, embedding, list(scope.versions.values()), 9)
        assert [index.entries[p][1].key for p in mine] == [hit.key for hit in theirs]
        assert list(mine.values()) == pytest.approx([1 - hit.distance for hit in theirs], abs=1e-4)


async def test_cached_vectors_stay_within_their_bound(assistant, example_spec, monkeypatch) -> None:
    from core import retrieval
    from core.actions import PathAttachment

    for name in ("one", "two", "three"):
        await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), name))
    retriever = assistant.retriever
    retriever._lexical.clear()
    one_spec = 9 * 384 * 4  # 9 documents (8 searchable + the overview) of 384 float32
    monkeypatch.setattr(retrieval, "VECTOR_CACHE_BYTES", 2 * one_spec)
    for name in ("one", "two", "three"):
        await retriever.search(assistant.search_scope(TEAM.scope, name), "refund an order")
    assert [key[1][0][0] for key in retriever._lexical] == ["two", "three"]  # the least recently used went
    await retriever.search(assistant.search_scope(TEAM.scope, None), "refund an order")  # all three: too big alone
    assert len(retriever._lexical) == 1  # kept anyway: the search in progress needs it
