"""InFlightWork: what a graceful shutdown waits for, refuses, and cancels."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from core.lifecycle import InFlightWork, repeat_until_stopped


async def test_work_is_admitted_until_shutdown_then_only_essential_work() -> None:
    work = InFlightWork()
    async with work.running("answer") as admitted:
        assert admitted and work.active == 1
    assert work.active == 0
    work.stop_accepting()
    with capture_logs() as logs:
        async with work.running("answer") as admitted:
            assert not admitted and work.active == 0
    assert logs[0]["event"] == "work_refused_shutting_down" and logs[0]["kind"] == "answer"
    async with work.running("purge", essential=True) as admitted:
        assert admitted and work.active == 1


async def test_drain_waits_for_running_work() -> None:
    work = InFlightWork()
    finished = []

    async def job(seconds: float) -> None:
        async with work.running("answer"):
            await asyncio.sleep(seconds)
            finished.append(seconds)

    tasks = [asyncio.create_task(job(s)) for s in (0.1, 0.3)]
    await asyncio.sleep(0.01)
    work.stop_accepting()
    assert await work.drain(5) == 0
    assert finished == [0.1, 0.3]
    await asyncio.gather(*tasks)


async def test_drain_cancels_what_outlives_the_grace_period() -> None:
    work = InFlightWork()
    unwound = asyncio.Event()

    async def stuck() -> None:
        async with work.running("upload"):
            try:
                await asyncio.sleep(60)
            finally:
                unwound.set()

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0.01)
    started = time.monotonic()
    with capture_logs() as logs:
        assert await work.drain(0.2) == 1
    assert 0.2 <= time.monotonic() - started < 5
    assert task.cancelled() and unwound.is_set() and work.active == 0
    assert logs[-1]["event"] == "shutdown_grace_expired" and logs[-1]["kinds"] == ["upload"]


async def test_a_second_signal_stops_waiting() -> None:
    work = InFlightWork()

    async def stuck() -> None:
        async with work.running("answer"):
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_later(0.1, work.hurry)
    started = time.monotonic()
    assert await work.drain(30) == 1
    assert time.monotonic() - started < 5
    assert task.cancelled()


async def test_repeat_until_stopped_runs_on_each_tick_survives_failures_and_stops_at_once():
    stop = asyncio.Event()
    calls: list[float] = []

    async def job() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise RuntimeError("the store blinked")
        if len(calls) == 4:
            stop.set()

    started = time.monotonic()
    await asyncio.wait_for(repeat_until_stopped(stop, 0.05, job), 10)
    assert len(calls) == 4  # the failing second run did not end the loop
    assert calls[0] - started >= 0.04  # the first run waits one interval
    stop.set()
    await asyncio.wait_for(repeat_until_stopped(stop, 3600, job), 1)  # already stopped: returns at once
    assert len(calls) == 4
