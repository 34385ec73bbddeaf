"""`BACKUP_INTERVAL_HOURS`: `api-assistant run` also writes a backup every interval.

The first backup is taken one interval after start-up (a restart loop must not write an archive per
restart), then one per interval. Each runs in a worker thread (`backup_now` copies SQLite, compresses and
uploads: blocking work), so the event loop keeps answering. A failure is logged, counted
(`api_assistant_backup_failures_total`) and tried again at the next tick; it never stops the bot. On SIGTERM
the schedule stops at once; a backup already running is not interrupted (a thread cannot be), so the shutdown
waits for it and the archive is either complete or never placed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import structlog

from core import messages
from core.backup import BackupInfo, backup_destination, backup_now, s3_client, s3_location
from core.config import Settings
from core.errors import BackupError, ConfigError
from core.metrics import Metrics

log = structlog.get_logger(__name__)

TakeBackup = Callable[[Settings, str | None], BackupInfo]


def check_backup_schedule(settings: Settings) -> None:
    """With `BACKUP_INTERVAL_HOURS` set, refuse to start (`ConfigError`) when `BACKUP_DEST` could never work.

    Checked before the model loads: an `s3://` destination with no bucket, or without boto3 installed.
    """
    if settings.backup_interval_hours <= 0:
        return
    try:
        if s3_location(backup_destination(settings)) is not None:
            s3_client(settings.s3_endpoint_url)
    except BackupError as exc:
        raise ConfigError(messages.backup_schedule_invalid(exc.user_message)) from exc


class BackupSchedule:
    """Takes a backup every `BACKUP_INTERVAL_HOURS` until stopped, recording each outcome in the metrics."""

    def __init__(self, settings: Settings, metrics: Metrics, take: TakeBackup = backup_now) -> None:
        self._settings = settings
        self._metrics = metrics
        self._take = take
        self.interval = settings.backup_interval_hours * 3600
        self.destination = backup_destination(settings)

    @property
    def enabled(self) -> bool:
        """Whether `BACKUP_INTERVAL_HOURS` asks for scheduled backups."""
        return self.interval > 0

    async def run(self, stop: asyncio.Event) -> None:
        """Back up every interval until `stop` is set; a backup in progress when it is set finishes first."""
        if not self.enabled:
            return
        self._metrics.backup_interval.set(self.interval)
        log.info("backups_scheduled", interval_hours=self._settings.backup_interval_hours, dest=self.destination)
        loop = asyncio.get_running_loop()
        due = loop.time() + self.interval
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, due - loop.time()))
                break
            except TimeoutError:
                pass
            await self.run_once()
            due += self.interval
            late = loop.time() - due
            if late >= 0:  # the backup took longer than an interval: skip the ticks it overran
                skipped = math.floor(late / self.interval) + 1
                due += skipped * self.interval
                log.warning("scheduled_backups_skipped", count=skipped, interval_hours=self.interval / 3600)
        log.info("backups_stopped")

    async def run_once(self) -> BackupInfo | None:
        """Take one backup in a worker thread; log and count a failure instead of raising it."""
        attempted = time.time()
        started = time.monotonic()
        try:
            info = await asyncio.to_thread(self._take, self._settings, self.destination)
        except BackupError as exc:  # a known reason, already one line for the operator
            self._metrics.backup_failed(attempted)
            log.error("scheduled_backup_failed", dest=self.destination, reason=exc.user_message)
            return None
        except Exception as exc:  # full disk, bucket refused, network: logged with its traceback, retried later
            self._metrics.backup_failed(attempted)
            log.exception("scheduled_backup_failed", dest=self.destination, error=type(exc).__name__)
            return None
        self._metrics.backup_succeeded(info.created.timestamp(), info.size)
        log.info(
            "scheduled_backup_written", archive=info.where, size_bytes=info.size,
            seconds=round(time.monotonic() - started, 2), **info.counts,
        )  # fmt: skip
        return info
