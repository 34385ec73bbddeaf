"""Namespaced caches shared between bot instances: answers, query embeddings, thread memory, seen event ids.

Everything goes through one `SharedState`, built on aiocache. Without `REDIS_URL` it keeps values in this
process (size-bounded per namespace, LRU, with TTLs). With `REDIS_URL` it keeps them in Redis, so several
instances behind one Slack app share answers, embeddings, conversation memory and seen-event ids.

Values are JSON in both modes (never pickle): data in Redis is portable and safe to read, and a value that
could not be shared fails the same way in memory mode as it would in Redis.

During a Redis outage each operation is served from the bounded local fallback (`core.state.redis.RedisCircuit`,
logged as `shared_state_degraded` / `shared_state_recovered`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import structlog
from aiocache import SimpleMemoryCache
from aiocache.serializers import BaseSerializer
from redis.asyncio import Redis

from core.state.redis import (
    DEFAULT_KEY_PREFIX,
    REDIS_ERRORS,
    REDIS_TIMEOUT_SECONDS,
    RETRY_INTERVAL_SECONDS,
    ClientRedisCache,
    RedisCircuit,
    is_plain_key,
    redis_client_from_url,
    redis_target,
    safe_key,
)

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
NS_RERANKS = "reranks"
"""Namespace of the LLM's orderings of a question's candidates (`core.rerank`), by workspace key."""
NS_PHRASINGS = "phrasings"
"""Namespace of the user-phrased goals the LLM wrote for an operation (`core.phrasings`), by content hash."""

DEFAULT_NAMESPACE_SIZE = 10_000

_NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")


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


class StateBackend(StateStore, Protocol):
    """The shared state as the assistant holds it: a `StateStore` that also reports on itself (readiness, metrics).

    `SharedState` implements it.
    """

    @property
    def backend(self) -> str:
        """`"redis"` or `"memory"`."""
        ...

    @property
    def degraded(self) -> bool:
        """True while a configured Redis is unreachable and a local fallback serves."""
        ...

    async def ping(self) -> bool:
        """Whether the backend answers."""
        ...

    def stats(self) -> dict[str, dict[str, float]]:
        """Hits, misses and hit rate per namespace."""
        ...


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
        # What this instance claimed with `add` in Redis mode, kept across outages (see `add`).
        self._claims = _BoundedMemory(sizes, default_size, self._serializer)
        self._counters: dict[str, _Counter] = {namespace: _Counter() for namespace in sizes}
        self._redis: ClientRedisCache | None = None
        self._client: Redis | None = None
        self._circuit: RedisCircuit | None = None
        self._timeout = timeout
        if redis_url is None:
            log.info("shared_state_ready", backend="memory")
            return
        self._client = client = redis_client_from_url(redis_url, timeout)
        self._redis = ClientRedisCache(client, serializer=self._serializer, timeout=timeout)
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
        During a Redis outage it is only once-per-instance. Once per instance holds across an outage's end and
        across Redis losing its data: each instance also remembers (bounded, with the TTL) what it claimed, so a
        Slack retry of an event first claimed while Redis was away, or before Redis restarted empty, is not
        answered a second time by the instance that answered it.
        """
        full_key, payload, seconds = self._key(namespace, key), self._serializer.dumps(value), _ttl(ttl)
        memory = self._memory
        if self._circuit is not None and await self._claims.get(namespace, full_key) is not None:
            return False

        async def to_redis() -> bool:
            assert self._redis is not None
            try:
                await self._redis.add(full_key, payload, ttl=seconds, dumps_fn=_identity)
            except ValueError:  # aiocache: "Key ... already exists"
                return False
            return True

        first = await self._via(to_redis, lambda: memory.add(namespace, full_key, payload, seconds))
        if first and self._circuit is not None:
            await self._claims.set(namespace, full_key, payload, seconds)
        return first

    async def delete(self, namespace: str, key: str) -> None:
        """Remove `key` from `namespace` (no error if absent)."""
        full_key = self._key(namespace, key)
        memory = self._memory

        async def from_redis() -> None:
            assert self._redis is not None
            await self._redis.delete(full_key)

        await self._claims.delete(namespace, full_key)
        await self._via(from_redis, lambda: memory.delete(namespace, full_key))

    async def delete_prefix(self, namespace: str, prefix: str) -> int:
        """Remove every key of `namespace` that starts with `prefix`; returns how many were removed.

        For purging a workspace: keys built with `workspace_key` share its `workspace_prefix`. In Redis this
        scans the keyspace (a rare administrative action, not for the request path). During a Redis outage only
        the local fallback is cleared; what stays in Redis expires with its TTL.
        """
        if not is_plain_key(prefix):  # the plain alphabet has none of Redis's glob characters
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

        await self._claims.delete_prefix(namespace, full_prefix)
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
        await self._claims.clear()

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
