"""RateLimiter (memory and real Redis, including an outage) and ConcurrencyGuard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from core import messages
from core.config import Settings
from core.errors import BusyError, RateLimitedError
from core.ratelimit import ConcurrencyGuard, RateLimiter
from core.state import SharedState, redis_client_from_url
from tests.redis_server import RedisServer

# --- fixtures (candidates for tests/conftest.py: redis_server, redis_url, own_redis, redis_client) ---


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A client as the composition root would build it (short timeouts, no retries)."""
    client = redis_client_from_url(redis_url)
    yield client
    await client.aclose()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type,call-arg]


# --- RateLimiter, memory (injected clock) ---


async def test_memory_burst_then_refused_then_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(600, burst=2, clock=clock)  # 10 tokens/s
    assert limiter.backend == "memory"
    assert await limiter.check("T1:U1") == 0.0
    assert await limiter.check("T1:U1") == 0.0
    wait = await limiter.check("T1:U1")
    assert wait == pytest.approx(0.1)
    assert await limiter.check("T1:U1") == pytest.approx(0.1)  # a refusal doesn't take a token
    clock.advance(0.05)
    assert await limiter.check("T1:U1") == pytest.approx(0.05)
    clock.advance(0.05)
    assert await limiter.check("T1:U1") == 0.0  # exactly the advertised wait is enough
    assert await limiter.check("T1:U1") > 0
    assert limiter.stats() == {"allowed": 3.0, "limited": 4.0, "degraded": 0.0}


async def test_memory_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=3, clock=clock)  # 1 token/s
    await limiter.check("k")
    clock.advance(3600)
    assert [await limiter.check("k") for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert await limiter.check("k") == pytest.approx(1.0, abs=1e-6)


async def test_memory_users_are_isolated() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=1, clock=clock)
    assert await limiter.check("T1:U1") == 0.0
    assert await limiter.check("T1:U1") > 0
    assert await limiter.check("T1:U2") == 0.0  # another user
    assert await limiter.check("T2:U1") == 0.0  # same user id, another workspace


async def test_memory_buckets_are_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=1, clock=clock, max_local_keys=2)
    for user in ("a", "b", "c"):
        await limiter.check(user)
    assert await limiter.check("c") > 0
    assert await limiter.check("a") == 0.0  # forgotten (LRU), so it errs towards allowing


async def test_enforce_raises_rate_limited_error() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=1, clock=clock)
    await limiter.enforce("k")
    with pytest.raises(RateLimitedError) as caught:
        await limiter.enforce("k")
    assert caught.value.retry_after == pytest.approx(1.0)
    assert caught.value.user_message == messages.rate_limited(1.0)


def test_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(60, burst=0)


async def test_from_settings_memory() -> None:
    limiter = RateLimiter.from_settings(_settings(rate_limit_requests_per_minute=120, rate_limit_burst=4))
    assert limiter.backend == "memory"
    assert limiter.rate == 2.0 and limiter.capacity == 4.0
    assert [await limiter.check("k") for _ in range(5)].count(0.0) == 4
    await limiter.aclose()


# --- RateLimiter on Redis (server clock: small rates, no timing assertions on speed) ---


async def test_redis_burst_then_refused_then_refills(redis_client: Redis) -> None:
    limiter = RateLimiter(600, burst=2, redis=redis_client)  # 10 tokens/s
    assert limiter.backend == "redis"
    assert await limiter.check("T1:U1") == 0.0
    assert await limiter.check("T1:U1") == 0.0
    wait = await limiter.check("T1:U1")
    assert 0 < wait <= 0.101
    await asyncio.sleep(wait + 0.01)
    assert await limiter.check("T1:U1") == 0.0
    assert await limiter.check("T1:U2") == 0.0  # per-user buckets
    assert await limiter.check("T1:U2") == 0.0
    assert await limiter.check("T1:U2") > 0


async def test_redis_bucket_is_shared_between_instances(redis_url: str, redis_client: Redis) -> None:
    one = RateLimiter(60, burst=2, redis=redis_client)
    other_client = redis_client_from_url(redis_url)
    two = RateLimiter(60, burst=2, redis=other_client, owns_redis=True)
    results = await asyncio.gather(one.check("T1:U1"), two.check("T1:U1"), one.check("T1:U1"), two.check("T1:U1"))
    assert sorted(r == 0.0 for r in results) == [False, False, True, True]  # 2 tokens in total, not 2 each
    assert all(0 < r <= 1.0 for r in results if r)
    await two.aclose()
    await one.aclose()
    assert await redis_client.ping()  # type: ignore[misc]  # not owned by `one`: still open


async def test_redis_bucket_expires_when_idle(redis_client: Redis) -> None:
    limiter = RateLimiter(6000, burst=1, redis=redis_client)  # refills in 10 ms
    await limiter.check("k")
    ttl = await redis_client.pttl("apiassist:ratelimit:k")
    assert 0 < ttl <= 1010  # full again after 10 ms; kept 1 s more


