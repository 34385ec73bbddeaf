"""Waiting helpers shared by tests that watch an asynchronous effect."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def wait_for_log(logs: list[dict[str, Any]], event: str, timeout: float = 15) -> dict[str, Any]:
    """The first captured log entry named `event`, waiting up to `timeout` seconds for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in logs:
            if entry["event"] == event:
                return entry
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {event} logged; saw {[e['event'] for e in logs]}")
