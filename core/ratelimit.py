"""Per-user rate limits (token buckets) and a global cap on concurrent LLM work.

`RateLimiter` gives each key (`f"{workspace}:{user}"`) a bucket of `burst` tokens refilled at
`requests_per_minute / 60` tokens per second. With Redis the bucket lives in Redis and is updated by one
Lua script (atomic, timed by the Redis server's clock), so every instance draws from the same bucket; if
Redis is unreachable the limiter falls back to local buckets (one `rate_limiter_degraded` warning per
outage) and returns to Redis by itself (`rate_limiter_recovered`).

`ConcurrencyGuard` bounds how many questions are answered at once; the rest wait in a FIFO queue bounded by
length and, for answers, by expected wait (from a running estimate of how long an answer takes). A caller
the queue cannot take gets a `BusyError` at once (never silently dropped).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from redis.asyncio import Redis

from core import messages
from core.errors import BusyError, RateLimitedError
from core.state.redis import (
    DEFAULT_KEY_PREFIX,
    REDIS_TIMEOUT_SECONDS,
    RETRY_INTERVAL_SECONDS,
    RedisCircuit,
    redis_client_from_url,
    redis_target,
    safe_key,
)

if TYPE_CHECKING:
    from core.config import Settings

log = structlog.get_logger(__name__)

DEFAULT_MAX_LOCAL_KEYS = 100_000
_EPSILON = 1e-9  # float slack, so waiting exactly the advertised time is always enough

# KEYS[1] = bucket; ARGV = rate (tokens/s), capacity, expiry (ms). Returns 0 when a token was taken, else the
# milliseconds until one is available. Times come from the server (TIME), so instances' clocks don't matter.
_TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
local elapsed = math.max(0, now - ts)
tokens = math.min(capacity, tokens + elapsed * rate)
local wait_ms = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait_ms = math.max(1, math.ceil((1 - tokens) / rate * 1000))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return wait_ms
"""


class _LocalBuckets:
    """Token buckets in this process, at most `max_keys` of them (least recently used dropped first).

    Dropping a bucket only forgets recent use, so it errs towards allowing a request.
    """

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float], max_keys: int) -> None:
        self._rate = rate
        self._capacity = capacity
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str) -> float:
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + max(0.0, now - last) * self._rate)
        wait = 0.0
        if tokens >= 1 - _EPSILON:
            tokens = max(0.0, tokens - 1)
        else:
            wait = (1 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

    def clear(self) -> None:
        self._buckets.clear()


class RequestLimiter(Protocol):
    """The port the core depends on for per-user limits; `RateLimiter` implements it (tests may fake it)."""

    async def check(self, key: str) -> float:
        """0.0 when allowed (a token taken), else seconds until allowed."""
        ...

    def stats(self) -> dict[str, float]:
        """Counters for metrics: requests `allowed` and `limited` so far."""
        ...


async def enforce(
    limiter: RequestLimiter, key: str, message: Callable[[float], str] = messages.rate_limited
) -> None:
    """Take a token for `key` or raise `RateLimitedError` with `message(wait)` and `retry_after`."""
    wait = await limiter.check(key)
    if wait > 0:
        raise RateLimitedError(message(wait), retry_after=wait)


class RateLimiter:
    """Per-key token bucket: `burst` requests at once, then `requests_per_minute` sustained.

    Pass `redis` to share buckets between instances (otherwise they are local to this process).
    `owns_redis=True` makes `aclose()` close that client. `clock` (seconds, monotonic) drives the local
    buckets only; Redis buckets use the Redis server's clock.
    """

    def __init__(
        self,
        requests_per_minute: float,
        burst: int,
        *,
        redis: Redis | None = None,
        owns_redis: bool = False,
        target: str = "redis",
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = REDIS_TIMEOUT_SECONDS,
        retry_interval: float = RETRY_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_local_keys: int = DEFAULT_MAX_LOCAL_KEYS,
    ) -> None:
        if requests_per_minute <= 0 or burst < 1:
            raise ValueError("requests_per_minute must be > 0 and burst >= 1")
        self.rate = requests_per_minute / 60.0
        self.capacity = float(burst)
        self._local = _LocalBuckets(self.rate, self.capacity, clock, max_local_keys)
        self._redis = redis
        self._owns_redis = owns_redis
        self._prefix = key_prefix
        self._timeout = timeout
        # A bucket left alone this long is full again, which is the same as having no bucket at all.
        self._expiry_ms = math.ceil(self.capacity / self.rate * 1000) + 1000
        self._script = redis.register_script(_TOKEN_BUCKET_LUA) if redis is not None else None
        self._circuit = RedisCircuit(
            "rate_limiter", target, retry_interval=retry_interval, on_recover=self._local.clear
        )
        self.allowed = 0
        self.limited = 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        redis: Redis | None = None,
        *,
        requests_per_minute: float | None = None,
        burst: int | None = None,
        **overrides: Any,
    ) -> RateLimiter:
        """Build from `Settings` (`RATE_LIMIT_REQUESTS_PER_MINUTE`, `RATE_LIMIT_BURST`, `REDIS_URL`).

        `requests_per_minute` / `burst` override the question limits (the upload limiter uses its own).
        With `REDIS_URL` set, pass the client to share (e.g. `SharedState.redis_client`; not closed by
        `aclose()`), or leave `redis=None` to open one from the URL (closed by `aclose()`). Without
        `REDIS_URL` the limiter is local and `redis` is ignored.
        """
        rpm = requests_per_minute or settings.rate_limit_requests_per_minute
        burst = burst or settings.rate_limit_burst
        url = settings.redis_url
        if url is None:
            log.info("rate_limiter_ready", backend="memory")
            return cls(rpm, burst, **overrides)
        owns = redis is None
        client = redis_client_from_url(url) if redis is None else redis
        log.info("rate_limiter_ready", backend="redis", target=redis_target(url))
        return cls(rpm, burst, redis=client, owns_redis=owns, target=redis_target(url), **overrides)

    @property
    def backend(self) -> str:
        """`"redis"` or `"memory"` (the configured backend, whether or not Redis is reachable now)."""
        return "memory" if self._script is None else "redis"

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but unreachable and local buckets are used."""
        return self._circuit.degraded

    async def check(self, key: str) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until a token is available (none taken)."""

        async def local() -> float:
            return self._local.check(key)

        if self._script is None:
            wait = await local()
        else:
            script = self._script
            bucket = f"{self._prefix}:ratelimit:{safe_key(key)}"

            async def shared() -> float:
                result = script(keys=[bucket], args=[repr(self.rate), repr(self.capacity), self._expiry_ms])
                wait_ms = await asyncio.wait_for(result, self._timeout)
                return int(wait_ms) / 1000.0

            wait = await self._circuit.call(shared, local)
        if wait > 0:
            self.limited += 1
        else:
            self.allowed += 1
        return wait

    async def enforce(self, key: str, message: Callable[[float], str] = messages.rate_limited) -> None:
        """Take a token for `key` or raise `RateLimitedError` with `message(wait)` and `retry_after`."""
        await enforce(self, key, message)

    def stats(self) -> dict[str, float]:
        """Requests allowed and refused since start (this instance), and whether Redis is degraded."""
        return {"allowed": float(self.allowed), "limited": float(self.limited), "degraded": float(self.degraded)}

    async def aclose(self) -> None:
        """Close the Redis client if this limiter opened it."""
        if self._redis is not None and self._owns_redis:
            await self._redis.aclose()
        self._redis = None
        self._script = None