async def test_from_settings_redis_shares_or_owns_client(redis_url: str) -> None:
    settings = _settings(redis_url=redis_url, rate_limit_requests_per_minute=60, rate_limit_burst=1)
    state = SharedState.from_settings(settings)
    shared = RateLimiter.from_settings(settings, state.redis_client)
    own = RateLimiter.from_settings(settings)
    assert shared.backend == own.backend == "redis"
    assert await shared.check("T:U") == 0.0
    assert await own.check("T:U") > 0  # same bucket in Redis
    await own.aclose()
    await shared.aclose()
    assert await state.ping()  # the shared client belongs to SharedState
    await state.aclose()


async def test_redis_outage_degrades_to_local_buckets_and_recovers(own_redis: RedisServer) -> None:
    client = redis_client_from_url(own_redis.url)
    limiter = RateLimiter(60, burst=2, redis=client, owns_redis=True, retry_interval=0.1)
    assert await limiter.check("T1:U1") == 0.0

    with capture_logs() as logs:
        own_redis.stop()
        assert await limiter.check("T1:U1") == 0.0  # local bucket: still answering
        assert await limiter.check("T1:U1") == 0.0
        assert await limiter.check("T1:U1") > 0  # and still limiting
        assert limiter.degraded
    assert [e["event"] for e in logs] == ["rate_limiter_degraded"]
    assert logs[0]["log_level"] == "warning"

    own_redis.start()  # same port, empty, no cached Lua script (EVALSHA must reload it)
    await asyncio.sleep(0.15)
    with capture_logs() as logs:
        assert await limiter.check("T1:U1") == 0.0  # a fresh bucket in Redis
    assert [e["event"] for e in logs] == ["rate_limiter_recovered"]
    assert not limiter.degraded
    assert await client.exists("apiassist:ratelimit:T1:U1") == 1
    await limiter.aclose()


# --- ConcurrencyGuard ---


async def _hold(guard: ConcurrencyGuard, release: asyncio.Event, log: list[str], name: str, **kwargs: object) -> None:
    async with guard.slot(**kwargs):  # type: ignore[arg-type]
        log.append(f"start {name}")
        await release.wait()
        log.append(f"end {name}")


async def _until(condition: Callable[[], bool], rounds: int = 100) -> None:
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_guard_runs_immediately_when_slots_free() -> None:
    guard = ConcurrencyGuard(max_concurrent=2, max_queue=0)
    release, log = asyncio.Event(), list[str]()
    tasks = [asyncio.create_task(_hold(guard, release, log, n)) for n in "ab"]
    await _until(lambda: guard.active == 2)
    assert log == ["start a", "start b"] and guard.queued == 0
    release.set()
    await asyncio.gather(*tasks)
    assert guard.active == 0
    stats = guard.stats()
    assert {k: stats[k] for k in ("active", "queued", "admitted", "queued_total", "rejected", "timed_out")} == {
        "active": 0.0, "queued": 0.0, "admitted": 2.0, "queued_total": 0.0, "rejected": 0.0, "timed_out": 0.0}


async def test_guard_queues_calls_on_queued_once_then_runs() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=2)
    release, log = asyncio.Event(), list[str]()
    notices: list[str] = []

    async def async_notice() -> None:
        notices.append("async")

    first = asyncio.create_task(_hold(guard, release, log, "first", on_queued=lambda: notices.append("never")))
    await _until(lambda: guard.active == 1)
    second = asyncio.create_task(_hold(guard, release, log, "second", on_queued=async_notice))
    third = asyncio.create_task(_hold(guard, release, log, "third", on_queued=lambda: notices.append("sync")))
    await _until(lambda: guard.queued == 2)
    assert notices == ["async", "sync"]  # once each, only for those that had to wait
    assert log == ["start first"]
    release.set()
    await asyncio.gather(first, second, third)
    assert log == ["start first", "end first", "start second", "end second", "start third", "end third"]
    assert guard.stats()["queued_total"] == 2.0 and guard.active == 0


async def test_guard_rejects_when_queue_full() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=1)
    release, log = asyncio.Event(), list[str]()
    running = asyncio.create_task(_hold(guard, release, log, "running"))
    await _until(lambda: guard.active == 1)
    waiting = asyncio.create_task(_hold(guard, release, log, "waiting"))
    await _until(lambda: guard.queued == 1)
    with capture_logs(), pytest.raises(BusyError) as caught:
        async with guard.slot():
            pytest.fail("must not run")
    assert caught.value.user_message == messages.busy()
    assert guard.rejected == 1
    release.set()
    await asyncio.gather(running, waiting)
    assert log[-1] == "end waiting"  # the queued one was not dropped


