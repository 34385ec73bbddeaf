"""A Slack file as a lazy `core.actions.Attachment`: name and declared size up front, bytes only on `read`.

The download goes only to Slack's own file host (https://files.slack.com, plus the origin of
`SLACK_API_URL` so a mock can serve files in tests), carries the bot token, follows redirects only
within those hosts, and stops as soon as the content passes the size limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
import structlog

from bot.slack_app import messages as slack_messages
from core import messages
from core.errors import FileTooLargeError, UserFacingError

log = structlog.get_logger(__name__)

SLACK_FILE_ORIGINS = frozenset({("https", "files.slack.com", 443)})
DOWNLOAD_TIMEOUT_SECONDS = 60.0
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024

Origin = tuple[str, str, int]


def url_origin(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # an unclosed IPv6 bracket, a port out of range: not a URL to fetch
        return None
    return parts.scheme, parts.hostname.lower(), port


def allowed_file_origins(api_url: str, extra: Iterable[Origin] = ()) -> frozenset[Origin]:
    """Where file downloads may go: Slack's file host, and the Web API's own origin (a mock in tests)."""
    origins = set(SLACK_FILE_ORIGINS) | set(extra)
    api_origin = url_origin(api_url)
    if api_origin:
        origins.add(api_origin)
    return frozenset(origins)


@dataclass(frozen=True)
class SlackFileAttachment:
    """A file shared in Slack, downloaded with the bot token only when the core asks for its bytes."""

    filename: str
    size: int | None
    url: str
    token: str = field(repr=False)  # never in reprs, logs or errors
    allowed_origins: frozenset[Origin] = field(default=SLACK_FILE_ORIGINS, repr=False)
    file_id: str = ""

    def is_allowed(self, url: str | None = None) -> bool:
        """Whether a URL (default: this file's) is on an allowed Slack host."""
        return url_origin(url or self.url) in self.allowed_origins

    async def read(self, max_bytes: int) -> bytes:
        """Download the file, raising `FileTooLargeError` as soon as it exceeds `max_bytes`."""
        if not self.is_allowed():
            raise UserFacingError(slack_messages.download_not_allowed(self.filename))
        bound = log.bind(file_id=self.file_id, size=self.size)
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_SECONDS)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                return await self._download(session, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            bound.warning("slack_file_download_failed", error=type(exc).__name__)
            raise UserFacingError(slack_messages.download_failed(self.filename)) from None

    async def _download(self, session: aiohttp.ClientSession, max_bytes: int) -> bytes:
        url = self.url
        headers = {"Authorization": f"Bearer {self.token}"}
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                if response.status in {301, 302, 303, 307, 308}:
                    target = urljoin(url, response.headers.get("Location", ""))
                    if not self.is_allowed(target):
                        log.warning("slack_file_redirect_refused", file_id=self.file_id)
                        raise UserFacingError(slack_messages.download_not_allowed(self.filename))
                    url = target
                    continue
                if response.status != 200:
                    log.warning("slack_file_download_status", file_id=self.file_id, status=response.status)
                    raise UserFacingError(slack_messages.download_failed(self.filename))
                if response.content_type == "text/html" and not self.filename.lower().endswith((".html", ".htm")):
                    log.warning("slack_file_sign_in_page", file_id=self.file_id)
                    raise UserFacingError(slack_messages.download_sign_in_page(self.filename))
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise FileTooLargeError(messages.file_too_large(self.filename, declared, max_bytes))
                data = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        log.info("slack_file_over_limit_while_streaming", file_id=self.file_id, limit=max_bytes)
                        raise FileTooLargeError(messages.file_too_large(self.filename, len(data), max_bytes))
                return bytes(data)
        log.warning("slack_file_too_many_redirects", file_id=self.file_id)
        raise UserFacingError(slack_messages.download_failed(self.filename))
