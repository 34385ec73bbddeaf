"""The registry on both engines: writes commit or roll back, the version ledger, originals, locks, migrations."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from core import database
from core import registry as registry_module
from core.documents import Document
from core.embedding import EmbeddingDiskCache
from core.errors import ConfigError
from core.models import ApiSpec, ItemKind, SpecFormat
from core.registry import SpecRecord, SpecRegistry, process_owner

WS = "slack:T1"
OTHER_WS = "slack:T2"

Opener = Callable[[], SpecRegistry]


@pytest.fixture(params=["sqlite", "postgres"])
def open_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the registry the way a (new) process would, on SQLite under tmp_path or on a fresh PostgreSQL db."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened: list[SpecRegistry] = []

    def open_() -> SpecRegistry:
        opened.append(SpecRegistry(tmp_path, url))
        return opened[-1]

    yield open_
    for registry in opened:
        registry.close()


def doc(i: int) -> Document:
    return Document(key=f"k{i}", kind=ItemKind.OPERATION, title=f"op {i}", embed_text=f"op {i}", lexical_text=f"op {i}")


class Exploding(Document):
    """A document whose serialisation fails: the write fails before a row is sent."""

    def to_payload(self) -> str:
        raise RuntimeError("disk full, say")


class NullPayload(Document):
    """A document stored as NULL: the NOT NULL constraint aborts the statement half-way through."""

    def to_payload(self) -> str:
        return None  # type: ignore[return-value]


def record(name: str, index_version: str, original: Path | str = "", workspace: str = WS) -> SpecRecord:
    return SpecRecord(
        workspace=workspace, name=name, format=SpecFormat.OPENAPI3, title="T", version="1", content_hash="h",
        index_version=index_version, operation_count=1, scheme_count=0, uploaded_by="U1", platform="slack",
        indexed_at=time.time(), original_path=str(original), filename="t.yaml",
        header=ApiSpec(format=SpecFormat.OPENAPI3, title="T"),
    )


def originals_held(registry: SpecRegistry, workspace: str = WS) -> list[str]:
    return registry.original_names(workspace)


@pytest.mark.parametrize(("bad", "error"), [(Exploding, RuntimeError), (NullPayload, sa.exc.IntegrityError)])
def test_a_failed_write_rolls_back_and_later_writes_still_commit(open_registry: Opener, bad: type, error: type) -> None:
    registry = open_registry()
    broken = [doc(0), doc(1), bad(**vars(doc(2))), doc(3)]
    with pytest.raises(error):
        registry.put_documents(WS, "v-broken", broken)
    registry.put_documents(WS, "v-good", [doc(0), doc(1)])
    registry.put(record("shop", "v-good", "abc.yaml"), original=b"spec")
    registry.close()

    reopened = open_registry()  # what a new process would read
    assert reopened.get(WS, "shop") is not None
    assert reopened.read_original(WS, "abc.yaml") == b"spec"
    assert [d.key for d in reopened.documents(WS, "v-good")] == ["k0", "k1"]
    assert reopened.count_documents(WS, "v-broken") == 0  # the rows written before the failure were rolled back


def test_embedding_cache_failed_write_rolls_back_and_later_writes_commit(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = EmbeddingDiskCache(path)
    with pytest.raises(ValueError):
        cache.put_many("m", {"a": [0.1, 0.2], "b": ["not", "a", "number"], "c": [0.3, 0.4]})  # type: ignore[list-item]
    cache.put_many("m", {"d": [0.5, 0.6]})
    cache.close()

    reopened = EmbeddingDiskCache(path)
    found = reopened.get_many("m", ["a", "b", "c", "d"])
    assert set(found) == {"d"}
    assert np.allclose(found["d"], [0.5, 0.6])


def test_sqlite_writes_wait_for_another_connections_lock(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    other = sqlite3.connect(tmp_path / database.SQLITE_FILE, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a moment
    releaser = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    releaser.start()
    try:
        registry.put(record("shop", "v1"))  # waits (busy timeout) instead of failing with "database is locked"
    finally:
        releaser.join()
    assert registry.get(WS, "shop") is not None
    registry.close()


def test_same_content_stored_concurrently_by_many_specs_is_one_original(open_registry: Opener) -> None:
    registry = open_registry()
    data = b"openapi: 3.0.0\n" * 50_000
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def put(i: int) -> None:
        barrier.wait()
        try:
            registry.put(record(f"spec{i}", f"v{i}", "abc.yaml"), original=data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(registry.list_records(WS)) == 8
    assert originals_held(registry) == ["abc.yaml"]
    assert registry.read_original(WS, "abc.yaml") == data


def test_release_original_keeps_one_another_record_uses(open_registry: Opener) -> None:
    registry = open_registry()
    registry.put(record("one", "v1", "abc.yaml"), original=b"x")
    registry.put(record("two", "v2", "abc.yaml"), original=b"x")
    registry.delete(WS, "one")
    assert registry.release_original(WS, "abc.yaml") is False
    assert originals_held(registry) == ["abc.yaml"]
    registry.delete(WS, "two")
    assert registry.release_original(WS, "abc.yaml") is True
    assert originals_held(registry) == []
    with pytest.raises(FileNotFoundError):
        registry.read_original(WS, "abc.yaml")


def test_originals_are_found_by_name_within_their_workspace_only(open_registry: Opener) -> None:
    registry = open_registry()
    registry.put(record("one", "v1", "/somewhere/else/abc.yaml"), original=b"x")
    assert registry.get(WS, "one").original_path == "abc.yaml"  # type: ignore[union-attr]
    assert registry.read_original(WS, "../../abc.yaml") == b"x"
    with pytest.raises(FileNotFoundError):
        registry.read_original(OTHER_WS, "abc.yaml")
    assert registry.release_original(OTHER_WS, "abc.yaml") is False
    registry.delete(WS, "one")
    assert registry.release_original(WS, "/elsewhere/abc.yaml") is True


def test_a_release_racing_a_put_of_the_same_content_never_strands_the_record(open_registry: Opener) -> None:
    """Forgetting spec `one` while `two` is stored from the same file: `two` always keeps its original."""
    registry = open_registry()
    for round_ in range(30):
        registry.put(record("one", f"v1-{round_}", "abc.yaml"), original=b"x")
        registry.delete(WS, "one")
        barrier = threading.Barrier(2)

        def put(barrier: threading.Barrier, version: str) -> None:
            barrier.wait()
            registry.put(record("two", version, "abc.yaml"), original=b"x")

        def release(barrier: threading.Barrier) -> None:
            barrier.wait()
            registry.release_original(WS, "abc.yaml")

        threads = [
            threading.Thread(target=put, args=(barrier, f"v2-{round_}")),
            threading.Thread(target=release, args=(barrier,)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert registry.read_original(WS, "abc.yaml") == b"x", f"round {round_}"
        registry.delete(WS, "two")
        registry.release_original(WS, "abc.yaml")


def test_sweep_originals_removes_only_old_unreferenced_ones(open_registry: Opener) -> None:
    registry = open_registry()
    registry.put(record("kept", "v1", "kept.yaml"), original=b"kept")
    registry.put(record("orphan", "v2", "orphan.yaml"), original=b"orphan")
    registry.put(record("young", "v3", "young.yaml", workspace=OTHER_WS), original=b"young")
    registry.delete(WS, "orphan")
    with database.write(registry.engine) as db:
        db.execute(sa.update(database.originals).where(database.originals.c.workspace == WS).values(touched_at=0))
        # Unreferenced but young, as a sweep that raced a `put` of the same content finds it (`delete` would
        # retire it: a forgotten spec's original is old at once).
        db.execute(sa.delete(database.specs).where(database.specs.c.workspace == OTHER_WS))

    assert registry.sweep_originals(older_than=3600) == 1
    assert originals_held(registry) == ["kept.yaml"] and originals_held(registry, OTHER_WS) == ["young.yaml"]
    assert registry.sweep_originals(older_than=3600) == 0


def test_stale_versions(open_registry: Opener) -> None:
    registry = open_registry()
    registry.begin_version(WS, "live", "v-live")
    registry.put(record("live", "v-live"))
    registry.begin_version(WS, "mine", "v-mine")  # this process is writing it right now
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host, _, _ = process_owner().split("|")
    now = time.time()
    rows = [
        ("v-crashed", f"{host}|{dead.stdout.strip()}|token", now),  # its writer exited
        ("v-elsewhere", "other-host|1|token", now),  # another replica, maybe still writing
        ("v-elsewhere-old", "other-host|1|token", now - 7200),  # another replica, long ago
    ]
    with database.write(registry.engine) as db:
        db.execute(
            sa.insert(database.index_versions),
            [{"workspace": WS, "index_version": v, "spec": "s", "owner": o, "created_at": c} for v, o, c in rows],
        )
    stale = registry.stale_versions(older_than=3600)
    assert sorted(stale) == [(WS, "v-crashed"), (WS, "v-elsewhere-old")]


def test_versions_replaced_or_forgotten_are_retired_for_the_sweep_whoever_wrote_them(open_registry: Opener) -> None:
    """A version stops being live in the transaction that retires it: if the process removing it then dies, the
    next sweep takes it (and its original, unless another record shares it) at once, even though its writer
    (another replica, or this process) is still running."""
    registry = open_registry()
    for spec, version, original in (("shop", "v1", "s1.yaml"), ("gone", "g1", "shared.yaml"),
                                    ("other", "o1", "shared.yaml")):
        registry.begin_version(WS, spec, version)  # this process is the writer: alive
        registry.put(record(spec, version, original), original=original.encode())
    registry.begin_version(OTHER_WS, "shop", "w1")
    registry.put(record("shop", "w1", "w1.yaml", workspace=OTHER_WS), original=b"w1")
    assert registry.stale_versions(older_than=3600) == []

    registry.begin_version(WS, "shop", "v2")
    registry.put(record("shop", "v2", "s2.yaml"), original=b"s2")
    registry.put(record("shop", "v2", "s2.yaml"))  # the same version again (a metadata update) retires nothing
    registry.delete(WS, "gone")
    assert sorted(registry.stale_versions(older_than=3600)) == [(WS, "g1"), (WS, "v1")]
    assert registry.sweep_originals(older_than=3600) == 1  # s1.yaml; shared.yaml is still `other`'s
    assert originals_held(registry) == ["s2.yaml", "shared.yaml"]

    registry.delete_specs(OTHER_WS)  # a purge whose vector store was down: its versions wait for the sweep
    assert sorted(registry.stale_versions(older_than=3600)) == [(WS, "g1"), (WS, "v1"), (OTHER_WS, "w1")]
    assert {r.index_version for r in registry.list_records(WS)} == {"v2", "o1"}


def test_an_earlier_process_with_our_pid_counts_as_gone() -> None:
    host, pid, _ = process_owner().split("|")
    assert registry_module._writer_gone(f"{host}|{pid}|an-earlier-token")  # e.g. pid 1 in a restarted container
    assert not registry_module._writer_gone(process_owner())
    assert not registry_module._writer_gone("")  # unknown writer: only its age can tell


def test_a_registry_from_before_the_ledger_gets_its_versions_listed(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / database.SQLITE_FILE, isolation_level=None)
    raw.execute(
        "CREATE TABLE documents (workspace TEXT NOT NULL, index_version TEXT NOT NULL, position INTEGER NOT NULL, "
        "payload TEXT NOT NULL, PRIMARY KEY (workspace, index_version, position))"
    )
    raw.execute("INSERT INTO documents VALUES (?, 'v-old', 0, ?)", (WS, doc(0).to_payload()))
    raw.close()
    registry = SpecRegistry(tmp_path)
    assert registry.stale_versions(older_than=3600) == [(WS, "v-old")]
    registry.close()


def test_a_registry_from_before_alembic_is_adopted_with_its_original_files(tmp_path: Path) -> None:
    """The layout of earlier releases: specs without later columns, originals as files. Nothing is lost."""
    folder = tmp_path / "originals" / hashlib.sha256(WS.encode()).hexdigest()[:32]
    folder.mkdir(parents=True)
    (folder / "abc.yaml").write_bytes(b"openapi: 3.0.0")
    raw = sqlite3.connect(tmp_path / database.SQLITE_FILE, isolation_level=None)
    raw.execute(
        """CREATE TABLE specs (workspace TEXT NOT NULL, name TEXT NOT NULL, format TEXT NOT NULL, title TEXT NOT NULL,
           version TEXT NOT NULL, content_hash TEXT NOT NULL, index_version TEXT NOT NULL,
           operation_count INTEGER NOT NULL, scheme_count INTEGER NOT NULL, uploaded_by TEXT NOT NULL,
           platform TEXT NOT NULL, indexed_at REAL NOT NULL, original_path TEXT NOT NULL,
           filename TEXT NOT NULL, header TEXT NOT NULL, PRIMARY KEY (workspace, name))"""
    )
    raw.execute(
        "INSERT INTO specs VALUES (?, 'shop', 'openapi3', 'T', '1', 'h', 'v1', 1, 0, 'U1', 'slack', 0, ?, 't.yaml', ?)",
        (WS, str(folder / "abc.yaml"), '{"format": "openapi3", "title": "T"}'),
    )
    raw.close()

    registry = SpecRegistry(tmp_path)
    adopted = registry.get(WS, "shop")
    assert adopted is not None and adopted.original_path == "abc.yaml" and adopted.uploader_name == ""
    assert registry.read_original(WS, "abc.yaml") == b"openapi: 3.0.0"
    assert not (tmp_path / "originals").exists()  # its files live in the database now
    registry.close()
    reopened = SpecRegistry(tmp_path)  # a second start finds nothing left to migrate
    assert reopened.read_original(WS, "abc.yaml") == b"openapi: 3.0.0"
    reopened.close()


def test_an_unreachable_database_is_one_clear_line_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        SpecRegistry(tmp_path, "postgresql://bot:hunter2-secret@127.0.0.1:1/registry")
    message = str(caught.value)
    assert "hunter2" not in message and "127.0.0.1:1/registry" in message and "\n" not in message
    with pytest.raises(ConfigError, match="postgresql://"):
        SpecRegistry(tmp_path, "mysql://bot:pw@127.0.0.1/registry")


def test_replicas_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    registries: list[SpecRegistry] = []
    barrier = threading.Barrier(4)

    def start(i: int) -> None:
        barrier.wait()
        try:
            registries.append(SpecRegistry(tmp_path / str(i), postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    registries[0].put(record("shop", "v1"))
    assert all(r.get(WS, "shop") is not None for r in registries)
    for registry in registries:
        registry.close()


# ---- locks across processes ---------------------------------------------------------------------------

HOLDER = """
import asyncio, sys
from dataclasses import replace
from pathlib import Path
from core.registry import SpecRegistry

