"""SharedState and ConversationMemory, in memory mode and against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from core.config import Settings
from core.errors import ConfigError
from core.state import (
    NS_ANSWERS,
    NS_EMBEDDINGS,
    NS_EVENTS,
    NS_THREADS,
    ConversationMemory,
    SharedState,
    Turn,
    redis_target,
    safe_key,
    workspace_key,
    workspace_prefix,
)
from tests.redis_server import RedisServer, start_redis

# --- fixtures (candidates for tests/conftest.py: redis_server, redis_url, own_redis) ---


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain redis-py client on the test's Redis, to look behind SharedState's back."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


StateFactory = Callable[..., SharedState]


@pytest.fixture(params=["memory", "redis"])
async def make_state(request: pytest.FixtureRequest) -> AsyncIterator[StateFactory]:
    """Build SharedStates on the parametrised backend; all closed after the test."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    built: list[SharedState] = []

    def factory(**kwargs: object) -> SharedState:
        state = SharedState(url, **kwargs)  # type: ignore[arg-type]
        built.append(state)
        return state

    yield factory
    for state in built:
        await state.aclose()


# --- both backends ---


async def test_set_get_delete(make_state: StateFactory) -> None:
    state = make_state()
    assert await state.get(NS_ANSWERS, "q1") is None
    await state.set(NS_ANSWERS, "q1", {"text": "use POST /refunds", "score": 0.9, "tags": ["a"]})
    assert await state.get(NS_ANSWERS, "q1") == {"text": "use POST /refunds", "score": 0.9, "tags": ["a"]}
    await state.delete(NS_ANSWERS, "q1")
    assert await state.get(NS_ANSWERS, "q1") is None
    await state.delete(NS_ANSWERS, "never-set")  # no error


async def test_values_are_json(make_state: StateFactory) -> None:
    state = make_state()
    await state.set(NS_EMBEDDINGS, "v", (0.25, -1.5, 3))
    assert await state.get(NS_EMBEDDINGS, "v") == [0.25, -1.5, 3]  # JSON: tuples come back as lists
    with pytest.raises(TypeError):
        await state.set(NS_ANSWERS, "bad", object())


async def test_ttl_expiry(make_state: StateFactory) -> None:
    state = make_state()
    await state.set(NS_ANSWERS, "short", "soon gone", ttl=0.05)
    await state.set(NS_ANSWERS, "forever", "stays", ttl=None)
    await state.set(NS_ANSWERS, "zero", "stays too", ttl=0)  # <= 0 means no expiry
    assert await state.get(NS_ANSWERS, "short") == "soon gone"
    await asyncio.sleep(0.15)
    assert await state.get(NS_ANSWERS, "short") is None
    assert await state.get(NS_ANSWERS, "forever") == "stays"
    assert await state.get(NS_ANSWERS, "zero") == "stays too"


async def test_set_overwrites_and_resets_ttl(make_state: StateFactory) -> None:
    state = make_state()
    await state.set(NS_ANSWERS, "k", 1, ttl=0.05)
    await state.set(NS_ANSWERS, "k", 2)
    await asyncio.sleep(0.15)
    assert await state.get(NS_ANSWERS, "k") == 2


