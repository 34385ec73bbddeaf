"""The overview diagram: the API's resources (its tags, else the first word of its paths) and their operations.

Bounded for any spec: the `MAX_RESOURCES` largest resources are drawn, each listing at most
`MAX_OPERATIONS_LISTED` operations and counting the rest; the other resources are summed up in one node.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from core import messages
from core.diagrams import OVERVIEW, Diagram
from core.diagrams.dot import digraph, lines, text
from core.models import ApiSpec, ItemKind, Operation

MAX_RESOURCES = 20
MAX_OPERATIONS_LISTED = 6
MAX_RESOURCE_CHARS = 40
_VERSION = re.compile(r"v\d+(?:\.\d+)*|api|rest", re.IGNORECASE)
ROWS = 5  # resources hang off the root in this many rows (left to right), so the image is not one tall column


def resource_of(operation: Operation) -> str:
    """The resource an operation belongs to: its first tag, Postman folder or GraphQL root, else its path's root."""
    if operation.kind is ItemKind.GRAPHQL:
        return operation.graphql_type or "query"
    if operation.tags:
        return operation.tags[0]
    if operation.folder:
        return operation.folder.split("/")[0]
    for segment in operation.path.split("?")[0].split("/"):
        if segment and not segment.startswith(("{", ":")) and not _VERSION.fullmatch(segment):
            return segment.split(".")[0] if "." in segment and operation.path.count("/") == 1 else segment
    return operation.name or "/"


def group_resources(spec: ApiSpec) -> OrderedDict[str, list[Operation]]:
    """Operations by resource, largest resource first (ties: by name), each in the spec's order."""
    groups: dict[str, list[Operation]] = {}
    for operation in spec.operations:
        groups.setdefault(resource_of(operation)[:MAX_RESOURCE_CHARS], []).append(operation)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0].lower()))
    return OrderedDict(ordered)


def _operation_line(operation: Operation) -> str:
    if operation.kind is ItemKind.GRAPHQL:
        return operation.name
    if operation.kind in (ItemKind.POSTMAN, ItemKind.DOC_SECTION) and not operation.path:
        return operation.name
    return f"{operation.method} {operation.path}".strip()


def overview_diagram(spec: ApiSpec) -> Diagram:
    """Resources and their operations."""
    groups = group_resources(spec)
    shown = list(groups.items())[:MAX_RESOURCES]
    hidden = list(groups.items())[MAX_RESOURCES:]
    graph = digraph("overview", rankdir="LR")
    title = spec.title + (f" {spec.version}" if spec.version else "")
    graph.attr("graph", label=text(f"{title}: {messages.count(len(spec.operations), 'operation')}"), labelloc="t",
               fontsize="14", ranksep="0.6")
    graph.attr("node", shape="box", style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5")
    # The spec's own server only: `base_url`'s placeholder for specs without one would be an invented URL.
    root = lines([text(spec.title, 60), *([text(spec.servers[0], 80)] if spec.servers else [])], left=False)
    graph.node("api", root, fillcolor="#dfe9f7", fontsize="13")
    for index, (name, operations) in enumerate(shown):
        listed = [text(_operation_line(op), 70) for op in operations[:MAX_OPERATIONS_LISTED]]
        more = len(operations) - len(listed)
        if more > 0:
            listed.append(text(f"… and {more} more"))
        heading = text(f"{name} ({len(operations)})", MAX_RESOURCE_CHARS + 8)
        graph.node(f"r{index}", lines([heading, "", *listed]), fillcolor="#ffffff")
        # Resources hang off the root in a few columns (chains of invisible edges), not one very tall rank.
        if index < ROWS:
            graph.edge("api", f"r{index}", color="#4a6fa5")
        else:
            graph.edge(f"r{index - ROWS}", f"r{index}", style="invis")
    notes: tuple[str, ...] = ()
    if hidden:
        rest = sum(len(ops) for _, ops in hidden)
        note = messages.diagram_more_resources(len(shown), len(groups), rest)
        names = ", ".join(name for name, _ in hidden[:12]) + (", …" if len(hidden) > 12 else "")
        graph.node("rest", lines([text(note, 120), text(names, 120)]), shape="note", fillcolor="#fff6d5",
                   color="#b59b3a")
        graph.edge("api", "rest", style="dashed", color="#b59b3a")
        notes = (note,)
    return Diagram(OVERVIEW, "overview", graph.source, notes)
