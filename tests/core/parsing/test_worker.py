"""Parsing in worker processes: time and memory limits, replaced workers, clear errors, a warm pool."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pickle
import time
from collections import OrderedDict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from core import messages
from core.errors import (
    FileTooLargeError,
    FileTypeNotAllowedError,
    InvalidSpecError,
    ParseMemoryError,
    ParseTimeoutError,
)
from core.models import ApiSpec, SpecFormat
from core.parsing.worker import DEFAULT_TARGET, ParsedCache, ParsedDiskCache, ParsePool, _Worker, parser_fingerprint
from tests.core.parsing.hostile_parsers import PLANTED_SECRET
from tests.shutdown import ends_when_everything_is_cancelled

EXAMPLE = Path(__file__).resolve().parents[3] / "core" / "examples" / "bookshop_openapi.yaml"
HOOKS = "tests.core.parsing.hostile_parsers:parse"
LIMITS = {"max_bytes": 20 * 1024 * 1024, "allowed_extensions": frozenset({"yaml", "json", "md", "txt"})}


def big_openapi_yaml(operations: int) -> bytes:
    """A large but ordinary OpenAPI document: about 1.3 KB of YAML and over a millisecond of parsing per operation."""
    lines = ["openapi: 3.0.0", "info: {title: Big, version: '1'}", "paths:"]
    for i in range(operations):
        lines += [f"  /things{i}/{{id}}:", "    get:", f"      operationId: getThing{i}", f"      summary: Thing {i}"]
        lines += ["      parameters:", "        - {name: id, in: path, required: true, schema: {type: string}}"]
        query = "in: query, description: Filters., schema: {type: string}"
        lines += [f"        - {{name: f{j}, {query}}}" for j in range(6)]
        lines += ["      responses:", "        '200':", "          description: The thing.", "          content:"]
        lines += ["            application/json:", "              schema:", "                type: object"]
        lines += ["                properties:"] + [f"                  field{k}: {{type: string}}" for k in range(8)]
    return "\n".join(lines).encode()


def many_objects_json(count: int) -> bytes:
    """Three bytes per object in the file, over sixty per object once loaded: a file that is mostly memory."""
    return ("[" + "{}," * count + "{}]").encode()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def hostile_pool():
    pool = ParsePool(workers=1, timeout_seconds=2.0, memory_mb=400, target=HOOKS)
    await pool.start()
    yield pool
    await pool.aclose()


async def parse_example(pool: ParsePool, name: str = "bookshop.yaml"):
    return await pool.parse(name, EXAMPLE.read_bytes(), **LIMITS)


async def test_a_normal_upload_is_parsed_by_the_same_warm_worker(hostile_pool):
    [pid] = hostile_pool.pids
    with capture_logs() as logs:
        first = await parse_example(hostile_pool)
        second = await parse_example(hostile_pool, "chatty:bookshop.yaml")  # stray prints do not corrupt answers
    assert first == second
    assert (first.format, first.title, len(first.operations)) == (SpecFormat.OPENAPI3, "Bookshop API", 7)
    assert [e["pid"] for e in logs if e["event"] == "parse_done"] == [pid, pid]
    assert hostile_pool.pids == {pid}
    assert not [e for e in logs if e["event"] == "parse_worker_restarted"]


async def test_a_parser_stuck_in_a_loop_times_out_and_its_worker_is_replaced(hostile_pool):
    [old_pid] = hostile_pool.pids
    started = time.perf_counter()
    with capture_logs() as logs, pytest.raises(ParseTimeoutError) as caught:
        await hostile_pool.parse("spin.yaml", b"openapi: 3.0.0", **LIMITS)
    assert time.perf_counter() - started < 10
    assert caught.value.user_message == messages.parse_timeout("spin.yaml", 2.0)
    assert "took too long to read" in caught.value.user_message
    [timeout] = [e for e in logs if e["event"] == "parse_timeout"]
    assert (timeout["filename"], timeout["timeout_seconds"]) == ("spin.yaml", 2.0)
    [restart] = [e for e in logs if e["event"] == "parse_worker_restarted"]
    assert restart["reason"] == "timeout" and restart["old_pid"] == old_pid
    assert not alive(old_pid)
    assert hostile_pool.pids == {restart["new_pid"]}
    assert len((await parse_example(hostile_pool)).operations) == 7  # the next upload works


async def test_a_parser_that_keeps_allocating_hits_the_memory_limit(hostile_pool):
    [old_pid] = hostile_pool.pids
    with capture_logs() as logs, pytest.raises(ParseMemoryError) as caught:
        await hostile_pool.parse("hog.yaml", b"openapi: 3.0.0", **LIMITS)
    assert caught.value.user_message == messages.parse_memory_exceeded("hog.yaml")
    assert "took too much memory to read" in caught.value.user_message
    assert [e["filename"] for e in logs if e["event"] == "parse_memory_exceeded"] == ["hog.yaml"]
    [restart] = [e for e in logs if e["event"] == "parse_worker_restarted"]
    assert (restart["reason"], restart["old_pid"]) == ("memory", old_pid)
    assert not alive(old_pid)
    assert len((await parse_example(hostile_pool)).operations) == 7


async def test_an_unexpected_parser_exception_is_a_clear_message_and_a_logged_stack(hostile_pool):
    [pid] = hostile_pool.pids
    with capture_logs() as logs, pytest.raises(InvalidSpecError) as caught:
        await hostile_pool.parse("explode.yaml", b"openapi: 3.0.0", **LIMITS)
    assert caught.value.user_message == messages.spec_unreadable("explode.yaml")
    assert "couldn't read" in caught.value.user_message
    [crash] = [e for e in logs if e["event"] == "parse_crashed"]
    assert crash["error"] == "KeyError"
    assert any("hostile_parsers.py" in frame and "in parse" in frame for frame in crash["frames"])
    assert PLANTED_SECRET not in str(logs) and PLANTED_SECRET not in caught.value.user_message
    assert hostile_pool.pids == {pid}  # an exception leaves the worker healthy: it is kept
    assert len((await parse_example(hostile_pool)).operations) == 7


async def test_an_answer_with_unexpected_classes_is_refused(hostile_pool):
    [old_pid] = hostile_pool.pids
    with capture_logs() as logs, pytest.raises(InvalidSpecError) as caught:
        await hostile_pool.parse("smuggle.yaml", b"openapi: 3.0.0", **LIMITS)
    assert caught.value.user_message == messages.spec_unreadable("smuggle.yaml")
    [refused] = [e for e in logs if e["event"] == "parse_answer_refused"]
    assert "fractions.Fraction is not allowed" in refused["problem"]
    assert [e["reason"] for e in logs if e["event"] == "parse_worker_restarted"] == ["bad_answer"]
    assert old_pid not in hostile_pool.pids
    assert len((await parse_example(hostile_pool)).operations) == 7


async def test_user_facing_parser_errors_come_back_unchanged(hostile_pool):
    with pytest.raises(InvalidSpecError) as caught:
        await hostile_pool.parse("broken.json", b'{"openapi": "3.0.0",', **LIMITS)
    assert caught.value.user_message.startswith("`broken.json` isn't valid JSON at line 1")


async def test_a_large_spec_past_the_time_limit_is_stopped_with_the_real_parser():
    # An ordinary 1.3 MB spec takes over a second to parse here; the limit is a tenth of that. No parse cache, so
    # the last parse goes through the replacement worker.
    pool = ParsePool(workers=1, timeout_seconds=0.15, memory_mb=1500, cache_bytes=0)
    try:
        await pool.start()
        # Right after start the worker is still importing, which does not count against the limit.
        assert len((await pool.parse("bookshop.yaml", EXAMPLE.read_bytes(), **LIMITS)).operations) == 7
        with pytest.raises(ParseTimeoutError):
            await pool.parse("big.yaml", big_openapi_yaml(1000), **LIMITS)
        assert len((await pool.parse("bookshop.yaml", EXAMPLE.read_bytes(), **LIMITS)).operations) == 7
    finally:
        await pool.aclose()


async def test_a_file_that_needs_more_memory_than_allowed_is_refused_with_the_real_parser():
    pool = ParsePool(workers=1, timeout_seconds=30, memory_mb=150)
    try:
        with pytest.raises(ParseMemoryError):  # 7.5 MB of `{},` is over 150 MB of Python objects
            await pool.parse("objects.json", many_objects_json(2_500_000), **LIMITS)
        spec = await pool.parse("objects.json", json.dumps(json.loads(EXAMPLE_JSON)).encode(), **LIMITS)
        assert spec.title == "Tiny"
    finally:
        await pool.aclose()


EXAMPLE_JSON = json.dumps(
    {
        "openapi": "3.0.0",
        "info": {"title": "Tiny", "version": "1"},
        "paths": {"/ping": {"get": {"responses": {"200": {"description": "pong"}}}}},
    }
)


async def test_parses_beyond_the_worker_count_wait_their_turn():
    one = ParsePool(workers=1, timeout_seconds=10, memory_mb=400, target=HOOKS)
    two = ParsePool(workers=2, timeout_seconds=10, memory_mb=400, target=HOOKS)
    try:
        await asyncio.gather(one.start(), two.start())
        await asyncio.gather(parse_example(one), parse_example(two), parse_example(two))  # imports done
        started = time.perf_counter()
        await asyncio.gather(*(parse_example(one, f"slow:bookshop{i}.yaml") for i in range(2)))
        assert time.perf_counter() - started >= 0.8  # one worker: the second 0.4 s parse waited for the first
        assert len(two.pids) == 2
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_cancelled_parse_does_not_leave_its_worker_busy(hostile_pool):
    [old_pid] = hostile_pool.pids
    task = asyncio.create_task(hostile_pool.parse("spin.yaml", b"x", **LIMITS))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(old_pid)
    assert len((await parse_example(hostile_pool)).operations) == 7
    assert old_pid not in hostile_pool.pids


async def test_closing_the_pool_stops_its_workers():
    pool = ParsePool(workers=2, timeout_seconds=5, memory_mb=400)
    await pool.start()
    pids = pool.pids
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    await pool.aclose()
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        await parse_example(pool)


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_enum_members_pickle_by_value_so_the_allow_list_admits_them(protocol):
    # Debian bookworm's Python 3.11.2 (the image's) pickles plain enum members as getattr(Class, name).
    from core.models import ItemKind, SpecFormat
    from core.parsing.worker import _AllowListUnpickler

    for member in [*SpecFormat, *ItemKind]:
        data = pickle.dumps(member, protocol=protocol)
        assert b"builtins" not in data and b"getattr" not in data
        assert _AllowListUnpickler(io.BytesIO(data)).load() is member


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_parsed_specs_with_value_types_pass_the_allow_list(protocol):
    from core.parsing.loader import load_spec
    from core.parsing.worker import _AllowListUnpickler

    spec = load_spec("bookshop.yaml", EXAMPLE.read_bytes(), **LIMITS)
    typed = [f.value_type for op in spec.operations if op.request_body for f in op.request_body.fields]
    assert typed and all(value_type.types for value_type in typed)
    assert _AllowListUnpickler(io.BytesIO(pickle.dumps(spec, protocol=protocol))).load() == spec


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_parsed_specs_with_scoped_security_pass_the_allow_list(protocol):
    from core.models import SecurityRequirement
    from core.parsing.loader import load_spec
    from core.parsing.worker import _AllowListUnpickler

    spec_text = json.dumps(
        {
            "swagger": "2.0",
            "info": {"title": "Chat", "version": "1"},
            "securityDefinitions": {"chatAuth": {"type": "oauth2", "flow": "accessCode", "scopes": {"chat:write": ""}}},
            "paths": {"/chat.postMessage": {"post": {"security": [{"chatAuth": ["chat:write"]}], "responses": {}}}},
        }
    )
    spec = load_spec("chat.json", spec_text.encode(), **LIMITS)
    assert spec.operations[0].security == ((SecurityRequirement("chatAuth", ("chat:write",)),),)
    assert _AllowListUnpickler(io.BytesIO(pickle.dumps(spec, protocol=protocol))).load() == spec


async def test_a_file_parsed_before_is_served_from_the_cache_with_the_upload_checks_repeated():
    pool = ParsePool(workers=1, timeout_seconds=30, memory_mb=1500)
    data = EXAMPLE.read_bytes()
    try:
        with capture_logs() as logs:
            first = await parse_example(pool)
            again = await parse_example(pool)
            renamed = await parse_example(pool, "shop.yaml")  # the name can decide the result: parsed again
            edited = await pool.parse("bookshop.yaml", data.replace(b"Bookshop API", b"Book API"), **LIMITS)
        parses = [(e["event"], e["filename"]) for e in logs if e["event"] in ("parse_done", "parse_cached")]
        assert parses == [
            ("parse_done", "bookshop.yaml"),
            ("parse_cached", "bookshop.yaml"),
            ("parse_done", "shop.yaml"),
            ("parse_done", "bookshop.yaml"),
        ]
        assert again is first and renamed == first and edited.title == "Book API"
        assert (pool.cache.hits, pool.cache.misses, len(pool.cache)) == (1, 3, 3)
        # Limits set since the first parse still apply to a cached file.
        with pytest.raises(FileTooLargeError):
            await pool.parse("bookshop.yaml", data, max_bytes=len(data) - 1, allowed_extensions=frozenset({"yaml"}))
        with pytest.raises(FileTypeNotAllowedError):
            await pool.parse("bookshop.yaml", data, max_bytes=len(data), allowed_extensions=frozenset({"json"}))
    finally:
        await pool.aclose()


async def test_a_file_that_failed_to_parse_is_parsed_again_and_never_cached():
    pool = ParsePool(workers=1, timeout_seconds=30, memory_mb=1500)
    try:
        for _ in range(2):
            with pytest.raises(InvalidSpecError):
                await pool.parse("broken.json", b'{"openapi": "3.0.0",', **LIMITS)
        assert (pool.cache.hits, pool.cache.misses, len(pool.cache)) == (0, 2, 0)
    finally:
        await pool.aclose()


def test_only_the_default_parser_is_cached():
    assert ParsePool(target=HOOKS).cache is None  # a test's parser may not make the checks a hit repeats
    assert ParsePool(cache_bytes=0).cache is None
    assert ParsePool().cache is not None


def _spec(index: int) -> ApiSpec:
    return ApiSpec(SpecFormat.OPENAPI3, f"spec {index}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 120), st.booleans()), max_size=300))
def test_the_parse_cache_stays_within_its_bound_and_drops_the_least_recently_used(operations):
    cache = ParsedCache(max_bytes=100)
    model: OrderedDict[tuple[str, str], int] = OrderedDict()  # key → size, least recently used first
    for index, size, is_read in operations:
        key = (f"{index:064x}", "spec.yaml")
        if is_read:
            found = cache.get(key)
            assert (found is not None) == (key in model)
            if found is not None:
                assert found == _spec(index)
                model.move_to_end(key)
            continue
        cache.put(key, _spec(index), size)
        if size > 100:
            continue  # never kept: it would not fit
        model.pop(key, None)
        model[key] = size
        while sum(model.values()) > 100:
            model.popitem(last=False)
        assert cache.size == sum(model.values()) <= 100
        assert len(cache) == len(model)


async def test_a_new_pool_on_the_same_data_dir_parses_nothing_parsed_before(tmp_path: Path):
    """A restart (a new pool, nothing in memory) finds earlier results on disk and starts no worker for them."""
    data = EXAMPLE.read_bytes()
    first_pool = ParsePool(workers=1, timeout_seconds=30, memory_mb=1500, disk_cache=ParsedDiskCache(tmp_path))
    try:
        first = await parse_example(first_pool)
        with pytest.raises(InvalidSpecError):
            await first_pool.parse("broken.json", b'{"openapi": "3.0.0",', **LIMITS)
    finally:
        await first_pool.aclose()
    [entry] = [p for p in tmp_path.rglob("*") if p.is_file()]  # the failure was not kept
    assert entry.parent.name == parser_fingerprint()

    pool = ParsePool(workers=1, timeout_seconds=30, memory_mb=1500, disk_cache=ParsedDiskCache(tmp_path))
    try:
        with capture_logs() as logs:
            again = await parse_example(pool)
            twice = await parse_example(pool)  # now from memory
        assert again == first and twice is again
        assert [e["event"] for e in logs if e["event"].startswith("parse_")] == ["parse_cached", "parse_cached"]
        assert pool.pids == set()  # no worker was ever started
        assert pool.disk_cache is not None and (pool.disk_cache.hits, pool.disk_cache.misses) == (1, 0)
        with pytest.raises(FileTooLargeError):  # the upload checks still apply to a result from disk
            await pool.parse("bookshop.yaml", data, max_bytes=len(data) - 1, allowed_extensions=frozenset({"yaml"}))
    finally:
        await pool.aclose()


class _Planted:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch planted",))


@pytest.mark.parametrize(
    "planted",
    [
        pickle.dumps(("ok", _Planted())),  # would run a command if unpickled without the allow-list
        pickle.dumps(("rejected", "InvalidSpecError", "no")),  # not a success
        b"\x80\x05not a pickle",
        b"",
    ],
)
async def test_a_planted_or_damaged_disk_entry_is_a_miss_and_removed(tmp_path: Path, planted: bytes, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = ParsedDiskCache(tmp_path / "cache")
    key = ParsedCache.key("bookshop.yaml", EXAMPLE.read_bytes())
    cache._path(key).write_bytes(planted)
    pool = ParsePool(workers=1, timeout_seconds=30, memory_mb=1500, disk_cache=cache)
    try:
        with capture_logs():
            spec = await parse_example(pool)  # parsed for real instead
        assert spec.title and (cache.hits, cache.misses) == (0, 1)
        assert not (tmp_path / "planted").exists()
        assert cache.get(key) is not None  # the parse replaced the bad entry
    finally:
        await pool.aclose()


def test_results_of_another_parser_version_are_deleted_and_never_read(tmp_path: Path):
    old = ParsedDiskCache(tmp_path, version="0123456789abcdef")
    key = ParsedCache.key("bookshop.yaml", b"x")
    old.put(key, pickle.dumps(("ok", _spec(1))))
    assert old.get(key) == (_spec(1), len(pickle.dumps(("ok", _spec(1)))))
    new = ParsedDiskCache(tmp_path)
    assert new.get(key) is None
    assert [p.name for p in tmp_path.iterdir()] == [parser_fingerprint()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(1, 60)), min_size=1, max_size=40))
def test_the_disk_cache_stays_within_its_bound(entries):
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        cache = ParsedDiskCache(Path(directory), max_bytes=150, version="v")
        for index, padding in entries:
            answer = pickle.dumps(("ok", _spec(index), "x" * padding))
            cache.put((f"{index:064x}", "spec.yaml"), answer)
            held = sum(p.stat().st_size for p in (Path(directory) / "v").glob("*.pickle"))
            assert held <= 150
        assert not list((Path(directory) / "v").glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("steps", range(12))
async def test_a_worker_start_cancelled_at_shutdown_ends_at_once(steps: int) -> None:
    """On the way out every task is cancelled at once; a worker starting then must not hold the process.

    With `asyncio.create_subprocess_exec` 5 of these 12 cancellation points waited forever (Python 3.11).
    """
    task = asyncio.create_task(_Worker.start(1500, DEFAULT_TARGET, 60.0))
    assert await ends_when_everything_is_cancelled(task, steps), f"the start hung when cancelled at step {steps}"
    if not task.cancelled() and task.exception() is None:
        worker = task.result()
        await worker.kill()
        assert not worker.alive
