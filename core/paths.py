"""Path templates compared segment by segment: `/orders/{orderId}/refund` fits `/orders/42/refund`.

Both the answer checks (is `GET /orders/42` a retrieved operation?) and retrieval (does the question quote this
operation's path?) use this. Comparing segment by segment, with each placeholder standing for one or more
characters found by plain string search, takes time linear in the lengths involved; compiling templates into
regexes (`[^/]+` per placeholder) backtracked for minutes on adjacent placeholders and a long quoted path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

# `{id}`, Postman `{{id}}`, `<id>`, and Express `:id` at the start of a segment. The bodies exclude their own
# opening character, so finding them is linear.
_PLACEHOLDER = re.compile(r"\{\{[^{}/]*\}\}|\{[^{}/]*\}|<[^<>/]*>|^:[A-Za-z_]\w*")


@lru_cache(maxsize=8192)
def segment_literals(segment: str) -> tuple[str, ...]:
    """The literal text around a template segment's placeholders: `{name}.json` -> ("", ".json").

    A segment without placeholders gives a 1-tuple; one that is a single placeholder gives ("", "").
    """
    return tuple(_PLACEHOLDER.split(segment))


def is_placeholder(segment: str) -> bool:
    """Whether a whole segment is one placeholder (`{id}`, `{{id}}`, `<id>`, `:id`)."""
    return _PLACEHOLDER.fullmatch(segment) is not None


def segment_fits(said: str, template: str) -> bool:
    """Whether a concrete segment fits a template segment; each placeholder stands for one or more characters.

    Case-sensitive: callers that ignore case lower-case both sides first.
    """
    literals = segment_literals(template)
    if len(literals) == 1:
        return said == template
    if len(said) < sum(len(literal) for literal in literals) + len(literals) - 1:
        return False
    first, *middle, last = literals
    if not said.startswith(first) or not said.endswith(last):
        return False
    # Placing each literal as far left as it can go leaves the most room for the rest: a greedy scan is exact.
    position = len(first)
    for literal in middle:
        found = said.find(literal, position + 1)  # the placeholder before it takes at least one character
        if found < 0:
            return False
        position = found + len(literal)
    return position + 1 <= len(said) - len(last)


def same_path(said: Sequence[str], template: Sequence[str], *, said_placeholders: bool = False) -> bool:
    """Whether path segments (`["orders", "42"]`) fit a template's segments (`["orders", "{orderId}"]`).

    With `said_placeholders`, a placeholder written in `said` (`/orders/{id}`) also fits any template segment.
    """
    if len(said) != len(template):
        return False
    return all(
        segment_fits(s, t) or (said_placeholders and is_placeholder(s)) for s, t in zip(said, template, strict=True)
    )


MAX_PATTERN_CHECKS = 1_000  # per lookup: bounds what a spec full of look-alike templates can cost a question


class PathIndex:
    """Path templates, each with a number (a document's), found by the concrete paths that fit them.

    A tree of segments: literal segments are looked up in a dict, so a lookup costs one step per segment
    whatever the number of templates; only the segments with placeholders under one node are compared one by one,
    at most `MAX_PATTERN_CHECKS` times per lookup.
    """

    def __init__(self) -> None:
        self._root = _Node()

    def add(self, segments: Sequence[str], number: int) -> None:
        """Index a template (`["v1", "customers", "{customer}"]`) under `number`."""
        node = self._root
        for segment in segments:
            children = node.literal if len(segment_literals(segment)) == 1 else node.templated
            node = children.setdefault(segment, _Node())
        node.numbers.append(number)

    def find(self, segments: Sequence[str]) -> list[int]:
        """The numbers of the templates that `segments` (`["v1", "customers", "cus_123"]`) fits."""
        nodes = [self._root]
        checks = MAX_PATTERN_CHECKS
        for said in segments:
            following = []
            for node in nodes:
                if (child := node.literal.get(said)) is not None:
                    following.append(child)
                for template, child in node.templated.items():
                    checks -= 1
                    if checks < 0:
                        break
                    if segment_fits(said, template):
                        following.append(child)
            nodes = following
        return [number for node in nodes for number in node.numbers]


class _Node:
    __slots__ = ("literal", "numbers", "templated")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.templated: dict[str, _Node] = {}  # segments with placeholders
        self.numbers: list[int] = []
