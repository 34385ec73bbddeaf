"""Structured logging with structlog: pretty in development, JSON in production.

Secrets are scrubbed by a processor so a stray `token=` or `api_key=` never reaches a log sink.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|api_key|apikey|authorization|signing)", re.IGNORECASE)
_SECRET_VALUES = re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|gsk_[A-Za-z0-9]+|Bearer\s+\S+)")


def _scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and key not in {"event", "tokens"}:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            event_dict[key] = _SECRET_VALUES.sub("[redacted]", value)
    return event_dict


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Set up structlog (and stdlib logging underneath) once, at start-up."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level, force=True)
    for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "discord", "slack_bolt", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # Look up sys.stderr per logger, not once: it may be swapped (tests, daemonised runs).
        logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
