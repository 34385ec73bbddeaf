"""Backups to an S3-compatible bucket: a real local S3 server (moto's server mode on 127.0.0.1), the real CLI."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import boto3
import pytest

from bot.cli import main
from core.backup import archive_name, backup_now
from core.backup_schedule import BackupSchedule, check_backup_schedule
from core.config import load_settings
from core.metrics import Metrics
from tests.redis_server import free_port

BUCKET = "team-backups"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    moto_server = Path(sys.executable).with_name("moto_server")
    assert moto_server.exists(), "moto's S3 server is part of the dev dependencies: run make setup"
    port = free_port()
    server = subprocess.Popen(
        [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the local S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def s3(monkeypatch, tmp_path, embedder, s3_endpoint):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_backup_list_prune_and_restore_through_a_bucket(s3, example_spec, capsys):
    now = datetime.now(UTC)
    old_key = "nightly/" + archive_name(now - timedelta(days=40))
    recent_key = "nightly/" + archive_name(now - timedelta(days=2))
    other_key = "elsewhere/" + archive_name(now - timedelta(days=40))
    for key in (old_key, recent_key, other_key):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")

    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    capsys.readouterr()
    assert main(["backup", f"s3://{BUCKET}/nightly"]) == 0
    out = capsys.readouterr().out
    assert f"Wrote s3://{BUCKET}/nightly/api-assistant-backup-" in out and "1 specs" in out
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    new_key = next(k for k in keys if k.startswith("nightly/") and k not in {old_key, recent_key})
    assert old_key not in keys and recent_key in keys and other_key in keys  # pruned after success, in its prefix

    assert main(["backups", f"s3://{BUCKET}/nightly"]) == 0
    listing = capsys.readouterr().out
    assert "1 workspaces, 1 specs" in listing and Path(recent_key).name in listing

    assert main(["restore", f"s3://{BUCKET}/nightly/missing.tar.gz", "--yes"]) == 2
    assert "could not be downloaded" in capsys.readouterr().err
    assert main(["restore", f"s3://{BUCKET}/{recent_key}", "--yes"]) == 2  # a foreign object is refused
    assert "Nothing was changed" in capsys.readouterr().err

    assert main(["restore", f"s3://{BUCKET}/{new_key}", "--yes"]) == 0
    assert "Restored 1 workspaces, 1 specs" in capsys.readouterr().out
    assert main(["ask", "how do I delete a customer?", "--spec", "shop"]) == 0
    assert "DELETE /customers/{customerId}" in capsys.readouterr().out


def test_backup_dest_is_the_default_and_backups_in_the_same_second_both_land(s3, example_spec, capsys, monkeypatch):
    monkeypatch.setenv("BACKUP_DEST", f"s3://{BUCKET}/team")
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    settings = load_settings()

    # Four at once (a small archive takes well under a second): four objects, none replacing another.
    with ThreadPoolExecutor(4) as pool:
        infos = list(pool.map(lambda _: backup_now(settings), range(4)))
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="team/")["Contents"])
    assert keys == sorted(str(info.path) for info in infos) and len(set(keys)) == 4
    assert all(info.url == f"s3://{BUCKET}/{info.path}" for info in infos)

    capsys.readouterr()
    assert main(["backup"]) == 0  # no DEST: BACKUP_DEST
    assert capsys.readouterr().out.startswith(f"Wrote s3://{BUCKET}/team/api-assistant-backup-")
    assert main(["backups"]) == 0
    listing = capsys.readouterr().out
    assert all(PurePosixPath(key).name in listing for key in keys) and listing.count("1 specs") == 5


def test_scheduled_backups_into_a_bucket(s3, example_spec, capsys, monkeypatch):
    monkeypatch.setenv("BACKUP_DEST", f"s3://{BUCKET}/scheduled")
    monkeypatch.setenv("BACKUP_INTERVAL_HOURS", str(0.3 / 3600))
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    settings = load_settings()
    check_backup_schedule(settings)
    metrics = Metrics()

    async def until_one_backup() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(BackupSchedule(settings, metrics).run(stop))
        deadline = time.monotonic() + 60
        while not metrics.registry.get_sample_value("api_assistant_backup_last_size_bytes"):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 60)

    asyncio.run(until_one_backup())
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix="scheduled/")["Contents"]
    assert objects and metrics.registry.get_sample_value("api_assistant_backup_failures_total") == 0
    assert metrics.registry.get_sample_value("api_assistant_backup_last_size_bytes") in {o["Size"] for o in objects}