async def test_add_is_once_only(make_state: StateFactory) -> None:
    state = make_state()
    results = await asyncio.gather(*(state.add(NS_EVENTS, "Ev123", 1, ttl=60) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]
    assert await state.add(NS_EVENTS, "Ev124", 1, ttl=60) is True


async def test_add_again_after_expiry(make_state: StateFactory) -> None:
    state = make_state()
    assert await state.add(NS_EVENTS, "e", 1, ttl=0.05)
    assert not await state.add(NS_EVENTS, "e", 1, ttl=0.05)
    await asyncio.sleep(0.15)
    assert await state.add(NS_EVENTS, "e", 1, ttl=0.05)


async def test_namespaces_are_separate(make_state: StateFactory) -> None:
    state = make_state()
    await state.set(NS_ANSWERS, "same", "answer")
    await state.set(NS_EMBEDDINGS, "same", [1.0])
    assert await state.get(NS_ANSWERS, "same") == "answer"
    assert await state.get(NS_EMBEDDINGS, "same") == [1.0]


async def test_user_text_keys_need_no_escaping(make_state: StateFactory) -> None:
    state = make_state()
    keys = ["how do I refund a charge?", "x" * 5000, "naïve café 🤖", "a:b*c[d]\n\x00", "#" + "0" * 64, ""]
    for i, key in enumerate(keys):
        await state.set(NS_ANSWERS, key, i)
    for i, key in enumerate(keys):
        assert await state.get(NS_ANSWERS, key) == i


async def test_stats_count_hits_and_misses(make_state: StateFactory) -> None:
    state = make_state(sizes={NS_ANSWERS: 10})
    assert state.stats() == {NS_ANSWERS: {"hits": 0.0, "misses": 0.0, "hit_rate": 0.0}}
    await state.set(NS_ANSWERS, "a", "x")
    await state.get(NS_ANSWERS, "a")
    await state.get(NS_ANSWERS, "a")
    await state.get(NS_ANSWERS, "a")
    await state.get(NS_ANSWERS, "missing")
    await state.get(NS_EMBEDDINGS, "missing")
    stats = state.stats()
    assert stats[NS_ANSWERS] == {"hits": 3.0, "misses": 1.0, "hit_rate": 0.75}
    assert stats[NS_EMBEDDINGS] == {"hits": 0.0, "misses": 1.0, "hit_rate": 0.0}


async def test_invalid_namespace_is_a_bug(make_state: StateFactory) -> None:
    state = make_state()
    with pytest.raises(ValueError):
        await state.set("Answers With Spaces", "k", 1)
    with pytest.raises(ValueError):
        SharedState(sizes={"bad ns": 1})


# --- memory mode ---


async def test_memory_lru_bound_per_namespace() -> None:
    state = SharedState(sizes={NS_ANSWERS: 2, NS_EMBEDDINGS: 1})
    await state.set(NS_ANSWERS, "a", 1)
    await state.set(NS_ANSWERS, "b", 2)
    assert await state.get(NS_ANSWERS, "a") == 1  # a is now the most recently used
    await state.set(NS_ANSWERS, "c", 3)  # evicts b, the least recently used
    assert await state.get(NS_ANSWERS, "b") is None
    assert await state.get(NS_ANSWERS, "a") == 1
    assert await state.get(NS_ANSWERS, "c") == 3
    await state.set(NS_EMBEDDINGS, "e1", [1])
    await state.set(NS_EMBEDDINGS, "e2", [2])
    assert await state.get(NS_EMBEDDINGS, "e1") is None
    assert await state.get(NS_ANSWERS, "a") == 1  # other namespaces unaffected
    await state.aclose()


async def test_memory_bound_holds_under_many_writes() -> None:
    state = SharedState(sizes={NS_ANSWERS: 50})
    for i in range(1000):
        await state.set(NS_ANSWERS, f"k{i}", i, ttl=60)
    present = [i for i in range(1000) if await state.get(NS_ANSWERS, f"k{i}") is not None]
    assert present == list(range(950, 1000))
    await state.aclose()


async def test_memory_default_size_and_zero_size() -> None:
    state = SharedState(sizes={NS_ANSWERS: 0}, default_size=3)
    await state.set(NS_ANSWERS, "a", 1)  # size 0: caching disabled
    assert await state.get(NS_ANSWERS, "a") is None
    for i in range(5):
        await state.set("other", str(i), i)
    assert [await state.get("other", str(i)) for i in range(5)] == [None, None, 2, 3, 4]
    await state.aclose()


async def test_memory_values_are_copies() -> None:
    state = SharedState()
    value = {"list": [1]}
    await state.set(NS_ANSWERS, "k", value)
    value["list"].append(2)
    got = await state.get(NS_ANSWERS, "k")
    assert got is not None
    got["list"].append(3)
    assert await state.get(NS_ANSWERS, "k") == {"list": [1]}


def test_from_settings_memory() -> None:
    settings = Settings(_env_file=None, query_cache_size=7, embedding_cache_size=9)  # type: ignore[call-arg]
    state = SharedState.from_settings(settings)
    assert state.backend == "memory"
    assert state.redis_client is None
    assert set(state.stats()) == {NS_ANSWERS, NS_EMBEDDINGS}


def test_safe_key() -> None:
    assert safe_key("T123:U456") == "T123:U456"
    hashed = safe_key("how do I refund?")
    assert hashed.startswith("#") and len(hashed) == 65
    assert safe_key("x" * 65) != safe_key("x" * 66)
    assert safe_key(hashed) != hashed  # '#' is never a plain key, so hashed keys can't collide with plain ones


async def test_delete_prefix_removes_one_workspace_only(make_state: StateFactory) -> None:
    state = make_state()
    for i in range(30):
        await state.set(NS_ANSWERS, workspace_key("slack:T1", f"question {i}"), i, ttl=60)
        await state.set(NS_ANSWERS, workspace_key("slack:T10", f"question {i}"), i, ttl=60)
    await state.set(NS_THREADS, workspace_key("slack:T1", "C1:1700.1"), ["turn"])
    assert safe_key(workspace_key("slack:T1", "x")) == workspace_key("slack:T1", "x")  # stored as-is, never hashed

    assert await state.delete_prefix(NS_ANSWERS, workspace_prefix("slack:T1")) == 30
    assert await state.get(NS_ANSWERS, workspace_key("slack:T1", "question 3")) is None
    assert await state.get(NS_ANSWERS, workspace_key("slack:T10", "question 3")) == 3  # another workspace
    assert await state.get(NS_THREADS, workspace_key("slack:T1", "C1:1700.1")) == ["turn"]  # another namespace
    assert await state.delete_prefix(NS_ANSWERS, workspace_prefix("slack:T1")) == 0
    with pytest.raises(ValueError):
        await state.delete_prefix(NS_ANSWERS, "*")


async def test_delete_prefix_reaches_what_another_instance_cached(redis_url: str) -> None:
    one, two = SharedState(redis_url), SharedState(redis_url)
    await one.set(NS_ANSWERS, workspace_key("discord:42", "q"), "cached by one", ttl=60)
    assert await two.delete_prefix(NS_ANSWERS, workspace_prefix("discord:42")) == 1
    assert await one.get(NS_ANSWERS, workspace_key("discord:42", "q")) is None
    await one.aclose()
    await two.aclose()


def test_redis_target_hides_credentials() -> None:
    assert redis_target("redis://user:hunter2@cache.internal:6380/3") == "cache.internal:6380/3"
    assert redis_target("rediss://:hunter2@cache.internal") == "cache.internal:6379/0"
    assert "hunter2" not in redis_target("not a url hunter2")


# --- Redis: shared between instances ---


async def test_two_instances_share_values(redis_url: str) -> None:
    one, two = SharedState(redis_url), SharedState(redis_url)
    await one.set(NS_ANSWERS, "how do I refund a charge?", {"answer": "POST /refunds"}, ttl=60)
    assert await two.get(NS_ANSWERS, "how do I refund a charge?") == {"answer": "POST /refunds"}
    await two.delete(NS_ANSWERS, "how do I refund a charge?")
    assert await one.get(NS_ANSWERS, "how do I refund a charge?") is None
    await one.aclose()
    await two.aclose()


async def test_add_is_once_only_across_instances(redis_url: str) -> None:
    states = [SharedState(redis_url) for _ in range(3)]
    results = await asyncio.gather(*(s.add(NS_EVENTS, f"Ev{i}", 1, ttl=60) for s in states for i in range(10)))
    assert sum(results) == 10  # each event id wins exactly once, whichever instance saw it first
    for state in states:
        await state.aclose()


async def test_redis_layout_is_namespaced_json(redis_url: str, raw_redis: Redis) -> None:
    state = SharedState(redis_url, key_prefix="bot1")
    await state.set(NS_ANSWERS, "T1:short", {"a": 1}, ttl=60)
    await state.set(NS_ANSWERS, "a long question " * 10, "x")
    keys = sorted(k.decode() for k in await raw_redis.keys("*"))
    assert keys[0].startswith("bot1:answers:#") and len(keys[0]) == len("bot1:answers:#") + 64
    assert keys[1] == "bot1:answers:T1:short"
    assert await raw_redis.get("bot1:answers:T1:short") == b'{"a":1}'  # portable JSON, never pickle
    assert 0 < await raw_redis.pttl("bot1:answers:T1:short") <= 60_000
    assert await raw_redis.ttl(keys[0]) == -1  # no TTL given: no expiry
    await state.aclose()


async def test_foreign_value_in_redis_reads_as_a_miss(redis_url: str, raw_redis: Redis) -> None:
    state = SharedState(redis_url)
    await raw_redis.set("apiassist:answers:k", b"\x80\x04pickled")
    with capture_logs() as logs:
        assert await state.get(NS_ANSWERS, "k") is None
    assert [e["event"] for e in logs] == ["shared_state_bad_value"]
    await state.aclose()


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type,call-arg]


