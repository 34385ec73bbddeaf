"""Hostile spec text never breaks out of a snippet's comments or string literals, in any of the six newer languages.

Spec text reaches snippets as comments (titles, descriptions, notes naming parameters) and as string literals
(URLs, parameter names and examples, body fields, raw bodies, GraphQL documents). Hypothesis writes operations
whose every such text mixes the characters that end comments or literals or start interpolation in some language
(quotes, backslashes, `${`, `#{`, `$var`, `{$x}`, `*/`, `?>`, newlines and the other line breaks, `\\u000a`,
NUL, byte order marks, bidirectional overrides, `@ts-expect-error`, `// +build`, `coding:` lines, heredoc tags),
then each snippet is compiled (one batch per example) and run against the recording server: it must build, and
send exactly what its language-neutral `Request` describes, so every literal round-trips.

Only these six: the older three (curl, Python, JavaScript) are covered by tests/core/test_snippets.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from core.models import ApiSpec, ItemKind, Operation, Parameter, RequestBody, SchemaField, SpecFormat, ValueType
from core.snippets import build_snippet
from core.snippets.build import build_request
from core.snippets.render_csharp import csharp_string
from core.snippets.render_go import go_string
from core.snippets.render_java import java_string
from core.snippets.render_php import php_string
from core.snippets.render_ruby import ruby_string
from core.snippets.source_text import without_surrogates
from tests.conftest import skip_noted
from tests.core.snippet_toolchains import Program, build, missing
from tests.core.test_snippets import (  # noqa: F401  (server is a fixture used by name)
    FILE_CONTENT,
    Recorder,
    _env_values,
    run_and_record,
    sends_what_the_request_describes,
    server,
)

STRING = ValueType(("string",))
BINARY = ValueType(("string",), binary=True)
BATCH = 4  # operations per example, built together

# Each ends a comment or a literal, or starts an escape or interpolation, in at least one of the languages.
NASTY = (
    '"', "'", "\\", "`", "```", '"""', "'''", "\\u000a", "\\u0022", "\\x41", "\\", "\\n", "${x}", "#{x}", "#$x",
    "#@x", "$var", "{$x}", "%s", "%", "*/", "/*", "?>", "<?php", "\n", "\r\n", "\r", "\t", "\x00", "\x04", "\x1a",
    "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\u202e", "\ue000", "\ud800", "é", "😀", "\U0010fffd",
    "@ts-expect-error", "@ts-nocheck", "// +build ignore", "//go:build ignore", "coding: bogus", "-*- coding: x -*-",
    "__END__", "=begin", "BODY", "GRAPHQL", " BODY", "END", "&", "=", "+", "%20", "?x=1", "#frag", "{{api_key}}",
    "{{name}}", "<name>", "a b", "[0]", "[]", ".", "\\\\u000a",
)
_PATH_UNSAFE = "\ud800"  # the path is built with urllib's quote, which has no UTF-8 for a lone surrogate
_ALL = "".join(NASTY)


