"""A Discord attachment as a lazy `core.actions.Attachment`: name and size now, bytes only when asked.

Only URLs on Discord's CDN (or the configured fake API host in tests) are ever fetched, without redirects and
without credentials; the download streams and stops as soon as it passes the size limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog

from bot.discord_app import messages as discord_messages
from core import messages
from core.downloads import TrustedOrigins, read_within
from core.errors import FileTooLargeError, UserFacingError

log = structlog.get_logger(__name__)

DISCORD_CDN = TrustedOrigins.of("https://cdn.discordapp.com", "https://media.discordapp.net")
CHUNK_BYTES = 64 * 1024


def cdn_policy(api_url: str | None = None) -> TrustedOrigins:
    """Discord's CDN over https, and the host of a configured API override (the fake Discord serves files)."""
    return DISCORD_CDN.including(api_url)


@dataclass(frozen=True)
class DiscordAttachment:
    """An uploaded file on Discord's CDN; implements `core.actions.Attachment`."""

    filename: str
    size: int | None
    url: str
    session: aiohttp.ClientSession
    policy: TrustedOrigins

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
                chunks = response.content.iter_chunked(CHUNK_BYTES)
                return await read_within(chunks, self.filename, max_bytes, response.content_length)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("attachment_download_failed", error=type(exc).__name__)
            raise UserFacingError(discord_messages.download_failed(self.filename)) from None
