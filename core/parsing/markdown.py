"""Parse a prose API doc written in Markdown into the normalised model.

Every ATX heading becomes one `ItemKind.DOC_SECTION` operation. A section runs to the next heading of the
same or higher level, so it includes its subsections' text. Endpoints are pulled out of the prose:
backticked paths and URLs (`/v0/item/<id>.json`), `GET /users/{id}`-style mentions, `curl` lines in
code blocks, and bare example URLs such as `https://hacker-news.firebaseio.com/v0/item/8863.json`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import urlsplit

from core.errors import InvalidSpecError
from core.models import ApiSpec, ItemKind, Operation, SpecFormat
from core.parsing.text import first_sentence, truncate

DESCRIPTION_LIMIT = 4000
SPEC_DESCRIPTION_LIMIT = 2000
# Headings and endpoint mentions are looked for in the first this-many characters of a line. Every pattern here
# is linear in what it scans; the cap keeps one enormous line from costing more than a normal paragraph.
MAX_SCANNED_LINE_CHARS = 20_000

_HEADING_START = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_VERBS = "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"
_BACKTICK = re.compile(r"`([^`\n]+)`")
_VERB_BEFORE = re.compile(rf"\b({_VERBS})\b[\s*_:]*$")
_VERB_GAP = frozenset("*_:")  # besides whitespace, what may sit between a verb and the backticked path after it
_LONGEST_VERB = max(len(verb) for verb in _VERBS.split("|"))
_ENDPOINT = re.compile(rf"^(?:({_VERBS})\s+)?(https?://\S+|/\S*)$")
_VERB_ENDPOINT = re.compile(rf"\b({_VERBS})\s+(https?://[^\s<>()\[\]`\"']+|/[^\s<>()\[\]`\"']*)")
_URL = re.compile(r"https?://[^\s<>()\[\]`\"']+")
_LINK_TARGET = re.compile(r"\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.M)
_CURL_METHOD = re.compile(rf"(?:-X|--request)\s*({_VERBS})\b")
_CURL_DATA = re.compile(r"\s(?:-d|--data\S*|-F|--form)\b")
_PLACEHOLDER = re.compile(r"^(?:<[^>]+>|\{[^}]+\}|:\w+|\[[^\]]+\]|\d+)$")
_VERSION_PATH = re.compile(r"^(?:/(?:api|rest|v\d+(?:\.\d+)*))*/?$", re.I)
_API_LIKE_PATH = re.compile(r"/(?:api|v\d+(?:\.\d+)*)(?:/|$)|\.json$", re.I)
_TRAILING_PUNCTUATION = ".,;:!?'\""
_EXTENSIONS = (".json", ".xml")


@dataclass(frozen=True)
class Endpoint:
    """An endpoint found in prose: `method` is GET unless a verb was written before it."""

    method: str
    path: str  # as written, always starting with "/", query string dropped
    server: str = ""  # scheme + host, when written as a full URL
    declared: bool = True  # False for bare example URLs, which only count if they name a new endpoint


@dataclass(frozen=True)
class _Mention:
    endpoint: Endpoint
    verb: str  # the verb written before it, or ""


@dataclass
class _Section:
    level: int
    name: str
    start: int  # index of the heading line
    own_end: int  # index of the next heading of any level
    end: int  # index of the next heading of the same or higher level
    ancestors: tuple[str, ...]


def parse_markdown(text: str, title: str = "") -> ApiSpec:
    """Parse a Markdown API doc into an `ApiSpec` with one operation per heading.

    The title is the first H1, else `title`, else "API documentation". Raises `InvalidSpecError` for
    empty text.
    """
    if not text.strip():
        raise InvalidSpecError("The Markdown document is empty.")
    lines = text.splitlines()
    in_code = _code_lines(lines)
    sections = _sections(lines, in_code)

    mentions = _mentions(lines, in_code)
    catalog = _Catalog([m for _, m in mentions])
    servers = _servers([m for _, m in mentions], catalog)

    first_h1 = next((s.name for s in sections if s.level == 1), "")
    doc_title = first_h1 or title.strip() or "API documentation"
    if not sections:  # no headings at all: the whole document is one section
        sections = [_Section(1, doc_title, -1, len(lines), len(lines), ())]

    mention_lines = [i for i, _ in mentions]
    operations: list[Operation] = []
    for section in sections:
        first, last = bisect_left(mention_lines, section.start), bisect_left(mention_lines, section.own_end)
        own = [m for _, m in mentions[first:last]]
        operations.append(_operation(lines, section, own, catalog))

    return ApiSpec(
        format=SpecFormat.MARKDOWN,
        title=doc_title,
        description=truncate(_spec_description(lines, sections), SPEC_DESCRIPTION_LIMIT),
        servers=servers,
        operations=tuple(_unique_names(operations)),
    )


def find_endpoints(text: str) -> tuple[Endpoint, ...]:
    """The distinct endpoints a Markdown doc describes, in order of first mention.

    Base URLs (`https://host/v0/`) are not endpoints, and example URLs that instantiate a documented
    endpoint (`…/v0/item/8863.json` for `/v0/item/<id>.json`) are not counted again.
    """
    lines = text.splitlines()
    return _Catalog([m for _, m in _mentions(lines, _code_lines(lines))]).endpoints


# --- structure ----------------------------------------------------------------------------------------


def _code_lines(lines: list[str]) -> list[bool]:
    """Which lines sit inside fenced code blocks (fence lines included), so `#` there is no heading."""
    flags = []
    fence = ""
    for line in lines:
        match = _FENCE.match(line)
        if fence:
            flags.append(True)
            closing = match.group(1) if match else ""
            if closing and closing[0] == fence[0] and len(closing) >= len(fence) and not line.strip(" `~"):
                fence = ""
        elif match and not (match.group(1)[0] == "`" and "`" in line.strip()[len(match.group(1)) :]):
            fence = match.group(1)
            flags.append(True)
        else:
            flags.append(False)
    return flags


def _heading(line: str) -> tuple[int, str] | None:
    """(level, name) of an ATX heading line (`## Create a user ##`), or None; headings without a name are None.

    Plain string handling: the old single regex (a lazy name before an optional closing `#` run) was quadratic in
    a long run of spaces.
    """
    line = line[:MAX_SCANNED_LINE_CHARS]
    match = _HEADING_START.match(line)
    if match is None:
        return None
    name = line[match.end() :].strip(" \t")
    # A closing run of `#` counts only after a space or tab: `## C#` keeps its name.
    before_closing = name.rstrip("#")
    if before_closing != name and before_closing[-1:] in (" ", "\t"):
        name = before_closing.rstrip(" \t")
    name = name.strip()
    return (len(match.group(1)), name) if name else None


def _sections(lines: list[str], in_code: list[bool]) -> list[_Section]:
    headings: list[tuple[int, int, str]] = []  # (line index, level, name)
    for index, line in enumerate(lines):
        heading = None if in_code[index] else _heading(line)
        if heading:
            headings.append((index, *heading))

    # Where each section ends: the next heading of the same or a higher level, found in one backward pass.
    ends: list[int] = []
    next_at_level = [len(lines)] * 7  # line index of the nearest following heading of each level 1-6
    for index, level, _ in reversed(headings):
        ends.append(min(next_at_level[1 : level + 1]))
        next_at_level[level] = index
    ends.reverse()

    sections = []
    stack: list[tuple[int, str]] = []  # open (level, name) ancestors
    for position, (index, level, name) in enumerate(headings):
        own_end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        while stack and stack[-1][0] >= level:
            stack.pop()
        sections.append(_Section(level, name, index, own_end, ends[position], tuple(n for _, n in stack)))
        stack.append((level, name))
    return sections


def _section_text(lines: list[str], start: int, end: int) -> str:
    return "\n".join(lines[start + 1 : end]).strip()


def _spec_description(lines: list[str], sections: list[_Section]) -> str:
    """The preamble before the first heading plus the H1's own text."""
    first = sections[0].start if sections and sections[0].start >= 0 else len(lines)
    parts = ["\n".join(lines[:first]).strip()]
    h1 = next((s for s in sections if s.level == 1 and s.start >= 0), None)
    if h1:
        parts.append(_section_text(lines, h1.start, h1.own_end))
    return "\n\n".join(p for p in parts if p)


