"""Which threads the assistant takes part in, so a follow-up there needs no mention.

Kept in the shared state store (Redis when configured), so every instance knows the threads any of them
replied in, and a restart forgets nothing. Adapters note a thread when they reply in it; `knows` also counts
a thread whose conversation memory is still alive. Entries expire `THREAD_TTL_SECONDS` after the last reply
and belong to their workspace, so purging a workspace removes them.
"""

from __future__ import annotations

import structlog

from core.actions import Origin
from core.state import NS_THREADS, StateStore, workspace_key

log = structlog.get_logger(__name__)

THREAD_TTL_SECONDS = 14 * 24 * 3600.0
"""How long after the bot's last reply in a thread a message there still counts as a follow-up."""


def thread_key(origin: Origin) -> str:
    """The key of the origin's conversation thread in shared state ("" when it has none)."""
    return workspace_key(origin.scope, f"{origin.channel}:{origin.thread}") if origin.thread else ""


class ThreadPresence:
    """The threads the bot replied in, shared by every instance through a `StateStore`."""

    def __init__(self, state: StateStore, ttl: float = THREAD_TTL_SECONDS) -> None:
        self._state = state
        self.ttl = ttl

    async def note(self, origin: Origin) -> None:
        """Remember that the bot replied in the origin's thread. Never raises: a lost note only costs a mention."""
        key = _presence_key(origin)
        if not key:
            return
        try:
            await self._state.set(NS_THREADS, key, 1, self.ttl)
        except Exception:
            log.warning("thread_note_failed", workspace=origin.scope, exc_info=True)

    async def knows(self, origin: Origin) -> bool:
        """Whether the bot replied in the origin's thread (on any instance, within the TTL)."""
        key = _presence_key(origin)
        return bool(key) and await self._state.get(NS_THREADS, key) is not None


    async def first_time(self, origin: Origin, note: str) -> bool:
        """True the first time `note` is shown in the origin's thread (on any instance), False after that.

        Without a thread (a slash command) it is once per person and channel. When the shared state cannot
        record it, False: a note is shown at most once, so a lost one stays unshown.
        """
        where = f"{origin.channel}:{origin.thread}" if origin.thread else f"{origin.channel}:user|{origin.user}"
        try:
            return await self._state.add(NS_THREADS, workspace_key(origin.scope, f"note|{note}|{where}"), 1, self.ttl)
        except Exception:
            log.warning("thread_note_record_failed", workspace=origin.scope, note=note, exc_info=True)
            return False


def _presence_key(origin: Origin) -> str:
    # Beside the thread's conversation memory (same namespace and workspace prefix), never the same key.
    return workspace_key(origin.scope, f"presence|{origin.channel}:{origin.thread}") if origin.thread else ""
