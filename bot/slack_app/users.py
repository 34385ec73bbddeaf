"""Who a Slack user is, for permissions: display name and whether they are a workspace admin or owner.

Looked up with `users.info` only when a user changes specs (upload, forget), and cached briefly: an admin
who is demoted loses the right within `ttl` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.actions import Origin

log = structlog.get_logger(__name__)

IDENTITY_TTL_SECONDS = 300.0
MAX_CACHED_IDENTITIES = 5000


@dataclass(frozen=True)
class SlackIdentity:
    """What the core needs to know about a user to decide what they may change."""

    name: str
    is_admin: bool


def identity_from_payload(user: dict[str, Any]) -> SlackIdentity:
    """A `users.info` user object -> `SlackIdentity` (owners, primary owners and admins count as admins)."""
    profile = user.get("profile") or {}
    name = str(profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
               or "")
    admin = any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))
    return SlackIdentity(name[:80], admin)


class UserDirectory:
    """Cached `users.info` lookups; a failed lookup means "not an admin" (never more rights than known)."""

    def __init__(self, ttl: float = IDENTITY_TTL_SECONDS, capacity: int = MAX_CACHED_IDENTITIES) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._cache: OrderedDict[tuple[str, str], tuple[float, SlackIdentity]] = OrderedDict()

    async def identify(self, client: AsyncWebClient, origin: Origin) -> Origin:
        """`origin` with the user's display name and admin flag filled in."""
        identity = await self._lookup(client, origin.workspace, origin.user)
        return replace(origin, user_name=identity.name, is_admin=identity.is_admin)

    async def _lookup(self, client: AsyncWebClient, team: str, user: str) -> SlackIdentity:
        key = (team, user)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        if not user:
            return SlackIdentity("", False)
        try:
            response = await client.users_info(user=user)
            identity = identity_from_payload(response.get("user") or {})
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else "unknown"
            log.warning("slack_user_lookup_failed", error=str(error), workspace=team, user=user)
            return SlackIdentity("", False)
        self._cache[key] = (time.monotonic(), identity)
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return identity