def _operation(lines: list[str], section: _Section, own: list[_Mention], catalog: _Catalog) -> Operation:
    description = _section_text(lines, section.start, section.end)
    own_text = _section_text(lines, section.start, section.own_end)
    endpoint = next((e for e in map(catalog.resolve, own) if e is not None), None)
    return Operation(
        kind=ItemKind.DOC_SECTION,
        method=endpoint.method if endpoint else "",
        path=endpoint.path if endpoint else "",
        summary=first_sentence(_prose(own_text)),
        description=truncate(description, DESCRIPTION_LIMIT),
        tags=section.ancestors,
        servers=(endpoint.server,) if endpoint and endpoint.server else (),
        name=section.name,
    )


def _prose(text: str) -> str:
    """Text without fenced code, for summaries."""
    lines = text.splitlines()
    return "\n".join(line for line, code in zip(lines, _code_lines(lines), strict=True) if not code).strip()


def _unique_names(operations: list[Operation]) -> list[Operation]:
    """Repeated headings with the same endpoint get a stable " (2)" suffix so keys stay unique."""
    seen: Counter[str] = Counter()
    result = []
    for op in operations:
        seen[op.key] += 1
        result.append(replace(op, name=f"{op.name} ({seen[op.key]})") if seen[op.key] > 1 else op)
    return result


