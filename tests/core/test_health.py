"""Readiness: checks run at once, each bounded in time; failures and slowness are named, never raised."""

import asyncio
import time

from core.health import READY, Readiness, all_ready, not_ready


async def test_verdicts_of_sync_async_failing_and_slow_checks():
    readiness = Readiness(timeout=0.2)

    async def slow():
        await asyncio.sleep(10)
        return READY

    def broken():
        raise ConnectionError("secret-host:6379 refused")

    async def fine():
        return READY

    readiness.register("sync", lambda: READY)
    readiness.register("async", fine)
    readiness.register("slow", slow)
    readiness.register("broken", broken)
    readiness.register("down", lambda: not_ready("no answer from Redis"))
    readiness.expect("slack")
    started = time.monotonic()
    verdicts = await readiness.evaluate()
    assert time.monotonic() - started < 2  # the slow check was cut off at 0.2 s, not waited for
    assert {name: v.detail for name, v in verdicts.items()} == {
        "sync": "ok", "async": "ok", "slow": "no answer within 0.2 s",
        "broken": "check failed: ConnectionError",  # the class only: messages may name hosts or secrets
        "down": "no answer from Redis", "slack": "starting",
    }
    assert readiness.last == verdicts and not all_ready(verdicts)
    assert readiness.components == ["sync", "async", "slow", "broken", "down", "slack"]


async def test_a_registered_check_replaces_the_expectation():
    readiness = Readiness()
    readiness.expect("discord")
    assert not all_ready(await readiness.evaluate())
    readiness.register("discord", lambda: READY)
    assert all_ready(await readiness.evaluate())
    readiness.set("discord", not_ready("stopped"))
    assert (await readiness.evaluate())["discord"].detail == "stopped"
    assert not all_ready({})  # nothing registered is not "ready"


async def test_the_assistants_own_components(assistant):
    verdicts = await assistant.readiness.evaluate()
    assert {name: v.ready for name, v in verdicts.items()} == {"model": True, "store": True, "intake": True}
    assistant.work.stop_accepting()
    assert (await assistant.readiness.evaluate())["intake"].detail == "shutting down"


async def test_store_down_is_named(assistant):
    class DownStore:
        async def heartbeat(self):
            raise OSError("connection refused")

    assistant.store = DownStore()
    verdicts = await assistant.readiness.evaluate()
    assert verdicts["store"].detail == "check failed: OSError"
