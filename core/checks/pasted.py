"""What a user pasted to be checked: a curl command, a raw HTTP request, or a body with (or without) its operation.

Nothing here runs a shell or reads a file: curl's words are split the way a POSIX shell would quote them
(single, double and `$'…'` quotes, backslashes, line continuations), and its options are read from the list
of words. Every loop is over the pasted text (at most `MAX_CHECK_CHARS`) or its words (at most `MAX_WORDS`),
and every regex is linear.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from core import messages
from core.errors import NothingToCheckError

MAX_CHECK_CHARS = 20_000  # a request with its body; a bigger one is cut to this before reading
MAX_WORDS = 2_000  # words of a curl command
MAX_PAIRS = 1_000  # query, form or header pairs kept
MAX_FORM_DEPTH = 8  # `a[b][c]…` levels of a form field's name
MAX_BODY_DEPTH = 64  # nesting of a JSON body

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

_METHOD_WORD = "|".join(METHODS)
# `POST /pet HTTP/1.1` or `POST https://host/pet` on a line of its own (the start of a raw request).
_REQUEST_LINE = re.compile(
    rf"^[^\S\n]*({_METHOD_WORD})[^\S\n]+(\S{{1,2000}})(?:[^\S\n]+HTTP/\d(?:\.\d)?)?[^\S\n]*$", re.M
)
# `GET /pet/{petId}` anywhere in a sentence ("is this response valid for GET /pet/{petId} 200?").
_NAMED_OPERATION = re.compile(rf"\b({_METHOD_WORD})\s+((?:https?://|/)[^\s?`'\"]{{0,2000}})")
_STATUS = re.compile(r"(?<![\w/.{-])([1-5][0-9][0-9]|[1-5]XX|default)(?![\w}/])")
_RESPONSE_WORD = re.compile(r"\bresponses?\b", re.I)
_CURL = re.compile(r"(?:^|(?<=[\s`$>]))curl(?:\.exe)?(?=\s)", re.M)
# A pasted curl command, not the word: `curl -X …`, `curl https://…`, `curl api.example.com/…`.
_CURL_COMMAND = re.compile(
    r"(?:^|(?<=[\s`$>]))curl(?:\.exe)?[^\S\n]+(?:-|['\"]?https?://|['\"]?[\w-]{1,100}\.[\w.-]{1,200}/)", re.M
)
_CHECK_INTENT = re.compile(
    r"\b(?:check|validate|valid|invalid|fail|fails|failing|failed|wrong|error|errors|reject|rejects|rejected|broken"
    r"|work|working|[45][0-9][0-9])\b",
    re.I,
)
_OPERATION_ID = re.compile(r"\boperation(?:[ _-]?id)?\s*[:=]?\s*`?([A-Za-z_][\w.\-/]{0,200})`?", re.I)
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.\-/]{0,200}")
_HEADER_LINE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}):[^\S\n]*(.*)$")
_FENCE = re.compile(r"^[^\S\n]*```[\w-]*[^\S\n]*$", re.M)
_PROMPT = re.compile(r"^[^\S\n]*\$[^\S\n]+(?=curl)", re.M)


@dataclass(frozen=True)
class PastedRequest:
    """A request (or response) as pasted, read into its parts; values are exactly as sent, secrets included.

    Only `core.checks.secrets.masked` views of it are ever shown or logged.
    """

    source: str  # "curl" | "http" | "body"
    method: str = ""
    url: str = ""  # the URL or request target as written
    host: str = ""
    path: str = ""  # percent-decoded, without the query
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    user: str | None = None  # curl -u USER[:PASSWORD]: basic auth
    password: str | None = None
    body: str | None = None  # the body text; for form bodies the encoded `a=1&b=2` text
    form: tuple[tuple[str, str], ...] = ()  # the pairs of a form or multipart body
    files: tuple[str, ...] = ()  # multipart fields sent from a file (`-F photo=@cat.png`)
    content_type: str = ""  # what is sent: the Content-Type header, else what curl implies
    content_type_implied: bool = False  # curl chose it (`-d` means a form), the user never wrote it
    operation: str = ""  # the operation named with a bare body: "POST /pet" or an operationId
    response_status: str = ""  # set when a response is to be checked ("200", "4XX", "default")
    notes: tuple[str, ...] = ()  # what could not be read (a body from a file, an unknown option)

    def header(self, name: str) -> str | None:
        """The value of a header (any case), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def is_response(self) -> bool:
        """A response body to check against a documented response."""
        return bool(self.response_status)

    @property
    def media_type(self) -> str:
        """The content type without parameters, lower-case ("" when none)."""
        return self.content_type.split(";")[0].strip().lower()


