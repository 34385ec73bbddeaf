"""Questions about changes: recognised (and the look-alikes that are not), the spec and versions they name, and
their answers from the diff end to end (cited, the full report attached, friendly when there is nothing to compare).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import messages
from core.actions import AskQuestion, BytesAttachment, Origin, UploadSpec
from core.answers import AnswerKind
from core.diffs.questions import MAX_WORDS, NamedSpec, diff_question, named_spec, words_of
from core.threads import thread_key
from tests.bookshop_versions import ADDED, MADE_REQUIRED, REMOVED, bookshop_versions

ASKED = [
    "what changed in discord?",
    "What has changed in Discord",
    "what's changed in the stripe spec",
    "is the new stripe spec breaking for us?",
    "what's new in the petstore spec",
    "What\u2019s new in Stripe?",
    "what is new in petstore",
    "breaking changes in stripe since v2",
    "any breaking changes in the latest discord version?",
    "does the latest stripe version break anything?",
    "has anything changed in twilio?",
    "show me the diff for stripe",
    "stripe changelog",
    "recent changes to the discord spec",
    "what changed between v1 and v3 of discord",
    "differences between version 2 and 4 of stripe",
]
NOT_ASKED = [
    "how do I change a customer's email?",
    "How can I change the amount of a payment intent?",
    "what changes when I set capture_method to manual?",
    "can I change an order after it was placed",
    "does creating a new customer break anything?",
    "how do I handle a broken webhook signature?",
    "what's the endpoint for new customers?",
    "what is new_customer in the response",
    "which fields can be changed on a subscription?",
    "list customers created since yesterday",
    "how do I create a new pet",
]


@pytest.mark.parametrize("question", ASKED)
def test_questions_about_changes_are_recognised(question: str) -> None:
    assert diff_question(question) is not None


@pytest.mark.parametrize("question", NOT_ASKED)
def test_questions_that_only_use_change_words_are_not(question: str) -> None:
    assert diff_question(question) is None


@pytest.mark.parametrize(("question", "before", "after", "breaking"), [
    ("what changed in discord?", None, None, False),
    ("breaking changes in stripe since v2", "v2", None, True),
    ("is the new stripe spec breaking for us?", None, None, True),
    ("what changed between v1 and v3 of discord", "v1", "v3", False),
    ("what changed from 1 to 3 in stripe", "1", "3", False),
    ("what has changed since 2023-10-16 in stripe", "2023-10-16", None, False),
    ("what changed in stripe up to version 4", None, "4", False),
    ("what changed in discord_api_v10", None, None, False),  # a "v10" inside a name is not a version
    ("what changed in the discord api v10 spec", None, None, False),
])
def test_the_versions_a_question_names(question: str, before: str | None, after: str | None, breaking: bool) -> None:
    asked = diff_question(question)
    assert asked is not None
    assert (asked.before, asked.after, asked.breaking) == (before, after, breaking)


SPECS = [
    NamedSpec("stripe", "Stripe API"), NamedSpec("discord_api_v10", "Discord HTTP API"),
    NamedSpec("petstore3", "Swagger Petstore - OpenAPI 3.0"), NamedSpec("github-rest", "GitHub v3 REST API"),
]


@pytest.mark.parametrize(("question", "name"), [
    ("what changed in stripe?", "stripe"),
    ("what changed in discord?", "discord_api_v10"),  # a distinctive part of the name
    ("what changed in discord_api_v10?", "discord_api_v10"),
    ("what's new in the petstore spec", "petstore3"),  # the title's first word
    ("anything new in github?", "github-rest"),
    ("what changed in the api?", None),  # a generic word names no spec
    ("what changed?", None),
])
def test_the_spec_a_question_names(question: str, name: str | None) -> None:
    assert named_spec(words_of(question), SPECS) == name


def test_a_word_naming_two_specs_names_neither() -> None:
    specs = [NamedSpec("stripe_v1", "Stripe"), NamedSpec("stripe_v2", "Stripe")]
    assert named_spec(words_of("what changed in stripe?"), specs) is None
    assert named_spec(words_of("what changed in stripe_v2?"), specs) == "stripe_v2"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab'._- 1v\n\u2019")), min_size=0, max_size=20_000))
def test_reading_any_text_is_bounded(text: str) -> None:
    started = time.perf_counter()
    asked = diff_question(text)
    named_spec(words_of(text), SPECS)
    assert time.perf_counter() - started < 2
    assert asked is None or len(asked.words) <= MAX_WORDS


def test_worst_cases_read_in_linear_time() -> None:
    hostile = [
        "a'" * 50_000,  # joiners that never complete a word
        "breaking " * 20_000 + "x",
        "what " * 10_000 + "changed",
        "since v1 " * 10_000,
        "a-" * 40_000 + "!",
    ]
    for text in hostile:
        started = time.perf_counter()
        diff_question(text)
        named_spec(words_of(text), SPECS * 100)
        assert time.perf_counter() - started < 2, text[:20]


# ---- answered end to end ----------------------------------------------------------------------------------

UPLOADER = Origin("slack", "T1", channel="C1", user="U1", user_name="ada", is_admin=True)


def asking(question: str, thread: str = "", spec: str | None = None) -> AskQuestion:
    origin = Origin("slack", "T1", channel="C1", user="U1", thread=thread, event_id=f"e-{time.monotonic_ns()}")
    return AskQuestion(origin, question, spec)


async def upload(assistant: Any, data: bytes, name: str = "bookshop") -> None:
    await assistant.ingest(UploadSpec(UPLOADER, BytesAttachment(f"{name}.yaml", data), name))


async def test_a_question_about_changes_is_answered_from_the_diff(assistant: Any, example_spec: Path) -> None:
    one, two = bookshop_versions(example_spec)
    await upload(assistant, one)
    only = await assistant.ask(asking("what changed in bookshop?"))
    assert only.kind is AnswerKind.DIFF
    assert only.as_markdown() == messages.diff_only_one_version("bookshop")
    assert only.report is None

    await upload(assistant, two)
    answer = await assistant.ask(asking("what changed in bookshop?", thread="t1"))
    assert answer.kind is AnswerKind.DIFF
    text = answer.as_markdown()
    assert text.startswith("Changes in `bookshop` from version 1 (Bookshop API 1.2.0) to version 2")
    assert f"`{REMOVED}`: operation removed" in text
    assert "`address`" in text
    # The operations concerned are cited, breaking ones first, as any answer cites what it is based on.
    assert [c.label for c in answer.citations] == [REMOVED, MADE_REQUIRED, ADDED]
    assert {c.spec for c in answer.citations} == {"bookshop"}
    assert answer.citations[0].item == {"kind": "operation", "method": "DELETE", "path": "/customers/{customerId}"}
    # The summary counts the non-breaking change, so the full report goes with it.
    assert answer.report is not None and answer.report.filename == "bookshop-diff-v1-v2.txt"
    report = answer.report.content.decode()
    assert "BREAKING" in report and "NON-BREAKING" in report and "/gift-cards" in report
    # The thread remembers it like any answer: a follow-up there is about the same spec.
    history = await assistant.memory.history(thread_key(asking("", thread="t1").origin))
    assert history[-1].question == "what changed in bookshop?" and history[-1].specs == ("bookshop",)


async def test_breaking_questions_get_a_yes_or_no_first(assistant: Any, example_spec: Path) -> None:
    one, two = bookshop_versions(example_spec)
    await upload(assistant, one)
    await upload(assistant, two)
    answer = await assistant.ask(asking("is the new bookshop spec breaking for us?"))
    assert answer.as_markdown().startswith(messages.diff_verdict(2, "version 1 (Bookshop API 1.2.0)"))
    await upload(assistant, one)  # version 3: the first one again, which only removes the gift cards
    answer = await assistant.ask(asking("breaking changes in bookshop since v1"))
    assert "from version 1 (Bookshop API 1.2.0) to version 3" in answer.as_markdown()
    assert answer.as_markdown().startswith("**No**")
    between = await assistant.ask(asking("what changed between v2 and v3 of bookshop?"))
    assert "from version 2 (Bookshop API 1.3.0) to version 3" in between.as_markdown()
    missing = await assistant.ask(asking("what changed in bookshop since v9"))
    assert missing.as_markdown() == messages.diff_bad_version("bookshop", "v9", [1, 2, 3])


async def test_how_to_questions_with_change_words_are_searched(assistant: Any, example_spec: Path) -> None:
    one, two = bookshop_versions(example_spec)
    await upload(assistant, one)
    await upload(assistant, two)
    answer = await assistant.ask(asking("how do I change a customer's email?"))
    assert answer.kind is AnswerKind.RETRIEVAL
    assert answer.report is None


async def test_which_spec_when_several_and_none_named(assistant: Any, example_spec: Path) -> None:
    one, two = bookshop_versions(example_spec)
    await upload(assistant, one)
    await upload(assistant, two, "shop")
    answer = await assistant.ask(asking("what changed?"))
    assert answer.as_markdown() == messages.diff_which_spec(["bookshop", "shop"])
    # The spec the request names (/api ask … spec:shop) is the one asked about.
    named = await assistant.ask(asking("what changed?", spec="shop"))
    assert named.as_markdown() == messages.diff_only_one_version("shop")