# --- endpoint mentions --------------------------------------------------------------------------------


def _mentions(lines: list[str], in_code: list[bool]) -> list[tuple[int, _Mention]]:
    """Every endpoint-looking mention, with the index of the line it is on, in document order."""
    found: list[tuple[int, _Mention]] = []
    for index, line in enumerate(lines):
        line = line[:MAX_SCANNED_LINE_CHARS]
        if in_code[index]:
            found.extend((index, m) for m in _code_mentions(line))
        elif not _LINK_DEFINITION.match(line):
            found.extend((index, m) for m in _prose_mentions(line))
    return found


def _prose_mentions(line: str) -> list[_Mention]:
    """Mentions on one prose line, in the order they are written."""
    found: list[tuple[int, _Mention | None]] = []
    line = _LINK_TARGET.sub("]", line)  # link targets point at docs, not at the API
    for span in _BACKTICK.finditer(line):
        match = _ENDPOINT.match(span.group(1).strip())
        if match:
            verb = match.group(1) or _verb_before(line, span.start())
            found.append((span.start(), _mention(match.group(2), verb, declared=True)))
    # Blank out what was consumed with spaces of the same length, so positions stay comparable.
    rest = _BACKTICK.sub(_blank, line)
    for match in _VERB_ENDPOINT.finditer(rest):
        found.append((match.start(), _mention(match.group(2), match.group(1), declared=True)))
    rest = _VERB_ENDPOINT.sub(_blank, rest)
    for match in _URL.finditer(rest):
        found.append((match.start(), _mention(match.group(0), "", declared=False)))
    return [mention for _, mention in sorted(found, key=lambda pair: pair[0]) if mention]


def _verb_before(line: str, end: int) -> str:
    """The HTTP verb written just before `line[end]` (`GET `, `**POST**: `), or "".

    Only the gap of spaces, `*`, `_` and `:` before `end` and the few characters before it are searched, not the
    whole line before every backticked span (quadratic on a long line full of spans).
    """
    start = end
    while start > 0 and (line[start - 1] in _VERB_GAP or line[start - 1].isspace()):
        start -= 1
    # One character more than the longest verb, so that `\b` sees what precedes the verb.
    before = _VERB_BEFORE.search(line[max(0, start - _LONGEST_VERB - 1) : end])
    return before.group(1) if before else ""


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group(0))