async def main():
    registry = SpecRegistry(Path(sys.argv[1]), sys.argv[2] or None)
    async with registry.lock("spec:slack:T1:shop"):
        print("held", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


async def _acquired_within(registry: SpecRegistry, name: str, seconds: float, shared: bool = False) -> bool:
    try:
        async with asyncio.timeout(seconds):
            async with registry.lock(name, shared=shared):
                return True
    except TimeoutError:
        return False


async def test_a_lock_held_by_another_process_waits_and_is_released_when_it_is_killed(
    open_registry: Opener, tmp_path: Path
) -> None:
    registry = open_registry()
    url = registry.engine.url.render_as_string(hide_password=False) if database.is_postgres(registry.engine) else ""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), url.replace("+psycopg", "")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not await _acquired_within(registry, "spec:slack:T1:shop", 0.5)
        assert await _acquired_within(registry, "spec:slack:T1:other", 2)  # other names are independent
        holder.send_signal(signal.SIGKILL)  # no clean-up code runs: the database / kernel must let go
        holder.wait(timeout=10)
        assert await _acquired_within(registry, "spec:slack:T1:shop", 10)
    finally:
        holder.kill()
        holder.wait()


async def test_shared_holders_coexist_and_exclude_an_exclusive_one(open_registry: Opener) -> None:
    registry = open_registry()
    async with registry.lock("workspace:slack:T1", shared=True), registry.lock("workspace:slack:T1", shared=True):
        assert not await _acquired_within(registry, "workspace:slack:T1", 0.3)
    assert await _acquired_within(registry, "workspace:slack:T1", 2)


