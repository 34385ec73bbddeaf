"""Cancelling the way a loop shuts down: every task at once, including the ones a library started for itself."""

from __future__ import annotations

import asyncio
from typing import Any


async def ends_when_everything_is_cancelled(task: asyncio.Task[Any], steps: int, seconds: float = 5.0) -> bool:
    """Let the loop run `steps` times, cancel every other task (as `asyncio.run` does on the way out), and say
    whether `task` ended within `seconds`."""
    for _ in range(steps):
        await asyncio.sleep(0)
    for other in asyncio.all_tasks():
        if other is not asyncio.current_task():
            other.cancel()
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return task in done