def _code_mentions(line: str) -> list[_Mention]:
    """In code only explicit calls count (`GET /x HTTP/1.1`, `curl …`): JSON examples are full of URLs."""
    stripped = line.strip()
    if stripped.startswith("curl ") or stripped.startswith("$ curl "):
        url = _URL.search(stripped)
        if not url:
            return []
        verb_match = _CURL_METHOD.search(stripped)
        verb = verb_match.group(1) if verb_match else ("POST" if _CURL_DATA.search(stripped) else "GET")
        mention = _mention(url.group(0), verb, declared=True)
        return [mention] if mention else []
    found = [_mention(m.group(2), m.group(1), declared=True) for m in _VERB_ENDPOINT.finditer(line)]
    return [m for m in found if m]


def _mention(written: str, verb: str, declared: bool) -> _Mention | None:
    written = written.rstrip(_TRAILING_PUNCTUATION)
    host = ""
    server = ""
    if written.startswith(("http://", "https://")):
        try:
            parts = urlsplit(written)
        except ValueError:  # e.g. `http://[` (an unclosed IPv6 bracket): not a URL anyone can call
            return None
        host = parts.netloc.rpartition("@")[2]  # never keep a `user:password@` written in an example URL
        if not host:
            return None
        server = f"{parts.scheme}://{host}"
        path = parts.path or "/"
    else:
        path = re.split(r"[?#]", written, maxsplit=1)[0]
    if not re.search(r"[A-Za-z]", path) and not server:
        return None
    if not declared and not _API_LIKE_PATH.search(path) and not host.startswith("api."):
        return None  # a bare link to some web page, not an API call
    endpoint = Endpoint(method=verb or "GET", path=path, server=server, declared=declared)
    return _Mention(endpoint=endpoint, verb=verb)


# --- distinct endpoints -------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _shape(path: str) -> tuple[str, ...]:
    """A path's segments with placeholders, ids and a trailing `.json` blurred: `/v0/item/{}`."""
    for extension in _EXTENSIONS:
        if path.endswith(extension):
            path = path[: -len(extension)]
    return tuple("{}" if _PLACEHOLDER.match(s) else s for s in path.split("/") if s)


def _template(endpoint: Endpoint) -> tuple[str, ...]:
    """The shape example URLs must have to instantiate an endpoint; `/v0/user/` takes one more segment."""
    shape = _shape(endpoint.path)
    return (*shape, "{}") if endpoint.path.endswith("/") else shape


class _Catalog:
    """The distinct endpoints of a doc, and which of them a mention refers to."""

    def __init__(self, mentions: list[_Mention]) -> None:
        self.bases = _base_mentions(mentions)
        self._exact: dict[tuple[tuple[str, ...], bool], list[Endpoint]] = {}
        self._templates: dict[tuple[str, ...], Endpoint] = {}
        self._position: dict[int, int] = {}  # id(endpoint) -> position of its first mention

        candidates = [(i, m) for i, m in enumerate(mentions) if i not in self.bases]
        # Documented endpoints first, so that an example URL written before its endpoint is still matched.
        for position, mention in candidates:
            if mention.endpoint.declared and self.match(mention) is None:
                self._add(mention.endpoint, position)
        for position, mention in candidates:
            if not mention.endpoint.declared and self.match(mention) is None:
                self._add(mention.endpoint, position)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        found = [e for group in self._exact.values() for e in group]
        return tuple(sorted(found, key=lambda e: self._position[id(e)]))

    def match(self, mention: _Mention) -> Endpoint | None:
        """The known endpoint a mention refers to, or None.

        That is one with the same path shape (and verb, if one was written), or, for an example URL, the
        documented endpoint it fills in (`/v0/user/jl.json` for `/v0/user/`).
        """
        path = mention.endpoint.path
        for endpoint in self._exact.get((_shape(path), path.endswith("/")), []):
            if not mention.verb or endpoint.method == mention.endpoint.method:
                return endpoint
        if mention.endpoint.declared:
            return None
        shape = _shape(path)
        if len(shape) > 8:  # too many ways to generalise; such paths only match exactly
            return None
        # Try the shape with every subset of its segments replaced by a placeholder.
        hits = []
        for mask in range(2 ** len(shape)):
            generalised = tuple("{}" if mask >> i & 1 else s for i, s in enumerate(shape))
            if generalised in self._templates:
                hits.append(self._templates[generalised])
        return min(hits, key=lambda e: self._position[id(e)]) if hits else None

    def resolve(self, mention: _Mention) -> Endpoint | None:
        """What a section's mention stands for: itself when declared, else the endpoint it exemplifies."""
        endpoint = self.match(mention)
        if endpoint is None:
            return None
        return mention.endpoint if mention.endpoint.declared else endpoint

    def _add(self, endpoint: Endpoint, position: int) -> None:
        self._exact.setdefault((_shape(endpoint.path), endpoint.path.endswith("/")), []).append(endpoint)
        self._templates.setdefault(_template(endpoint), endpoint)
        self._position[id(endpoint)] = position


