"""Structural validity against the OpenAPI / Swagger schema, with `openapi-spec-validator`, bounded.

The validator is pure Python and slow on large documents (Stripe's takes about 4 s, Discord's about 4 s on
these machines), so it runs in a worker thread with a deadline: past it the report says validation did not
finish, and the thread stops at the next error it yields. At most `MAX_ERRORS` errors are kept. Errors the
validator reports without a location are located by finding the offending node in the document.
"""

from __future__ import annotations

import ast
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog

from core.lint.coverage import Document
from core.lint.model import INVALID, Finding, pointer

log = structlog.get_logger(__name__)

# "Operation ID 'x' for 'post' in '/pets' is not unique": the validator names the operation in words only.
_OPERATION = re.compile(r"for '([a-z]{1,10})' in '(/[^']{0,2000})'")

MAX_ERRORS = 50
MAX_INDEX_NODES = 3_000_000
MAX_MESSAGE_CHARS = 240
MAX_LITERAL_CHARS = 20_000  # of a message read back as the node it is about
VALIDATION_SECONDS = 60.0


@dataclass(frozen=True)
class Validity:
    """What the validator said: `checked` False when it could not run or did not finish in time."""

    checked: bool
    errors: tuple[Finding, ...] = ()
    more: int = 0  # errors beyond MAX_ERRORS (at least this many)
    version: str = ""  # "OpenAPI 3.0", "Swagger 2.0", ...
    note: str = ""  # why it was not checked


def _validator(document: dict[str, Any]) -> tuple[Any, str] | None:
    from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

    if str(document.get("swagger") or "").startswith("2"):
        return OpenAPIV2SpecValidator, "Swagger 2.0"
    version = str(document.get("openapi") or "")
    if version.startswith("3.0"):
        return OpenAPIV30SpecValidator, "OpenAPI 3.0"
    if version.startswith("3.1"):
        return OpenAPIV31SpecValidator, "OpenAPI 3.1"
    return None


def validate(document: dict[str, Any], deadline: float, stop: threading.Event | None = None) -> Validity:
    """Validate `document` (blocking: run it in a thread), giving up at `deadline` (`time.monotonic()`)."""
    chosen = _validator(document)
    if chosen is None:
        return Validity(False, note="unknown OpenAPI version")
    validator_class, version = chosen
    errors: list[Any] = []
    more = 0
    finished = True
    try:
        for error in validator_class(document).iter_errors():
            if len(errors) < MAX_ERRORS:
                errors.append(error)
            else:
                more += 1
            if (stop is not None and stop.is_set()) or time.monotonic() > deadline or more >= 1000:
                finished = more >= 1000
                break
    except RecursionError:
        log.warning("spec_validation_recursion")
        return Validity(False, version=version, note="too deeply nested to validate")
    except Exception as exc:  # the validator gives up on some documents (a $ref to nowhere): that is a finding
        ref = getattr(exc, "ref", None)
        detail = f"the validator stopped: unresolvable reference {ref}" if ref else (
            f"the validator stopped: {type(exc).__name__}")
        log.info("spec_validation_stopped", error=type(exc).__name__)
        stopped = Finding(INVALID, f"#{ref}" if isinstance(ref, str) and ref.startswith("/") else "(not located)",
                          "", detail[:MAX_MESSAGE_CHARS])
        return Validity(True, (*_findings(errors, document), stopped), more, version)
    if not finished:
        return Validity(False, version=version, note="did not finish in time")
    return Validity(True, _findings(errors, document), more, version)


def _findings(errors: list[Any], document: dict[str, Any]) -> tuple[Finding, ...]:
    """The validator's errors as findings, each at its JSON pointer."""
    doc = Document(document)

    def own_path(error: Any) -> str:
        # Errors of the validator's per-schema checks carry paths relative to that schema: kept only if they resolve.
        path = list(getattr(error, "absolute_path", ()) or ())
        at = pointer(*path) if path else ""
        if at and doc.lookup(at)[0]:
            return at
        named = _OPERATION.search(str(getattr(error, "message", "")))
        return pointer("paths", named.group(2), named.group(1)) if named else ""

    paths = {id(e): own_path(e) for e in errors}
    unlocated = [e for e in errors if not paths[id(e)]]
    located = _locate([_instance(e) for e in unlocated], document) if unlocated else []
    paths.update({id(e): at for e, at in zip(unlocated, located, strict=True)})
    findings = []
    for error in errors:
        at = paths[id(error)]
        message = str(getattr(error, "message", error))
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        findings.append(Finding(INVALID, at or "(not located)", "", message))
    return tuple(findings)


def _instance(error: Any) -> Any:
    """The node an error is about.

    The validator's own schema checks leave `instance` unset but start their message with the node's `repr`
    ("[{...}, {...}] is not of type 'object'"), which is read back as a literal.
    """
    instance = getattr(error, "instance", None)
    if isinstance(instance, dict | list):
        return instance
    message = str(getattr(error, "message", ""))
    head, separator, _ = message.partition(" is not ")
    if not separator or len(head) > MAX_LITERAL_CHARS or not head.startswith(("[", "{")):
        return None
    try:
        return ast.literal_eval(head)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def _locate(instances: list[Any], document: dict[str, Any]) -> list[str]:
    """The JSON pointer of the first node of `document` equal to each instance ("" when none is found).

    The validator reports some errors (those of its own schema checks) with the offending node but no path.
    One walk, bounded by `MAX_INDEX_NODES`; a node is compared only with instances of its type and size.
    """
    found = [""] * len(instances)
    pending = {index for index, instance in enumerate(instances) if isinstance(instance, dict | list)}
    stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    visited = 0
    while stack and pending and visited < MAX_INDEX_NODES:
        node, tokens = stack.pop()
        visited += 1
        for index in list(pending):
            instance = instances[index]
            if type(instance) is type(node) and len(instance) == len(node) and instance == node:
                found[index] = pointer(*tokens)
                pending.discard(index)
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in reversed(items):
            if isinstance(value, dict | list) and len(tokens) < 64:
                stack.append((value, (*tokens, str(key))))
    return found
