"""Follow-up questions: the new question drives the search and the thread fills in only what it lacks."""

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec
from core.documents import Document
from core.followups import (
    follow_up_query,
    main_action,
    needs_referent,
    remembered_item,
    rerank_follow_up,
    topic,
)
from core.models import ItemKind, Operation
from core.retrieval import RetrievedItem
from core.state import Turn
from tests.core.test_pathological_inputs import FAST, deadline, text_inputs

PET_POST = {"kind": "operation", "method": "POST", "path": "/pet"}


@pytest.mark.parametrize(
    "question",
    [
        "and how do I delete one?",
        "how do I update it?",
        "and log them out again?",
        "how do I undo that?",
        "can I cancel this?",
        "and delete?",
        "what about those?",
    ],
)
def test_questions_that_lean_on_the_thread(question):
    assert needs_referent(question)


@pytest.mark.parametrize(
    "question",
    [
        "how do I skip to the next track?",
        "how do I list invoices that are unpaid?",  # "that" as grammar, not a referent
        "show me the refunds endpoint",
        "which scopes does chat.postMessage need",
    ],
)
def test_questions_that_stand_on_their_own(question):
    assert not needs_referent(question)
    assert follow_up_query(question, "pet", "add") == question


def test_topic_names_things_not_verbs():
    assert topic("how do I add a new pet?", "", [PET_POST]) == "pet"
    assert topic("how do I open a pull request?", "", []) == "pull request"  # the main verb goes too
    assert topic("how do I send a message to a channel?", "", []) == "message channel"


def test_topic_keeps_the_verb_an_answer_is_named_after():
    bans = {"kind": "operation", "method": "PUT", "path": "/guilds/{guild_id}/bans/{user_id}"}
    assert topic("how do I ban a user from my server?", "", [bans]) == "ban user server"
    scheduled = {"kind": "operation", "method": "POST", "path": "/chat.scheduleMessage"}
    assert topic("how do I schedule a message?", "", [scheduled]) == "schedule message"
    assert topic("how do I add a new pet?", "", [PET_POST]) == "pet"  # `/pet` is not named after "add"


def test_topic_reads_an_action_word_after_an_article_as_a_thing():
    twitter = {"kind": "postman", "method": "POST", "url": "https://api.twitter.com/2/lists", "name": "Create a list"}
    assert topic("how do I create a list?", "", [twitter]) == "list"
    assert topic("how do I list the invoices?", "", []) == "invoices"


def test_topic_leaves_out_words_about_the_api_itself():
    assert topic("what's the endpoint to create a new channel?", "", []) == "channel"
    assert topic("how do I start a call?", "", []) == "call"  # Twilio's calls are things
    assert topic("how do I make a message go out later?", "", []) == "message"


def test_possessive_pronouns_lean_on_the_thread():
    assert needs_referent("what about all of mine?")


def test_a_leaning_question_keeps_the_topic_it_leaned_on():
    assert topic("and how do I cancel it?", "order pet", []) == "order pet"


def test_a_question_naming_nothing_falls_back_to_its_best_citation():
    assert topic("and delete?", "", [{"kind": "operation", "method": "GET", "path": "/pet/findByStatus"}]) == (
        "pet status"
    )
    assert topic("and?", "", [{"kind": "graphql", "type": "mutation", "field": "reopenPullRequest"}]) == (
        "pull request"
    )
    twilio = {"kind": "operation", "method": "GET", "path": "/2010-04-01/Accounts/{Sid}/Calls.json"}
    assert topic("ok?", "", [twilio]) == "calls"


def test_follow_up_query_adds_the_topic_and_the_action_only_for_that():
    assert follow_up_query("and how do I delete one?", "pet", "add") == "and how do I delete one? pet"
    assert follow_up_query("how do I undo that?", "user", "mute") == "how do I undo that? mute user"
    # A topic that kept the verb already does not get it twice.
    assert follow_up_query("how do I undo that?", "mute user", "mute") == "how do I undo that? mute user"
    assert main_action("how do I mute a user?") == "mute"
    assert main_action("refunds?") == ""


def _item(method: str, path: str, score: float) -> RetrievedItem:
    operation = Operation(kind=ItemKind.OPERATION, method=method, path=path)
    document = Document(
        key=f"{method} {path}",
        kind=ItemKind.OPERATION,
        title=f"{method} {path}",
        embed_text="",
        lexical_text="",
        item={"kind": "operation", "method": method, "path": path},
        operation=operation,
    )
    return RetrievedItem("petstore", document, score)


def test_the_answered_operation_goes_last_when_a_different_action_is_asked():
    post, delete = _item("POST", "/pet", 0.9), _item("DELETE", "/pet/{petId}", 0.5)
    previous = remembered_item(PET_POST)
    assert rerank_follow_up("and how do I delete one?", previous, [post, delete]) == [delete, post]
    # The same action (or none stated) keeps the order: "what does it return?" is about the same operation.
    assert rerank_follow_up("and can I add two at once?", previous, [post, delete]) == [post, delete]
    assert rerank_follow_up("what does it return?", previous, [post, delete]) == [post, delete]
    assert rerank_follow_up("and how do I delete one?", "", [post, delete]) == [post, delete]
    assert rerank_follow_up("and how do I delete one?", "{not json", [post, delete]) == [post, delete]