def _base_mentions(mentions: list[_Mention]) -> set[int]:
    """Indexes of the mentions that are base URLs (`https://host/v0/`), naming where the API lives.

    A base is a full URL whose path is only a version prefix, or a `/`-ended path that prefixes at least
    two other endpoints.
    """
    prefixes = _PrefixCounts({_shape(m.endpoint.path) for m in mentions})
    bases = set()
    for index, mention in enumerate(mentions):
        path = mention.endpoint.path
        version_only = bool(mention.endpoint.server and _VERSION_PATH.match(path))
        common_prefix = path.endswith("/") and prefixes.count(_shape(path)) >= 2
        if not mention.verb and (version_only or common_prefix):
            bases.add(index)
    return bases


class _PrefixCounts:
    """For each path shape, how many distinct shapes it is a proper prefix of.

    Prefixes are numbered as they are met (a trie keyed by (parent, segment)), so counting costs one step per
    segment; counting every `shape[:k]` tuple was quadratic in the length of a path.
    """

    def __init__(self, shapes: set[tuple[str, ...]]) -> None:
        self._nodes: dict[tuple[int, str], int] = {}  # (parent node, segment) -> node; the root is 0
        self._counts: Counter[int] = Counter()
        for shape in shapes:
            node = 0
            for segment in shape[:-1]:
                node = self._nodes.setdefault((node, segment), len(self._nodes) + 1)
                self._counts[node] += 1

    def count(self, shape: tuple[str, ...]) -> int:
        """How many of the shapes `shape` is a proper prefix of."""
        node = 0
        for segment in shape:
            found = self._nodes.get((node, segment))
            if found is None:
                return 0
            node = found
        return self._counts[node]  # the root (the empty shape) is never counted


def _servers(mentions: list[_Mention], catalog: _Catalog) -> tuple[str, ...]:
    """Base URLs by how often they are mentioned; a base path is kept only if endpoints omit it."""
    relative = sorted(e.path for e in catalog.endpoints if not e.server)
    omitted: dict[str, bool] = {}  # base path -> no relative endpoint starts with it

    def endpoints_omit(base_path: str) -> bool:
        if base_path not in omitted:
            # The paths starting with a prefix sit together in sorted order, from where the prefix would go.
            first = bisect_left(relative, base_path + "/")
            omitted[base_path] = first == len(relative) or not relative[first].startswith(base_path + "/")
        return omitted[base_path]

    counts: Counter[str] = Counter()
    for index, mention in enumerate(mentions):
        server = mention.endpoint.server
        if not server:
            continue
        if index in catalog.bases:
            base_path = mention.endpoint.path.rstrip("/")
            if base_path and endpoints_omit(base_path):
                server += base_path
        counts[server] += 1
    return tuple(server for server, _ in counts.most_common())