def test_export_and_replace_copy_everything_between_engines(postgres_url: str, tmp_path: Path) -> None:
    source = SpecRegistry(tmp_path / "a")
    source.put_documents(WS, "v1", [doc(0), doc(1)])
    source.begin_version(WS, "shop", "v1")
    source.put(record("shop", "v1", "abc.yaml"), original=b"spec bytes")
    target = SpecRegistry(tmp_path / "b", postgres_url)
    target.put(record("old", "v0"))  # replaced, not merged
    target.replace_all(source.engine)
    assert [r.name for r in target.list_records(WS)] == ["shop"]
    assert target.read_original(WS, "abc.yaml") == b"spec bytes"
    assert [d.key for d in target.documents(WS, "v1")] == ["k0", "k1"]
    copy = database.sqlite_engine(tmp_path / "copy.sqlite3")
    database.migrate(copy, tmp_path)
    target.export_to(copy)
    assert SpecRegistry(tmp_path / "c").engine is not None
    with database.read(copy) as db:
        assert db.execute(sa.select(sa.func.count()).select_from(database.documents)).scalar_one() == 2
    copy.dispose()
    source.close()
    target.close()



async def test_waiting_for_a_lock_is_bounded(open_registry: Opener) -> None:
    registry = open_registry()
    async with registry.lock("spec:slack:T1:shop"):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with registry.lock("spec:slack:T1:shop", timeout=0.3):
                pass
        assert time.monotonic() - started < 5
    async with registry.lock("spec:slack:T1:shop", timeout=0.3):  # free again
        pass


