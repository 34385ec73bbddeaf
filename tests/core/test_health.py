"""Readiness: checks run at once, each bounded in time; failures and slowness are named, never raised."""

import asyncio
import time

from core.health import READY, Readiness, RememberedCheck, all_ready, not_ready


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


async def test_a_remembered_check_asks_again_only_after_a_pause_and_never_once_passed():
    answers = [not_ready("token refused"), READY]
    asked = []

    async def probe():
        asked.append(True)
        return answers.pop(0)

    check = RememberedCheck(probe, retry_seconds=0.2, unanswered="not asked yet")
    readiness = Readiness(timeout=1)
    readiness.register("platform", check)
    assert (await readiness.evaluate())["platform"].detail == "token refused"
    assert (await readiness.evaluate())["platform"].detail == "token refused" and len(asked) == 1  # stands
    await asyncio.sleep(0.25)
    assert all_ready(await readiness.evaluate()) and len(asked) == 2
    assert all_ready(await readiness.evaluate()) and len(asked) == 2  # once passed, never asked again


async def test_a_remembered_check_cut_off_by_the_timeout_names_it():
    async def hangs():
        await asyncio.sleep(10)
        return READY

    readiness = Readiness(timeout=0.1)
    readiness.register("platform", RememberedCheck(hangs, retry_seconds=60, unanswered="auth.test did not answer"))
    assert (await readiness.evaluate())["platform"].detail == "no answer within 0.1 s"
    assert (await readiness.evaluate())["platform"].detail == "auth.test did not answer"  # not asked again yet


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
