"""Local `$ref` resolution for OpenAPI / Swagger documents.

Only same-document references (`#/components/schemas/X`) are supported. External references are rejected up
front, and nothing is ever fetched from the network or the file system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from core.errors import InvalidSpecError

# A chain of `$ref`s that only point at other `$ref`s longer than this is treated as broken.
MAX_REF_HOPS = 32
# Nested refs deeper than this are not followed (the spec stays usable; the detail is cut off).
MAX_REF_DEPTH = 64

# Values under these keys are data (examples, defaults) or vendor extensions, not spec structure: a
# `{"$ref": "https://..."}` inside an example must not make a valid spec unreadable.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})
# Maps whose keys are user-chosen names, so a key like "example" there is a name, not a data key.
_NAME_MAP_KEYS = frozenset(
    {
        "properties",
        "patternProperties",
        "definitions",
        "$defs",
        "schemas",
        "parameters",
        "responses",
        "requestBodies",
        "headers",
        "securitySchemes",
        "securityDefinitions",
        "callbacks",
        "links",
        "pathItems",
        "paths",
        "webhooks",
    }
)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()

_BUNDLE_HINT = (
    "bundle the spec into a single self-contained file first (for example with "
    "`redocly bundle openapi.yaml -o bundled.yaml`) and upload that"
)


@dataclass(frozen=True)
class Resolved:
    """The outcome of following a (possible) `$ref`.

    `node` is the target (never itself a `$ref`); `name` is the last pointer segment of the ref that was
    followed (e.g. `invoice`), or "" when the node was not a ref. `recursive` is set when the ref is already
    on the active chain, in which case `node` is `{}` and must not be expanded.
    """

    node: Any
    name: str = ""
    ref: str = ""
    recursive: bool = False


def ref_name(ref: str) -> str:
    """The human name of a ref: its last pointer segment, unescaped (`#/components/schemas/a~1b` -> `a/b`)."""
    return _unescape(ref.rsplit("/", 1)[-1])


def _unescape(segment: str) -> str:
    # RFC 6901: percent-decode the URI fragment first, then ~1 -> "/" and ~0 -> "~" (in that order).
    return unquote(segment).replace("~1", "/").replace("~0", "~")


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


class RefResolver:
    """Resolves local JSON-pointer `$ref`s in one loaded document, lazily and with caching.

    Call `check_refs()` once before parsing to reject external and dangling references with a clear
    message; `resolve` / `follow` then never touch anything but the in-memory document.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.warnings: list[str] = []
        self._cache: dict[str, Any] = {}

    def check_refs(self) -> None:
        """Walk the whole document once; raise `InvalidSpecError` for any external or dangling `$ref`."""
        bad = [ref for ref in self._collect_refs() if not ref.startswith("#") or self._lookup(ref) is _MISSING]
        if not bad:
            return
        # Only now pay for tracking where each ref is used, to name the place in the message.
        locations = self._collect_refs(with_locations=True)
        external = [ref for ref in bad if not ref.startswith("#")]
        if external:
            ref = external[0]
            raise InvalidSpecError(
                f"This spec uses an external reference (`$ref: {ref}` at `{locations.get(ref, '?')}`). "
                f"External references are not supported and are never fetched; {_BUNDLE_HINT}."
            )
        ref = bad[0]
        raise InvalidSpecError(
            f"This spec has a broken reference: `$ref: {ref}` (used at `{locations.get(ref, '?')}`) points "
            "at nothing in the document. Fix or remove it and upload the spec again."
        )

    def _collect_refs(self, with_locations: bool = False) -> dict[str, str]:
        """Every distinct `$ref` string in the document, with a JSON-pointer-ish location of its first use.

        Locations are only built when asked for (they cost more than the walk itself); otherwise they are "".
        """
        found: dict[str, str] = {}
        seen: set[int] = set()  # YAML anchors can share (or even nest) containers; visit each once
        stack: list[tuple[Any, str, bool]] = [(self.document, "#", False)]
        containers = (dict, list)  # a tuple: measurably faster than `dict | list` on Stripe's 35K containers
        while stack:
            node, location, is_name_map = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref not in found:
                    found[ref] = location
                for key, value in node.items():
                    if not isinstance(value, containers):
                        continue
                    if not is_name_map and (key in _DATA_KEYS or (isinstance(key, str) and key.startswith("x-"))):
                        continue
                    child = f"{location}/{_escape(str(key))}" if with_locations else ""
                    stack.append((value, child, key in _NAME_MAP_KEYS))
            else:
                for index, value in enumerate(node):
                    if isinstance(value, containers):
                        stack.append((value, f"{location}/{index}" if with_locations else "", False))
        return found

    def resolve(self, ref: str) -> Any:
        """The node a local ref points at; raises `InvalidSpecError` for external or dangling refs."""
        target = self._lookup(ref)
        if target is _MISSING:
            if not ref.startswith("#"):
                raise InvalidSpecError(
                    f"This spec uses an external reference (`$ref: {ref}`). External references are not "
                    f"supported and are never fetched; {_BUNDLE_HINT}."
                )
            raise InvalidSpecError(f"This spec has a broken reference: `$ref: {ref}` points at nothing.")
        return target

    def _lookup(self, ref: str) -> Any:
        if ref in self._cache:
            return self._cache[ref]
        if not ref.startswith("#"):
            return _MISSING
        node: Any = self.document
        pointer = ref[1:]
        if pointer:
            if not pointer.startswith("/"):
                return _MISSING  # a plain-name fragment (`#foo`) is an anchor, which we do not support
            for raw in pointer[1:].split("/"):
                segment = _unescape(raw)
                if isinstance(node, dict):
                    if segment in node:
                        node = node[segment]
                    else:
                        # YAML may have loaded a key like `200` as an int
                        node = next((v for k, v in node.items() if str(k) == segment), _MISSING)
                elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                    node = node[int(segment)]
                else:
                    node = _MISSING
                if node is _MISSING:
                    break
        self._cache[ref] = node
        return node

    def follow(self, node: Any, chain: tuple[str, ...] = ()) -> Resolved:
        """Follow `node` if it is a `$ref` (through ref-to-ref hops) and report what it points at.

        `chain` holds the refs currently being expanded; a ref already on it comes back as `recursive` with
        an empty node, which is what keeps self-referencing schemas finite.
        """
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return Resolved(node)
        first = node["$ref"]
        if first in chain:
            return Resolved({}, ref_name(first), first, recursive=True)
        if len(chain) >= MAX_REF_DEPTH:
            return Resolved({}, ref_name(first), first, recursive=True)
        hops: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in hops or len(hops) >= MAX_REF_HOPS:
                self.warn(f"`$ref: {first}` only leads to other references in a loop; treated as empty.")
                return Resolved({}, ref_name(first), first)
            hops.add(ref)
            node = self.resolve(ref)
        # Name the target after the ref that was written, which is how authors think of it.
        return Resolved(node, ref_name(first), first)

    def warn(self, message: str) -> None:
        """Record a non-fatal problem once."""
        if message not in self.warnings:
            self.warnings.append(message)
