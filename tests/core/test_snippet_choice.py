"""Snippet languages asked for in questions, and an answer's snippet shown again in another language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core import messages
from core.actions import AskQuestion, ForgetSpec, Origin, PathAttachment, ShowSnippet, UploadSpec
from core.answers import Answer, AnswerKind, CodeBlock, TextBlock, answer_from_dict, answer_to_dict
from core.errors import UserFacingError
from core.snippet_choice import (
    OTHER_LANGUAGES,
    LanguageChoice,
    SnippetTarget,
    choose_language,
    operation_ref,
    parse_value,
    requested_language,
)
from core.snippets import LANGUAGES, language_label, language_words, normalise_language
from tests.core.test_pathological_inputs import bounded, text_inputs

ORIGIN = Origin("slack", "T1", channel="C1", user="U1", user_name="ada")
REFUND_KEY = "op:POST /orders/{orderId}/refund"


@pytest.mark.parametrize(("question", "expected"), [
    ("how do I refund an order in python?", LanguageChoice("python")),
    ("refund an order with curl", LanguageChoice("curl")),
    ("javascript for refunds", LanguageChoice("javascript")),
    ("node example for creating an order", LanguageChoice("javascript")),
    ("how do I refund in node?", LanguageChoice("javascript")),
    ("refund with js", LanguageChoice("javascript")),
    ("typescript refund", LanguageChoice("typescript")),
    ("refund in ts", LanguageChoice("typescript")),
    ("refund using requests", LanguageChoice("python")),
    ("refund using fetch", LanguageChoice("javascript")),
    ("Python3 please: list books", LanguageChoice("python")),
    ("refunds from the command line", None),  # "from" does not make it a language
    ("refunds in the terminal", LanguageChoice("curl")),
    ("give me Go for creating a customer", LanguageChoice("go")),
    ("create an order in golang", LanguageChoice("go")),
    ("refund an order in go", LanguageChoice("go")),
    ("go code for refunds", LanguageChoice("go")),
    ("a Go example for refunds", LanguageChoice("go")),
    ("refund in Ruby", LanguageChoice("ruby")),
    ("refund with rb", LanguageChoice("ruby")),
    ("a PHP snippet to list books", LanguageChoice("php")),
    ("refund with C#", LanguageChoice("csharp")),
    ("refund in .NET", LanguageChoice("csharp")),
    ("a dotnet example for refunds", LanguageChoice("csharp")),
    ("refund in java", LanguageChoice("java")),
    ("give me Rust for creating a customer", LanguageChoice("curl", instead_of="Rust")),
    ("refund in kotlin", LanguageChoice("java", instead_of="Kotlin")),
    ("how do I fetch an order?", None),  # an everyday verb, not the fetch API
    ("how many requests per minute can I make?", None),
    ("how do I go about refunding an order?", None),  # "go" as English, in many places
    ("let me go through the refund flow first", None),
    ("I want to go with a bearer token", None),
    ("can I go with OAuth instead of an API key?", None),
    ("where do I go to create an API key?", None),
    ("Go to the dashboard, then how do I refund?", None),
    ("is the refund endpoint good to go?", None),
    ("what is the go-to way to paginate orders?", None),
    ("in go-live mode, how do I refund?", None),
    ("do I have to go request a new key?", None),
    ("let me go and check the refund docs", None),
    ("the cs team asks how refunds work", None),
    ("delete a node in the tree", None),
    ("what does the shell of the response look like?", None),
    ("how do I refund an order?", None),
    ("javascript or python?", LanguageChoice("javascript")),  # the first one named decides
])
def test_requested_language(question: str, expected: LanguageChoice | None) -> None:
    assert requested_language(question) == expected


def test_default_is_curl_and_every_registry_word_is_understood() -> None:
    assert choose_language("how do I refund an order?") == LanguageChoice("curl")
    for word in language_words():
        language = normalise_language(word)
        if language is None:
            continue
        choice = requested_language(f"show me the {word} code for refunds")
        assert choice == LanguageChoice(language), word


def test_other_languages_fall_back_to_an_available_one() -> None:
    for word, (label, _) in OTHER_LANGUAGES.items():
        choice = requested_language(f"show it with {word} code")
        assert choice is not None and choice.language in LANGUAGES, word
        if normalise_language(word) not in LANGUAGES:  # a language the registry learns is no longer "instead of"
            assert choice.instead_of == label


def test_language_labels_come_from_the_registry() -> None:
    assert [language_label(language) for language in LANGUAGES] == [
        "curl", "Python", "JavaScript", "TypeScript", "Go", "Java", "Ruby", "PHP", "C#"]
    assert language_label("elixir") == "Elixir"  # a language added without a label still reads well


@settings(max_examples=40, deadline=None)
@given(text_inputs(low=2_000, high=60_000))
@example("in " * 30_000 + "go")
@example("go " * 30_000)
@example("with " * 10_000 + "requests " * 10_000)
@example("c#" * 20_000)
def test_requested_language_is_bounded(question: str) -> None:
    bounded(requested_language, question)


def test_values_round_trip_and_fit_the_platform_limits() -> None:
    target = SnippetTarget("a" * 64, "postman:" + "folder/" * 50 + "name:GET https://x.example/" + "p/" * 200)
    for language in ("", *LANGUAGES):
        value = target.value(language)
        assert len("sn:" + value) <= 100  # Discord's custom id limit, with the adapter's prefix
        parsed = parse_value(value)
        assert parsed is not None
        assert (parsed.spec, parsed.ref, parsed.language) == (target.spec, target.ref, language)
    assert target.ref == operation_ref(target.operation) and len(target.ref) == 12


@given(st.text(max_size=300))
def test_parse_value_never_raises(value: str) -> None:
    parsed = parse_value(value)
    assert parsed is None or len(parsed.ref) == 12


@pytest.mark.parametrize("value", ["", "python", "python:xyz:bookshop", "python:" + "a" * 12 + ":", "py:" + "a" * 12
                                   + ":-bad", "PY:" + "a" * 12 + ":ok"])
def test_parse_value_refuses_what_we_did_not_make(value: str) -> None:
    assert parse_value(value) is None


def test_cached_answers_keep_their_snippet_target() -> None:
    answer = Answer(AnswerKind.RETRIEVAL, (TextBlock("x"), CodeBlock("curl", "curl x")),
                    snippet=SnippetTarget("bookshop", REFUND_KEY))
    again = answer_from_dict(answer_to_dict(answer))
    assert again.snippet == answer.snippet and again.snippet_language == "curl"
    old = answer_to_dict(answer)
    del old["snippet"]  # cached before answers named their snippet's operation
    assert answer_from_dict(old).snippet is None


# ---- the assistant -------------------------------------------------------------------------------------------


@pytest.fixture
async def bookshop(assistant: Any, example_spec: Path) -> Any:
    await assistant.ingest(UploadSpec(ORIGIN, PathAttachment(example_spec), "bookshop"))
    return assistant


async def test_answers_name_their_snippet_and_use_the_language_asked(bookshop: Any) -> None:
    plain = await bookshop.ask(AskQuestion(ORIGIN, "how do I refund an order?"))
    assert plain.snippet == SnippetTarget("bookshop", REFUND_KEY) and plain.snippet_language == "curl"
    python = await bookshop.ask(AskQuestion(ORIGIN, "how do I refund an order in python?"))
    assert python.snippet_language == "python" and "httpx" in python.as_markdown()
    go = await bookshop.ask(AskQuestion(ORIGIN, "give me Go for refunding an order"))
    assert go.snippet_language == "go" and "net/http" in go.as_markdown()
    assert not any("can't write" in b.text for b in go.blocks if isinstance(b, TextBlock))
    rust = await bookshop.ask(AskQuestion(ORIGIN, "give me Rust for refunding an order"))
    note = messages.snippet_language_substituted("Rust", [language_label(code) for code in LANGUAGES], "curl")
    assert rust.snippet_language == "curl"
    texts = [b.text for b in rust.blocks if isinstance(b, TextBlock)]
    assert note in texts
    assert (
        "I can't write Rust snippets yet (I write curl, Python, JavaScript, TypeScript, Go, Java, Ruby, PHP and C#), "
        "so here it is in curl" in note
    )
    # The note sits right above the snippet it explains.
    code_at = next(i for i, b in enumerate(rust.blocks) if isinstance(b, CodeBlock))
    assert rust.blocks[code_at - 1] == TextBlock(note)


async def test_snippet_in_another_language(bookshop: Any) -> None:
    answer = await bookshop.ask(AskQuestion(ORIGIN, "how do I refund an order?"))
    assert answer.snippet is not None
    shown = await bookshop.snippet(ShowSnippet(ORIGIN, "bookshop", answer.snippet.ref, "python"))
    assert shown.kind is AnswerKind.SNIPPET and shown.snippet == answer.snippet
    [heading, code] = shown.blocks
    assert heading == TextBlock("`POST /orders/{orderId}/refund` in Python:")
    assert isinstance(code, CodeBlock) and code.language == "python" and "httpx.post(" in code.code
    assert "/orders/" in code.code and "refund" in code.code
    node = await bookshop.snippet(ShowSnippet(ORIGIN, "bookshop", answer.snippet.ref, "node"))
    assert node.snippet_language == "javascript" and "fetch(" in node.as_markdown()
    csharp = await bookshop.snippet(ShowSnippet(ORIGIN, "bookshop", answer.snippet.ref, "csharp"))
    assert csharp.blocks[0] == TextBlock("`POST /orders/{orderId}/refund` in C#:")
    assert csharp.snippet_language == "csharp" and "HttpRequestMessage(HttpMethod.Post" in csharp.as_markdown()


async def test_snippet_refusals_are_friendly(bookshop: Any) -> None:
    ref = operation_ref(REFUND_KEY)
    with pytest.raises(UserFacingError) as unknown:
        await bookshop.snippet(ShowSnippet(ORIGIN, "bookshop", ref, "cobol"))
    labels = ["curl", "Python", "JavaScript", "TypeScript", "Go", "Java", "Ruby", "PHP", "C#"]
    assert unknown.value.user_message == messages.snippet_unknown_language("cobol", labels)
    with pytest.raises(UserFacingError) as gone:
        await bookshop.snippet(ShowSnippet(ORIGIN, "bookshop", operation_ref("op:GET /nope"), "python"))
    assert gone.value.user_message == messages.snippet_operation_gone("bookshop")
    other_workspace = Origin("slack", "T2", user="U1")
    with pytest.raises(UserFacingError) as elsewhere:  # a value from another workspace finds nothing here
        await bookshop.snippet(ShowSnippet(other_workspace, "bookshop", ref, "python"))
    assert elsewhere.value.user_message == messages.snippet_spec_gone("bookshop")
    await bookshop.forget(ForgetSpec(ORIGIN, "bookshop"))
    with pytest.raises(UserFacingError) as forgotten:
        await bookshop.snippet(ShowSnippet(ORIGIN, "bookshop", ref, "python"))
    assert forgotten.value.user_message == messages.snippet_spec_gone("bookshop")
