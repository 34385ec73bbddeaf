"""Pathological inputs against every function that applies a pattern to user or spec text.

Inputs have the shape that makes backtracking blow up: a prefix, one short unit pumped to tens or hundreds of
kilobytes (runs of spaces and newlines, "all the all the", backticks, brackets, `{{`, adjacent placeholders),
then a suffix that makes the match fail. Each call must finish within `BUDGET_SECONDS`; the inputs marked
`@example` are the cases measured in issue 8, which took minutes (or never returned) before.

The deadline is a SIGALRM timer rather than a thread: CPython's `re` holds the GIL while it backtracks, so a
watchdog thread would never get to run, but `re` does check for signals, so the alarm interrupts it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bot.discord_app import render as discord_render
from bot.discord_app import translate as discord_translate
from bot.slack_app import render as slack_render
from bot.slack_app import translate as slack_translate
from core.answers import Answer, AnswerKind, Citation, CodeBlock, Evidence, TextBlock, requested_language
from core.documents import build_documents
from core.errors import UserFacingError
from core.generation import asks_for_spec_list, build_messages, review_answer, smalltalk_reply
from core.mentions import MentionGuard, defuse_mentions
from core.models import ApiSpec, ItemKind, Operation, Parameter, RequestBody, SchemaField, SpecFormat, from_dict
from core.parsing.loader import _parse_text
from core.parsing.markdown import find_endpoints, parse_markdown
from core.parsing.postman import parse_postman
from core.parsing.text import first_sentence, identifier_words, strip_html, truncate
from core.paths import PathIndex, same_path
from core.retrieval import (
    MAX_IDENTIFIER_CANDIDATES,
    _LexicalIndex,
    document_intents,
    document_shape,
    fuse,
    question_intent,
    title_text,
    tokenize,
)
from core.snippets import LANGUAGES, build_snippet, normalise_language
from evaluation.retrieval import matches

BUDGET_SECONDS = 5.0
T = TypeVar("T")


class Stalled(BaseException):
    """A call ran past its time budget (not an `Exception`, so no `except Exception` in the code swallows it)."""


@contextmanager
def deadline(seconds: float = BUDGET_SECONDS) -> Iterator[None]:
    def stop(signum: int, frame: Any) -> None:
        raise Stalled(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bounded(function: Callable[..., T], *args: Any, **kwargs: Any) -> T | UserFacingError:
    """Call `function` within the budget; a user-facing refusal is a fine outcome for junk input."""
    with deadline():
        try:
            return function(*args, **kwargs)
        except UserFacingError as exc:
            return exc


def timed_only(function: Callable[..., T], *args: Any, **kwargs: Any) -> T | Exception:
    """Call `function` within the budget, whatever it raises: for code whose crashes are fixed elsewhere."""
    with deadline():
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            return exc


PIECES = (
    " ", "  ", "\t", "\n", "\n\n", " \n", "\r\n", "a", "Z", "1", "_", "-", ".", "/", ":", ";", ",", "?", "!",
    "*", "**", "__", "~~", "`", "``", "```", "[", "]", "(", ")", "](", "{", "}", "{{", "}}", "<", ">", "<@",
    "<@U1|", "<!", "#", "# ", "@", "&", "&lt", "&#", "\"", "\"a\":", "'", "//", "\\", "GET ", "POST ", "http://",
    "https://a.io/", "show ", "all the ", "all ", "the ", "thanks ", "hi ", "{a}", "/{a}{b}", "/a", "aB",
    "curl ", "-X ", "-d", "$a:", "[1, ", "[1", " and ", "spec", "-data", "<spec", "Query", "type ", "extend ",
    "openapi: ", "@everyone", "python ", "\u00a0", "é",
)  # fmt: skip


def sizes(low: int, high: int) -> st.SearchStrategy[int]:
    # Hypothesis favours small integers; these inputs are meant to be large, so sizes are picked from a few.
    return st.sampled_from((low, (low + high) // 2, high))


def pumped(
    pieces: Sequence[str] = PIECES, low: int = 20_000, high: int = 120_000, unit_pieces: int = 4
) -> st.SearchStrategy[str]:
    """prefix + unit * n + suffix, of about `low` to `high` characters."""
    piece = st.sampled_from(pieces)
    return st.builds(
        lambda prefix, unit, suffix, size: prefix + unit * (size // len(unit)) + suffix,
        st.lists(piece, max_size=3).map("".join),
        st.lists(piece, min_size=1, max_size=unit_pieces).map("".join),
        st.lists(piece, max_size=3).map("".join),
        sizes(low, high),
    )


def mixed(pieces: Sequence[str] = PIECES, low: int = 2_000, high: int = 20_000) -> st.SearchStrategy[str]:
    """Pieces in any order, `low` to `high` of them (drawn from a seeded generator: drawing each is slow)."""
    return st.builds(
        lambda rnd, count: "".join(rnd.choice(pieces) for _ in range(count)),
        st.randoms(use_true_random=False),
        sizes(low, high),
    )


def text_inputs(low: int = 20_000, high: int = 120_000) -> st.SearchStrategy[str]:
    return st.one_of(pumped(low=low, high=high), mixed())


# No shrinking: on inputs this large it takes minutes, and a failing example is reported as generated.
FAST = settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# ---- questions ------------------------------------------------------------------------------------------


@FAST
@given(pumped(low=200, high=100_000))
@example("show " + "all the " * 40 + "x")  # 300 characters: never returned before
@example("show all the " + "all the " * 40 + "specs?")
@example("hi " * 30_000 + "there")
@example("<@" * 50_000)
def test_questions(question: str) -> None:
    bounded(smalltalk_reply, question)
    bounded(asks_for_spec_list, question)
    bounded(requested_language, question)
    bounded(normalise_language, question)
    bounded(tokenize, question)
    bounded(question_intent, question)


# Adjacent placeholders: compiled to `[^/]+[^/]+…` they backtracked for minutes against a long quoted path.
TEMPLATES = (
    "/v1/{a}{b}{c}{d}{e}{f}{g}{h}/z",
    "/files/{name}.{ext}",
    "/{a}/{b}/{c}/{d}",
    "/users/:id/items/<item>",
    "/{{base}}/{x}{y}-{z}",
)
SPEC = ApiSpec(
    SpecFormat.OPENAPI3,
    "Placeholders",
    operations=tuple(
        Operation(ItemKind.OPERATION, "GET", path, operation_id=f"op{i}", parameters=(Parameter("a", "path"),))
        for i, path in enumerate(TEMPLATES)
    ),
)
LEXICAL = _LexicalIndex([("placeholders", d) for d in build_documents(SPEC)])


@FAST
@given(pumped(low=200, high=4_000))
@example("what does `/v1/" + "a" * 3_990 + "/y` return?")
@example("`/v1/" + "a" * 3_990 + "/z`")
@example("/files/" + "a." * 1_990)
@example("`" + "/a" * 1_990 + "`")
def test_identifier_matching_at_the_question_length_cap(question: str) -> None:
    bounded(LEXICAL.identifier_ranking, question)
    fuse(bounded(LEXICAL.signals, question, [(0, 0.5), (1, 0.25)]))  # type: ignore[arg-type]


@FAST
@given(pumped(low=20_000, high=200_000))
@example("`/v1/" + "a" * 200_000 + "/z`")
@example("aB" * 100_000)
@example("a" * 200_000)
def test_identifier_matching_on_huge_text(question: str) -> None:
    bounded(LEXICAL.identifier_ranking, question)
    fuse(bounded(LEXICAL.signals, question, []))  # type: ignore[arg-type]


# What retrieval reads from a spec's own operations (path shape, verbs in names, the name text) at index time.
@FAST
@given(text_inputs(high=60_000))
@example("/v1/" + "{a}" * 30_000)
@example("/x/" + ":a" * 50_000 + ".json")
@example("/" + "<" * 50_000 + ".json")
@example("aB" * 50_000)
@example("get_" * 50_000)
def test_operation_shape_intents_and_names(text: str) -> None:
    operations = [
        Operation(ItemKind.OPERATION, "POST", text, operation_id=text, summary=text),
        Operation(ItemKind.POSTMAN, text[:10], text, name=text, folder=text, url=text),
        Operation(ItemKind.GRAPHQL, "POST", "/graphql", name=text, graphql_type="mutation"),
    ]
    documents = build_documents(ApiSpec(SpecFormat.OPENAPI3, "t", operations=tuple(operations)))
    for document in documents:
        bounded(document_shape, document)
        bounded(document_intents, document)
        bounded(title_text, document)
    bounded(_LexicalIndex, [("t", d) for d in documents])


@FAST
@given(
    st.integers(1, 60).map(lambda k: ["v1", "{p}" * k + "x", "z"]),
    pumped(("a", "x", "{p}", ".", "ax"), low=1_000, high=50_000, unit_pieces=2),
)
@example(["v1", "{p}" * 60 + "x", "z"], "a" * 50_000)
def test_path_templates_segment_by_segment(template: list[str], said: str) -> None:
    bounded(same_path, ["v1", said, "z"], template)
    bounded(same_path, ["v1", said, "z"], template, said_placeholders=True)


# A spec can put thousands of look-alike templates side by side; a lookup compares a bounded number of them.
LOOKALIKES = PathIndex()
for number in range(20_000):
    LOOKALIKES.add(["v1", f"{{a}}{{b}}x{number}", "{c}"], number)


@FAST
@given(pumped(("a", "x", "1", "{", "}", "/"), low=100, high=4_000, unit_pieces=3))
@example("v1/" + "a" * 4_000 + "x19999/c")
def test_path_index_with_many_lookalike_templates(path: str) -> None:
    with deadline(1.0):
        for _ in range(MAX_IDENTIFIER_CANDIDATES):  # as many lookups as one question can make
            LOOKALIKES.find(path.split("/"))


# ---- answers --------------------------------------------------------------------------------------------

LONG_PATH = Operation(ItemKind.OPERATION, "GET", "/v1/{a}{b}{c}{d}/x/{e}", operation_id="getIt")
EVIDENCE = [Evidence("placeholders", SPEC, op.label, op, None, op.item()) for op in (*SPEC.operations, LONG_PATH)]


@FAST
@given(text_inputs())
@example("a" + " " * 100_000 + "b")  # citation markers: the leading spaces were rescanned from every position
@example("<" + " " * 100_000 + "spec")  # `<spec-data>` look-alikes: `\s*/?\s*`
@example("&lt" + "\n " * 50_000)
@example("[1 and 1, 2 - " * 10_000)
@example("GET /v1/" + "a" * 100_000)
def test_generated_answers_are_checked_in_bounded_time(text: str) -> None:
    bounded(review_answer, text, EVIDENCE)
    bounded(build_messages, text, EVIDENCE, [(text, text)])
    bounded(defuse_mentions, text)
    guard = MentionGuard()
    with deadline():
        for start in range(0, len(text), 4_000):
            guard.feed(text[start : start + 4_000])
        guard.flush()


# ---- uploads --------------------------------------------------------------------------------------------


@FAST
@given(text_inputs(), st.sampled_from(["txt", "md", "yaml", "graphql", "json"]))
@example("\n" * 300_000 + "x", "txt")  # format detection: `^\s*` under MULTILINE, minutes before
@example("\n" * 300_000 + "type Query { a: Int }", "txt")
@example("extend" + "\n" * 300_000, "txt")
@example(" \n" * 150_000 + "schema", "txt")
@example("# API\n\n## Get things\n\n`GET http://[`\n", "md")  # urlsplit raised on the unclosed IPv6 bracket
def test_format_detection_and_parsing(text: str, extension: str) -> None:
    bounded(_parse_text, f"upload.{extension}", text)


@FAST
@given(text_inputs())
@example("# API\n" + "GET `/a` " * 17_000)  # a 150 KB line of backticked spans: over a minute before
@example("# a" + " " * 150_000 + "x\n`/v1/a`")  # the heading pattern
@example("# API\n`" + "/a" * 50_000 + "/`\n`" + "/a" * 49_999 + "/b`")  # long paths and their prefixes
@example("".join(f"# h{i}\n## s\nGET `/v1/x{i}`\n" for i in range(10_000)))  # many sections
@example("# API\n" + "](" * 100_000)
@example("# API\n" + "".join(f"https://api.x.com/v{i}/ `/v{i}/a`\n" for i in range(5_000)))
def test_markdown(text: str) -> None:
    bounded(parse_markdown, text, "doc")
    bounded(find_endpoints, text)


def postman_collection(name: str, url: str, body: str, description: str) -> dict[str, Any]:
    request = {
        "method": "POST",
        "url": {"raw": url, "host": ["{{base}}"], "path": url.split("/")[:50], "variable": [{"key": url[:100]}]},
        "header": [{"key": "Content-Type", "value": "application/json"}, {"key": "X-Token", "value": url}],
        "body": {"mode": "raw", "raw": body, "options": {"raw": {"language": "json"}}},
        "description": description,
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": url}]},
    }
    return {
        "info": {"name": name, "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
                 "_postman_id": "x", "description": description},
        "variable": [{"key": "base", "value": url}],
        "item": [{"name": name, "request": request, "response": [{"name": name, "code": 200, "body": body}]}],
    }  # fmt: skip


@FAST
@given(text_inputs(high=60_000), text_inputs(high=60_000))
@example("{{" + " " * 100_000, "x")  # `{{\s*([^{}]+?)\s*}}`: cubic in the spaces
@example("https://a.io/{{ a" + " " * 60_000, "{}")
@example("https://a.io/x", "\n" * 200_000 + "x")  # `^\s*//` ran on through every blank line
@example("https://a.io/x", '"api_key" :' * 30_000)
def test_postman(text: str, body: str) -> None:
    bounded(parse_postman, postman_collection(text[:2_000], text, body, text))


@FAST
@given(text_inputs(high=60_000))
@example("{{" + " " * 100_000)
@example("/v1/" + "{a}" * 30_000)
@example("/x/" + ":a" * 50_000)
@example("<" * 100_000)
def test_snippets(path: str) -> None:
    spec = ApiSpec(SpecFormat.POSTMAN, "t", servers=("https://api.example.com",))
    operations = [
        Operation(ItemKind.OPERATION, "POST", path, parameters=(Parameter(path[:200], "path"),)),
        Operation(ItemKind.POSTMAN, "POST", "/x", url=path, request_body=RequestBody("application/json", example=path)),
        Operation(ItemKind.DOC_SECTION, "GET", path, name="s"),
    ]
    for operation in operations:
        for language in LANGUAGES:
            bounded(build_snippet, spec, operation, language)



@FAST
@given(text_inputs())
@example("anyOf(" * 20_000 + ")" * 20_000)
@example("oneOf(" * 50_000)
@example("|" * 100_000)
@example("array<" * 30_000 + "[" * 30_000)
@example("( " + " " * 100_000 + "x")
def test_type_labels_of_stored_documents(label: str) -> None:
    # Fields stored before value types have their type read from the label when they are loaded.
    stored = {"name": "f", "type": label, "required": True}
    field = bounded(from_dict, SchemaField, stored)
    assert isinstance(field, SchemaField) and field.value_type.types

@FAST
@given(text_inputs())
@example("<p>" * 50_000)
@example("a" * 200_000)
@example("aB" * 100_000)
@example(". " * 100_000)
def test_text_helpers(text: str) -> None:
    # Only its time: the HTML stripper's crash on `a <![ b` (AssertionError) is fixed with its replacement.
    timed_only(strip_html, text)
    bounded(first_sentence, text)
    bounded(identifier_words, text)
    bounded(truncate, text, 4_000)
    gold = {"kind": "doc_section", "heading": "h", "path": text}
    bounded(matches, {"kind": "doc_section", "heading": "other", "path": text[::-1]}, gold)


# ---- platform rendering ---------------------------------------------------------------------------------


def answer_of(text: str) -> Answer:
    return Answer(
        AnswerKind.GENERATED,
        (TextBlock(text), CodeBlock("python", text)),
        (Citation("spec", text[:5_000]),),
        notice=text[:3_000],
    )


@FAST
@given(text_inputs())
@example("`" * 100_000)  # code spans: `(`+)(.+?)(?P=code)` was cubic
@example("# a" + " " * 100_000 + "x")  # headings: `(.*?)\s*#*\s*$`
@example("**a " * 50_000)  # bold: every `**` scanned to the end of the line
@example("[" * 100_000)  # link labels
@example("<@U1|" * 40_000)  # Slack mentions of the bot
@example(" " * 100_000)
def test_slack_rendering_and_translation(text: str) -> None:
    bounded(slack_render.render_answer, answer_of(text), echo=text)
    bounded(slack_render.render_markdown, text)
    bounded(slack_render.render_partial, text)
    bounded(slack_translate.slack_to_plain, text, "U1")
    bounded(slack_translate.mentions, text, "U1")


@FAST
@given(text_inputs())
@example("`" * 100_000)
@example("```\n" * 50_000)
@example("@everyone " * 20_000)
@example("<@123>" * 30_000)
def test_discord_rendering_and_translation(text: str) -> None:
    bounded(discord_render.render_answer, answer_of(text))
    bounded(discord_render.render_text, text)
    bounded(discord_render.render_partial, text)
    bounded(discord_render.escape_markdown, text)
    bounded(discord_translate.strip_bot_mention, text, 123, {456})
    bounded(discord_translate.upload_name, text)