# ---- spec history ------------------------------------------------------------------------------------------


def upload(registry: SpecRegistry, name: str, content: str, history: int | None = 2, workspace: str = WS) -> None:
    """A new version of `name` whose original holds `content` (named by it, as uploads are)."""
    new = replace(record(name, f"iv-{content}", f"{content}.yaml", workspace), content_hash=content)
    registry.put(new, original=content.encode(), history=history)


def test_each_new_content_is_a_version_and_a_reindex_is_not(open_registry: Opener) -> None:
    registry = open_registry()
    upload(registry, "shop", "a")
    upload(registry, "shop", "b")
    registry.put(replace(registry.get(WS, "shop"), index_version="rebuilt"), history=2)  # type: ignore[arg-type]
    kept = registry.history(WS, "shop")
    assert [(v.number, v.content_hash, v.original_path) for v in kept] == [(1, "a", "a.yaml"), (2, "b", "b.yaml")]
    assert registry.version_counts(WS) == {"shop": 2}
    assert registry.read_original(WS, kept[0].original_path) == b"a"  # superseded, still there for a diff


def test_versions_beyond_the_history_are_pruned_with_their_originals(open_registry: Opener) -> None:
    registry = open_registry()
    for content in "abcde":
        upload(registry, "shop", content, history=2)
    assert [v.number for v in registry.history(WS, "shop")] == [3, 4, 5]  # the live one and 2 earlier
    assert originals_held(registry) == ["c.yaml", "d.yaml", "e.yaml"]
    upload(registry, "shop", "c", history=0)  # the same content as a kept version: no copy, and nothing else kept
    assert [(v.number, v.content_hash) for v in registry.history(WS, "shop")] == [(6, "c")]
    assert originals_held(registry) == ["c.yaml"]