async def test_from_settings_with_db_number_and_password() -> None:
    with start_redis(args=["--requirepass", "hunter2"]) as server:
        url = f"redis://:hunter2@127.0.0.1:{server.port}/3"
        with capture_logs() as logs:
            state = SharedState.from_settings(_settings(redis_url=url))
            assert state.backend == "redis"
            assert await state.ping()
            await state.set(NS_ANSWERS, "k", "v")
            assert await state.get(NS_ANSWERS, "k") == "v"
        assert logs and all("hunter2" not in str(entry) for entry in logs)
        raw = Redis(host="127.0.0.1", port=server.port, db=3, password="hunter2")
        assert await raw.get("apiassist:answers:k") == b'"v"'  # landed in database 3
        await raw.aclose()
        await state.aclose()

        wrong = SharedState(f"redis://:wrong@127.0.0.1:{server.port}/3")
        with capture_logs() as logs:
            await wrong.set(NS_ANSWERS, "k", "local")  # auth failure is an outage: served locally
            assert await wrong.get(NS_ANSWERS, "k") == "local"
        assert [e["event"] for e in logs] == ["shared_state_degraded"]
        assert "wrong" not in str(logs)
        await wrong.aclose()


def test_invalid_redis_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        SharedState("http://:hunter2@cache.internal:6379")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError):
        SharedState("redis://cache.internal:notaport")


