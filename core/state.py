"""State shared between bot instances: caches, thread memory and event de-duplication.

Everything goes through one `SharedState`, built on aiocache. Without `REDIS_URL` it keeps values in this
process (size-bounded per namespace, LRU, with TTLs). With `REDIS_URL` it keeps them in Redis, so several
instances behind one Slack app share answers, embeddings, conversation memory and seen-event ids.

Values are JSON in both modes (never pickle): data in Redis is portable and safe to read, and a value that
could not be shared fails the same way in memory mode as it would in Redis.

If Redis goes away, each operation is served from a bounded local fallback instead; one warning is logged
per outage (`shared_state_degraded`) and Redis is tried again after a short pause, so the bot recovers by
itself when Redis comes back (`shared_state_recovered`). `RedisCircuit` implements that policy and is
reused by the rate limiter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import redis.exceptions
import structlog
from aiocache import RedisCache, SimpleMemoryCache
from aiocache.serializers import BaseSerializer
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

NS_ANSWERS = "answers"
"""Namespace of cached answers (bounded by `QUERY_CACHE_SIZE`)."""
NS_EMBEDDINGS = "embeddings"
"""Namespace of cached query embeddings (bounded by `EMBEDDING_CACHE_SIZE`)."""
NS_THREADS = "threads"
"""Namespace of conversation memory (`ConversationMemory`)."""
NS_EVENTS = "events"
"""Namespace of seen platform event ids (de-duplication with `SharedState.add`)."""

DEFAULT_KEY_PREFIX = "apiassist"
DEFAULT_NAMESPACE_SIZE = 10_000
REDIS_TIMEOUT_SECONDS = 0.5
"""Socket, connect and per-operation timeout for Redis: an outage must not stall answers."""
RETRY_INTERVAL_SECONDS = 1.0
"""After a Redis failure, operations use the local fallback for this long before Redis is tried again."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, ConnectionError, TimeoutError, OSError)
"""Errors that mean "Redis is unavailable" (connection refused/reset, timeouts, server errors)."""

_NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_.:@/-]{1,64}$")


def safe_key(key: str) -> str:
    """Return `key` as stored: short plain keys as-is, anything else as `#` + its sha256 (so no escaping).

    `#` is not in the plain alphabet, so a hashed key can never collide with a plain one.
    """
    if _PLAIN_KEY_RE.match(key):
        return key
    return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def workspace_prefix(scope: str) -> str:
    """The key prefix of everything a workspace has in shared state, so it can all be deleted at once."""
    return "w" + hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:24] + ":"


def workspace_key(scope: str, detail: str) -> str:
    """A key that belongs to workspace `scope` (see `SharedState.delete_prefix`); plain, so never re-hashed."""
    return workspace_prefix(scope) + hashlib.sha256(detail.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _check_namespace(namespace: str) -> str:
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"invalid namespace {namespace!r}: use 1-40 of a-z, 0-9, '_', '.', '-'")
    return namespace


def _ttl(ttl: float | None) -> float | None:
    """Normalise a TTL: None or <= 0 means "no expiry"; otherwise at least one millisecond."""
    if ttl is None or ttl <= 0:
        return None
    return max(float(ttl), 0.001)


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


class StateStore(Protocol):
    """The port the core depends on for shared state; `SharedState` implements it (tests may fake it)."""

    async def get(self, namespace: str, key: str) -> Any | None:
        """The stored value, or None."""
        ...

    async def set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON-serialisable value, with an optional TTL in seconds."""
        ...

    async def add(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store only if absent; True for the first caller."""
        ...

    async def delete(self, namespace: str, key: str) -> None:
        """Remove a key."""
        ...

    async def delete_prefix(self, namespace: str, prefix: str) -> int:
        """Remove every key starting with `prefix` (a `workspace_prefix`); returns how many."""
        ...


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


