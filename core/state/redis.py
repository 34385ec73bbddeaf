"""Redis plumbing: connections with short timeouts, the key format, and the circuit that degrades to memory.

Every Redis user (shared state, rate limiter) opens its client with `redis_client_from_url` and goes through a
`RedisCircuit`: if Redis goes away, each operation is served from a bounded local fallback instead; one warning
is logged per outage (`<component>_degraded`) and Redis is tried again after a short pause, so the bot recovers
by itself when Redis comes back (`<component>_recovered`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.exceptions
import structlog
from aiocache import RedisCache
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.errors import ConfigError

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_KEY_PREFIX = "apiassist"
REDIS_TIMEOUT_SECONDS = 0.5
"""Socket, connect and per-operation timeout for Redis: an outage must not stall answers."""
RETRY_INTERVAL_SECONDS = 1.0
"""After a Redis failure, operations use the local fallback for this long before Redis is tried again."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, ConnectionError, TimeoutError, OSError)
"""Errors that mean "Redis is unavailable" (connection refused/reset, timeouts, server errors)."""

_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_.:@/-]{1,64}$")


def safe_key(key: str) -> str:
    """Return `key` as stored: short plain keys as-is, anything else as `#` + its sha256 (so no escaping).

    `#` is not in the plain alphabet, so a hashed key can never collide with a plain one.
    """
    if _PLAIN_KEY_RE.match(key):
        return key
    return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def is_plain_key(text: str) -> bool:
    """Whether `text` is stored as it is by `safe_key` (its alphabet has none of Redis's glob characters)."""
    return _PLAIN_KEY_RE.match(text) is not None


def redis_target(url: str) -> str:
    """Describe a Redis URL for logs (`host:port/db`), never including the username or password."""
    try:
        options = parse_url(url)
    except ValueError:
        return "<invalid redis url>"
    if "path" in options:
        return f"unix:{options['path']}/{options.get('db', 0)}"
    return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}/{options.get('db', 0)}"


def _redis_options(url: str, timeout: float) -> dict[str, Any]:
    """Connection-pool options for `url` with short timeouts and no client-side retries.

    Retries are left to `RedisCircuit`: during an outage an operation falls back at once instead of
    retrying with backoff (redis-py's default for clients built without a pool).
    """
    try:
        options: dict[str, Any] = dict(parse_url(url))
    except ValueError as exc:  # the message never contains the password
        raise ConfigError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
    options.pop("decode_responses", None)
    options.update(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
    return options


def redis_client_from_url(url: str, timeout: float = REDIS_TIMEOUT_SECONDS) -> Redis:
    """A `redis.asyncio.Redis` for `url` (db number, username/password, rediss://) with short timeouts.

    The caller owns it and closes it with `await client.aclose()`. Raises `ConfigError` for a malformed URL.
    """
    pool = ConnectionPool(**_redis_options(url, timeout), decode_responses=False)
    return Redis.from_pool(pool)


class RedisCircuit:
    """Decides, per operation, whether to use Redis or a local fallback, and logs outages once.

    While Redis works every operation goes to Redis. The first failure logs `<component>_degraded` (once
    per outage) and sends operations to the fallback; after `retry_interval` seconds one operation probes
    Redis again (the others keep using the fallback meanwhile). A successful probe logs
    `<component>_recovered` and calls `on_recover`.
    """

    def __init__(
        self,
        component: str,
        target: str,
        *,
        retry_interval: float = RETRY_INTERVAL_SECONDS,
        on_recover: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.component = component
        self.target = target
        self.retry_interval = retry_interval
        self.degraded = False
        self.outages = 0
        self.failures = 0
        self._on_recover = on_recover
        self._clock = clock
        self._retry_at = 0.0
        self._since = 0.0
        self._probing = False

    def _should_try(self) -> bool:
        if not self.degraded:
            return True
        if self._probing or self._clock() < self._retry_at:
            return False
        self._probing = True
        return True

    def _failed(self, exc: BaseException) -> None:
        self._probing = False
        self.failures += 1
        now = self._clock()
        self._retry_at = now + self.retry_interval
        if not self.degraded:
            self.degraded = True
            self.outages += 1
            self._since = now
            log.warning(
                f"{self.component}_degraded",
                target=self.target,
                error=type(exc).__name__,
                detail=str(exc)[:200],
                fallback="local memory",
            )

    def _succeeded(self) -> None:
        self._probing = False
        if self.degraded:
            self.degraded = False
            log.info(
                f"{self.component}_recovered",
                target=self.target,
                outage_seconds=round(self._clock() - self._since, 3),
            )
            if self._on_recover is not None:
                self._on_recover()

    async def call(self, primary: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]) -> T:
        """Run `primary` (a Redis operation), or `fallback` when Redis is down or fails with `REDIS_ERRORS`."""
        if not self._should_try():
            return await fallback()
        try:
            result = await primary()
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return await fallback()
        except BaseException:
            self._probing = False  # a bug or a cancellation, not an outage: let it through
            raise
        self._succeeded()
        return result


class ClientRedisCache(RedisCache):
    """aiocache's RedisCache on a given client, without the calls redis-py deprecates (`close()`, `psetex`).

    aiocache builds its client from host/port/db/password only; taking a client built from the URL keeps
    every URL form (rediss://, unix://, username, query options) and our timeouts.
    """

    def __init__(self, client: Redis, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # aiocache's own pool is replaced before it opens any connection
        self.client = client

    async def _set(self, key: str, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None) -> Any:
        if ttl is None or _cas_token is not None:
            return await super()._set(key, value, ttl=ttl, _cas_token=_cas_token, _conn=_conn)
        return await self.client.set(key, value, px=max(1, int(float(ttl) * 1000)))

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        await self.client.aclose()