def read_pasted(text: str) -> PastedRequest:
    """Read what was pasted into a `PastedRequest`; a `NothingToCheckError` when there is no request in it."""
    text = _FENCE.sub("", text[:MAX_CHECK_CHARS].replace("\r\n", "\n"))
    text = _PROMPT.sub("", text)
    curl = _CURL.search(text)
    if curl is not None:
        return _with_response(read_curl(text[curl.start() :]), text[: curl.start()])
    body_start = _body_start(text)
    head = text if body_start is None else text[:body_start]
    line = _REQUEST_LINE.search(head)
    if line is not None and not _RESPONSE_WORD.search(text[: line.start()]):
        return read_http(text[line.start() :])
    body = text[body_start:].strip() if body_start is not None else ""
    if not body:
        raise NothingToCheckError(messages.nothing_to_check())
    request = PastedRequest("body", body=body, content_type=JSON if _is_json(body) else "")
    named = _NAMED_OPERATION.search(head)
    if named is not None:
        request = replace(request, operation=f"{named.group(1)} {named.group(2).rstrip('.,;:!?')}")
        return _with_response(_with_target(request, named.group(1), named.group(2)), head)
    operation_id = _OPERATION_ID.search(head)
    stripped = head.strip().strip(":").strip()
    if operation_id is not None:
        request = replace(request, operation=operation_id.group(1))
    elif _IDENTIFIER.fullmatch(stripped):
        request = replace(request, operation=stripped)
    return _with_response(request, head)


def is_check_request(text: str) -> bool:
    """Whether a question carries a request to check.

    That is a pasted curl command, or words like "failing" or "valid" before a raw HTTP request or a JSON body
    whose operation is named ("is this response valid for GET /pet/1 200?").
    """
    text = text[:MAX_CHECK_CHARS]
    if _CURL_COMMAND.search(text):
        return True
    body_start = _body_start(text)
    head = text if body_start is None else text[:body_start]
    intent = _CHECK_INTENT.search(head)
    if intent is None:
        return False
    line = _REQUEST_LINE.search(text)
    if line is not None and line.start() > intent.start():
        following = text[line.end() :].lstrip("\n")
        if _HEADER_LINE.match(following.split("\n", 1)[0]) or following.lstrip().startswith(("{", "[")):
            return True
    return body_start is not None and _NAMED_OPERATION.search(head) is not None and _is_json(text[body_start:].strip())


def _with_response(request: PastedRequest, prose: str) -> PastedRequest:
    """A response check when the prose around it says "response" and names a status ("… GET /pet/{id} 200?")."""
    if not _RESPONSE_WORD.search(prose):
        return request
    after = prose
    named = _NAMED_OPERATION.search(prose)
    if named is not None:
        after = prose[named.end() :]
    status = _STATUS.search(after)
    return replace(request, response_status=status.group(1).upper() if status else "2XX")


def _body_start(text: str) -> int | None:
    """Where a JSON body starts: the first `{` or `[` that opens a line or follows a colon or a question."""
    for match in re.finditer(r"[{\[]", text):
        start = match.start()
        before = text[:start].rstrip(" \t")
        if not before or before.endswith(("\n", ":", "?", "`")):
            return start
        if text[start] == "{" and re.match(r"\{[^\s{}/]{0,100}\}", text[start:]):
            continue  # a path placeholder such as `{petId}`, not a body
    return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _with_target(request: PastedRequest, method: str, target: str) -> PastedRequest:
    """The method and the URL (or path) parts of a request."""
    target = target.strip("`'\"").rstrip(".,;:!?")
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]  # a link as chat apps wrap it
    if "://" not in target and not target.startswith("/"):
        target = "http://" + target  # curl takes `api.example.com/pet` as http
    try:
        parts = urlsplit(target)
    except ValueError:
        parts = urlsplit(quote(target, safe="/:?&=#%@+,;"))
    query = tuple(parse_qsl(parts.query, keep_blank_values=True)[:MAX_PAIRS])
    user, password = request.user, request.password
    if parts.username is not None and user is None:
        user, password = unquote(parts.username), unquote(parts.password) if parts.password is not None else None
    return replace(
        request,
        method=method.upper(),
        url=target,
        host=(parts.hostname or "").lower(),
        path=unquote(parts.path) or "/",
        query=request.query + query,
        user=user,
        password=password,
    )


# ---- raw HTTP ------------------------------------------------------------------------------------------------


