"""Real processes: a platform refusing its token or intents ends `api-assistant run` with one line and exit 2.

`api-assistant run` is started as a subprocess (`python -m bot.cli`) against the mock Slack and the fake Discord,
which refuse the way the real services do: `auth.test` / `apps.connections.open` answer `invalid_auth`, Discord's
login answers 401, and its gateway closes with 4014 when the message-content intent is not enabled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.bot.discord.fake_discord import TOKEN as DISCORD_TOKEN
from tests.bot.discord.fake_discord import FakeDiscord
from tests.bot.slack.mock_slack import APP_TOKEN, BOT_TOKEN, MockSlack
from tests.bot.test_shutdown import STARTUP_TIMEOUT, cli_env, json_logs, run_cli, start_cli


def slack_env(slack: MockSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack.api_url}


def discord_env(fake: FakeDiscord) -> dict[str, str]:
    return {"DISCORD_BOT_TOKEN": DISCORD_TOKEN, "DISCORD_API_URL": fake.api_url,
            "DISCORD_GATEWAY_URL": fake.gateway_url}


def assert_one_line(err: str, *expected: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


async def test_slack_bot_token_rejected_by_auth_test_while_discord_starts(tmp_path: Path) -> None:
    slack, fake = MockSlack(), FakeDiscord()
    await slack.start()
    await fake.start()
    try:
        slack.fail("auth.test", error="invalid_auth")
        env = cli_env(tmp_path / "data", **slack_env(slack), **discord_env(fake))
        code, out, err = await run_cli(tmp_path, env, "run")
    finally:
        await fake.stop()
        await slack.stop()
    assert code == 2, err[-3000:]
    assert_one_line(err, "SLACK_BOT_TOKEN", "invalid_auth")
    assert not slack.calls_to("apps.connections.open")  # nothing connected with a token Slack refused
    logs = json_logs(out)
    events = [e["event"] for e in logs]
    # The model is loaded at start-up, before any platform is contacted.
    assert events.index("model_loaded") < events.index("platforms_starting")
    assert next(e for e in logs if e["event"] == "model_loaded")["seconds"] > 0
    assert "discord_stopped" in events  # Discord, starting meanwhile, was closed
    assert not [e for e in logs if e["level"] == "error"], [e for e in logs if e["level"] == "error"]


async def test_slack_app_token_rejected(tmp_path: Path) -> None:
    slack = MockSlack()
    await slack.start()
    try:
        slack.fail("apps.connections.open", error="invalid_auth")
        code, out, err = await run_cli(tmp_path, cli_env(tmp_path / "data", **slack_env(slack)), "run")
    finally:
        await slack.stop()
    assert code == 2, err[-3000:]
    assert_one_line(err, "SLACK_APP_TOKEN", "invalid_auth")
    assert len(slack.calls_to("apps.connections.open")) == 1  # not retried forever
    assert "slack_stopped" in [e["event"] for e in json_logs(out)]


async def test_discord_token_rejected_at_login(tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    try:
        fake.fail_next("GET", "/users/@me", status=401, body={"message": "401: Unauthorized", "code": 0})
        code, _, err = await run_cli(tmp_path, cli_env(tmp_path / "data", **discord_env(fake)), "run")
    finally:
        await fake.stop()
    assert code == 2, err[-3000:]
    assert_one_line(err, "DISCORD_BOT_TOKEN", "401")
    assert not fake.identifies


async def test_discord_intent_refused_stops_slack_cleanly_and_exits_2(tmp_path: Path) -> None:
    slack, fake = MockSlack(), FakeDiscord()
    await slack.start()
    await fake.start()
    slack_up = asyncio.Event()
    fake.close_on_identify(4014, gate=slack_up)  # refuse only once Slack is connected and serving
    try:
        env = cli_env(tmp_path / "data", **slack_env(slack), **discord_env(fake))
        process = await start_cli(tmp_path, env, "run")
        try:
            await slack.wait_until(lambda: slack.socket_connected, timeout=STARTUP_TIMEOUT)
            slack_up.set()
            out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await slack.wait_until(lambda: not slack.socket_connected, timeout=5)
    finally:
        await fake.stop()
        await slack.stop()
    out, err = out_bytes.decode(), err_bytes.decode()
    assert process.returncode == 2, err[-3000:]
    assert_one_line(err, "Message Content intent", "Privileged Gateway Intents")
    logs = json_logs(out)
    events = [e["event"] for e in logs]
    assert events.index("model_loaded") < events.index("slack_started") < events.index("slack_stopped")
    assert "discord_stopped" in events
    assert not [e for e in logs if e["level"] == "error"], [e for e in logs if e["level"] == "error"]