async def test_unix_socket_url(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    with start_redis(args=["--unixsocket", str(socket_path)]) as server:
        state = SharedState(f"unix://{socket_path}?db=1")
        await state.set(NS_ANSWERS, "k", "over a unix socket")
        assert not state.degraded
        raw = Redis(host="127.0.0.1", port=server.port, db=1)
        assert await raw.get("apiassist:answers:k") == b'"over a unix socket"'
        await raw.aclose()
        await state.aclose()


async def test_aclose_is_idempotent_and_warning_free(redis_url: str, recwarn: pytest.WarningsRecorder) -> None:
    state = SharedState(redis_url)
    await state.set(NS_ANSWERS, "k", 1, ttl=5.5)
    await state.aclose()
    await state.aclose()
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


# --- Redis outage and recovery ---


async def test_redis_outage_degrades_to_memory_and_recovers(own_redis: RedisServer) -> None:
    state = SharedState(own_redis.url, sizes={NS_ANSWERS: 100}, retry_interval=0.1)
    other = SharedState(own_redis.url)
    await state.set(NS_ANSWERS, "before", "in redis")
    assert await other.get(NS_ANSWERS, "before") == "in redis"

    with capture_logs() as logs:
        own_redis.stop()  # SIGKILL: Redis is gone mid-run
        await state.set(NS_ANSWERS, "during", "in memory")
        assert await state.get(NS_ANSWERS, "during") == "in memory"
        assert await state.add(NS_EVENTS, "Ev1", 1, ttl=60)
        assert not await state.add(NS_EVENTS, "Ev1", 1, ttl=60)
        assert state.degraded
        assert not await state.ping()
        for i in range(20):  # keeps answering; no further warnings for the same outage
            await state.set(NS_ANSWERS, f"k{i}", i)
        await asyncio.sleep(0.15)
        await state.get(NS_ANSWERS, "during")  # a retry that fails again: still the same outage
    assert [e["event"] for e in logs] == ["shared_state_degraded"]
    assert logs[0]["log_level"] == "warning"

    own_redis.start()  # same port; the data is gone (nothing persisted)
    await asyncio.sleep(0.15)  # past the retry interval
    with capture_logs() as logs:
        await state.set(NS_ANSWERS, "after", "in redis again")
    assert [e["event"] for e in logs] == ["shared_state_recovered"]
    assert not state.degraded
    assert await other.get(NS_ANSWERS, "after") == "in redis again"
    assert await state.get(NS_ANSWERS, "during") is None  # outage-only local values are dropped
    await state.aclose()
    await other.aclose()


async def test_second_outage_logs_again(own_redis: RedisServer) -> None:
    state = SharedState(own_redis.url, retry_interval=0.05)
    with capture_logs() as logs:
        for _ in range(2):
            own_redis.stop()
            await state.set(NS_ANSWERS, "k", 1)
            own_redis.start()
            await asyncio.sleep(0.1)
            await state.set(NS_ANSWERS, "k", 2)
    assert [e["event"] for e in logs] == [
        "shared_state_degraded",
        "shared_state_recovered",
        "shared_state_degraded",
        "shared_state_recovered",
    ]
    await state.aclose()


async def test_redis_unreachable_from_the_start() -> None:
    with start_redis() as server:
        url = server.url
    state = SharedState(url, retry_interval=60)  # the server is already gone
    with capture_logs() as logs:
        await state.set(NS_ANSWERS, "k", "v")
        assert await state.get(NS_ANSWERS, "k") == "v"
    assert [e["event"] for e in logs] == ["shared_state_degraded"]
    await state.aclose()


# --- ConversationMemory ---


def _turn(i: int) -> Turn:
    return Turn(f"question {i}", f"answer {i}", specs=("petstore",), citations=(f"GET /pets/{i}",))


async def test_conversation_memory_keeps_last_turns(make_state: StateFactory) -> None:
    memory = ConversationMemory(make_state(), max_turns=3, ttl=60)
    assert await memory.history("slack:T1:C1:1700.1") == []
    for i in range(5):
        await memory.remember("slack:T1:C1:1700.1", _turn(i))
    assert await memory.history("slack:T1:C1:1700.1") == [_turn(2), _turn(3), _turn(4)]
    assert await memory.history("slack:T1:C1:other") == []
    await memory.forget("slack:T1:C1:1700.1")
    assert await memory.history("slack:T1:C1:1700.1") == []


async def test_conversation_memory_expires(make_state: StateFactory) -> None:
    memory = ConversationMemory(make_state(), ttl=0.05)
    await memory.remember("t", _turn(1))
    assert await memory.history("t") == [_turn(1)]
    await asyncio.sleep(0.15)
    assert await memory.history("t") == []


async def test_conversation_memory_shared_across_instances(redis_url: str) -> None:
    one, two = SharedState(redis_url), SharedState(redis_url)
    first, second = ConversationMemory(one, max_turns=2), ConversationMemory(two, max_turns=2)
    await first.remember("discord:G1:C1:9", _turn(1))
    await second.remember("discord:G1:C1:9", _turn(2))
    await first.remember("discord:G1:C1:9", _turn(3))
    assert await second.history("discord:G1:C1:9") == [_turn(2), _turn(3)]
    await one.aclose()
    await two.aclose()


async def test_conversation_memory_skips_unreadable_entries() -> None:
    state = SharedState()
    await state.set("threads", "t", [{"q": "ok", "a": "fine"}, {"nope": 1}, "junk"])
    with capture_logs():
        assert await ConversationMemory(state).history("t") == [Turn("ok", "fine")]


def test_turn_is_bounded_and_round_trips() -> None:
    turn = Turn("q" * 5000, "a" * 5000, specs=tuple(f"s{i}" for i in range(50)), citations=("c" * 1000,))
    assert len(turn.question) == 1000 and len(turn.answer_summary) == 1500
    assert turn.answer_summary.endswith("…")
    assert len(turn.specs) == 20 and len(turn.citations[0]) == 300
    assert Turn.from_json(turn.to_json()) == turn
    assert isinstance(Turn.from_json(turn.to_json()).specs, tuple)


async def test_an_event_claimed_during_an_outage_stays_claimed_after_it(own_redis: RedisServer) -> None:
    """A Slack retry reaching the same instance after Redis is back (or after Redis lost its data) is a duplicate."""
    state = SharedState(own_redis.url, retry_interval=0.05)
    assert await state.add(NS_EVENTS, "EvBefore", 1, ttl=60)  # claimed in Redis
    own_redis.stop()
    assert await state.add(NS_EVENTS, "EvDuring", 1, ttl=60)  # claimed in the local fallback
    own_redis.start()  # same port, empty: nothing was persisted
    await asyncio.sleep(0.1)  # past the retry interval
    await state.set(NS_ANSWERS, "k", 1)
    assert not state.degraded
    assert not await state.add(NS_EVENTS, "EvDuring", 1, ttl=60)
    assert not await state.add(NS_EVENTS, "EvBefore", 1, ttl=60)
    assert await state.add(NS_EVENTS, "EvAfter", 1, ttl=60)
    # Forgetting a claim (a workspace's purge) forgets it here too.
    await state.delete(NS_EVENTS, "EvDuring")
    assert await state.add(NS_EVENTS, "EvDuring", 1, ttl=60)
    await state.aclose()