def test_a_pruned_original_another_spec_uses_stays(open_registry: Opener) -> None:
    registry = open_registry()
    upload(registry, "shop", "a")
    upload(registry, "copy", "a")
    upload(registry, "shop", "b", history=0)
    assert originals_held(registry) == ["a.yaml", "b.yaml"]
    assert registry.sweep_originals(older_than=-1) == 0  # kept versions' originals are in use too


def test_forgetting_a_spec_removes_its_history_and_their_originals(open_registry: Opener) -> None:
    registry = open_registry()
    for content in "abc":
        upload(registry, "shop", content)
    upload(registry, "other", "a")
    assert registry.delete(WS, "shop") == 1  # b.yaml; a.yaml is `other`'s, c.yaml (the live one) is retired
    assert registry.history(WS, "shop") == []
    assert registry.version_counts(WS) == {"other": 1}
    registry.sweep_originals(older_than=3600)
    assert originals_held(registry) == ["a.yaml"]


def test_a_purge_removes_the_workspace_history(open_registry: Opener) -> None:
    registry = open_registry()
    upload(registry, "shop", "a")
    upload(registry, "shop", "b")
    upload(registry, "shop", "z", workspace=OTHER_WS)
    registry.delete_specs(WS)
    assert registry.version_counts(WS) == {}
    assert registry.version_counts(OTHER_WS) == {"shop": 1}


