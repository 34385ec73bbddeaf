"""Real processes: `api-assistant run` taking scheduled backups, and `restore` refusing while a bot runs.

`run` is started as a subprocess (`python -m bot.cli`) in Slack Socket Mode against the mock Slack, as in
tests/bot/test_shutdown.py; `restore` is the real command in another subprocess.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from core.actions import BytesAttachment, Origin, PathAttachment, UploadSpec
from core.backup import backup_now, extract_verified
from core.bootstrap import build_assistant
from core.config import Settings
from core.data_lock import LOCK_FILE, data_dir_lock
from tests.bot.slack.mock_slack import APP_TOKEN, BOT_TOKEN, TEAM_ID, MockSlack
from tests.bot.test_shutdown import STARTUP_TIMEOUT, cli_env, json_logs, run_cli, start_cli, wait_until
from tests.core.test_backup import WEATHER
from tests.ops import get, scrape

TEAM = Origin("slack", TEAM_ID, user="U1", is_admin=True)
INTERVAL_SECONDS = 2.0


def slack_env(slack: MockSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack.api_url}


class Running:
    """A `run` subprocess whose stdout (JSON log lines) is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode())

    @property
    def logs(self) -> list[dict[str, Any]]:
        return json_logs("".join(self.lines))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.logs if e["event"] == name]

    async def wait_for_event(self, name: str, count: int = 1) -> dict[str, Any]:
        await wait_until(lambda: len(self.events(name)) >= count or self.process.returncode is not None,
                         STARTUP_TIMEOUT, name)
        assert len(self.events(name)) >= count, "".join(self.lines)[-3000:]
        return self.events(name)[count - 1]

    async def base_url(self) -> str:
        started = await self.wait_for_event("http_server_started")
        return f"http://127.0.0.1:{started['port']}"

    async def finish(self) -> tuple[int, str]:
        assert self.process.stderr is not None
        err = await asyncio.wait_for(self.process.stderr.read(), STARTUP_TIMEOUT)
        code = await asyncio.wait_for(self.process.wait(), STARTUP_TIMEOUT)
        await self.closed()
        return code, err.decode()

    async def closed(self) -> None:
        """Once the process has exited: every line it wrote has been read."""
        await self._reader


@asynccontextmanager
async def running_bot(cwd: Path, env: dict[str, str]) -> AsyncIterator[Running]:
    bot = Running(await start_cli(cwd, env, "run"))
    try:
        yield bot
    finally:
        if bot.process.returncode is None:
            bot.process.kill()
            await bot.process.wait()
        await bot.closed()


async def _index(data: Path, embedder: Any, example_spec: Path, *, weather: bool = False) -> None:
    async with build_assistant(Settings(data_dir=data, _env_file=None), embedder=embedder) as assistant:  # type: ignore[call-arg]
        await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
        if weather:
            weather_file = BytesAttachment("weather.json", json.dumps(WEATHER).encode())
            await assistant.ingest(UploadSpec(TEAM, weather_file, None))


def _files(data: Path) -> dict[str, bytes]:
    """What a refused restore must leave as it was: every file but the vectors, caches and the lock."""
    return {
        str(p.relative_to(data)): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and "chroma" not in p.parts and "cache" not in p.name and p.name != LOCK_FILE
    }