OnQueued = Callable[[], Awaitable[None] | None]

HOLD_EWMA_WEIGHT = 0.2  # weight of the latest hold in the running estimate: about the last ten count


class Place:
    """One caller's place at a `ConcurrencyGuard`: a slot held at once, or a place in its queue.

    `ahead` is how many were waiting in front of it when it joined (0 when it got a slot at once). Get it with
    `guard.place()`, then `await place.wait()` for the slot (`places_ahead` meanwhile tells how the queue moves);
    leaving the `async with` frees the slot or the place.
    """

    def __init__(self, guard: ConcurrencyGuard, waiter: asyncio.Future[None] | None, ahead: int) -> None:
        self._guard = guard
        self._waiter = waiter
        self.ahead = ahead
        self.joined_at = time.monotonic()
        self.held_since: float | None = None if waiter is not None else self.joined_at

    @property
    def queued(self) -> bool:
        """Whether it had to join the queue."""
        return self._waiter is not None

    async def wait(self) -> None:
        """Return once this place holds a slot (at once if it got one on joining).

        Raises `BusyError` (with the guard's `timeout_message()`) when it waited `max_wait` seconds in vain.
        """
        if self.held_since is not None:
            return
        assert self._waiter is not None
        guard = self._guard
        try:
            async with asyncio.timeout_at(self._give_up_at()):
                await self._waiter
        except TimeoutError:
            guard.timed_out += 1
            log.warning("concurrency_wait_timed_out", waited=guard.max_wait, queued=guard.queued)
            raise BusyError(guard.timeout_message()) from None
        self.held_since = time.monotonic()
        guard.admitted += 1

    async def places_ahead(self, every: float) -> AsyncGenerator[int]:
        """While it waits: how many wait in front of it now, checked every `every` seconds, each time it changed.

        Ends when a slot is free for it (or it has waited `max_wait`); then call `wait`.
        """
        waiter = self._waiter
        last = self.ahead
        give_up_at = self._give_up_at()
        while waiter is not None and not waiter.done():
            now = asyncio.get_running_loop().time()
            if give_up_at is not None and now >= give_up_at:
                return
            timeout = every if give_up_at is None else min(every, give_up_at - now)
            await asyncio.wait({waiter}, timeout=timeout)  # never cancels the waiter
            if waiter.done():
                return
            with suppress(ValueError):  # a C-level scan: cheap even with a thousand waiting
                ahead = self._guard._waiters.index(waiter)
                if ahead != last:
                    last = ahead
                    yield ahead

    def _give_up_at(self) -> float | None:
        """The event loop time at which it stops waiting (None: never), `max_wait` after it joined."""
        if self._guard.max_wait is None:
            return None
        return asyncio.get_running_loop().time() + self._guard.max_wait - (time.monotonic() - self.joined_at)

    def _leave(self) -> None:
        guard = self._guard
        if self.held_since is not None:
            guard._observe(time.monotonic() - self.held_since)
            guard._release()
        elif self._waiter is not None:
            if self._waiter.done() and not self._waiter.cancelled():
                guard._release()  # the slot was handed to us just as we gave up: pass it on
            else:
                self._waiter.cancel()
                guard._remove(self._waiter)


