"""`BACKUP_INTERVAL_HOURS`: the schedule's timing, failures, metrics and stopping, with a stand-in backup.

The stand-in is a plain function run in the worker thread exactly as `backup_now` would be; the real backup in
a real `api-assistant run` is tested in tests/bot/test_backup_run.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.backup import BackupInfo
from core.backup_schedule import BackupSchedule, check_backup_schedule
from core.config import Settings
from core.errors import BackupError, ConfigError
from core.metrics import Metrics


def _settings(tmp_path: Path, interval_seconds: float, **extra: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", backup_interval_hours=interval_seconds / 3600, _env_file=None, **extra
    )


class StandIn:
    """Records each call (monotonic time, thread) and answers with `outcomes` in turn (an exception is raised)."""

    def __init__(self, *outcomes: object, work: Callable[[], None] | None = None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[float, str | None, threading.Thread]] = []
        self.work = work

    def __call__(self, settings: Settings, dest: str | None) -> BackupInfo:
        self.calls.append((time.monotonic(), dest, threading.current_thread()))
        if self.work:
            self.work()
        outcome = self.outcomes.pop(0) if self.outcomes else 100
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, int)
        return BackupInfo(Path(dest or ".") / "archive.tar.gz", datetime.now(UTC), outcome, {"specs": 1})


def sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_first_backup_comes_one_interval_after_start_then_one_per_interval(tmp_path):
    take = StandIn()
    metrics = Metrics()
    schedule = BackupSchedule(_settings(tmp_path, 0.4, backup_dest=str(tmp_path / "dest")), metrics, take)
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(schedule.run(stop))
    await asyncio.sleep(0.2)
    assert take.calls == []  # not at start-up
    await wait_for(lambda: len(take.calls) >= 2)
    stop.set()
    await asyncio.wait_for(task, 5)

    first, second = take.calls[0][0], take.calls[1][0]
    assert first - started >= 0.39 and second - first >= 0.39
    assert take.calls[0][1] == str(tmp_path / "dest")  # BACKUP_DEST
    assert all(thread is not threading.main_thread() for _, _, thread in take.calls)  # never on the event loop's
    assert sample(metrics, "api_assistant_backup_interval_seconds") == pytest.approx(0.4)
    assert sample(metrics, "api_assistant_backup_last_size_bytes") == 100


async def test_failures_are_logged_counted_and_retried_at_the_next_tick(tmp_path):
    take = StandIn(OSError(28, "No space left on device"), BackupError("The backup could not be written: x."), 4096)
    metrics = Metrics()
    schedule = BackupSchedule(_settings(tmp_path, 0.1), metrics, take)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(schedule.run(stop))
        await wait_for(lambda: len(take.calls) >= 3)
        await asyncio.sleep(0.05)
        assert not task.done()  # the bot's task group never sees a failure
        failures = sample(metrics, "api_assistant_backup_failures_total")
        last_failure = sample(metrics, "api_assistant_backup_last_failure_timestamp_seconds")
        last_success = sample(metrics, "api_assistant_backup_last_success_timestamp_seconds")
        stop.set()
        await asyncio.wait_for(task, 5)

    assert failures == 2
    assert 0 < last_failure < last_success <= time.time()
    assert sample(metrics, "api_assistant_backup_last_size_bytes") == 4096
    failed = [e for e in logs if e["event"] == "scheduled_backup_failed"]
    assert failed[0]["error"] == "OSError" and failed[0]["log_level"] == "error" and failed[0].get("exc_info")
    assert failed[1]["reason"] == "The backup could not be written: x." and "exc_info" not in failed[1]
    written = next(e for e in logs if e["event"] == "scheduled_backup_written")
    assert written["size_bytes"] == 4096 and written["specs"] == 1


async def test_the_event_loop_keeps_running_during_a_backup(tmp_path):
    take = StandIn(work=lambda: time.sleep(0.6))  # a blocking backup, as SQLite copies and gzip are
    schedule = BackupSchedule(_settings(tmp_path, 0.05), Metrics(), take)
    stop = asyncio.Event()
    task = asyncio.create_task(schedule.run(stop))
    await wait_for(lambda: len(take.calls) == 1)
    ticks, worst = 0, 0.0
    began = time.monotonic()
    while time.monotonic() - began < 0.4:  # inside the 0.6 s backup
        before = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - before)
        ticks += 1
    stop.set()
    await asyncio.wait_for(task, 5)
    assert ticks >= 10 and worst < 0.25


async def test_stop_while_waiting_ends_at_once(tmp_path):
    take = StandIn()
    schedule = BackupSchedule(_settings(tmp_path, 3600), Metrics(), take)
    stop = asyncio.Event()
    task = asyncio.create_task(schedule.run(stop))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert take.calls == []


async def test_a_backup_in_progress_finishes_before_the_schedule_stops(tmp_path):
    release = threading.Event()
    take = StandIn(work=lambda: release.wait(10))
    metrics = Metrics()
    schedule = BackupSchedule(_settings(tmp_path, 0.05), metrics, take)
    stop = asyncio.Event()
    task = asyncio.create_task(schedule.run(stop))
    await wait_for(lambda: len(take.calls) == 1)
    stop.set()  # SIGTERM arrives mid-backup
    await asyncio.sleep(0.2)
    assert not task.done()  # waiting for the archive, not abandoning it half-written
    release.set()
    await asyncio.wait_for(task, 5)
    assert len(take.calls) == 1  # and no new one after the stop
    assert sample(metrics, "api_assistant_backup_last_size_bytes") == 100


async def test_a_backup_longer_than_the_interval_skips_the_ticks_it_overran(tmp_path):
    take = StandIn(work=lambda: time.sleep(0.35))
    schedule = BackupSchedule(_settings(tmp_path, 0.1), Metrics(), take)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(schedule.run(stop))
        await wait_for(lambda: len(take.calls) >= 2)
        stop.set()
        await asyncio.wait_for(task, 5)
    gap = take.calls[1][0] - take.calls[0][0]
    assert gap >= 0.35  # never two at once, never a burst to catch up
    assert any(e["event"] == "scheduled_backups_skipped" and e["count"] >= 2 for e in logs)


async def test_off_by_default(tmp_path):
    take = StandIn()
    metrics = Metrics()
    schedule = BackupSchedule(Settings(data_dir=tmp_path, _env_file=None), metrics, take)  # type: ignore[call-arg]
    assert not schedule.enabled
    await asyncio.wait_for(schedule.run(asyncio.Event()), 1)
    assert take.calls == [] and sample(metrics, "api_assistant_backup_interval_seconds") == 0


def test_an_unusable_destination_stops_run_at_start_up(tmp_path):
    check_backup_schedule(_settings(tmp_path, 0, backup_dest="s3://"))  # not scheduled: not checked
    check_backup_schedule(_settings(tmp_path, 3600, backup_dest=str(tmp_path / "folder")))
    with pytest.raises(ConfigError) as refused:
        check_backup_schedule(_settings(tmp_path, 3600, backup_dest="s3://"))
    message = str(refused.value)
    assert message.startswith("Invalid configuration: BACKUP_DEST:") and "names no bucket" in message