def hostile(alphabet_extra: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Text mixing the nasty fragments with any characters."""
    piece = st.one_of(st.sampled_from(NASTY + alphabet_extra), st.text(max_size=6))
    return st.lists(piece, min_size=1, max_size=6).map("".join)


_ascii_piece = st.sampled_from([f for f in NASTY if all(0x20 <= ord(c) < 0x7F for c in f)])
# Header values: clients refuse control characters (and non-Latin-1) in them, so printable ASCII only.
header_text = st.lists(_ascii_piece, min_size=1, max_size=6).map("".join)


def _operation(kind: str, texts: list[str], header: str) -> Operation:
    """An operation whose comments, URL, query, header and body all carry `texts`."""
    summary, path_value, q1, q2, q_value, optional, f1, f2, value, raw = texts
    # "p" first: a value of "." or ".." would be a dot segment, which clients resolve before sending.
    path_value = "p" + path_value.replace(_PATH_UNSAFE, "")
    parameters = (
        Parameter("id", "path", required=True, example=path_value),
        Parameter(q1, "query", required=True, example=q_value),
        Parameter(q2 + "_2", "query", required=True, example=summary),
        Parameter(optional, "query"),  # named in a note: a comment
        Parameter("X-Note", "header", required=True, example=header),
    )
    if kind == "graphql":
        return Operation(
            kind=ItemKind.GRAPHQL, method="POST", name="hostile", summary=summary, description=raw,
            graphql_type="mutation", graphql_document=raw, parameters=parameters[1:],
        )
    fields = (
        SchemaField(f1, "string", required=True, example=value, value_type=STRING),
        SchemaField(f2 + "_2", "string", required=True, example=summary, value_type=STRING),
        SchemaField("optional", "string", description=raw),
    )
    if kind == "json":
        body = RequestBody("application/json", fields=fields)
    elif kind == "form":
        body = RequestBody("application/x-www-form-urlencoded", fields=fields)
    elif kind == "multipart":  # field names as browsers send them: the values carry the hostile text
        body = RequestBody("multipart/form-data", fields=(
            SchemaField("text", "string", required=True, example=value, value_type=STRING),
            SchemaField("more", "string", required=True, example=summary, value_type=STRING),
            SchemaField("file", "string", required=True, value_type=BINARY),
        ))
    else:
        body = RequestBody("text/plain", example=raw)
    return Operation(
        kind=ItemKind.OPERATION, method="PUT" if kind == "raw" else "POST", path="/items/{id}",
        summary=summary, description=raw, deprecated=True, parameters=parameters, request_body=body, security=(),
    )


operations = st.tuples(
    st.sampled_from(["json", "form", "multipart", "raw", "graphql"]),
    st.lists(hostile(), min_size=10, max_size=10),
    header_text,
)


def _spec(base: str, kind: str) -> ApiSpec:
    fmt = SpecFormat.GRAPHQL if kind == "graphql" else SpecFormat.OPENAPI3
    return ApiSpec(format=fmt, title="Hostile", servers=(base,))


def _check_batch(language: str, batch: list[tuple[str, list[str], str]], recorder: Recorder) -> None:
    reason = missing(language)
    if reason:
        skip_noted(reason)
    requests = {}
    snippets = {}
    for index, (kind, texts, header) in enumerate(batch):
        spec, operation = _spec(recorder.base_url, kind), _operation(kind, texts, header)
        requests[f"h{index}"] = build_request(spec, operation)
        snippets[f"h{index}"] = build_snippet(spec, operation, language)
    with tempfile.TemporaryDirectory() as workdir:
        built = build(language, snippets, Path(workdir), FILE_CONTENT)
        for name, request in requests.items():
            result = built[name]
            assert isinstance(result, Program), f"{language} snippet does not build:\n{result.output}\n{snippets[name]}"
            received = run_and_record(result, recorder, _env_values(request))
            sends_what_the_request_describes(received, request, language)


# Every fragment at once, in every place, for each body kind: the deterministic worst case.
_EVERYTHING = [(kind, [_ALL] * 10, "".join(f for f in NASTY if f.isascii() and f.isprintable()))
               for kind in ("json", "form", "multipart", "raw", "graphql")]


# Each fragment alone as a whole line of the header comment (the description): `// +build ignore` there was a
# build constraint to gofmt, found by this test once.
_LINE_STARTS = [("raw", ['"'] * 9 + [fragment], '"') for fragment in NASTY if fragment.strip()]

_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
# A compiler run per example: shrinking a failure would take hundreds of builds (it once ran past five minutes),
# so a failing example is reported as found.
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.mark.parametrize("language", ["typescript", "go", "java", "csharp"])
@settings(max_examples=2, deadline=None, suppress_health_check=_HEALTH, phases=_NO_SHRINK)
@given(batch=st.lists(operations, min_size=BATCH, max_size=BATCH))
@example(batch=_EVERYTHING)
@example(batch=_LINE_STARTS)
def test_hostile_spec_text_builds_and_round_trips(
    language: str, batch: list[tuple[str, list[str], str]], server: Recorder  # noqa: F811
) -> None:
    _check_batch(language, batch, server)


@pytest.mark.parametrize("language", ["ruby", "php"])
@settings(max_examples=10, deadline=None, suppress_health_check=_HEALTH)
@given(batch=st.lists(operations, min_size=BATCH, max_size=BATCH))
@example(batch=_EVERYTHING)
@example(batch=_LINE_STARTS)
def test_hostile_spec_text_runs_and_round_trips_in_scripts(
    language: str, batch: list[tuple[str, list[str], str]], server: Recorder  # noqa: F811
) -> None:
    _check_batch(language, batch, server)


# ---- the literal functions alone --------------------------------------------------------------------------


def test_literals_escape_what_each_language_reads_specially() -> None:
    assert go_string('a"b\\c\n\x00\ufeff') == '"a\\"b\\\\c\\n\\x00\\ufeff"'
    assert java_string('a"\\\n\x00é\u0101\U0001f600') == '"a\\"\\\\\\n\\000\\351\\u0101\\ud83d\\ude00"'
    assert "\\u000a" not in java_string("\n\r\x0b") and "\\u0022" not in java_string('"')  # javac reads those early
    assert ruby_string("#{x} #$y #@z") == '"\\#{x} \\#$y \\#@z"'
    assert php_string("$x {$y} it's") == "'$x {$y} it\\'s'"  # single quotes: nothing interpolated
    assert php_string("$x\n") == '"\\$x\\n"'
    assert csharp_string("\x01" + "ab") == '"\\u0001ab"'  # never \x, which would eat the "ab"
    assert without_surrogates("a\ud800b") == "a\ufffdb"
