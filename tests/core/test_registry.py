"""The registry on disk: writes commit or roll back, the version ledger, and originals housekeeping."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core import registry as registry_module
from core.documents import Document
from core.embedding import EmbeddingDiskCache
from core.models import ApiSpec, ItemKind, SpecFormat
from core.registry import SpecRecord, SpecRegistry, process_owner

WS = "slack:T1"
OTHER_WS = "slack:T2"


def doc(i: int) -> Document:
    return Document(key=f"k{i}", kind=ItemKind.OPERATION, title=f"op {i}", embed_text=f"op {i}", lexical_text=f"op {i}")


class Exploding(Document):
    """A document whose serialisation fails: the write fails half-way through `executemany`."""

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


@pytest.mark.parametrize(("bad", "error"), [(Exploding, RuntimeError), (NullPayload, sqlite3.IntegrityError)])
def test_a_failed_write_rolls_back_and_later_writes_still_commit(tmp_path: Path, bad: type, error: type) -> None:
    registry = SpecRegistry(tmp_path)
    broken = [doc(0), doc(1), bad(**vars(doc(2))), doc(3)]
    with pytest.raises(error):
        registry.put_documents(WS, "v-broken", broken)
    registry.put_documents(WS, "v-good", [doc(0), doc(1)])
    registry.put(record("shop", "v-good"))
    registry.close()

    reopened = SpecRegistry(tmp_path)  # what a new process would read from disk
    assert reopened.get(WS, "shop") is not None
    assert [d.key for d in reopened.documents(WS, "v-good")] == ["k0", "k1"]
    assert reopened.documents(WS, "v-broken") == []  # the rows written before the failure were rolled back
    raw = sqlite3.connect(tmp_path / "registry.sqlite3")
    assert raw.execute("SELECT COUNT(*) FROM documents WHERE index_version = 'v-broken'").fetchone() == (0,)


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


def test_writes_wait_for_another_connections_lock(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    other = sqlite3.connect(tmp_path / "registry.sqlite3", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a moment
    releaser = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    releaser.start()
    try:
        registry.put(record("shop", "v1"))  # waits (busy timeout) instead of failing with "database is locked"
    finally:
        releaser.join()
    assert registry.get(WS, "shop") is not None


def test_same_content_saved_concurrently_never_collides(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    data = b"openapi: 3.0.0\n" * 50_000
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    paths: list[Path] = []

    def save() -> None:
        barrier.wait()
        try:
            paths.append(registry.save_original(WS, "abc", "spec.yaml", data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(paths)) == 1 and paths[0].read_bytes() == data
    assert [p.name for p in paths[0].parent.iterdir()] == ["abc.yaml"]  # no temp file left behind


def test_release_original_keeps_a_file_another_record_uses(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    shared = registry.save_original(WS, "abc", "a.yaml", b"x")
    registry.put(record("one", "v1", shared))
    registry.put(record("two", "v2", shared))
    registry.delete(WS, "one")
    assert registry.release_original(WS, str(shared)) is False
    assert shared.exists()
    registry.delete(WS, "two")
    assert registry.release_original(WS, str(shared)) is True
    assert not shared.exists()


def test_release_original_finds_the_file_whatever_the_stored_path_looks_like(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    registry = SpecRegistry(Path("data"))  # a relative DATA_DIR, as with the default `.data`
    saved = registry.save_original(WS, "abc", "a.yaml", b"x")
    registry.put(record("one", "v1", saved))
    registry.delete(WS, "one")
    assert registry.release_original(WS, str(saved.resolve())) is True
    assert not saved.exists()


def test_an_original_saved_for_a_record_not_written_yet_is_not_released(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    first = registry.save_original(WS, "abc", "a.yaml", b"x")
    registry.put(record("one", "v1", first))
    again = registry.save_original(WS, "abc", "a.yaml", b"x")  # another ingest of the same file, mid-way
    registry.delete(WS, "one")  # meanwhile `one` is forgotten
    assert registry.release_original(WS, str(first)) is False
    registry.put(record("two", "v2", again))  # the other ingest completes
    assert again.exists()
    registry.delete(WS, "two")
    assert registry.release_original(WS, str(again)) is True


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_sweep_originals_removes_only_old_part_files_and_unreferenced_originals(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    kept = registry.save_original(WS, "kept", "a.yaml", b"kept")
    registry.put(record("kept", "v1", kept))
    orphan = registry.save_original(WS, "orphan", "b.yaml", b"orphan")
    young_orphan = registry.save_original(OTHER_WS, "young", "c.yaml", b"young")
    old_part = kept.parent / "x.yaml.0123.part"
    old_part.write_bytes(b"half")
    young_part = kept.parent / "y.yaml.4567.part"
    young_part.write_bytes(b"being written")
    for path in (kept, orphan, old_part):
        _age(path, 7200)

    assert registry.sweep_originals(older_than=3600) == (1, 1)
    assert kept.exists() and young_orphan.exists() and young_part.exists()
    assert not orphan.exists() and not old_part.exists()
    assert registry.sweep_originals(older_than=3600) == (0, 0)


def test_stale_versions(tmp_path: Path) -> None:
    registry = SpecRegistry(tmp_path)
    registry.begin_version(WS, "live", "v-live")
    registry.put(record("live", "v-live"))
    registry.begin_version(WS, "mine", "v-mine")  # this process is writing it right now
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host, _, _ = process_owner().split("|")
    raw = sqlite3.connect(tmp_path / "registry.sqlite3", isolation_level=None)
    now = time.time()
    rows = [
        ("v-crashed", f"{host}|{dead.stdout.strip()}|token", now),  # its writer exited
        ("v-elsewhere", "other-host|1|token", now),  # another replica, maybe still writing
        ("v-elsewhere-old", "other-host|1|token", now - 7200),  # another replica, long ago
    ]
    for version, owner, created in rows:
        raw.execute("INSERT INTO index_versions VALUES (?, ?, 's', ?, ?)", (WS, version, owner, created))
    stale = registry.stale_versions(older_than=3600)
    assert sorted(stale) == [(WS, "v-crashed"), (WS, "v-elsewhere-old")]


def test_an_earlier_process_with_our_pid_counts_as_gone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    host, pid, _ = process_owner().split("|")
    assert registry_module._writer_gone(f"{host}|{pid}|an-earlier-token")  # e.g. pid 1 in a restarted container
    assert not registry_module._writer_gone(process_owner())
    assert not registry_module._writer_gone("")  # unknown writer: only its age can tell


def test_a_registry_from_before_the_ledger_gets_its_versions_listed(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "registry.sqlite3", isolation_level=None)
    raw.execute(
        "CREATE TABLE documents (workspace TEXT NOT NULL, index_version TEXT NOT NULL, position INTEGER NOT NULL, "
        "payload TEXT NOT NULL, PRIMARY KEY (workspace, index_version, position))"
    )
    raw.execute("INSERT INTO documents VALUES (?, 'v-old', 0, ?)", (WS, doc(0).to_payload()))
    raw.close()
    registry = SpecRegistry(tmp_path)
    assert registry.stale_versions(older_than=3600) == [(WS, "v-old")]