class ConcurrencyGuard:
    """At most `max_concurrent` holders at once; the rest wait in FIFO order, at most `max_queue` of them.

    One guard per process around the expensive part of work (an LLM answer, indexing a spec). A newcomer that
    would be beyond `max_queue` gets a `BusyError` at once. With `max_wait` (seconds) the queue is bounded by
    time too: a newcomer is refused when its expected wait would pass `max_wait`, and a waiter that has waited
    `max_wait` gives up. The expected wait of the n-th in line is n / `max_concurrent` × the typical hold, a
    running average (EWMA) of recent hold durations. It starts at `typical_seconds`, by default 0: until a hold
    has been measured nobody is refused for the wait (there is nothing to estimate it from), and waiters are
    still bounded by `max_wait`.
    """

    def __init__(
        self,
        max_concurrent: int,
        max_queue: int,
        busy_message: Callable[[], str] = messages.busy,
        *,
        max_wait: float | None = None,
        typical_seconds: float = 0.0,
        timeout_message: Callable[[], str] = messages.busy,
    ) -> None:
        if max_concurrent < 1 or max_queue < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queue >= 0")
        if (max_wait is not None and max_wait <= 0) or typical_seconds < 0:
            raise ValueError("max_wait must be > 0 and typical_seconds >= 0")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.busy_message = busy_message
        self.timeout_message = timeout_message
        self.typical_seconds = typical_seconds
        self.holds_measured = 0
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.admitted = 0
        self.queued_total = 0
        self.rejected = 0
        self.timed_out = 0

    @property
    def active(self) -> int:
        """Slots in use now."""
        return self._active

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._waiters)

    def expected_wait(self, position: int) -> float:
        """Seconds the `position`-th in line (1: next) can expect to wait for a slot, from the typical hold."""
        return position * self.typical_seconds / self.max_concurrent

    def stats(self) -> dict[str, float]:
        """Now: `active`, `queued`, `typical_seconds`; since start: `admitted`, `queued_total`, `rejected`, `timed_out`.

        `rejected` were refused on arrival (queue full or wait too long), `timed_out` gave up waiting.
        """
        return {
            "active": float(self.active),
            "queued": float(self.queued),
            "typical_seconds": round(self.typical_seconds, 3),
            "admitted": float(self.admitted),
            "queued_total": float(self.queued_total),
            "rejected": float(self.rejected),
            "timed_out": float(self.timed_out),
        }

    @asynccontextmanager
    async def place(self) -> AsyncIterator[Place]:
        """A slot now, or a place in the queue (then `await place.wait()`); freed when the block ends.

        Raises `BusyError` (with `busy_message()`) at once when the queue is full or the wait would be too long.
        """
        place = self._join()
        try:
            yield place
        finally:
            place._leave()

    @asynccontextmanager
    async def slot(self, on_queued: OnQueued | None = None) -> AsyncIterator[None]:
        """Hold a slot for the block; if none is free, wait in the queue (calling `on_queued` once first).

        Raises `BusyError` as `place` and `Place.wait` do. An error raised by `on_queued` is logged and ignored:
        telling the user they're queued is a courtesy.
        """
        async with self.place() as place:
            if place.queued and on_queued is not None:
                await self._notify(on_queued)
            await place.wait()
            yield

    def _join(self) -> Place:
        if self._active < self.max_concurrent and not self._waiters:
            self._active += 1
            self.admitted += 1
            return Place(self, None, 0)
        ahead = len(self._waiters)
        expected = self.expected_wait(ahead + 1)
        if ahead >= self.max_queue or (self.max_wait is not None and expected > self.max_wait):
            self.rejected += 1
            log.warning("concurrency_rejected", active=self._active, queued=ahead, expected_wait=round(expected, 1))
            raise BusyError(self.busy_message())
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.queued_total += 1
        return Place(self, waiter, ahead)

    def _observe(self, seconds: float) -> None:
        """Fold one hold's duration into the typical hold (the first measurement replaces the starting guess)."""
        if self.holds_measured == 0:
            self.typical_seconds = seconds
        else:
            self.typical_seconds += HOLD_EWMA_WEIGHT * (seconds - self.typical_seconds)
        self.holds_measured += 1

    @staticmethod
    async def _notify(on_queued: OnQueued) -> None:
        try:
            result = on_queued()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.warning("concurrency_on_queued_failed", exc_info=True)

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with suppress(ValueError):
            self._waiters.remove(waiter)

    def _release(self) -> None:
        # Hand the slot straight to the oldest live waiter, so a newcomer can't overtake the queue.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1
