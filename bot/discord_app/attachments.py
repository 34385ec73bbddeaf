"""A Discord attachment as a lazy `core.actions.Attachment`: name and size now, bytes only when asked.

Only URLs on Discord's CDN (or the configured fake API host in tests) are ever fetched, without redirects and
without credentials; the download streams and stops as soon as it passes the size limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog

from bot.discord_app import messages as discord_messages
from core import messages
from core.errors import FileTooLargeError, UserFacingError

log = structlog.get_logger(__name__)

DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class CdnPolicy:
    """Which attachment URLs may be downloaded: https on Discord's CDN, plus explicitly trusted origins."""

    extra_origins: frozenset[tuple[str, str]] = frozenset()  # (scheme, host:port) pairs, e.g. a local fake

    @classmethod
    def with_api_url(cls, api_url: str | None) -> CdnPolicy:
        """Also trust the host of a configured API override (the fake Discord in tests serves attachments)."""
        if not api_url:
            return cls()
        parts = urlsplit(api_url)
        return cls(frozenset({(parts.scheme, parts.netloc)}))

    def allows(self, url: str) -> bool:
        """Whether `url` may be fetched."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        if parts.username or parts.password:
            return False
        if parts.scheme == "https" and parts.hostname in DISCORD_CDN_HOSTS and parts.port in (None, 443):
            return True
        return (parts.scheme, parts.netloc) in self.extra_origins


@dataclass(frozen=True)
class DiscordAttachment:
    """An uploaded file on Discord's CDN; implements `core.actions.Attachment`."""

    filename: str
    size: int | None
    url: str
    session: aiohttp.ClientSession
    policy: CdnPolicy

    async def read(self, max_bytes: int) -> bytes:
        """Download the file, raising `FileTooLargeError` as soon as it exceeds `max_bytes`."""
        if self.size is not None and self.size > max_bytes:
            raise FileTooLargeError(messages.file_too_large(self.filename, self.size, max_bytes))
        if not self.policy.allows(self.url):
            log.warning("attachment_url_refused", host=urlsplit(self.url).hostname)
            raise UserFacingError(discord_messages.not_a_discord_file(self.filename))
        try:
            async with self.session.get(self.url, allow_redirects=False) as response:
                if response.status != 200:
                    log.warning("attachment_download_failed", status=response.status)
                    raise UserFacingError(discord_messages.download_failed(self.filename))
                if response.content_length is not None and response.content_length > max_bytes:
                    raise FileTooLargeError(messages.file_too_large(self.filename, response.content_length, max_bytes))
                return await _read_limited(response.content.iter_chunked(CHUNK_BYTES), self.filename, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("attachment_download_failed", error=type(exc).__name__)
            raise UserFacingError(discord_messages.download_failed(self.filename)) from None


async def _read_limited(chunks: AsyncIterator[bytes], filename: str, max_bytes: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data.extend(chunk)
        if len(data) > max_bytes:
            raise FileTooLargeError(messages.file_too_large(filename, len(data), max_bytes))
    return bytes(data)
