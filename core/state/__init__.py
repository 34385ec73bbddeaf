"""State shared between bot instances: caches, thread memory and event de-duplication, in Redis or in memory.

- `core.state.redis`: the Redis plumbing (clients with short timeouts, the key format, and `RedisCircuit`, which
  serves a local fallback during an outage and goes back to Redis by itself; the rate limiter reuses it).
- `core.state.caches`: `SharedState`, the namespaced bounded caches (ports `StateStore`, `StateBackend`), and
  workspace keys.
- `core.state.threads`: `ConversationMemory`, the last turns of each thread.
"""

from core.state.caches import (
    DEFAULT_NAMESPACE_SIZE,
    NS_ANSWERS,
    NS_EMBEDDINGS,
    NS_EVENTS,
    NS_PHRASINGS,
    NS_RERANKS,
    NS_THREADS,
    SharedState,
    StateBackend,
    StateStore,
    workspace_key,
    workspace_prefix,
)
from core.state.redis import (
    DEFAULT_KEY_PREFIX,
    REDIS_ERRORS,
    REDIS_TIMEOUT_SECONDS,
    RETRY_INTERVAL_SECONDS,
    RedisCircuit,
    redis_client_from_url,
    redis_target,
    safe_key,
)
from core.state.threads import ConversationMemory, Turn

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_NAMESPACE_SIZE",
    "NS_ANSWERS",
    "NS_EMBEDDINGS",
    "NS_EVENTS",
    "NS_PHRASINGS",
    "NS_RERANKS",
    "NS_THREADS",
    "REDIS_ERRORS",
    "REDIS_TIMEOUT_SECONDS",
    "RETRY_INTERVAL_SECONDS",
    "ConversationMemory",
    "RedisCircuit",
    "SharedState",
    "StateBackend",
    "StateStore",
    "Turn",
    "redis_client_from_url",
    "redis_target",
    "safe_key",
    "workspace_key",
    "workspace_prefix",
]