def test_the_sibling_on_the_same_path_comes_first_when_the_question_names_nothing_else():
    send = _item("POST", "/Accounts/{Sid}/Messages.json", 0.9)
    short_codes = _item("GET", "/Accounts/{Sid}/SMS/ShortCodes.json", 0.7)
    listing = _item("GET", "/Accounts/{Sid}/Messages.json", 0.6)
    previous = remembered_item(send.document.item)
    results = [short_codes, listing, send]
    assert rerank_follow_up("and list the ones I sent?", previous, results) == [listing, short_codes, send]
    # The previous answer gone from the results changes nothing: the sibling is still the same path.
    assert rerank_follow_up("and list the ones I sent?", previous, [short_codes, listing])[0] == listing
    # A question naming a thing of its own is about that thing, not the same path.
    assert rerank_follow_up("and list the short codes?", previous, results) == [short_codes, listing, send]
    # The previous operation does what is asked: nothing moves.
    read = _item("GET", "/Accounts/{Sid}/Messages/{Sid2}.json", 0.9)
    other = _item("GET", "/Accounts/{Sid}/Messages/{Sid2}.json/Media", 0.5)
    again = remembered_item(read.document.item)
    assert rerank_follow_up("and show it again?", again, [other, read]) == [other, read]


def test_without_a_same_path_sibling_one_item_of_the_path_comes_first():
    place = _item("POST", "/store/order", 0.9)
    inventory = _item("GET", "/store/inventory", 0.8)
    pet = _item("GET", "/pet/{petId}", 0.7)
    order = _item("GET", "/store/order/{orderId}", 0.5)
    deeper = _item("GET", "/store/order/{orderId}/items", 0.6)
    previous = remembered_item(place.document.item)
    results = [inventory, pet, deeper, order, place]
    assert rerank_follow_up("how can I look it up later?", previous, results) == [
        order, inventory, pet, deeper, place,
    ]
    # Twilio's format suffix: `.../Calls/{Sid}.json` is one item of `.../Calls.json`.
    call = _item("POST", "/Accounts/{Sid}/Calls.json", 0.9)
    recordings = _item("DELETE", "/Accounts/{Sid}/Calls/{CallSid}/Recordings/{Sid}.json", 0.8)
    one_call = _item("DELETE", "/Accounts/{Sid}/Calls/{CallSid}.json", 0.6)
    placed = remembered_item(call.document.item)
    assert rerank_follow_up("and delete it?", placed, [recordings, one_call, call])[0] == one_call
    # A same-path sibling that does what is asked wins over an item.
    listing = _item("GET", "/store/order", 0.4)
    assert rerank_follow_up("and how do I list them?", previous, [order, listing, place])[0] == listing
    # A question asking for a list does not want one item: "list them" after adding a pet is not GET /pet/{petId}.
    add_pet = _item("POST", "/pet", 0.9)
    by_status = _item("GET", "/pet/findByStatus", 0.7)
    one_pet = _item("GET", "/pet/{petId}", 0.8)
    added = remembered_item(add_pet.document.item)
    assert rerank_follow_up("and how do I list them?", added, [by_status, one_pet, add_pet]) == [
        by_status, one_pet, add_pet,
    ]
    assert rerank_follow_up("and how do I look one up?", added, [by_status, one_pet, add_pet])[0] == one_pet
    # Only items of the previous path count: with none that does what is asked, nothing moves up.
    assert rerank_follow_up("how do I delete it?", previous, [inventory, deeper, place]) == [inventory, deeper, place]


def test_remembered_items_stay_small():
    assert json.loads(remembered_item(PET_POST)) == PET_POST
    assert remembered_item({"kind": "operation", "path": "/x" * 1000}) == ""


def test_turns_remember_topic_best_item_and_action_and_read_older_turns():
    turn = Turn("q", "a", ("petstore",), ("POST /pet",), topic="pet", best=remembered_item(PET_POST), action="add")
    assert Turn.from_json(turn.to_json()) == turn
    older = Turn.from_json({"q": "q", "a": "a", "s": ["petstore"], "c": []})  # stored before these fields
    assert (older.topic, older.best, older.action) == ("", "", "")
    assert Turn("q", "a", best="x" * 5000).best == ""


@FAST
@given(text_inputs())
@example("it " * 50_000)
@example("that " * 40_000 + "?")
@example("how do I " * 20_000)
@example("/{" * 50_000)
def test_follow_up_functions_are_bounded_on_hostile_text(text):
    with deadline():
        needs_referent(text)
        main_action(text)
        topic(text, text, [{"kind": "operation", "method": "GET", "path": text}, {"kind": "graphql", "field": text}])
        follow_up_query(text, text[:300], text[:300])
        placed = _item("POST", text[:200], 0.9)  # a remembered item is kept only when short
        hostile_paths = [_item("GET", text, 0.5), _item("DELETE", text[:200] + "/{id}", 0.4), placed]
        rerank_follow_up(text, remembered_item(placed.document.item), hostile_paths)
        rerank_follow_up("and delete it?", remembered_item(placed.document.item), hostile_paths)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_follow_up_query_always_starts_with_the_question(text):
    assert follow_up_query(text, "pet", "add").startswith(text)


async def test_a_follow_up_in_a_thread_answers_the_follow_up(assistant, example_spec):
    """The bookshop example: after adding a customer, "delete one" answers DELETE, not POST again."""
    team = Origin("slack", "T1", user="U1")
    await assistant.ingest(UploadSpec(team, PathAttachment(example_spec), "bookshop"))
    threaded = Origin("slack", "T1", channel="C1", user="U1", thread="1700000000.0001")
    first = await assistant.ask(AskQuestion(threaded, "how do I add a new customer?"))
    assert first.citations[0].label == "POST /customers"
    follow_up = await assistant.ask(AskQuestion(threaded, "and how do I delete one?"))
    assert follow_up.citations[0].label == "DELETE /customers/{customerId}"
    # Outside the thread the same words have no referent, so they are searched as they are.
    alone = await assistant.ask(AskQuestion(Origin("slack", "T1", user="U2"), "how do I look it up?"))
    assert alone.citations

