"""Text helpers: HTML in descriptions is read by a real HTML parser that never raises and stays bounded."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.parsing.text import MAX_HTML_CHARS, split_userinfo, strip_html, strip_userinfo


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Creates a <code>Charge</code>.</p><p>See &amp; read.</p>", "Creates a `Charge`.\n\nSee & read."),
        ("<ul><li>one</li><li>two</li></ul>after", "one\n\ntwo\n\nafter"),
        ("Plain *Markdown* with &lt;tags&gt; escaped", "Plain *Markdown* with <tags> escaped"),
        ("a <![ b >", "a"),  # the stdlib HTMLParser raised AssertionError here
        ("<p>a <![ b</p>", "a"),
        ("a <![ b", "a <![ b"),  # no `>`: not HTML at all
        ("x <!-- never closed >", "x"),
        ("<?php echo 1 ?>text", "text"),
        ("<script>var secret = 1</script><style>p {}</style>shown", "shown"),
        ("<p>unclosed <b>bold <i>both", "unclosed bold both"),
        ("nul\x00 and lone \ud800 surrogate <b>ok</b>", "nul and lone surrogate ok"),
    ],
)
def test_strip_html(markup: str, text: str) -> None:
    assert strip_html(markup) == text


def test_hostile_nesting_is_bounded() -> None:
    started = time.perf_counter()
    text = strip_html("<ul>" * 1_000_000 + "deep")
    assert time.perf_counter() - started < 5.0
    assert text == ""  # past the first MAX_HTML_CHARS characters nothing is read, as descriptions are cut anyway
    assert strip_html("<div>" * 1000 + "deep" + "</div>" * 1000) == "deep"


_MARKUP = st.sampled_from(
    [
        *("<", ">", "</", "<!", "<![", "<![CDATA[", "]]>", "<!--", "-->", "<?", "?>", "<!DOCTYPE html>"),
        *("<p>", "</p>", "<div>", "</div>", "<ul>", "<li>", "<table>", "<tr>", "<td>", "<b>", "</b>", "<a href='x'>"),
        *("<code>", "</code>", "<pre>", "<br/>", "<script>", "</script>", "<style>", "<svg>", "<math>", "<template>"),
        *("<select>", "<plaintext>", "<textarea>", "<xmp>", "<frameset>", "<x y='", '"', "'", "=", "&", "&amp;"),
        *("&#", "&#x", "&#0;", "&#x110000;", "&nbsp", " ", "\n", "\t", "\x00", "\ud800", "\udfff", "a", "é", "🙂"),
    ]
)
_ANY_CHARACTER = st.characters(blacklist_categories=())  # surrogates included: JSON `"\ud800"` loads as one


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_MARKUP, max_size=200).map("".join), st.text(alphabet=_ANY_CHARACTER, max_size=300)))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = strip_html(text)
    assert isinstance(result, str) and len(result) <= MAX_HTML_CHARS


@settings(max_examples=25, deadline=None)
@given(
    opening=st.lists(_MARKUP, min_size=1, max_size=4).map("".join),
    repeat=st.integers(min_value=1_000, max_value=200_000),
    tail=st.text(max_size=20),
)
def test_huge_repetitive_markup_runs_in_bounded_time(opening: str, repeat: int, tail: str) -> None:
    started = time.perf_counter()
    strip_html(opening * repeat + tail)
    assert time.perf_counter() - started < 5.0  # generous; measured worst cases take a few tens of ms


@pytest.mark.parametrize(
    ("url", "parts", "stripped"),
    [
        ("https://ada:pw@api.example.com/v1?x=@y", ("https://", "ada:pw", "api.example.com/v1?x=@y"), None),
        ("https://api.example.com/users/@me", ("https://api.example.com/users/@me", "", ""), None),
        ("ada@{{host}}/x", ("", "ada", "{{host}}/x"), "{{host}}/x"),
        ("/v1", ("/v1", "", ""), "/v1"),
    ],
)
def test_userinfo(url: str, parts: tuple[str, str, str], stripped: str | None) -> None:
    assert split_userinfo(url) == parts
    assert strip_userinfo(url) == (stripped or parts[0] + parts[2])