async def test_guard_with_no_queue_rejects_at_once() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=0)
    async with guard.slot():
        with capture_logs(), pytest.raises(BusyError):
            async with guard.slot():
                pass
    async with guard.slot():  # free again
        assert guard.active == 1


async def test_guard_is_fifo() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=10)
    order: list[int] = []
    gate = asyncio.Event()

    async def job(i: int) -> None:
        async with guard.slot():
            order.append(i)
            if i == 0:
                await gate.wait()

    tasks = [asyncio.create_task(job(0))]
    await _until(lambda: guard.active == 1)
    for i in range(1, 8):
        tasks.append(asyncio.create_task(job(i)))
        await _until(lambda: guard.queued == len(tasks) - 1)
    gate.set()
    # A newcomer arriving while others wait must queue behind them, not overtake.
    tasks.append(asyncio.create_task(job(8)))
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == list(range(9))


async def test_guard_cancelled_waiter_leaves_queue_and_slot_intact() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=2)
    release, log = asyncio.Event(), list[str]()
    running = asyncio.create_task(_hold(guard, release, log, "running"))
    await _until(lambda: guard.active == 1)
    cancelled = asyncio.create_task(_hold(guard, release, log, "cancelled"))
    later = asyncio.create_task(_hold(guard, release, log, "later"))
    await _until(lambda: guard.queued == 2)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert guard.queued == 1
    release.set()
    await asyncio.wait_for(asyncio.gather(running, later), 5)
    assert log == ["start running", "end running", "start later", "end later"]
    assert guard.active == 0 and guard.queued == 0


async def test_guard_slot_handed_over_to_a_cancelled_waiter_is_passed_on() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=2)
    release, log = asyncio.Event(), list[str]()
    held = guard.slot()
    await held.__aenter__()
    second = asyncio.create_task(_hold(guard, release, log, "second"))
    third = asyncio.create_task(_hold(guard, release, log, "third"))
    await _until(lambda: guard.queued == 2)
    await held.__aexit__(None, None, None)  # hands the slot to `second`, which hasn't resumed yet
    second.cancel()  # cancelled in that window: the slot must go on to `third`
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.wait_for(third, 5)  # would hang if the handed-over slot were lost
    assert log == ["start third", "end third"]
    assert guard.active == 0 and guard.queued == 0


async def test_guard_failing_on_queued_is_ignored() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=1)
    release, log = asyncio.Event(), list[str]()

    def broken() -> None:
        raise RuntimeError("slack is down")

    first = asyncio.create_task(_hold(guard, release, log, "first"))
    await _until(lambda: guard.active == 1)
    with capture_logs() as logs:
        second = asyncio.create_task(_hold(guard, release, log, "second", on_queued=broken))
        await _until(lambda: guard.queued == 1)
        release.set()
        await asyncio.gather(first, second)
    assert log[-1] == "end second"
    assert [e["event"] for e in logs] == ["concurrency_on_queued_failed"]


async def test_guard_releases_slot_when_body_raises() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=0)
    with pytest.raises(KeyError):
        async with guard.slot():
            raise KeyError("boom")
    assert guard.active == 0


def test_guard_rejects_nonsense_sizes() -> None:
    with pytest.raises(ValueError):
        ConcurrencyGuard(0, 1)
    with pytest.raises(ValueError):
        ConcurrencyGuard(1, -1)
    with pytest.raises(ValueError):
        ConcurrencyGuard(1, 1, max_wait=0)
    with pytest.raises(ValueError):
        ConcurrencyGuard(1, 1, typical_seconds=-1)


# --- ConcurrencyGuard bounded by expected wait ---


async def test_place_reports_how_many_wait_ahead() -> None:
    guard = ConcurrencyGuard(max_concurrent=2, max_queue=100)
    async with guard.place() as first, guard.place() as second, guard.place() as third, guard.place() as fourth:
        assert (first.queued, second.queued) == (False, False)
        assert (third.queued, third.ahead) == (True, 0)
        assert (fourth.queued, fourth.ahead) == (True, 1)
        assert guard.active == 2 and guard.queued == 2
    assert guard.active == 0 and guard.queued == 0  # places given up before their turn leave nothing behind


async def test_queue_is_bounded_by_expected_wait_not_length() -> None:
    # Holds take 1 s each, 2 at once: the n-th in line can expect n / 2 s. With 3 s allowed the 6th in line would
    # wait 3 s (taken) and the 7th 3.5 s (refused), although the queue could hold 1000.
    guard = ConcurrencyGuard(max_concurrent=2, max_queue=1000, max_wait=3.0, typical_seconds=1.0)
    assert guard.expected_wait(6) == 3.0
    async with contextlib.AsyncExitStack() as stack:
        places = [await stack.enter_async_context(guard.place()) for _ in range(8)]
        assert [p.queued for p in places] == [False, False] + [True] * 6
        with capture_logs() as logs, pytest.raises(BusyError) as refused:
            await stack.enter_async_context(guard.place())
    assert refused.value.user_message == messages.busy()
    assert logs[0]["event"] == "concurrency_rejected" and logs[0]["expected_wait"] == 3.5
    assert guard.rejected == 1 and guard.queued == 0 and guard.active == 0


