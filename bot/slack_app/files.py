"""A Slack file as a lazy `core.actions.Attachment`: name and declared size up front, bytes only on `read`.

The download goes only to Slack's own file host (https://files.slack.com, plus the origin of
`SLACK_API_URL` so a mock can serve files in tests), carries the bot token, follows redirects only
within those hosts, and stops as soon as the content passes the size limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
import structlog

from bot.slack_app import messages as slack_messages
from core.downloads import TrustedOrigins, read_within
from core.errors import UserFacingError

log = structlog.get_logger(__name__)

SLACK_FILE_ORIGINS = TrustedOrigins.of("https://files.slack.com")
DOWNLOAD_TIMEOUT_SECONDS = 60.0
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024


def allowed_file_origins(api_url: str) -> TrustedOrigins:
    """Where file downloads may go: Slack's file host, and the Web API's own origin (a mock in tests)."""
    return SLACK_FILE_ORIGINS.including(api_url)


@dataclass(frozen=True)
class SlackFileAttachment:
    """A file shared in Slack, downloaded with the bot token only when the core asks for its bytes."""

    filename: str
    size: int | None
    url: str
    token: str = field(repr=False)  # never in reprs, logs or errors
    allowed_origins: TrustedOrigins = field(default=SLACK_FILE_ORIGINS, repr=False)
    file_id: str = ""

    def is_allowed(self, url: str | None = None) -> bool:
        """Whether a URL (default: this file's) is on an allowed Slack host."""
        return self.allowed_origins.allows(url or self.url)

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
                chunks = response.content.iter_chunked(CHUNK_BYTES)
                return await read_within(chunks, self.filename, max_bytes, response.content_length)
        log.warning("slack_file_too_many_redirects", file_id=self.file_id)
        raise UserFacingError(slack_messages.download_failed(self.filename))