def test_specs_indexed_before_the_history_start_with_one_version(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    upload(registry, "shop", "a")
    registry.close()
    db = sqlite3.connect(tmp_path / database.SQLITE_FILE)
    db.execute("DROP TABLE spec_versions")
    db.execute("UPDATE alembic_version SET version_num = '0001'")
    db.commit()
    db.close()
    reopened = SpecRegistry(tmp_path)  # migrates to 0002
    try:
        assert [(v.number, v.content_hash, v.original_path) for v in reopened.history(WS, "shop")] == [
            (1, "a", "a.yaml")
        ]
    finally:
        reopened.close()


def test_channel_defaults_and_private_specs_on_both_engines(open_registry: Opener) -> None:
    registry = open_registry()
    registry.put(record("shop", "v1", "shop.yaml"), b"shop")
    registry.put(replace(record("secret", "v2", "secret.yaml"), channel="C-PRIVATE"), b"secret")
    assert [r.name for r in registry.list_visible(WS, "C-OTHER")] == ["shop"]
    assert [r.name for r in registry.list_visible(WS, "C-PRIVATE")] == ["secret", "shop"]
    assert [r.name for r in registry.list_visible(WS, "")] == ["shop"]  # no channel: shared specs only
    registry.set_channel_default(WS, "C-OTHER", "shop", "U1")
    registry.set_channel_default(WS, "C-PRIVATE", "secret", "U1")
    registry.set_channel_default(WS, "C-PRIVATE", "shop", "U2")  # a second `use` replaces the first
    registry.set_channel_default(WS, "C-THIRD", "shop", "U1")
    assert registry.channel_defaults(WS) == {"C-OTHER": "shop", "C-PRIVATE": "shop", "C-THIRD": "shop"}
    assert registry.clear_channel_default(WS, "C-THIRD") == "shop"
    assert registry.clear_channel_default(WS, "C-THIRD") is None
    # Made private to one channel: no other channel keeps it as its default.
    assert registry.set_visibility(WS, "shop", "C-PRIVATE")
    assert registry.channel_defaults(WS) == {"C-PRIVATE": "shop"}
    assert not registry.set_visibility(WS, "nope", "")
    registry.delete(WS, "shop")
    assert registry.channel_default(WS, "C-PRIVATE") is None
    registry.set_channel_default(WS, "C-PRIVATE", "secret", "U1")
    registry.set_channel_default("slack:OTHER", "C-PRIVATE", "x", "U1")
    registry.delete_specs(WS)  # purging a workspace takes its channel defaults, no one else's
    assert registry.channel_defaults(WS) == {}
    assert registry.channel_defaults("slack:OTHER") == {"C-PRIVATE": "x"}


def test_a_registry_from_before_channel_settings_gets_them(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    registry.put(record("shop", "v1", "shop.yaml"), b"shop")
    registry.close()
    db = sqlite3.connect(tmp_path / database.SQLITE_FILE)
    db.execute("DROP TABLE channel_defaults")
    db.execute("ALTER TABLE specs DROP COLUMN channel")
    db.execute("UPDATE alembic_version SET version_num = '0002'")
    db.commit()
    db.close()
    reopened = SpecRegistry(tmp_path)  # migrates to 0003: every spec stays shared with the whole workspace
    [shop] = reopened.list_visible(WS, "C1")
    assert shop.channel == "" and not shop.private
    reopened.set_channel_default(WS, "C1", "shop", "U1")
    assert reopened.channel_default(WS, "C1") == "shop"
    reopened.close()
