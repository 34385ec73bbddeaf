"""Diffs through the parsed model: Postman by request, GraphQL by field and argument, the rest by operation.

Markdown API docs, and pairs of different formats, are compared by operation only.

Each loop is over a parsed spec's operations, parameters and fields, which the parsers already bound.
"""

from __future__ import annotations

from collections import defaultdict

from core.diffs.model import ChangeList, SpecDiff
from core.models import ApiSpec, ItemKind, Operation, SpecFormat


def compare_parsed(old: ApiSpec, new: ApiSpec) -> SpecDiff:
    """The diff of two parsed versions, by the rules of their format (by operation when the formats differ)."""
    if old.format is new.format is SpecFormat.POSTMAN:
        return _compare_postman(old, new)
    if old.format is new.format is SpecFormat.GRAPHQL:
        return _compare_graphql(old, new)
    return _compare_operations(old, new)


# ---- Postman: by request: method, URL, body keys ------------------------------------------------------------


def _requests(spec: ApiSpec) -> list[Operation]:
    return [op for op in spec.operations if op.kind is ItemKind.POSTMAN]


def _compare_postman(old: ApiSpec, new: ApiSpec) -> SpecDiff:
    changes = ChangeList()
    exact_old = {op.key: op for op in _requests(old)}
    exact_new = {op.key: op for op in _requests(new)}
    pairs = [(exact_old[k], exact_new[k]) for k in sorted(set(exact_old) & set(exact_new))]
    left_old = [exact_old[k] for k in sorted(set(exact_old) - set(exact_new))]
    left_new = [exact_new[k] for k in sorted(set(exact_new) - set(exact_old))]
    # A request whose method or URL changed keeps its folder and name (when that pair is unique on both sides).
    by_name_new: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    for op in left_new:
        by_name_new[(op.folder, op.name)].append(op)
    names_old: dict[tuple[str, str], int] = defaultdict(int)
    for op in left_old:
        names_old[(op.folder, op.name)] += 1
    removed, matched_new = [], set()
    for op in left_old:
        candidates = by_name_new.get((op.folder, op.name), [])
        if len(candidates) == 1 and names_old[(op.folder, op.name)] == 1:
            moved = candidates[0]
            matched_new.add(moved.key)
            where = _postman_label(op)
            if op.method != moved.method:
                changes.add("request-method-changed", True, where, "", op.method, moved.method)
            if op.url != moved.url:
                changes.add("request-url-changed", True, where, "", op.url, moved.url)
            pairs.append((op, moved))
        else:
            removed.append(_postman_label(op))
            changes.add("request-removed", True, _postman_label(op))
    added = [_postman_label(op) for op in left_new if op.key not in matched_new]
    for label in added:
        changes.add("request-added", False, label)
    for before, after in pairs:
        where = _postman_label(before)
        old_keys = _body_keys(before)
        new_keys = _body_keys(after)
        for key in sorted(old_keys - new_keys):
            changes.add("request-body-key-removed", True, where, key)
        for key in sorted(new_keys - old_keys):
            changes.add("request-body-key-added", False, where, key)
        _compare_text(changes, before, after, where)
    return changes.result(added, removed)


def _postman_label(op: Operation) -> str:
    return f"{op.folder}/{op.name}".lstrip("/") + f" ({op.method} {op.url})"


def _body_keys(op: Operation) -> set[str]:
    return {f.name for f in op.request_body.fields} if op.request_body else set()


# ---- GraphQL: by field and argument -------------------------------------------------------------------------


def _compare_graphql(old: ApiSpec, new: ApiSpec) -> SpecDiff:
    changes = ChangeList()
    before = {op.key: op for op in old.operations if op.kind is ItemKind.GRAPHQL}
    after = {op.key: op for op in new.operations if op.kind is ItemKind.GRAPHQL}
    removed = [before[k].label for k in sorted(set(before) - set(after))]
    added = [after[k].label for k in sorted(set(after) - set(before))]
    for label in removed:
        changes.add("graphql-field-removed", True, label)
    for label in added:
        changes.add("graphql-field-added", False, label)
    for key in sorted(set(before) & set(after)):
        old_op, new_op = before[key], after[key]
        where = old_op.label
        old_type, new_type = _return_type(old_op), _return_type(new_op)
        if old_type != new_type:
            # A non-null type becoming nullable is still a change a client must handle.
            changes.add("graphql-field-type-changed", True, where, "", old_type, new_type)
        old_args = {p.name: p for p in old_op.parameters if p.location == "argument"}
        new_args = {p.name: p for p in new_op.parameters if p.location == "argument"}
        for name in sorted(set(old_args) - set(new_args)):
            changes.add("graphql-argument-removed", True, where, name)
        for name in sorted(set(new_args) - set(old_args)):
            argument = new_args[name]
            if argument.required:
                changes.add("graphql-new-required-argument", True, where, name, "", argument.type)
            else:
                changes.add("graphql-new-optional-argument", False, where, name, "", argument.type)
        for name in sorted(set(old_args) & set(new_args)):
            was, now = old_args[name], new_args[name]
            if was.type == now.type:
                continue
            if was.type.endswith("!") and was.type[:-1] == now.type:
                changes.add("graphql-argument-became-optional", False, where, name, was.type, now.type)
            elif now.type.endswith("!") and now.type[:-1] == was.type:
                changes.add("graphql-argument-became-required", True, where, name, was.type, now.type)
            else:
                changes.add("graphql-argument-type-changed", True, where, name, was.type, now.type)
        if old_op.deprecated != new_op.deprecated and new_op.deprecated:
            changes.add("graphql-field-deprecated", False, where)
        _compare_text(changes, old_op, new_op, where)
    return changes.result(added, removed)


def _return_type(op: Operation) -> str:
    """`createIssue(input: CreateIssueInput!): CreateIssuePayload` -> `CreateIssuePayload`."""
    signature = op.graphql_signature
    close = signature.rfind(")")
    tail = signature[close + 1 :] if close != -1 else signature
    return tail.partition(":")[2].strip()


# ---- anything else: by operation ----------------------------------------------------------------------------


def _compare_operations(old: ApiSpec, new: ApiSpec) -> SpecDiff:
    changes = ChangeList()
    before = {_identity(op): op for op in old.operations if op.kind is not ItemKind.AUTH}
    after = {_identity(op): op for op in new.operations if op.kind is not ItemKind.AUTH}
    removed = [before[k].label for k in sorted(set(before) - set(after))]
    added = [after[k].label for k in sorted(set(after) - set(before))]
    for label in removed:
        changes.add("api-removed-without-deprecation", True, label)
    for label in added:
        changes.add("endpoint-added", False, label)
    for key in sorted(set(before) & set(after)):
        _compare_text(changes, before[key], after[key], before[key].label)
    return changes.result(added, removed)


def _identity(op: Operation) -> str:
    """What identifies an operation across formats: method and path when it has them."""
    if op.method and op.path and op.kind is not ItemKind.GRAPHQL:
        return f"{op.method} {op.path}"
    return op.key


def _compare_text(changes: ChangeList, before: Operation, after: Operation, where: str) -> None:
    if before.summary != after.summary:
        changes.add("api-summary-updated", False, where)
    if before.description != after.description:
        changes.add("api-description-updated", False, where)
