"""Turn an uploaded file into an `ApiSpec`: check it, detect its format from content, load it safely.

Everything that can go wrong with a user's file becomes an `InvalidSpecError` (or `FileTooLargeError` /
`FileTypeNotAllowedError`) with a message that says what is wrong and what to do about it.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePath
from typing import Any, TypeVar

import structlog
import yaml

from core import messages
from core.errors import (
    FileTooLargeError,
    FileTypeNotAllowedError,
    InvalidSpecError,
    UnreadableSpecError,
    UserFacingError,
)
from core.models import ApiSpec, SpecFormat
from core.parsing.graphql import parse_graphql
from core.parsing.markdown import parse_markdown
from core.parsing.openapi import parse_openapi
from core.parsing.postman import parse_postman

log = structlog.get_logger(__name__)
_Content = TypeVar("_Content", str, bytes)

# Byte-order marks, longest first (UTF-32-LE's starts with UTF-16-LE's). Windows tools write UTF-16 with one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_BINARY_SNIFF_BYTES = 8192

# A YAML alias bomb loads as a small graph of shared nodes that explodes when walked; no real spec comes
# near this many nodes once aliases are expanded (Stripe, the largest we know, has well under 1 million).
MAX_EXPANDED_NODES = 3_000_000

# libyaml's parser (PyYAML's C extension, in every PyYAML wheel) loads Stripe's 4 MB of YAML in about 1.1 s, the
# pure-Python one in about 5.2 s; both construct plain data only (the safe constructor: no tag runs code), and
# the alias and depth checks below apply to either.
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
if YAML_LOADER is yaml.SafeLoader:  # pragma: no cover - a PyYAML built without libyaml
    log.warning("yaml_without_libyaml", effect="YAML specs load about 5x slower")

_OPENAPI_KEY = re.compile(r"^[\"']?(openapi|swagger)[\"']?\s*:", re.MULTILINE)
_YAML_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s,\]}]+")
# Indentation is `[^\S\n]*`, not `\s*`: under MULTILINE, `^\s*` at every line start ran on through all the blank
# lines after it, so a run of blank lines was scanned once per line (quadratic).
_GRAPHQL_ROOT = re.compile(r"^[^\S\n]*(?:extend\s+)?(?:type\s+(?:Query|Mutation|Subscription)\b|schema\s*\{)", re.M)
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
# Binary documents read by their own readers (`core.parsing.pdf`, `core.parsing.word`) into Markdown.
DOCUMENT_EXTENSIONS = frozenset({"pdf", "docx"})
# What the readers import, for the parse workers to import before their memory limit is set.
DOCUMENT_READERS = ("core.parsing.pdf", "core.parsing.word")


def file_extension(filename: str) -> str:
    """The lower-case extension of a file name without the dot ('' when there is none)."""
    return PurePath(filename).suffix.lower().lstrip(".")


def check_upload(filename: str, size: int | None, *, max_bytes: int, allowed_extensions: frozenset[str]) -> None:
    """Reject a file by name and declared size before anything is downloaded or read."""
    extension = file_extension(filename)
    if extension and extension not in allowed_extensions:
        raise FileTypeNotAllowedError(messages.file_type_not_allowed(filename, sorted(allowed_extensions)))
    if size is not None and size > max_bytes:
        raise FileTooLargeError(messages.file_too_large(filename, size, max_bytes))


def load_spec(filename: str, data: bytes, *, max_bytes: int, allowed_extensions: frozenset[str]) -> ApiSpec:
    """Parse an uploaded file into an `ApiSpec`, or raise a user-facing error saying why not."""
    check_upload(filename, len(data), max_bytes=max_bytes, allowed_extensions=allowed_extensions)
    if file_extension(filename) in DOCUMENT_EXTENSIONS:
        # Binary formats: read into Markdown before any decoding (which refuses binary files).
        if not data.strip():
            raise InvalidSpecError(messages.empty_file(filename))
        spec = _parse_guarded(filename, data, _parse_document)
    else:
        spec = _parse_guarded(filename, _decode(filename, data), _parse_text)
    # Any Markdown file has sections; only one that names endpoints is an API doc.
    has_endpoints = spec.format is not SpecFormat.MARKDOWN or any(op.path for op in spec.operations)
    if not spec.operations or not has_endpoints:
        raise InvalidSpecError(messages.spec_without_operations(filename))
    if not spec.title:
        spec = _with_title(spec, PurePath(filename).stem)
    return spec


def load_document(filename: str, data: bytes) -> Any:
    """An uploaded JSON or YAML file as plain data, with the same checks (encoding, aliases, nesting) as a parse.

    For request checks and diffs, which read the schemas as written rather than the parsed model.
    """
    text = _decode(filename, data)
    if text.lstrip().startswith(("{", "[")):
        return _load_json(filename, text)
    return _load_yaml(filename, text)


def _decode(filename: str, data: bytes) -> str:
    """The file as text: UTF-8, or whatever its byte-order mark says; binary files are refused."""
    if not data.strip():
        raise InvalidSpecError(messages.empty_file(filename))
    codec, name = next(((codec, name) for bom, codec, name in _BOMS if data.startswith(bom)), ("utf-8", ""))
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        problem = messages.bad_encoding(filename, name) if name else messages.binary_file(filename)
        raise InvalidSpecError(problem) from None
    # Text never holds NUL characters; a binary file that happens to decode (or follows a BOM) does.
    if "\x00" in text[:_BINARY_SNIFF_BYTES]:
        raise InvalidSpecError(messages.binary_file(filename))
    if not text.strip():  # UTF-16 whitespace is not whitespace as bytes
        raise InvalidSpecError(messages.empty_file(filename))
    return text


def _parse_guarded(filename: str, content: _Content, parse: Callable[[str, _Content], ApiSpec]) -> ApiSpec:
    """Parse, turning a parser's unexpected failure into a clear "couldn't read this spec" for the user.

    The problems we know about are already `InvalidSpecError`s with their own message; anything else is
    a bug or a trap nobody found yet: its traceback is logged and the user is told which file failed,
    never "something went wrong". `MemoryError` is left alone for whoever runs the parse to report.
    """
    try:
        return parse(filename, content)
    except (UserFacingError, MemoryError):
        raise
    except Exception:
        log.exception("spec_parser_failed", filename=filename, chars=len(content))
        raise UnreadableSpecError(messages.spec_unreadable(filename)) from None


def _parse_document(filename: str, data: bytes) -> ApiSpec:
    """A PDF or Word document: its text, with headings and code, as Markdown, parsed as a Markdown doc.

    The readers are imported here, not at the top: the bot imports this module too, and only the parse workers
    (which import them before their limits are set, see `core.parsing.worker`) read documents.
    """
    if file_extension(filename) == "pdf":
        from core.parsing.pdf import pdf_to_markdown

        markdown = pdf_to_markdown(filename, data)
    else:
        from core.parsing.word import docx_to_markdown

        markdown = docx_to_markdown(filename, data)
    return parse_markdown(markdown, title=PurePath(filename).stem)


def _parse_text(filename: str, text: str) -> ApiSpec:
    extension = file_extension(filename)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return _parse_structured(filename, _load_json(filename, text))
    if extension in {"yaml", "yml"} or _OPENAPI_KEY.search(text):
        return _parse_structured(filename, _load_yaml(filename, text))
    if extension in {"graphql", "gql"} or (_GRAPHQL_ROOT.search(text) and not _MARKDOWN_HEADING.search(text)):
        return parse_graphql(text)
    if extension in {"md", "markdown"} or _MARKDOWN_HEADING.search(text):
        return parse_markdown(text, title=PurePath(filename).stem)
    if extension == "json":
        return _parse_structured(filename, _load_json(filename, text))
    raise InvalidSpecError(messages.not_a_spec(filename))


def _parse_structured(filename: str, document: Any) -> ApiSpec:
    if not isinstance(document, dict):
        raise InvalidSpecError(messages.not_a_spec(filename))
    if "openapi" in document or "swagger" in document:
        return parse_openapi(document)
    if _looks_like_postman(document):
        return parse_postman(document)
    raise InvalidSpecError(messages.not_a_spec(filename))


def _looks_like_postman(document: dict[str, Any]) -> bool:
    info = document.get("info")
    if not isinstance(info, dict) or not isinstance(document.get("item"), list):
        return False
    return "_postman_id" in info or "postman" in str(info.get("schema", "")).lower()


def _load_json(filename: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSpecError(messages.malformed(filename, "JSON", exc.lineno, exc.colno, exc.msg)) from None
    except RecursionError:
        raise InvalidSpecError(messages.too_deeply_nested(filename)) from None


def _load_yaml(filename: str, text: str) -> Any:
    try:
        document = yaml.load(text, Loader=YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise InvalidSpecError(messages.malformed(filename, "YAML", line, column, exc.problem or "")) from None
    except yaml.YAMLError:
        raise InvalidSpecError(messages.malformed(filename, "YAML", 0, 0, "unreadable")) from None
    except RecursionError:
        raise InvalidSpecError(messages.too_deeply_nested(filename)) from None
    if _YAML_ANCHOR.search(text):
        _check_expanded_size(filename, document)
    return document


def _check_expanded_size(filename: str, document: Any) -> None:
    """Reject YAML whose aliases expand to an absurd size (a 'billion laughs' bomb) or that refers to itself."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def expanded(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        node_id = id(node)
        if node_id in sizes:
            return sizes[node_id]
        if node_id in on_path:
            raise InvalidSpecError(messages.yaml_alias_bomb(filename))
        on_path.add(node_id)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += expanded(child)
            if total > MAX_EXPANDED_NODES:
                raise InvalidSpecError(messages.yaml_alias_bomb(filename))
        on_path.discard(node_id)
        sizes[node_id] = total
        return total

    try:
        expanded(document)
    except RecursionError:
        raise InvalidSpecError(messages.too_deeply_nested(filename)) from None


def _with_title(spec: ApiSpec, title: str) -> ApiSpec:
    return replace(spec, title=title)