class _JsonSerializer(BaseSerializer):
    """Compact stdlib JSON; never pickle, so nothing in Redis can execute code when read."""

    def dumps(self, value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def loads(self, value: str | bytes | None) -> Any:
        if value is None:
            return None
        return json.loads(value)


def _identity(value: Any) -> Any:
    return value


class _RedisCache(RedisCache):
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


class _BoundedMemory:
    """aiocache's SimpleMemoryCache (which has TTLs but no size bound) plus LRU bounds per namespace.

    The LRU order is tracked beside the cache; keys that expired through their TTL are dropped from the
    order when next read, or when they reach the cold end.
    """

    def __init__(self, sizes: Mapping[str, int], default_size: int, serializer: BaseSerializer) -> None:
        self._cache = SimpleMemoryCache(serializer=serializer, timeout=None)
        self._sizes = dict(sizes)
        self._default_size = default_size
        self._order: dict[str, OrderedDict[str, None]] = {}

    def capacity(self, namespace: str) -> int:
        return self._sizes.get(namespace, self._default_size)

    async def get(self, namespace: str, key: str) -> Any | None:
        value = await self._cache.get(key)
        order = self._order.get(namespace)
        if order is not None and key in order:
            if value is None:
                del order[key]
            else:
                order.move_to_end(key)
        return value

    async def set(self, namespace: str, key: str, payload: str, ttl: float | None) -> None:
        if self.capacity(namespace) <= 0:
            return
        await self._cache.set(key, payload, ttl=ttl, dumps_fn=_identity)
        await self._touch(namespace, key)

    async def add(self, namespace: str, key: str, payload: str, ttl: float | None) -> bool:
        if self.capacity(namespace) <= 0:
            return True  # nothing is remembered in a zero-size namespace
        try:
            await self._cache.add(key, payload, ttl=ttl, dumps_fn=_identity)
        except ValueError:  # aiocache: "Key ... already exists"
            return False
        await self._touch(namespace, key)
        return True

    async def delete(self, namespace: str, key: str) -> None:
        await self._cache.delete(key)
        order = self._order.get(namespace)
        if order is not None:
            order.pop(key, None)

    async def delete_prefix(self, namespace: str, prefix: str) -> int:
        order = self._order.get(namespace)
        if order is None:
            return 0
        doomed = [key for key in order if key.startswith(prefix)]
        for key in doomed:
            await self.delete(namespace, key)
        return len(doomed)

    async def clear(self) -> None:
        await self._cache.clear()
        self._order.clear()

    async def _touch(self, namespace: str, key: str) -> None:
        order = self._order.setdefault(namespace, OrderedDict())
        order[key] = None
        order.move_to_end(key)
        capacity = self.capacity(namespace)
        while len(order) > capacity:
            oldest, _ = order.popitem(last=False)
            await self._cache.delete(oldest)


@dataclass
class _Counter:
    hits: int = 0
    misses: int = 0


class SharedState:
    """The one cache backend for everything several bot instances must share.

    Memory mode (`redis_url=None`): values live in this process, at most `sizes[namespace]` per namespace
    (`default_size` for others; 0 disables a namespace), least recently used evicted first.
    Redis mode: values live in Redis under `<key_prefix>:<namespace>:<key>`, bounded by their TTLs (and the
    server's maxmemory policy); the sizes then bound only the local fallback used during an outage.

    Values must be JSON-serialisable; JSON turns tuples into lists. `None` means "absent", so don't store it.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        sizes: Mapping[str, int] | None = None,
        default_size: int = DEFAULT_NAMESPACE_SIZE,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = REDIS_TIMEOUT_SECONDS,
        retry_interval: float = RETRY_INTERVAL_SECONDS,
    ) -> None:
        sizes = dict(sizes or {})
        for namespace, size in sizes.items():
            _check_namespace(namespace)
            if size < 0:
                raise ValueError(f"size of namespace {namespace!r} must be >= 0")
        self._prefix = _check_namespace(key_prefix)
        self._serializer = _JsonSerializer()
        self._memory = _BoundedMemory(sizes, default_size, self._serializer)
        self._counters: dict[str, _Counter] = {namespace: _Counter() for namespace in sizes}
        self._redis: _RedisCache | None = None
        self._client: Redis | None = None
        self._circuit: RedisCircuit | None = None
        self._timeout = timeout
        if redis_url is None:
            log.info("shared_state_ready", backend="memory")
            return
        self._client = client = redis_client_from_url(redis_url, timeout)
        self._redis = _RedisCache(client, serializer=self._serializer, timeout=timeout)
        target = redis_target(redis_url)
        self._circuit = RedisCircuit(
            "shared_state", target, retry_interval=retry_interval, on_recover=self._forget_fallback
        )
        log.info("shared_state_ready", backend="redis", target=target)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SharedState:
        """Build from `Settings`: Redis when `redis_url` is set, else memory bounded by the cache sizes."""
        sizes = {NS_ANSWERS: settings.query_cache_size, NS_EMBEDDINGS: settings.embedding_cache_size}
        return cls(settings.redis_url, sizes=sizes, **overrides)

    @property
    def backend(self) -> str:
        """`"redis"` or `"memory"` (the configured backend, whether or not Redis is reachable now)."""
        return "memory" if self._redis is None else "redis"

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but unreachable and the local fallback is serving."""
        return self._circuit is not None and self._circuit.degraded

    @property
    def redis_client(self) -> Redis | None:
        """The underlying redis-py client (to share its pool, e.g. with `RateLimiter`); owned by this object."""
        return self._client

    def _key(self, namespace: str, key: str) -> str:
        return f"{self._prefix}:{_check_namespace(namespace)}:{safe_key(key)}"

    def _forget_fallback(self) -> None:
        # Redis is authoritative again; what was kept locally during the outage must not resurface later.
        self._memory = _BoundedMemory(self._memory._sizes, self._memory._default_size, self._serializer)

    async def _via(self, primary: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]) -> T:
        if self._circuit is None:
            return await fallback()
        return await self._circuit.call(primary, fallback)

    async def get(self, namespace: str, key: str) -> Any | None:
        """The value stored under `key` in `namespace`, or None; counted in `stats()` as a hit or miss."""
        full_key = self._key(namespace, key)
        memory = self._memory

        async def from_redis() -> Any | None:
            assert self._redis is not None
            try:
                return await self._redis.get(full_key)
            except ValueError:  # not JSON: written by something else; treat as absent
                log.warning("shared_state_bad_value", namespace=namespace)
                return None

        value = await self._via(from_redis, lambda: memory.get(namespace, full_key))
        counter = self._counters.setdefault(namespace, _Counter())
        if value is None:
            counter.misses += 1
        else:
            counter.hits += 1
        return value

    async def set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        """Store `value` (JSON-serialisable) under `key`; `ttl` in seconds, None or <= 0 for no expiry."""
        full_key, payload, seconds = self._key(namespace, key), self._serializer.dumps(value), _ttl(ttl)
        memory = self._memory

        async def to_redis() -> None:
            assert self._redis is not None
            await self._redis.set(full_key, payload, ttl=seconds, dumps_fn=_identity)

        await self._via(to_redis, lambda: memory.set(namespace, full_key, payload, seconds))

    async def add(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store `value` only if `key` is absent (atomically); True for the first caller across all instances.

        Use it to de-duplicate events: `if not await state.add(NS_EVENTS, event_id, 1, ttl=3600): return`.
        During a Redis outage it is only once-per-instance.
        """
        full_key, payload, seconds = self._key(namespace, key), self._serializer.dumps(value), _ttl(ttl)
        memory = self._memory

        async def to_redis() -> bool:
            assert self._redis is not None
            try:
                await self._redis.add(full_key, payload, ttl=seconds, dumps_fn=_identity)
            except ValueError:  # aiocache: "Key ... already exists"
                return False
            return True

        return await self._via(to_redis, lambda: memory.add(namespace, full_key, payload, seconds))

    async def delete(self, namespace: str, key: str) -> None:
        """Remove `key` from `namespace` (no error if absent)."""
        full_key = self._key(namespace, key)
        memory = self._memory

        async def from_redis() -> None:
            assert self._redis is not None
            await self._redis.delete(full_key)

        await self._via(from_redis, lambda: memory.delete(namespace, full_key))

    async def delete_prefix(self, namespace: str, prefix: str) -> int:
        """Remove every key of `namespace` that starts with `prefix`; returns how many were removed.

        For purging a workspace: keys built with `workspace_key` share its `workspace_prefix`. In Redis this
        scans the keyspace (a rare administrative action, not for the request path). During a Redis outage only
        the local fallback is cleared; what stays in Redis expires with its TTL.
        """
        if not _PLAIN_KEY_RE.match(prefix):  # the plain alphabet has none of Redis's glob characters
            raise ValueError("prefix must be a plain key prefix (see workspace_prefix)")
        full_prefix = self._key(namespace, prefix)
        memory = self._memory

        async def from_redis() -> int:
            assert self._client is not None
            removed = 0
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=full_prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    removed += int(await self._client.unlink(*batch))
                    batch = []
            if batch:
                removed += int(await self._client.unlink(*batch))
            return removed

        return await self._via(from_redis, lambda: memory.delete_prefix(namespace, full_prefix))

    async def ping(self) -> bool:
        """Whether the backend answers (always True in memory mode); for health checks at start-up."""
        if self._client is None:
            return True
        try:
            return bool(await asyncio.wait_for(cast(Awaitable[bool], self._client.ping()), self._timeout))
        except REDIS_ERRORS:
            return False

    async def aclose(self) -> None:
        """Close the Redis connections (if any); safe to call twice."""
        if self._redis is not None:
            await self._redis.close()
        await self._memory.clear()

    def stats(self) -> dict[str, dict[str, float]]:
        """Hits, misses and hit rate (0-1) of `get()` per namespace, since start (this instance only)."""
        result: dict[str, dict[str, float]] = {}
        for namespace, counter in sorted(self._counters.items()):
            total = counter.hits + counter.misses
            result[namespace] = {
                "hits": float(counter.hits),
                "misses": float(counter.misses),
                "hit_rate": counter.hits / total if total else 0.0,
            }
        return result


_MAX_QUESTION_CHARS = 1_000
_MAX_SUMMARY_CHARS = 1_500
_MAX_REFERENCES = 20
_MAX_REFERENCE_CHARS = 300


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_all(items: Any) -> tuple[str, ...]:
    return tuple(_clip(str(item), _MAX_REFERENCE_CHARS) for item in tuple(items)[:_MAX_REFERENCES])


@dataclass(frozen=True)
class Turn:
    """One question and a summary of its answer, remembered for follow-up questions in the same thread.

    Text is clipped on construction (question 1,000 chars, answer summary 1,500, at most 20 specs and
    citations of 300 chars each) so a thread's memory stays small.
    """

    question: str
    answer_summary: str
    specs: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", _clip(self.question, _MAX_QUESTION_CHARS))
        object.__setattr__(self, "answer_summary", _clip(self.answer_summary, _MAX_SUMMARY_CHARS))
        object.__setattr__(self, "specs", _clip_all(self.specs))
        object.__setattr__(self, "citations", _clip_all(self.citations))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (see `from_json`)."""
        return {"q": self.question, "a": self.answer_summary, "s": list(self.specs), "c": list(self.citations)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Turn:
        """Rebuild a turn stored by `to_json`; raises KeyError/TypeError on malformed data."""
        return cls(str(data["q"]), str(data["a"]), tuple(data.get("s", ())), tuple(data.get("c", ())))


class ConversationMemory:
    """The last few turns of each thread, kept in `SharedState` so every instance sees the same history.

    `thread_key` should identify the thread across platforms, e.g. `f"{platform}:{workspace}:{channel}:{thread}"`.
    A thread's memory expires `ttl` seconds after its last turn. Two instances remembering a turn in the
    same thread at the same instant may keep only one of the two (last write wins).
    """

    def __init__(self, state: StateStore, max_turns: int = 6, ttl: float = 3600) -> None:
        if max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        self._state = state
        self.max_turns = max_turns
        self.ttl = ttl

    async def history(self, thread_key: str) -> list[Turn]:
        """The thread's remembered turns, oldest first (empty for a new or expired thread)."""
        stored = await self._state.get(NS_THREADS, thread_key)
        if not isinstance(stored, list):
            return []
        turns = []
        for item in stored[-self.max_turns :]:
            try:
                turns.append(Turn.from_json(item))
            except (KeyError, TypeError, AttributeError):
                log.warning("conversation_turn_unreadable")
        return turns

    async def remember(self, thread_key: str, turn: Turn) -> None:
        """Append `turn` to the thread, keeping only the last `max_turns`, and restart its TTL."""
        turns = [*await self.history(thread_key), turn][-self.max_turns :]
        await self._state.set(NS_THREADS, thread_key, [t.to_json() for t in turns], ttl=self.ttl)

    async def forget(self, thread_key: str) -> None:
        """Drop the thread's memory."""
        await self._state.delete(NS_THREADS, thread_key)