async def test_run_backs_up_on_schedule_survives_failures_and_stops_cleanly(
    tmp_path: Path, embedder: Any, example_spec: Path
) -> None:
    data = tmp_path / "data"
    await _index(data, embedder, example_spec)
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the backup folder's parent should be")
    dest = blocker / "backups"
    slack = MockSlack()
    await slack.start()
    try:
        env = cli_env(data, **slack_env(slack), BACKUP_INTERVAL_HOURS=str(INTERVAL_SECONDS / 3600),
                      BACKUP_DEST=str(dest))
        async with running_bot(tmp_path, env) as bot:
            base = await bot.base_url()
            failed = await bot.wait_for_event("scheduled_backup_failed")
            assert failed["error"] == "NotADirectoryError" and failed["dest"] == str(dest)
            await wait_until(lambda: slack.socket_connected, STARTUP_TIMEOUT, "Socket Mode")
            assert (await get(base + "/ready"))[0] == 200  # a failed backup never takes the bot down
            metrics = await scrape(base)
            assert metrics.value("api_assistant_backup_failures_total") >= 1
            assert metrics.value("api_assistant_backup_last_success_timestamp_seconds") == 0
            assert metrics.value("api_assistant_backup_interval_seconds") == INTERVAL_SECONDS

            blocker.unlink()  # the disk is fixed: the next tick succeeds without a restart
            written = await bot.wait_for_event("scheduled_backup_written")
            metrics = await scrape(base)
            archive = Path(written["archive"])
            assert archive.parent == dest and archive.is_file()
            assert metrics.value("api_assistant_backup_last_size_bytes") == archive.stat().st_size
            assert (metrics.value("api_assistant_backup_last_success_timestamp_seconds")
                    > metrics.value("api_assistant_backup_last_failure_timestamp_seconds") > 0)

            bot.process.send_signal(signal.SIGTERM)
            code, err = await bot.finish()
    finally:
        await slack.stop()

    assert code == 0, err[-3000:]
    events = [e["event"] for e in bot.logs]
    assert events.index("backups_scheduled") < events.index("backups_stopped") < events.index("platforms_stopped")
    assert {e["event"] for e in bot.logs if e["level"] == "error"} == {"scheduled_backup_failed"}
    for archive in sorted(dest.glob("api-assistant-backup-*.tar.gz")):  # every archive written is whole
        staging = tmp_path / f"verify-{archive.name}"
        staging.mkdir()
        assert extract_verified(archive, staging)["counts"]["specs"] == 1
    assert not [p for p in dest.iterdir() if p.name.startswith(".backup-")]


async def test_restore_refuses_while_the_bot_runs_and_works_after_kill_9(
    tmp_path: Path, embedder: Any, example_spec: Path
) -> None:
    data = tmp_path / "data"
    await _index(data, embedder, example_spec)
    archive = backup_now(Settings(data_dir=data, _env_file=None), str(tmp_path / "backups")).path  # type: ignore[call-arg]
    await _index(data, embedder, example_spec, weather=True)  # the current data differs from the archive
    slack = MockSlack()
    await slack.start()
    try:
        async with running_bot(tmp_path, cli_env(data, **slack_env(slack))) as bot:
            await wait_until(lambda: slack.socket_connected, STARTUP_TIMEOUT, "Socket Mode")
            before = _files(data)
            code, out, err = await run_cli(tmp_path, cli_env(data), "restore", str(archive), "--yes")
            assert code == 2, err[-3000:]
            assert err.strip() == (
                f"Refusing to restore `{archive.name}`: the bot (`api-assistant run`) or another api-assistant "
                f"command is using DATA_DIR `{data}`; stop every one of them first (`docker stop`, `fly machine stop`, "
                "or Ctrl-C), restore, then start them again. Nothing was changed."
            )
            assert _files(data) == before

            bot.process.kill()  # kill -9: no clean-up runs, the kernel drops the lock
            assert await asyncio.wait_for(bot.process.wait(), 10) == -signal.SIGKILL
    finally:
        await slack.stop()

    code, out, err = await run_cli(tmp_path, cli_env(data), "restore", str(archive), "--yes")
    assert code == 0, err[-3000:]
    assert "Restored 1 workspaces, 1 specs" in out
    async with build_assistant(Settings(data_dir=data, _env_file=None), embedder=embedder) as assistant:  # type: ignore[call-arg]
        assert [r.name for r in assistant.registry.list_records(TEAM.scope)] == ["bookshop"]


async def test_run_refuses_to_start_while_a_restore_holds_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    slack = MockSlack()
    await slack.start()
    try:
        with data_dir_lock(data, exclusive=True):  # what `restore` holds from start to end
            code, out, err = await run_cli(tmp_path, cli_env(data, **slack_env(slack)), "run")
    finally:
        await slack.stop()
    assert code == 2, err[-3000:]
    assert err.strip() == (
        f"DATA_DIR `{data}` is being restored (`api-assistant restore` is running); "
        "try again once the restore has finished."
    )
    assert "model_loaded" not in out and not slack.calls  # refused before loading anything or connecting
