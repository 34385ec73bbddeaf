"""Metric names used by a PromQL expression: a small single-pass scanner, enough for our rules and dashboard.

It skips string literals, label matchers `{...}`, range and subquery brackets `[...]`, the names of functions
and aggregation operators, the label lists of `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, and
operator keywords; every other identifier is a metric name. Each character is looked at a bounded number of times, and
expressions longer than `MAX_EXPR_CHARS` are refused.
"""

from __future__ import annotations

MAX_EXPR_CHARS = 20_000
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
AGGREGATIONS = {  # may be followed by `by (...)` before their parenthesis
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
    "limitk", "limit_ratio",
}
_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:")
_PART = _START | set("0123456789")


def _skip_string(expr: str, i: int) -> int:
    """Index just past the string literal starting at `expr[i]` (a quote or backtick)."""
    quote = expr[i]
    i += 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    return i


def _skip_until(expr: str, i: int, closing: str) -> int:
    """Index just past the `closing` bracket that ends the group opened at `expr[i]` (strings skipped)."""
    i += 1
    while i < len(expr):
        if expr[i] in "\"'`":
            i = _skip_string(expr, i)
            continue
        if expr[i] == closing:
            return i + 1
        i += 1
    return i


def _next_visible(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects."""
    if len(expr) > MAX_EXPR_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPR_CHARS} characters")
    names: set[str] = set()
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "{":
            i = _skip_until(expr, i, "}")
        elif char == "[":
            i = _skip_until(expr, i, "]")
        elif char.isdigit() or char == ".":  # numbers and durations (5m, 1e3, 0x1f)
            while i < len(expr) and (expr[i] in _PART or expr[i] == "."):
                i += 1
        elif char in _START:
            start = i
            while i < len(expr) and expr[i] in _PART:
                i += 1
            word = expr[start:i]
            after = _next_visible(expr, i)
            opens = after < len(expr) and expr[after] == "("
            if word.lower() in GROUPING:
                if opens:
                    i = _skip_until(expr, after, ")")
            elif word.lower() in KEYWORDS or word in AGGREGATIONS or opens:
                continue  # an operator, or a function's name (its arguments are scanned as usual)
            else:
                names.add(word)
        else:
            i += 1
    return names