async def test_nobody_is_refused_for_the_wait_before_a_hold_is_measured() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=50, max_wait=0.1)
    async with contextlib.AsyncExitStack() as stack:
        places = [await stack.enter_async_context(guard.place()) for _ in range(51)]
        assert guard.queued == 50 and places[-1].ahead == 49  # only the length bounds the queue
        with capture_logs(), pytest.raises(BusyError):
            await stack.enter_async_context(guard.place())


async def test_the_typical_hold_follows_measured_holds() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=10, typical_seconds=30.0)
    assert guard.typical_seconds == 30.0  # the starting guess, until a hold is measured
    for _ in range(3):
        async with guard.slot():
            await asyncio.sleep(0.05)
    assert 0.04 <= guard.typical_seconds < 1.0  # the first measurement replaces the guess; later ones move it
    before = guard.typical_seconds
    async with guard.slot():
        await asyncio.sleep(0.5)
    assert before < guard.typical_seconds < 0.5  # one slow hold moves the estimate, without taking it over


async def test_a_slower_model_shrinks_the_queue_it_accepts() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=1000, max_wait=1.0, typical_seconds=0.01)
    release = asyncio.Event()
    log: list[str] = []
    holder = asyncio.create_task(_hold(guard, release, log, "holder"))
    await _until(lambda: guard.active == 1)
    waiting = [asyncio.create_task(_hold(guard, release, log, f"w{i}")) for i in range(20)]
    await _until(lambda: guard.queued == 20)  # 0.01 s each: twenty fit in a second
    release.set()
    await asyncio.gather(holder, *waiting)
    slow = asyncio.Event()
    for _ in range(10):
        guard._observe(0.6)  # the model slows down: answers now take over half a second
    assert 0.5 < guard.typical_seconds < 0.6
    holder = asyncio.create_task(_hold(guard, slow, log, "slow"))
    await _until(lambda: guard.active == 1)
    second = asyncio.create_task(_hold(guard, slow, log, "second"))
    await _until(lambda: guard.queued == 1)
    with capture_logs(), pytest.raises(BusyError):
        async with guard.slot():
            pytest.fail("must not run")
    slow.set()
    await asyncio.gather(holder, second)


async def test_a_waiter_gives_up_after_max_wait_and_the_queue_moves_on() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=10, max_wait=0.3, typical_seconds=0.01,
                             timeout_message=messages.waited_too_long)
    release, log = asyncio.Event(), list[str]()
    holder = asyncio.create_task(_hold(guard, release, log, "stuck"))
    await _until(lambda: guard.active == 1)
    with capture_logs() as logs, pytest.raises(BusyError) as gave_up:
        async with guard.slot():
            pytest.fail("must not run")
    assert gave_up.value.user_message == messages.waited_too_long()
    assert [e["event"] for e in logs] == ["concurrency_wait_timed_out"]
    assert guard.timed_out == 1 and guard.queued == 0
    release.set()
    await holder
    async with guard.slot():  # the slot is free again
        assert guard.active == 1
    assert guard.active == 0


async def test_a_waiter_hears_its_place_move_up() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=10)
    gates = [asyncio.Event() for _ in range(3)]

    async def holder(gate: asyncio.Event) -> None:
        async with guard.slot():
            await gate.wait()

    tasks = [asyncio.create_task(holder(gate)) for gate in gates]
    await _until(lambda: guard.queued == 2)
    heard: list[int] = []
    async with guard.place() as place:
        assert place.ahead == 2

        async def free_slots() -> None:
            for gate in gates:
                await asyncio.sleep(0.15)
                gate.set()

        opener = asyncio.create_task(free_slots())
        async for ahead in place.places_ahead(0.05):
            heard.append(ahead)
        await place.wait()
        assert guard.active == 1
    await asyncio.gather(opener, *tasks)
    assert heard == [1, 0]  # each move once; the end of the wait is the slot itself


async def test_max_wait_counts_from_joining_the_queue() -> None:
    guard = ConcurrencyGuard(max_concurrent=1, max_queue=10, max_wait=0.4)
    async with guard.slot(), guard.place() as place:
        started = asyncio.get_running_loop().time()
        async for _ in place.places_ahead(0.1):
            pass  # nothing moves: it ends when the wait is up
        with capture_logs(), pytest.raises(BusyError):
            await place.wait()
        assert 0.35 <= asyncio.get_running_loop().time() - started < 1.0  # 0.4 s in all, not 0.4 s more
