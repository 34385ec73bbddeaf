"""Path templates compared segment by segment (`core.paths`), shared by answer checks and retrieval."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from core.paths import MAX_PATTERN_CHECKS, PathIndex, is_placeholder, same_path, segment_fits, segment_literals


def test_segment_literals():
    assert segment_literals("orders") == ("orders",)
    assert segment_literals("{orderId}") == ("", "")
    assert segment_literals("{name}.json") == ("", ".json")
    assert segment_literals("{a}{b}") == ("", "", "")
    assert segment_literals("{{baseUrl}}") == ("", "")
    assert segment_literals(":id.json") == ("", ".json")
    assert segment_literals("v1:batchGet") == ("v1:batchGet",)  # a colon placeholder only starts a segment
    assert segment_literals("<id>") == ("", "")


def test_segment_fits():
    assert segment_fits("42", "{orderId}")
    assert not segment_fits("", "{orderId}")  # a placeholder stands for at least one character
    assert segment_fits("report.json", "{name}.json")
    assert not segment_fits(".json", "{name}.json")
    assert not segment_fits("report.xml", "{name}.json")
    assert segment_fits("ab", "{a}{b}") and not segment_fits("a", "{a}{b}")
    assert segment_fits("orders", "orders") and not segment_fits("Orders", "orders")
    assert segment_fits("v1-a-b-c", "v1-{x}-{y}-c")
    assert not segment_fits("v1-a-c", "v1-{x}-{y}-c")


def test_same_path():
    template = ["orders", "{orderId}", "refund"]
    assert same_path(["orders", "42", "refund"], template)
    assert not same_path(["orders", "42"], template)
    assert not same_path(["orders", "{id}", "refunds"], template)
    assert not same_path(["{id}", "42", "refund"], template)
    assert same_path(["{id}", "42", "refund"], template, said_placeholders=True)  # the model wrote a placeholder
    assert is_placeholder("{id}") and is_placeholder(":id") and not is_placeholder("{a}.json")


def test_path_index_finds_templates_and_plain_names():
    index = PathIndex()
    index.add(["v1", "customers", "{customer}"], 0)
    index.add(["v1", "customers"], 1)
    index.add(["chat.postmessage"], 2)
    index.add(["v1", "{object}", "{id}"], 3)
    assert sorted(index.find(["v1", "customers", "cus_123"])) == [0, 3]
    assert index.find(["v1", "customers"]) == [1]
    assert index.find(["chat.postmessage"]) == [2]
    assert index.find(["v1", "customers", "cus_123", "x"]) == []
    assert index.find(["v2", "customers", "cus_123"]) == []


def test_path_index_compares_a_bounded_number_of_lookalikes():
    index = PathIndex()
    for number in range(MAX_PATTERN_CHECKS * 2):
        index.add(["v1", f"{{id}}-{number}"], number)
    assert index.find(["v1", "x-7"]) == [7]  # among the first ones compared
    assert index.find(["v1", f"x-{MAX_PATTERN_CHECKS * 2 - 1}"]) == []  # past the bound: not looked at


def _oracle(template: str) -> re.Pattern[str]:
    """What templates meant when they were compiled to regexes: a placeholder is `[^/]+`."""
    pattern = re.sub(r"\\\{\\\{[^{}/]*\\\}\\\}|\\\{[^{}/]*\\\}|<[^<>/]*>|^:[A-Za-z_]\w*", "[^/]+", re.escape(template))
    return re.compile(pattern)


SEGMENT_PIECES = st.sampled_from(["a", "b", "ab", ".", "-", "{x}", "{y}", "{{v}}", "<id>", ":id", "x"])


@settings(max_examples=500, deadline=None)
@given(st.lists(SEGMENT_PIECES, min_size=1, max_size=5).map("".join), st.text("ab.-x{}", max_size=8))
def test_segment_fits_agrees_with_the_regex_it_replaces(template, said):
    if not said:
        return
    assert segment_fits(said, template) == bool(_oracle(template).fullmatch(said))