def read_http(text: str) -> PastedRequest:
    """`POST /pet HTTP/1.1`, header lines, a blank line, the body (the blank line may be missing before a body)."""
    lines = text.strip("\n").split("\n")
    match = _REQUEST_LINE.match(lines[0])
    if match is None:
        raise NothingToCheckError(messages.nothing_to_check())
    headers: list[tuple[str, str]] = []
    index = 1
    while index < len(lines) and len(headers) < MAX_PAIRS:
        line = lines[index]
        header = _HEADER_LINE.match(line)
        if not line.strip():
            index += 1
            break
        if header is None:
            break  # the body, without the blank line before it
        headers.append((header.group(1), header.group(2).strip()))
        index += 1
    body = "\n".join(lines[index:]).strip() or None
    # A request line and a body, no headers: a body with its operation named, not a whole request to check
    request = PastedRequest("http" if headers else "body", headers=tuple(headers))
    host = request.header("host")
    target = match.group(2)
    if host and target.startswith("/"):
        target = f"https://{host}{target}"
    request = _with_target(request, match.group(1), target)
    if not headers:
        request = replace(request, operation=f"{match.group(1)} {match.group(2)}")
    request = replace(request, cookies=_cookie_pairs(request.header("cookie") or ""))
    content_type = request.header("content-type") or ""
    if body is not None and not content_type:
        content_type = JSON if _is_json(body) else (FORM if _looks_like_form(body) else "")
        request = replace(request, content_type_implied=True)
    request = replace(request, body=body, content_type=content_type)
    if body is not None and request.media_type == FORM:
        request = replace(request, form=_form_pairs(body))
    return request


def _looks_like_form(body: str) -> bool:
    return "=" in body and "\n" not in body.strip() and not body.lstrip().startswith(("{", "["))


def _form_pairs(body: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(body, keep_blank_values=True)[:MAX_PAIRS])


