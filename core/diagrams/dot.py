"""Small helpers for writing DOT with the `graphviz` binding: escaped, bounded labels and the house style."""

from __future__ import annotations

import graphviz

from core.parsing.text import truncate

FONT = "Helvetica"
MAX_LABEL_CHARS = 90  # one line of a label


def text(value: str, limit: int = MAX_LABEL_CHARS) -> str:
    """Spec text made safe for a DOT label: one line, bounded, backslashes and `<…>` taken literally."""
    line = " ".join(str(value).split())
    return graphviz.escape(truncate(line, limit))


def lines(values: list[str], *, left: bool = True) -> str:
    """Already escaped lines joined as one label, left-aligned or centred (DOT's line-end escapes)."""
    end = "\\l" if left else "\\n"
    return end.join(values) + (end if left else "")


def digraph(name: str, *, rankdir: str = "TB") -> graphviz.Digraph:
    """A graph in the house style: white background, readable fonts, a size Slack and Discord preview well."""
    graph = graphviz.Digraph(name)
    graph.attr("graph", rankdir=rankdir, fontname=FONT, fontsize="12", bgcolor="white", pad="0.3",
               nodesep="0.35", ranksep="0.45", dpi="110")
    graph.attr("node", fontname=FONT, fontsize="11")
    graph.attr("edge", fontname=FONT, fontsize="10")
    return graph
