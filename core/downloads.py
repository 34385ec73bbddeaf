"""Fetching a platform's attachment safely: only from origins the adapter trusts, and never past the size limit.

Adapters keep their HTTP calls (Slack's token and redirects, Discord's credential-free CDN session); what every
platform needs the same way is here: which URLs may be fetched at all, and reading a body that stops as soon
as it passes `max_bytes` (a declared length is checked first, and never trusted on its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

from core import messages
from core.errors import FileTooLargeError

log = structlog.get_logger(__name__)

UrlOrigin = tuple[str, str, int]  # (scheme, host, port)


def url_origin(url: str) -> UrlOrigin | None:
    """(scheme, host, port) of an http(s) URL without credentials, or None (not a URL to fetch)."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.password:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        return None
    return parts.scheme, parts.hostname.lower(), port


@dataclass(frozen=True)
class TrustedOrigins:
    """The origins attachments may be downloaded from (a platform's file hosts, a local stand-in in tests)."""

    origins: frozenset[UrlOrigin] = frozenset()

    @classmethod
    def of(cls, *urls: str | None) -> TrustedOrigins:
        """The origins of `urls` (None or unusable ones are skipped)."""
        return cls(frozenset(o for o in (url_origin(u) for u in urls if u) if o is not None))

    def including(self, url: str | None) -> TrustedOrigins:
        """These origins and that of `url` (an API override, whose host serves files in tests)."""
        return TrustedOrigins(self.origins | TrustedOrigins.of(url).origins)

    def allows(self, url: str) -> bool:
        """Whether `url` may be fetched."""
        return url_origin(url) in self.origins


async def read_within(
    chunks: AsyncIterator[bytes], filename: str, max_bytes: int, declared: int | None = None
) -> bytes:
    """A download's body, raising `FileTooLargeError` once it (or the length the server declared) passes `max_bytes`."""
    if declared is not None and declared > max_bytes:
        raise FileTooLargeError(messages.file_too_large(filename, declared, max_bytes))
    data = bytearray()
    async for chunk in chunks:
        data.extend(chunk)
        if len(data) > max_bytes:
            log.info("download_over_limit_while_streaming", limit=max_bytes)
            raise FileTooLargeError(messages.file_too_large(filename, len(data), max_bytes))
    return bytes(data)