def _cookie_pairs(header: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for part in header.split(";")[:MAX_PAIRS]:
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


# ---- curl ----------------------------------------------------------------------------------------------------

# Options taking a value that matter here, by every name curl accepts for them.
_OPTION_NAMES = {
    "-X": "request", "--request": "request",
    "-H": "header", "--header": "header",
    "-d": "data", "--data": "data", "--data-ascii": "data", "--data-binary": "data",
    "--data-raw": "data-raw", "--data-urlencode": "data-urlencode", "--json": "json",
    "-F": "form", "--form": "form", "--form-string": "form-string",
    "-u": "user", "--user": "user",
    "-b": "cookie", "--cookie": "cookie",
    "-A": "agent", "--user-agent": "agent",
    "-e": "referer", "--referer": "referer",
    "--url": "url", "--oauth2-bearer": "bearer",
}  # fmt: skip
# Options taking a value that does not matter here (skipped with it, so it is not taken for the URL).
_VALUED = frozenset(
    """-o --output -w --write-out --connect-timeout -m --max-time --retry --retry-delay --retry-max-time -x --proxy
    -U --proxy-user --cacert --capath --cert -E --key --key-type --cert-type -T --upload-file -c --cookie-jar -K
    --config --resolve --connect-to --limit-rate -r --range -C --continue-at --interface --max-redirs -D
    --dump-header --trace --trace-ascii --stderr -Y --speed-limit -y --speed-time -z --time-cond --unix-socket
    --aws-sigv4 --expect100-timeout --local-port --tls-max --ciphers --pinnedpubkey --noproxy --dns-servers
    --happy-eyeballs-timeout-ms --keepalive-time --variable --proto --proto-redir --max-filesize -Q --quote""".split()
)
_SHORT_WITH_VALUE = frozenset("XHdFubAeoCmwxUETcKrDYyzQ")


def read_curl(text: str) -> PastedRequest:
    """A curl command's request: method, URL, headers, body, basic auth, cookies (nothing is executed)."""
    words = shell_words(text)
    if not words or not words[0].lower().endswith(("curl", "curl.exe")):
        raise NothingToCheckError(messages.nothing_to_check())
    method = ""
    url = ""
    headers: list[tuple[str, str]] = []
    data: list[str] = []
    form: list[tuple[str, str]] = []
    files: list[str] = []
    cookies: list[tuple[str, str]] = []
    notes: list[str] = []
    user: str | None = None
    password: str | None = None
    as_json = get = head = False
    index = 1
    while index < len(words):
        word = words[index]
        index += 1
        option, value = _split_option(word)
        if option is None:
            if word.startswith("-") and word != "-":
                if word in _VALUED:
                    index += 1
                elif word in ("-G", "--get"):
                    get = True
                elif word in ("-I", "--head"):
                    head = True
                continue
            if not url:
                url = word
            continue
        if value is None:
            if index >= len(words):
                break
            value = words[index]
            index += 1
        kind = _OPTION_NAMES[option]
        if kind == "request":
            method = value.upper()
        elif kind == "header":
            if value.startswith("@"):
                notes.append(messages.check_from_file("headers"))
            elif ":" in value:
                name, _, header_value = value.partition(":")
                headers.append((name.strip(), header_value.strip()))
            elif value.endswith(";"):
                headers.append((value[:-1].strip(), ""))
        elif kind in ("data", "data-raw", "json"):
            if value.startswith("@") and kind != "data-raw":
                notes.append(messages.check_from_file("body"))
            else:
                data.append(value)
            as_json = as_json or kind == "json"
        elif kind == "data-urlencode":
            data.append(_urlencoded(value))
        elif kind in ("form", "form-string"):
            name, _, field_value = value.partition("=")
            if kind == "form" and field_value.startswith(("@", "<")):
                files.append(name)
                form.append((name, ""))
            else:
                form.append((name, field_value.split(";type=")[0] if kind == "form" else field_value))
        elif kind == "user":
            user, sep, secret = value.partition(":")
            password = secret if sep else None
        elif kind == "cookie":
            if "=" in value:
                cookies.extend(_cookie_pairs(value))
            else:
                notes.append(messages.check_from_file("cookies"))
        elif kind == "agent":
            headers.append(("User-Agent", value))
        elif kind == "referer":
            headers.append(("Referer", value))
        elif kind == "url":
            url = value
        elif kind == "bearer":
            headers.append(("Authorization", f"Bearer {value}"))
    if not url:
        raise NothingToCheckError(messages.nothing_to_check_curl())
    request = PastedRequest("curl", headers=tuple(headers[:MAX_PAIRS]), notes=tuple(dict.fromkeys(notes)))
    request = replace(request, user=user, password=password)
    body = "&".join(data) if not as_json else "".join(data)
    header_type = request.header("content-type")
    if get and data:
        url += ("&" if "?" in url else "?") + body
        body = ""
    if not method:
        method = "HEAD" if head else "POST" if (body or form) else "GET"
    request = _with_target(request, method, url)
    cookies += request.cookies
    cookie_header = request.header("cookie")
    if cookie_header:
        cookies.extend(_cookie_pairs(cookie_header))
    content_type = header_type or ""
    implied = False
    if form:
        content_type, implied = content_type or MULTIPART, not header_type
        return replace(request, cookies=tuple(cookies), form=tuple(form[:MAX_PAIRS]), files=tuple(files),
                       content_type=content_type, content_type_implied=implied)  # fmt: skip
    if body:
        if as_json:
            content_type = content_type or JSON
        elif not content_type:
            content_type, implied = FORM, True  # what curl sends with -d, whatever the body looks like
        request = replace(request, body=body)
        # `-d '{"a": 1}'` goes out as a form (curl's default): read it as the JSON it is, the content type is wrong
        if content_type.split(";")[0].strip().lower() == FORM and not (implied and _is_json(body)):
            request = replace(request, form=_form_pairs(body))
    return replace(request, cookies=tuple(cookies), content_type=content_type, content_type_implied=implied)


def _split_option(word: str) -> tuple[str | None, str | None]:
    """(`-X`, `POST`) for `-XPOST`, (`--data`, `a=1`) for `--data=a=1`, (`-H`, None) for `-H`; (None, None) else."""
    if word in _OPTION_NAMES:
        return word, None
    if word.startswith("--") and "=" in word:
        name, _, value = word.partition("=")
        if name in _OPTION_NAMES:
            return name, value
    if len(word) > 2 and word[0] == "-" and word[1] != "-":
        # `-sSX POST`, `-XPOST`: flags first, then at most one option taking a value
        for position in range(1, len(word)):
            letter = word[position]
            if letter in _SHORT_WITH_VALUE:
                option = "-" + letter
                rest = word[position + 1 :]
                if option in _OPTION_NAMES:
                    return option, rest or None
                return None, None
    return None, None


def _urlencoded(value: str) -> str:
    """Curl's --data-urlencode: `name=content`, `=content` or `content`, the content percent-encoded."""
    name, sep, content = value.partition("=")
    if not sep:
        return quote(value, safe="")
    return f"{name}={quote(content, safe='')}" if name else quote(content, safe="")


def shell_words(text: str) -> list[str]:
    """Split a command line into words as a POSIX shell would, without expanding or running anything.

    Quotes (`'…'`, `"…"`, `$'…'`) and backslashes are honoured; a backslash at a line's end (or alone before a
    space, as when a chat app joined the lines) continues the command. The command ends at an unquoted newline
    without a continuation, `|`, `;`, `&&` or `>`. Linear in the text; at most `MAX_WORDS` words.
    """
    words: list[str] = []
    word: list[str] = []
    in_word = False
    index = 0
    length = len(text)

    def end_word() -> None:
        nonlocal in_word
        if in_word:
            words.append("".join(word))
            word.clear()
            in_word = False

    while index < length and len(words) < MAX_WORDS:
        char = text[index]
        if char == "\\":
            following = text[index + 1] if index + 1 < length else ""
            if following == "\n" or (following in " \t" and not in_word):
                index += 2  # a line continuation, possibly flattened into one line
                continue
            if following:
                word.append(following)
                in_word = True
            index += 2
            continue
        if char == "'":
            end = text.find("'", index + 1)
            end = length if end < 0 else end
            word.append(text[index + 1 : end])
            in_word = True
            index = end + 1
            continue
        if char == "$" and text.startswith("$'", index):
            index = _ansi_quoted(text, index + 2, word)
            in_word = True
            continue
        if char == '"':
            index = _double_quoted(text, index + 1, word)
            in_word = True
            continue
        if char in " \t":
            end_word()
            index += 1
            continue
        if char in "\n|;>" or (char == "&" and text.startswith("&&", index)):
            end_word()
            if char == "\n" and not words:
                index += 1
                continue
            break
        word.append(char)
        in_word = True
        index += 1
    end_word()
    return words


def _double_quoted(text: str, index: int, word: list[str]) -> int:
    """Read a double-quoted string from `index` (just past the quote); the index after the closing quote."""
    length = len(text)
    while index < length:
        char = text[index]
        if char == '"':
            return index + 1
        if char == "\\" and index + 1 < length and text[index + 1] in '"\\$`\n':
            if text[index + 1] != "\n":
                word.append(text[index + 1])
            index += 2
            continue
        word.append(char)
        index += 1
    return index


_ANSI_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0", "e": "\x1b"}


def _ansi_quoted(text: str, index: int, word: list[str]) -> int:
    """Read a `$'…'` string from `index` (past `$'`); the index after the closing quote."""
    length = len(text)
    while index < length:
        char = text[index]
        if char == "'":
            return index + 1
        if char == "\\" and index + 1 < length:
            word.append(_ANSI_ESCAPES.get(text[index + 1], text[index + 1]))
            index += 2
            continue
        word.append(char)
        index += 1
    return index


# ---- bodies --------------------------------------------------------------------------------------------------


def form_values(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Nest a form's pairs with the bracket notation Stripe (and Rails, PHP) use; values stay strings.

    `metadata[key]=v` is an object, `expand[]=a` and `items[0][price]=p` are lists. Names deeper than
    `MAX_FORM_DEPTH` keep their remaining brackets in the last key; a pair that contradicts an earlier one's
    shape (`a=1` then `a[b]=2`) replaces it.
    """
    root: dict[str, Any] = {}
    for name, value in pairs[:MAX_PAIRS]:
        keys = _bracket_keys(name)
        node: Any = root
        for position, key in enumerate(keys):
            if position == len(keys) - 1:
                _put(node, key, value)
                break
            following = keys[position + 1]
            node = _put(node, key, [] if following == "" or following.isdigit() else {}, keep=True)
            if node is None:
                break
    return root


def _put(node: dict[str, Any] | list[Any], key: str, value: Any, *, keep: bool = False) -> Any:
    """Set `node[key]` (a list takes "" as append and digits as indexes) and return what is now there.

    With `keep`, an existing container of the same kind stays; None when the key cannot index `node`.
    """
    if isinstance(node, dict):
        existing = node.get(key)
        if keep and isinstance(existing, type(value)):
            return existing
        node[key] = value
        return value
    if key == "":
        node.append(value)
        return value
    if not key.isdigit() or int(key) >= MAX_PAIRS:
        return None
    number = int(key)
    node.extend([None] * (number + 1 - len(node)))
    if keep and isinstance(node[number], type(value)):
        return node[number]
    node[number] = value
    return value


def _bracket_keys(name: str) -> list[str]:
    """`items[0][price]` -> ["items", "0", "price"]; `expand[]` -> ["expand", ""]."""
    head, bracket, rest = name.partition("[")
    keys = [head]
    while bracket and len(keys) < MAX_FORM_DEPTH:
        inner, closed, rest = rest.partition("]")
        if not closed:
            keys[-1] += "[" + inner
            break
        keys.append(inner)
        _, bracket, rest = rest.partition("[")
    else:
        if bracket:
            keys[-1] += "[" + rest
    return keys
