"""Structured logging with structlog: pretty in development, JSON in production, optionally also to a file.

Every log line, ours and the libraries' (slack_sdk, discord, httpx, ...), goes through the stdlib handlers
on the root logger (the console stream, and `LOG_FILE` when set), whose structlog `ProcessorFormatter`
renders it. Secrets are scrubbed twice: structured values
under secret keys (`bot_token=`, `api_key=`) before rendering, and anything that looks like a credential
in the finished line (including exception messages and tracebacks) after it.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import structlog

from core.errors import ConfigError

REDACTED = "[redacted]"

# Keys whose values are secrets: the key is one of these words or ends with `_word` (`bot_token`,
# `signing_secret`), so counters such as `prompt_tokens`, `max_tokens` or `tokens` are left alone.
_SECRET_KEY_WORDS = (
    *("token", "secret", "password", "passwd", "api_key", "apikey", "authorization"),
    *("credential", "credentials", "private_key", "signature", "cookie"),
)

# Credential shapes, found anywhere in a rendered line. Each alternative is linear: fixed prefixes, or a
# lookbehind so a long run of token characters is scanned once, not once per position.
_SECRET_SHAPES = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]+"  # Slack bot / user / ... tokens
    r"|xapp-[A-Za-z0-9-]+"  # Slack app-level tokens
    r"|gsk_[A-Za-z0-9]+"  # Groq API keys
    r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{20,}"  # Discord bot tokens, JWTs
    r"|(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"  # AWS access key ids
)
# `Bearer <token>` / `Basic <credentials>`: the scheme word stays, the credential goes.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
# `token=...`, `"api_key": "..."`, `Authorization: ...`, `client_secret=...` in text (query strings, reprs,
# JSON). The word must start at a non-alphanumeric character and be followed by the separator, so
# `prompt_tokens=12` and `max_tokens: 5` do not match. The value stops at quotes, separators and brackets.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?<![A-Za-z0-9])(token|secret|password|passwd|api[_-]?key|authorization|private[_-]key|signature"
    r"|credentials?)(\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\s\"'\\&,;(){}\[\]<>]+)"
)
# `scheme://user:password@host`: the whole userinfo goes.
_URL_USERINFO = re.compile(r"(?<=://)[^\s/@\"'<>]+@")


def is_secret_key(key: str) -> bool:
    """Whether a structured log key holds a secret (`bot_token`, `api_key`), not a count (`prompt_tokens`)."""
    lowered = key.lower().replace("-", "_")
    return any(lowered == word or lowered.endswith("_" + word) for word in _SECRET_KEY_WORDS)


def scrub_text(text: str) -> str:
    """A rendered log line with every credential-looking part replaced by `[redacted]`."""
    text = _SECRET_SHAPES.sub(REDACTED, text)
    text = _AUTH_SCHEME.sub(rf"\1\2{REDACTED}", text)
    text = _SECRET_ASSIGNMENT.sub(rf"\1\2{REDACTED}", text)
    return _URL_USERINFO.sub(REDACTED + "@", text)


def _scrubbed(value: Any, depth: int = 0) -> Any:
    """A structured value with secret keys blanked and credential-looking text redacted, nested values too."""
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_SCRUB_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_key(str(k)) else _scrubbed(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v, depth + 1) for v in value]
    return value


_MAX_SCRUB_DEPTH = 4


def _scrub_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Before rendering, while values are still plain text: once JSON- or repr-escaped, a line break before a
    # secret is the two characters `\n` and would hide `\ntoken=...` from the word-boundary patterns.
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if is_secret_key(key) else _scrubbed(value)
    return event_dict


class _ScrubbingFormatter(structlog.stdlib.ProcessorFormatter):
    """Renders a record with structlog, then scrubs the finished line: tracebacks are text by then too."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


class _StdStreamHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` / `sys.stderr` is when a record arrives (tests and daemons swap them)."""

    def __init__(self, name: Literal["stdout", "stderr"]) -> None:
        self._stream_name = name
        super().__init__(self.stream)

    @property
    def stream(self) -> TextIO:
        return cast(TextIO, getattr(sys, self._stream_name))

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def adopt_library_handlers() -> None:
    """Route libraries that print through a stderr handler of their own through ours instead.

    transformers, huggingface_hub and parts of torch install one; their lines would skip rendering and
    scrubbing. Called at start-up and again after lazily imported libraries (the embedding model) load.
    """
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue
        own = [handler for handler in logger.handlers if type(handler) is logging.StreamHandler]  # not files, not ours
        for handler in own:
            logger.removeHandler(handler)
        if own:
            logger.propagate = True


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,  # request_id and whatever else an adapter bound for one action
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _formatter(json: bool) -> logging.Formatter:
    """Renders every record (structlog's and the stdlib's) as JSON or a console line, then scrubs it."""
    # Plain tracebacks only: the richer formatters print local variables, where secrets live. In JSON the
    # traceback becomes a value first, so it is scrubbed with the others; the console renders it itself,
    # and the finished line is scrubbed once more in `_ScrubbingFormatter` in both cases.
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    rendering: list[Any] = (
        [structlog.processors.format_exc_info, _scrub_event, structlog.processors.JSONRenderer()]
        if json
        else [_scrub_event, console]
    )
    return _ScrubbingFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            *rendering,
        ],
    )


@dataclass(frozen=True)
class LogFile:
    """`LOG_FILE`: JSON lines in a file rotated at `max_bytes`, keeping `backups` older copies."""

    path: Path
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    level: str | None = None  # None: the same level as the console


def _file_handler(log_file: LogFile) -> logging.Handler:
    try:
        log_file.path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_file.path, maxBytes=log_file.max_bytes, backupCount=log_file.backups, encoding="utf-8"
        )
    except OSError as exc:
        raise ConfigError(f"LOG_FILE: can't write to {log_file.path}: {exc.strerror or exc}") from None
    handler.setFormatter(_formatter(json=True))  # a file is read by tools, whatever the console shows
    return handler


def configure_logging(
    level: str = "INFO",
    json: bool = False,
    *,
    stream: Literal["stdout", "stderr"] = "stderr",
    log_file: LogFile | None = None,
) -> None:
    """Set up structlog and stdlib logging once, at start-up: every line goes through the handlers set here.

    `stream` is where the console handler writes (at `level`); `log_file` adds a rotating file of JSON
    lines, which may take a more detailed level than the console (the terminal chat keeps its screen quiet).
    Raises `ConfigError` when the log file cannot be opened.
    """
    console = _StdStreamHandler(stream)
    console.setFormatter(_formatter(json))
    console.setLevel(level)
    handlers: list[logging.Handler] = [console]
    lowest = logging.getLevelName(level)
    if log_file is not None:
        file_handler = _file_handler(log_file)
        file_handler.setLevel(log_file.level or level)
        handlers.append(file_handler)
        lowest = min(lowest, file_handler.level)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if isinstance(old, logging.FileHandler):
            old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(lowest)
    for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "discord", "slack_bolt", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, lowest))
    adopt_library_handlers()
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(lowest),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached, so `structlog.testing.capture_logs` also sees module-level loggers used before.
        cache_logger_on_first_use=False,
    )
